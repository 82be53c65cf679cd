/**
 * BullMQ as a `JobSystem` (jobs.ts) for `jobs-vs-bullmq`: a private Redis (redis.ts) per part,
 * producers on one `Queue` in this process (one Redis connection, as one producer process has),
 * workers as child processes (bullmqWorker.ts, a `Worker` with the same concurrency as
 * `archio worker`'s). BullMQ's defaults otherwise: completed jobs are kept (as Archio keeps
 * their records), and their count is what end to end samples.
 */
import { fileURLToPath } from "node:url"
import { Queue } from "bullmq"
import { withStop } from "./cleanup.ts"
import { preloadInBatches, spawnWorker, type JobSystem } from "./systems.ts"
import { startRedis, type AppendFsync, type RedisServer } from "./redis.ts"

const workerScript = fileURLToPath(new URL("./bullmqWorker.ts", import.meta.url))

/** BullMQ on `redis`; `close` ends this process's queues (not the server). */
export const bullmqJobs = (redis: RedisServer, env?: Readonly<Record<string, string>>): JobSystem & { close(): Promise<void> } => {
  const queues = new Map<string, Queue>()
  const queueOf = (name: string): Queue => {
    let q = queues.get(name)
    if (q === undefined) {
      q = new Queue(name, { connection: { host: "127.0.0.1", port: redis.port } })
      queues.set(name, q)
    }
    return q
  }
  return {
    name: `BullMQ ${redis.appendfsync}`,
    enqueue: (queue, payload) => queueOf(queue).add("job", payload),
    preload: (queue, n) => preloadInBatches(n, (from, count) => queueOf(queue).addBulk(Array.from({ length: count }, (_, k) => ({ name: "job", data: { n: from + k } })))),
    completed: (queue) => queueOf(queue).getCompletedCount(),
    startWorker: (w) =>
      spawnWorker({
        id: w.id,
        args: ["--import", "tsx", workerScript, "--port", String(redis.port), "--queue", w.queue, "--concurrency", String(w.concurrency), "--worker-id", w.id, "--handler", w.handler],
        collect: w.handler === "stamp",
        env
      }),
    close: async () => {
      await Promise.all([...queues.values()].map((q) => q.close()))
      queues.clear()
    }
  }
}

/** Runs `run` with BullMQ on a fresh Redis (`appendfsync` as given), then stops both. */
export const withBullmq = async <A>(appendfsync: AppendFsync, run: (system: JobSystem, redis: RedisServer) => Promise<A>, env?: Readonly<Record<string, string>>): Promise<A> => {
  const redis = await startRedis(appendfsync)
  const system = bullmqJobs(redis, env)
  return withStop(
    async () => {
      await system.close()
      await redis.stop()
    },
    () => run(system, redis)
  )
}
