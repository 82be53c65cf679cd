/**
 * The job queue with three real node processes and `archio worker` processes on a private
 * nats-server: priorities, delays, retries, a worker killed mid-job, and the leader killed
 * while jobs flow, checked against the full list of enqueued ids.
 */
import t from "tap"
import { JobsClient } from "../../protocol/jobsClient.ts"
import type { JobView } from "../../protocol/client.ts"
import { testCluster } from "../support/cluster.ts"
import { until } from "../support/wait.ts"
import { startWorker, writeHandler, type WorkerProcess } from "../support/workers.ts"

/** Three node processes and their workers share two cores: look every 50 ms, allow 30 s. */
const patiently = { timeoutMs: 30_000, everyMs: 50 }

/** Every job of `queue`, following list cursors. */
const allJobs = async (jobs: JobsClient, queue: string): Promise<JobView[]> => {
  const out: JobView[] = []
  let cursor: string | undefined
  do {
    const page = await jobs.list(queue, { limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
    out.push(...page.jobs)
    cursor = page.cursor
  } while (cursor !== undefined)
  return out
}

const acked = (workers: ReadonlyArray<WorkerProcess>) => workers.flatMap((w) => w.outcomes.filter((o) => o.event === "acked"))

t.test("priorities, delays, retries and a killed worker, across processes", async (t) => {
  const { cluster, client, nats, dir } = await testCluster(t)
  const jobs = new JobsClient(client)
  const handler = await writeHandler(dir)

  t.test("higher priority first, FIFO within a priority", async (t) => {
    const low = await jobs.enqueueBatch([0, 1, 2].map((n) => ({ queue: "prio", payload: { n } })))
    const high = await jobs.enqueueBatch([3, 4].map((n) => ({ queue: "prio", payload: { n }, priority: 5 })))
    const w = startWorker(t, { id: "prio-1", natsUrl: nats.url, handler, queues: ["prio"] })
    await until("five acks", () => acked([w]).length === 5, patiently)
    t.same(acked([w]).map((o) => o.id), [...high.ids, ...low.ids])
    t.equal(await w.kill("SIGTERM"), 0, "SIGTERM: a clean exit")
  })

  t.test("a delayed job runs no earlier than its delay; a failing one retries with backoff, then is dead", async (t) => {
    const w = startWorker(t, { id: "delay-1", natsUrl: nats.url, handler, queues: ["delay"], args: ["--concurrency", "4"] })
    const enqueuedAt = Date.now()
    const delayed = await jobs.enqueue({ queue: "delay", payload: { n: 1 }, delay: 1500 })
    const failing = await jobs.enqueue({ queue: "delay", payload: { fail: true }, maxAttempts: 3, backoff: { type: "fixed", delay: 400 } })
    await until("the delayed job", () => acked([w]).some((o) => o.id === delayed.id), patiently)
    t.ok(Date.now() - enqueuedAt >= 1500, `not early (${Date.now() - enqueuedAt} ms)`)
    await until("the failing job to die", async () => (await jobs.get(failing.id)).state === "dead", patiently)
    const dead = await jobs.get(failing.id)
    t.match(dead, { attempts: 3, error: "asked to fail" })
    t.ok(dead.updatedAt - dead.createdAt >= 800, "two backoff waits of 400 ms between three attempts")
    t.equal(w.outcomes.filter((o) => o.event === "failed" && o.id === failing.id).length, 3)
    await w.kill("SIGTERM")
  })

  t.test("a worker killed with SIGKILL has its job leased again once the lease ends", async (t) => {
    const { id } = await jobs.enqueue({ queue: "crash", payload: { sleep: 60_000 } })
    const doomed = startWorker(t, { id: "crash-1", natsUrl: nats.url, handler, queues: ["crash"], args: ["--lease-ms", "1500"] })
    await until("the lease", async () => (await jobs.get(id)).state === "leased", patiently)
    await doomed.kill("SIGKILL")
    const killedAt = Date.now()
    const again = await jobs.get(id)
    t.equal(again.workerId, "crash-1")
    const rescuer = startWorker(t, { id: "crash-2", natsUrl: nats.url, handler, queues: ["crash"], args: ["--lease-ms", "1500", "--grace-ms", "200"] })
    await until("the job back with another worker", async () => {
      const j = await jobs.get(id)
      return j.state === "leased" && j.workerId === "crash-2"
    }, patiently)
    t.ok(Date.now() - killedAt >= 500, "not before the first lease ran out")
    const j = await jobs.get(id)
    t.equal(j.attempts, 2, "the lost lease counted as an attempt")
    await jobs.cancel(id)
    // Its handler ignores the abort and sleeps on: the worker still exits once the grace ends.
    t.equal(await rescuer.kill("SIGTERM"), 0)
  })

  t.test("unique keys hold across processes", async (t) => {
    const results = await Promise.all([0, 1, 2, 3].map(() => jobs.enqueue({ queue: "uniq", payload: null, uniqueKey: "invoice-9" })))
    t.equal(new Set(results.map((r) => r.id)).size, 1, "one job")
    t.equal(results.filter((r) => !r.existing).length, 1, "created once")
  })

  t.ok(cluster.ids.every((id) => cluster.isRunning(id)))
})

t.test("SIGKILL of the leader during heavy processing loses no job and completes none twice", async (t) => {
  const { cluster, client, nats, dir } = await testCluster(t)
  const jobs = new JobsClient(client)
  const handler = await writeHandler(dir)
  const workers = [1, 2, 3].map((i) => startWorker(t, { id: `heavy-${i}`, natsUrl: nats.url, handler, queues: ["heavy"], args: ["--concurrency", "8", "--lease-ms", "3000"] }))
  const enqueued = new Set<string>()
  let stop = false
  const producer = (async () => {
    for (let i = 0; !stop; i++) {
      const batch = await jobs.enqueueBatch(Array.from({ length: 10 }, (_, k) => ({ queue: "heavy", payload: { n: i * 10 + k, sleep: 5 + ((i + k) % 20) } })))
      for (const id of batch.ids) enqueued.add(id)
    }
  })()
  await until("work under way", () => acked(workers).length >= 100, patiently)
  const leader = await cluster.waitForLeader(5_000)
  await cluster.kill(leader)
  await until("work after the kill", () => acked(workers).length >= 300, { ...patiently, timeoutMs: 60_000 })
  cluster.startNode(leader)
  stop = true
  await producer
  await until(
    "every job completed",
    async () => (await jobs.stats("heavy"))[0]?.completed === enqueued.size,
    { ...patiently, timeoutMs: 90_000 }
  )
  const all = await allJobs(jobs, "heavy")
  const byId = new Map(all.map((j) => [j.id, j]))
  const missing = [...enqueued].filter((id) => !byId.has(id))
  t.same(missing, [], `all ${enqueued.size} acknowledged enqueues exist`)
  t.ok(all.every((j) => j.state === "completed"), "all completed")
  const ackIds = acked(workers).map((o) => o.id)
  t.equal(new Set(ackIds).size, ackIds.length, `no job was acknowledged complete twice (${ackIds.length} acks)`)
  t.ok(ackIds.every((id) => enqueued.has(id)), "acks only for enqueued jobs")
  for (const w of workers) t.equal(await w.kill("SIGTERM"), 0, `${w.id} exits 0 on SIGTERM`)
})

t.test("a worker parked at the leader gets a new job in the enqueue's own append: leased by the time the enqueue is answered", async (t) => {
  const { client } = await testCluster(t)
  const jobs = new JobsClient(client)
  await jobs.enqueue({ queue: "warm", payload: 0 })
  for (let round = 0; round < 5; round++) {
    const parked = jobs.lease({ queues: ["along"], max: 1, workerId: `w${round}`, waitMs: 10_000 })
    // A parked lease shows nowhere: give it time to reach the leader and park.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const { id } = await jobs.enqueue({ queue: "along", payload: round })
    // Its lease entry followed the enqueue's in one append, so both applied in one batch.
    const job = await jobs.get(id)
    t.equal(job.state, "leased", `round ${round}: the job is leased when its enqueue is answered`)
    const [got] = await parked
    t.equal(got?.id, id, `round ${round}: the parked worker got it`)
    await jobs.ack(got!.id, got!.token)
  }
})
