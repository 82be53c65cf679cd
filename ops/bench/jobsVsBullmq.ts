/**
 * `jobs-vs-bullmq`: Archio's job queue (three nodes, every transition committed on a majority
 * and synced) against BullMQ on a private Redis 7 with its append-only file synced on every
 * write (`BullMQ always`) and once a second (`BullMQ everysec`), each part on a fresh cluster
 * or server, every system in turn within a round, for `--rounds` rounds:
 *
 * - enqueue: `--concurrency` closed-loop producers (64 by default) in this process, one job per
 *   request: Archio's typed client (leader-affine, with an idempotency token), Archio as a
 *   plain NATS client sends it (`nc.request` on `archio.<cluster>.jobs.enqueue`: any node
 *   answers), BullMQ's `Queue.add`;
 * - end to end with each of `--workers` worker processes (concurrency `--worker-concurrency`):
 *   `archio worker`, or a BullMQ `Worker` in its own process (bullmqWorker.ts), after `--jobs`
 *   jobs were enqueued in bulk;
 * - enqueue-to-start latency, one producer, a job every 10 ms, one worker process: p50 and p99
 *   (Archio typed and plain, BullMQ).
 *
 * The three load generators are jobs.ts's, the same code for every system. Each round prints
 * its figures and the ratios Archio/BullMQ; the end prints each system's median and range and
 * the ratios' medians, and the JSON result goes to `--json` (or .archio/bench/). `--parts
 * enqueue,e2e,latency` picks parts.
 */
import { withBullmq } from "./bullmq.ts"
import { levelLine, loadNote, percentile, type BenchOptions, type LoopResult } from "./common.ts"
import { chooseParts, runRounds, type Comparison, type Figure, type Metric, type Pair } from "./compare.ts"
import { endToEnd, enqueueRate, startLatency, withArchioJobs } from "./jobs.ts"
import { plainRetries, retriesNote, type JobSystem } from "./systems.ts"
import { bullmqMissing, type AppendFsync } from "./redis.ts"
import { perSecond } from "./results.ts"

const archioSystems = ["Archio typed", "Archio plain"] as const
const fsyncs: ReadonlyArray<AppendFsync> = ["always", "everysec"]
export const jobsParts = ["enqueue", "e2e", "latency"] as const

const enqueueMetric = (producers: number): string => `enqueue, ${producers} producers`
const e2eMetric = (workers: number): string => `end to end, ${workers} worker${workers === 1 ? "" : "s"}`

/** The metrics, systems and ratios of a run with these options. */
export const jobsComparison = (o: Pick<BenchOptions, "concurrency" | "workers">): Comparison => {
  const bullmq = fsyncs.map((f) => `BullMQ ${f}`)
  const metrics: Metric[] = [
    ...(o.concurrency ?? [64]).map((c): Metric => ({ name: enqueueMetric(c), unit: "jobs/s", better: "higher" })),
    ...o.workers.map((n): Metric => ({ name: e2eMetric(n), unit: "jobs/s", better: "higher" })),
    { name: "start latency p50", unit: "ms", better: "lower" },
    { name: "start latency p99", unit: "ms", better: "lower" }
  ]
  const pairs = archioSystems.flatMap((of) => bullmq.map((to): Pair => ({ of, to })))
  return { title: "jobs: Archio vs BullMQ", metrics, systems: [...archioSystems, ...bullmq], pairs }
}

const loopDetail = (r: LoopResult): string => `p50 ${percentile(r.sorted, 50).toFixed(2)} ms, p99 ${percentile(r.sorted, 99).toFixed(2)} ms; cpu: ${r.cpu}`

export const jobsVsBullmq = async (o: BenchOptions): Promise<void> => {
  const missing = bullmqMissing()
  if (missing !== undefined) {
    console.log(`jobs-vs-bullmq: ${missing}`)
    process.exitCode = 1
    return
  }
  const parts = chooseParts(o.parts, jobsParts)
  const comparison = jobsComparison(o)
  /** `body` with each system in turn: Archio typed, Archio plain (when `plain`), BullMQ always, BullMQ everysec. */
  const eachSystem = async (plain: boolean, body: (system: JobSystem) => Promise<void>): Promise<void> => {
    await withArchioJobs(o, false, body)
    if (plain) await withArchioJobs(o, true, body)
    for (const fsync of fsyncs) await withBullmq(fsync, body, o.nodeEnv)
  }
  const { nodeEnv: _env, ...options } = o
  await runRounds(comparison, { command: "jobs-vs-bullmq", rounds: o.rounds, jsonPath: o.json, options }, async (_round, add: (f: Figure) => void) => {
    if (parts.includes("enqueue")) {
      await eachSystem(true, async (system) => {
        console.log(`${system.name} enqueue: closed-loop producers, one job per request, ${o.seconds} s per level after ${o.warmup} s of warm-up (${loadNote()})`)
        for (const producers of o.concurrency ?? [64]) {
          const retried = plainRetries.count
          const r = await enqueueRate(system, producers, o)
          const retries = retriesNote(plainRetries.count - retried)
          console.log(levelLine(producers, r, "jobs", retries))
          add({ metric: enqueueMetric(producers), system: system.name, value: perSecond(r), detail: loopDetail(r) + retries })
        }
      })
    }
    if (parts.includes("e2e")) {
      for (const workers of o.workers) {
        await eachSystem(false, async (system) => {
          const r = await endToEnd(system, workers, o)
          console.log(r.line)
          add({ metric: e2eMetric(workers), system: system.name, value: r.rate, detail: r.line })
        })
      }
    }
    if (parts.includes("latency")) {
      await eachSystem(true, async (system) => {
        const retried = plainRetries.count
        const r = await startLatency(system, o)
        const retries = retriesNote(plainRetries.count - retried)
        console.log(r.line + retries)
        add({ metric: "start latency p50", system: system.name, value: percentile(r.sorted, 50), detail: r.line + retries })
        add({ metric: "start latency p99", system: system.name, value: percentile(r.sorted, 99), detail: r.line + retries })
      })
    }
  })
}
