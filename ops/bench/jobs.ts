/**
 * The job queue, each part on a fresh three-node cluster:
 *
 * - `jobs-enqueue`: closed-loop producers (64 by default) from one Node process, first with one
 *   `jobs.enqueue` per request, then with `jobs.enqueueBatch` of `--batch` jobs: jobs/s and the
 *   latency of one request.
 * - `jobs-e2e`: end-to-end throughput of no-op jobs (enqueue -> lease -> ack) with 1, 2 and 4
 *   `archio worker` processes (`--worker-concurrency` each). `--jobs` jobs are enqueued
 *   first (in batches, no worker running), then the workers start; once all of them report
 *   that they are taking jobs, the count of completed jobs (`jobs.stats`) is sampled until 90%
 *   of the jobs are done or `--seconds` pass. The rate over that window is the figure (worker
 *   start-up and the tail are left out).
 * - `jobs-latency`: one producer enqueues one job every 10 ms for `--seconds`, stamping the
 *   payload with the wall-clock time just before sending; the handler of one worker process
 *   prints the wall-clock time it started the job. Same machine, same clock: the difference is
 *   the time from enqueue to start of work (after a warm-up of 100 jobs).
 *
 * `jobs` runs all three. The three load generators (`enqueueRate`, `endToEnd`, `startLatency`)
 * take any `JobSystem`, so `jobs-vs-bullmq` (jobsVsBullmq.ts) drives BullMQ with the very same
 * code.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { binPath } from "../cluster.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import * as Subjects from "../../protocol/subjects.ts"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import { closedLoop, cpuMeter, fmt, latencyLine, levelLine, loadNote, percentile, sleep, waitQuiet, withCluster, type BenchOptions, type LoopResult } from "./common.ts"
import { perSecond } from "./results.ts"
import { withStop } from "./cleanup.ts"
import { plainRequest, preloadInBatches, spawnWorker, wallMs, type Handler, type JobSystem } from "./systems.ts"

const handlers: Record<Handler, string> = {
  noop: `export default () => null\n`,
  // Prints when the job started; the payload carries when it was enqueued.
  stamp: `export default (p) => { process.stdout.write("started " + p.i + " " + (performance.timeOrigin + performance.now() - p.t).toFixed(3) + "\\n"); return null }\n`
}

/** Writes the handler modules to a temp folder, runs `run`, removes the folder. */
const withHandlers = async <A>(run: (files: Record<Handler, string>) => Promise<A>): Promise<A> => {
  const dir = await mkdtemp(join(tmpdir(), "archio-bench-handlers-"))
  return withStop(
    () => rm(dir, { recursive: true, force: true }),
    async () => {
      const files = { noop: join(dir, "noop.mjs"), stamp: join(dir, "stamp.mjs") }
      await writeFile(files.noop, handlers.noop)
      await writeFile(files.stamp, handlers.stamp)
      return run(files)
    }
  )
}

/**
 * Archio's job queue on a running cluster. `plain`: enqueues are plain requests on
 * `archio.<cluster>.jobs.enqueue` (plainRequest); otherwise the typed client's (leader-affine,
 * with an idempotency token). Preloading, stats and workers are the same either way.
 */
export const archioJobs = (o: {
  readonly client: ArchioClient
  readonly natsUrl: string
  readonly files: Record<Handler, string>
  readonly plain: boolean
  readonly env?: Readonly<Record<string, string>> | undefined
}): JobSystem => {
  const jobs = new JobsClient(o.client)
  const subject = Subjects.jobs(o.client.cluster, "enqueue")
  return {
    name: o.plain ? "Archio plain" : "Archio typed",
    enqueue: o.plain ? (queue, payload) => plainRequest(o.client.nc, subject, { queue, payload }) : (queue, payload) => jobs.enqueue({ queue, payload }),
    preload: (queue, n) => preloadInBatches(n, (from, count) => jobs.enqueueBatch(Array.from({ length: count }, (_, k) => ({ queue, payload: { n: from + k } })))),
    completed: async (queue) => (await jobs.stats(queue))[0]?.completed ?? 0,
    startWorker: (w) =>
      spawnWorker({
        id: w.id,
        args: [binPath, "worker", "--queue", w.queue, "--handler", o.files[w.handler], "--nats", o.natsUrl, "--worker-id", w.id, "--concurrency", String(w.concurrency), "--wait-ms", "1000"],
        collect: w.handler === "stamp",
        env: o.env
      })
  }
}

/** Runs `run` with Archio's job queue on a fresh cluster (typed, or `plain` enqueues), and the cluster's typed client. */
export const withArchioJobs = <A>(o: BenchOptions, plain: boolean, run: (system: JobSystem, client: ArchioClient) => Promise<A>): Promise<A> =>
  withHandlers((files) => withCluster(({ client, natsUrl }) => run(archioJobs({ client, natsUrl, files, plain, env: o.nodeEnv }), client), o.nodeEnv))

// --- The load generators, the same for every system ----------------------------------------

/** Closed-loop producers, one job per request. */
export const enqueueRate = (system: JobSystem, concurrency: number, o: BenchOptions): Promise<LoopResult> =>
  closedLoop(concurrency, o.seconds, (_c, i) => system.enqueue("enq", { n: i }), o)

export interface EndToEnd {
  /** Jobs completed per second over the window. */
  readonly rate: number
  readonly line: string
}

/**
 * `o.jobs` no-op jobs enqueued first, then `count` worker processes; from the moment all say
 * they take jobs, the completed count is sampled every 100 ms until 90% are done or
 * `o.seconds` pass.
 */
export const endToEnd = async (system: JobSystem, count: number, o: BenchOptions): Promise<EndToEnd> => {
  const queue = "e2e"
  const t0 = performance.now()
  await system.preload(queue, o.jobs)
  const loaded = performance.now() - t0
  await waitQuiet()
  const workers = Array.from({ length: count }, (_, w) => system.startWorker({ id: `w${w + 1}`, queue, handler: "noop", concurrency: o.workerConcurrency }))
  try {
    await Promise.all(workers.map((w) => w.ready))
    const cpu = cpuMeter()
    const start = performance.now()
    const c0 = await system.completed(queue)
    let t1 = start
    let c1 = c0
    while (c1 < o.jobs * 0.9 && performance.now() - start < o.seconds * 1000) {
      await sleep(100)
      c1 = await system.completed(queue)
      t1 = performance.now()
    }
    const usage = cpu()
    const rate = (c1 - c0) / ((t1 - start) / 1000)
    return {
      rate,
      line:
        `${system.name} end to end: ${count} worker process${count === 1 ? "" : "es"} × concurrency ${o.workerConcurrency}, ${o.jobs} no-op jobs enqueued first (in ${(loaded / 1000).toFixed(1)} s) (${loadNote()})\n` +
        `  ${String(Math.round(rate)).padStart(6)} jobs/s completed (${c1 - c0} jobs in ${((t1 - start) / 1000).toFixed(1)} s; ${c0} done before all workers were up)\n      cpu: ${usage}`
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
}

export interface StartLatency {
  /** Enqueue to start of work, ms, ascending. */
  readonly sorted: ReadonlyArray<number>
  /** The enqueue request alone, ms, ascending. */
  readonly enqueue: ReadonlyArray<number>
  readonly line: string
}

/**
 * One producer, one job every 10 ms for `o.seconds` after 100 warm-up jobs, one worker
 * process whose handler prints how long after the stamp in the payload it started.
 */
export const startLatency = async (system: JobSystem, o: BenchOptions): Promise<StartLatency> => {
  const queue = "latency"
  const worker = system.startWorker({ id: "w1", queue, handler: "stamp", concurrency: o.workerConcurrency })
  try {
    await worker.ready
    await waitQuiet()
    const warmup = 100
    const total = warmup + Math.round((o.seconds * 1000) / 10)
    const enqueueMs: number[] = []
    const cpu = cpuMeter()
    let next = performance.now()
    for (let i = 0; i < total; i++) {
      const t0 = performance.now()
      await system.enqueue(queue, { t: wallMs(), i })
      if (i >= warmup) enqueueMs.push(performance.now() - t0)
      next += 10
      const wait = next - performance.now()
      if (wait > 0) await sleep(wait)
    }
    const deadline = performance.now() + 10_000
    while (worker.lines.filter((l) => l.startsWith("started ")).length < total && performance.now() < deadline) await sleep(50)
    const usage = cpu()
    const measured = worker.lines
      .filter((l) => l.startsWith("started "))
      .map((l) => l.split(" ").map(Number))
      .filter(([, i]) => i! >= warmup)
      .map(([, , ms]) => ms!)
      .sort((a, b) => a - b)
    enqueueMs.sort((a, b) => a - b)
    return {
      sorted: measured,
      enqueue: enqueueMs,
      line:
        `${system.name} start latency: one producer, one job every 10 ms, one worker process (concurrency ${o.workerConcurrency}), ${total - warmup} jobs after ${warmup} warm-up (${loadNote()})\n` +
        `  enqueue to start of work: ${latencyLine(measured)}  (min ${fmt(measured[0] ?? NaN)}, ${measured.length} jobs)\n` +
        `  the enqueue request alone: p50 ${fmt(percentile(enqueueMs, 50))}  p99 ${fmt(percentile(enqueueMs, 99))}\n      cpu: ${usage}`
    }
  } finally {
    await worker.stop()
  }
}

// --- The Archio-only commands ---------------------------------------------------------------

export const jobsEnqueueBench = async (o: BenchOptions): Promise<void> => {
  const levels = o.concurrency ?? [64]
  for (const batch of [1, o.batch]) {
    await withArchioJobs(o, false, async (system, client) => {
      const jobs = new JobsClient(client)
      const specs = Array.from({ length: batch }, (_, n) => ({ queue: "enq-batch", payload: { n } }))
      const one = (): Promise<unknown> => (batch === 1 ? system.enqueue("enq", { n: 0 }) : jobs.enqueueBatch(specs))
      for (let i = 0; i < 100; i++) await one()
      const what = batch === 1 ? "one jobs.enqueue per request" : `jobs.enqueueBatch of ${batch}`
      console.log(`jobs enqueue (${what}): 3 nodes, closed-loop producers, ${o.seconds} s per level after ${o.warmup} s of warm-up (${loadNote()})`)
      for (const concurrency of levels) {
        const r = batch === 1 ? await enqueueRate(system, concurrency, o) : await closedLoop(concurrency, o.seconds, one, o)
        const requests = Math.round(perSecond(r))
        console.log(levelLine(concurrency, { ...r, count: r.count * batch }, "jobs", batch === 1 ? "" : ` (${requests} requests/s; latency per request)`))
      }
    })
  }
}

export const jobsE2eBench = async (o: BenchOptions): Promise<void> => {
  for (const count of o.workers) {
    await withArchioJobs(o, false, async (system) => console.log((await endToEnd(system, count, o)).line))
  }
}

export const jobsLatencyBench = async (o: BenchOptions): Promise<void> => {
  await withArchioJobs(o, false, async (system) => console.log((await startLatency(system, o)).line))
}

export const jobsBench = async (o: BenchOptions): Promise<void> => {
  await jobsEnqueueBench(o)
  await jobsE2eBench(o)
  await jobsLatencyBench(o)
}
