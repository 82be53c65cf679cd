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
 * `jobs` runs all three.
 */
import { createInterface } from "node:readline"
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { binPath } from "../cluster.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import type { JobSpec } from "../../protocol/client.ts"
import { closedLoop, cpuMeter, fmt, latencyLine, levelLine, loadNote, percentile, sleep, waitQuiet, withCluster, type BenchOptions } from "./common.ts"
import { perSecond } from "./results.ts"

/** The wall-clock time in ms with sub-ms precision, comparable across processes of one machine. */
const wallMs = (): number => performance.timeOrigin + performance.now()

const handlers = {
  noop: `export default () => null\n`,
  // Prints when the job started; the payload carries when it was enqueued.
  stamp: `export default (p) => { process.stdout.write("started " + p.i + " " + (performance.timeOrigin + performance.now() - p.t).toFixed(3) + "\\n"); return null }\n`
} as const

interface BenchWorker {
  readonly proc: ChildProcess
  /** Resolves once the worker says it is taking jobs. */
  readonly ready: Promise<void>
  /** Lines its handler printed (when stdout is collected). */
  readonly lines: string[]
  /** SIGTERM (graceful stop), SIGKILL after 15 s; resolves when it is gone. */
  stop(): Promise<void>
}

const live = new Set<ChildProcess>()
// Never leave a worker behind (it would reconnect to NATS forever).
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL")
})

const startWorker = (o: { natsUrl: string; id: string; handler: string; queue: string; concurrency: number; collect: boolean; env?: Readonly<Record<string, string>> }): BenchWorker => {
  const proc = spawn(
    process.execPath,
    [binPath, "worker", "--queue", o.queue, "--handler", o.handler, "--nats", o.natsUrl, "--worker-id", o.id, "--concurrency", String(o.concurrency), "--wait-ms", "1000"],
    { env: { ...process.env, ...o.env }, stdio: ["ignore", o.collect ? "pipe" : "ignore", "pipe"] }
  )
  live.add(proc)
  const exited = new Promise<void>((resolve) =>
    proc.once("exit", () => {
      live.delete(proc)
      resolve()
    })
  )
  const lines: string[] = []
  if (o.collect) {
    createInterface({ input: proc.stdout!, crlfDelay: Infinity }).on("line", (line) => lines.push(line))
  }
  let stderr = ""
  const ready = new Promise<void>((resolve, reject) => {
    proc.stderr!.setEncoding("utf8")
    proc.stderr!.on("data", (chunk: string) => {
      if (stderr.length < 8192) stderr += chunk
      if (stderr.includes("taking jobs from")) resolve()
    })
    void exited.then(() => reject(new Error(`worker ${o.id} exited before it was ready: ${stderr.trim()}`)))
  })
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill("SIGTERM")
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000)
    await exited
    clearTimeout(timer)
  }
  return { proc, ready, lines, stop }
}

/** Writes the handler modules to a temp folder, runs `run`, removes the folder. */
const withHandlers = async <A>(run: (files: Record<keyof typeof handlers, string>) => Promise<A>): Promise<A> => {
  const dir = await mkdtemp(join(tmpdir(), "archio-bench-handlers-"))
  try {
    const files = { noop: join(dir, "noop.mjs"), stamp: join(dir, "stamp.mjs") }
    await writeFile(files.noop, handlers.noop)
    await writeFile(files.stamp, handlers.stamp)
    return await run(files)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export const jobsEnqueueBench = async (o: BenchOptions): Promise<void> => {
  const levels = o.concurrency ?? [64]
  for (const batch of [1, o.batch]) {
    await withCluster(async ({ client }) => {
      const jobs = new JobsClient(client)
      const queue = batch === 1 ? "enq" : "enq-batch"
      const specs: JobSpec[] = Array.from({ length: batch }, (_, n) => ({ queue, payload: { n } }))
      const one = (): Promise<unknown> => (batch === 1 ? jobs.enqueue(specs[0]!) : jobs.enqueueBatch(specs))
      for (let i = 0; i < 100; i++) await one()
      const what = batch === 1 ? "one jobs.enqueue per request" : `jobs.enqueueBatch of ${batch}`
      console.log(`jobs enqueue (${what}): 3 nodes, closed-loop producers, ${o.seconds} s per level after ${o.warmup} s of warm-up (${loadNote()})`)
      for (const concurrency of levels) {
        const r = await closedLoop(concurrency, o.seconds, one, o)
        const requests = Math.round(perSecond(r))
        console.log(levelLine(concurrency, { ...r, count: r.count * batch }, "jobs", batch === 1 ? "" : ` (${requests} requests/s; latency per request)`))
      }
    }, o.nodeEnv)
  }
}

/** Enqueues `n` jobs of `queue` in batches of 1000, four requests at a time. */
const preload = async (jobs: JobsClient, queue: string, n: number): Promise<void> => {
  let next = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < n) {
        const from = next
        next = Math.min(n, next + 1000)
        await jobs.enqueueBatch(Array.from({ length: next - from }, (_, k) => ({ queue, payload: { n: from + k } })))
      }
    })
  )
}

const completed = async (jobs: JobsClient, queue: string): Promise<number> => (await jobs.stats(queue))[0]?.completed ?? 0

export const jobsE2eBench = async (o: BenchOptions): Promise<void> => {
  await withHandlers(async (files) => {
    for (const count of o.workers) {
      await withCluster(async ({ client, natsUrl }) => {
        const jobs = new JobsClient(client)
        const queue = "e2e"
        const t0 = performance.now()
        await preload(jobs, queue, o.jobs)
        const loaded = performance.now() - t0
        await waitQuiet()
        const workers = Array.from({ length: count }, (_, w) =>
          startWorker({ natsUrl, id: `w${w + 1}`, handler: files.noop, queue, concurrency: o.workerConcurrency, collect: false, ...(o.nodeEnv === undefined ? {} : { env: o.nodeEnv }) })
        )
        try {
          await Promise.all(workers.map((w) => w.ready))
          const cpu = cpuMeter()
          const start = performance.now()
          const c0 = await completed(jobs, queue)
          let t1 = start
          let c1 = c0
          while (c1 < o.jobs * 0.9 && performance.now() - start < o.seconds * 1000) {
            await sleep(100)
            c1 = await completed(jobs, queue)
            t1 = performance.now()
          }
          const usage = cpu()
          const rate = Math.round((c1 - c0) / ((t1 - start) / 1000))
          console.log(
            `jobs end to end: ${count} worker process${count === 1 ? "" : "es"} × concurrency ${o.workerConcurrency}, ${o.jobs} no-op jobs enqueued first (in ${(loaded / 1000).toFixed(1)} s) (${loadNote()})\n` +
              `  ${String(rate).padStart(6)} jobs/s completed (${c1 - c0} jobs in ${((t1 - start) / 1000).toFixed(1)} s; ${c0} done before all workers were up)\n      cpu: ${usage}`
          )
        } finally {
          await Promise.all(workers.map((w) => w.stop()))
        }
      }, o.nodeEnv)
    }
  })
}

export const jobsLatencyBench = async (o: BenchOptions): Promise<void> => {
  await withHandlers(async (files) => {
    await withCluster(async ({ client, natsUrl }) => {
      const jobs = new JobsClient(client)
      const queue = "latency"
      const worker = startWorker({ natsUrl, id: "w1", handler: files.stamp, queue, concurrency: o.workerConcurrency, collect: true, ...(o.nodeEnv === undefined ? {} : { env: o.nodeEnv }) })
      try {
        await worker.ready
        await waitQuiet()
        const warmup = 100
        const total = warmup + Math.round((o.seconds * 1000) / 10)
        console.log(`jobs start latency: one producer, one job every 10 ms, one worker process (concurrency ${o.workerConcurrency}), ${total - warmup} jobs after ${warmup} warm-up (${loadNote()})`)
        const enqueueMs: number[] = []
        const cpu = cpuMeter()
        let next = performance.now()
        for (let i = 0; i < total; i++) {
          const t0 = performance.now()
          await jobs.enqueue({ queue, payload: { t: wallMs(), i } })
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
        console.log(
          `  enqueue to start of work: ${latencyLine(measured)}  (min ${fmt(measured[0] ?? NaN)}, ${measured.length} jobs)\n` +
            `  the enqueue request alone: p50 ${fmt(percentile(enqueueMs, 50))}  p99 ${fmt(percentile(enqueueMs, 99))}\n      cpu: ${usage}`
        )
      } finally {
        await worker.stop()
      }
    }, o.nodeEnv)
  })
}

export const jobsBench = async (o: BenchOptions): Promise<void> => {
  await jobsEnqueueBench(o)
  await jobsE2eBench(o)
  await jobsLatencyBench(o)
}
