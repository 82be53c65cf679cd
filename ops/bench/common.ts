/**
 * What the benchmarks share: a real three-node cluster on a private nats-server, closed-loop
 * load, percentiles, and the CPU each process of the run used (so a figure can be read as
 * "the client was saturated" or "the nodes were").
 */
import { readdirSync, readFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { loadavg, tmpdir } from "node:os"
import { basename, join } from "node:path"
import { LocalCluster } from "../cluster.ts"
import { startNatsServer } from "../../bootstrap/natsServer.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { atInterrupt } from "./cleanup.ts"
import { perSecond, type LoopResult } from "./results.ts"

export type { Level, LoopResult } from "./results.ts"

/** Options every benchmark gets from the command line (run.ts); absent ones use the bench's default. */
export interface BenchOptions {
  readonly seconds: number
  /** Seconds of the same load, not measured, before each measured level (JIT and caches warm). */
  readonly warmup: number
  readonly concurrency: ReadonlyArray<number> | undefined
  readonly valueBytes: number
  readonly kills: number
  /** Rounds of `side-by-side`. */
  readonly rounds: number
  readonly workers: ReadonlyArray<number>
  readonly jobs: number
  readonly workerConcurrency: number
  readonly batch: number
  /** `snapshot`: keys in the state (`--keys`); `memory`: puts in all (`--puts`). */
  readonly keys?: number | undefined
  readonly puts?: number | undefined
  /** The nodes' SNAPSHOT_THRESHOLD (`--snapshot-threshold`); the product default when absent. */
  readonly snapshotThreshold?: number | undefined
  /** Extra environment for node (and worker) processes, e.g. NODE_OPTIONS for `--cpu-prof`. */
  readonly nodeEnv: Readonly<Record<string, string>> | undefined
  /** Nodes in the cluster (`--nodes`, default 3); `sizes` runs several. */
  readonly nodes?: number | undefined
  /** Where a comparison (`jobs-vs-bullmq`, `kv-vs`) writes its JSON result (`--json`); compare.ts picks a path when absent. */
  readonly json?: string | undefined
  /** Which parts a comparison runs (`--parts`, e.g. `enqueue,latency`); all when absent. */
  readonly parts?: ReadonlyArray<string> | undefined
}

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

export const fmt = (ms: number): string => `${ms.toFixed(2)} ms`

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** "p50 1.00 ms  p99 2.00 ms  p999 3.00 ms" of an ascending array. */
export const latencyLine = (sorted: ReadonlyArray<number>): string =>
  `p50 ${fmt(percentile(sorted, 50))}  p99 ${fmt(percentile(sorted, 99))}  p999 ${fmt(percentile(sorted, 99.9))}`

/** The 1-minute load average, printed at the start of a run (the machine is shared). */
export const loadNote = (): string => `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`

export interface ClusterRun {
  readonly cluster: LocalCluster
  readonly client: ArchioClient
  readonly natsUrl: string
}

/** Runs `run` against a fresh cluster of `size` nodes (own nats-server and data folder), then tears it all down. */
export const withCluster = async <A>(run: (env: ClusterRun) => Promise<A>, env?: Readonly<Record<string, string>>, size = 3): Promise<A> => {
  const nats = await startNatsServer()
  const dir = await mkdtemp(join(tmpdir(), "archio-bench-"))
  let started: LocalCluster | undefined
  // Ctrl-C meanwhile (cleanup.ts): the nodes, then their nats-server and folder.
  const off = atInterrupt(async () => {
    await started?.stop()
    await nats.stop()
    await rm(dir, { recursive: true, force: true })
  })
  try {
    // On a failed start the nats-server and folder still go; nodes exit with this process (their stdin closes).
    const cluster = await LocalCluster.start({ natsUrl: nats.url, dataRoot: dir, logDir: join(dir, "logs"), size, ...(env === undefined ? {} : { env }) })
    started = cluster
    const client = new ArchioClient(cluster.nc, { deadlineMs: 30_000 })
    try {
      return await run({ cluster, client, natsUrl: nats.url })
    } finally {
      await client.close()
      await cluster.stop()
    }
  } finally {
    off()
    await nats.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

/** A window in which other processes used more than this (% of one core) is measured again. */
export const disturbedOthers = 25

/** `concurrency` loops, each starting its next operation when the last one finished, until `end`. */
const runLoops = (concurrency: number, end: number, op: (c: number) => Promise<unknown>): Promise<unknown> =>
  Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      while (performance.now() < end) await op(c)
    })
  )

/**
 * `concurrency` loops, each starting its next operation when the last one finished, for
 * `seconds`. `op(c, i, attempt)` is loop c's i-th operation (i counts on across the warm-up and
 * re-measurements; the warm-up is attempt 0). Waits for the machine to be quiet, runs the same
 * load unmeasured for `warmup` seconds (Node's JIT needs several seconds of load before a
 * node's code runs at full speed; a Go server needs none), then measures; a window that other
 * processes disturbed anyway is measured again, up to `attempts` times in all, keeping the
 * least disturbed one.
 */
export const closedLoop = async (
  concurrency: number,
  seconds: number,
  op: (c: number, i: number, attempt: number) => Promise<unknown>,
  options: { readonly warmup: number; readonly attempts?: number }
): Promise<LoopResult> => {
  const next = Array.from({ length: concurrency }, () => 0)
  const attempts = options.attempts ?? 3
  let best: LoopResult | undefined
  await waitQuiet()
  await runLoops(concurrency, performance.now() + options.warmup * 1000, (c) => op(c, next[c]!++, 0))
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await waitQuiet()
    const latencies: number[] = []
    const cpu = sampleCpu()
    const start = performance.now()
    await runLoops(concurrency, start + seconds * 1000, async (c) => {
      const t0 = performance.now()
      await op(c, next[c]!++, attempt)
      latencies.push(performance.now() - t0)
    })
    const elapsed = (performance.now() - start) / 1000
    latencies.sort((a, b) => a - b)
    const used = cpu()
    const r = { count: latencies.length, sorted: latencies, seconds: elapsed, cpu: used.text, others: used.others, attempt }
    if (best === undefined || r.others < best.others) best = r
    if (r.others < disturbedOthers) break
    if (attempt < attempts) console.log(`  (other processes used ${Math.round(r.others)}% of a core during the window: measuring again)`)
  }
  return best!
}

/** One row of a closed-loop table: "concurrency  16:  12345 gets/s  p50 ...". */
export const levelLine = (concurrency: number, r: LoopResult, unit: string, extra = ""): string =>
  `  concurrency ${String(concurrency).padStart(3)}: ${Math.round(perSecond(r))
    .toString()
    .padStart(6)} ${unit}/s  ${latencyLine(r.sorted)}${extra}\n      cpu: ${r.cpu}`

// --- CPU per process (Linux /proc), to tell which process a run saturated -------------------

const ticksPerSecond = 100 // USER_HZ on Linux

interface ProcTimes {
  readonly label: string
  readonly ticks: number
}

const readProc = (pid: string): { ppid: number; ticks: number } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after "(comm)": state ppid ... utime(14) stime(15), counted from the whole line.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) }
  } catch {
    return undefined
  }
}

const labelOf = (pid: string): string => {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
    const flag = (name: string) => {
      const i = argv.indexOf(name)
      return i === -1 ? undefined : argv[i + 1]
    }
    // A JetStream cluster's servers each run from their own config file (jetstream.ts): js1.conf -> "nats js1".
    if (argv.some((a) => a.endsWith("nats-server"))) return flag("-c") === undefined ? "nats" : `nats ${basename(flag("-c")!, ".conf")}`
    // redis-server rewrites its command line to "/usr/bin/redis-server 127.0.0.1:<port>".
    if (/(^|\/)redis-server /.test(argv[0] ?? "")) return "redis"
    if (argv.some((a) => a.endsWith("bullmqWorker.ts"))) return `bullmq ${flag("--worker-id") ?? pid}`
    if (argv.includes("node") || argv.includes("path-child")) return flag("--id") ?? pid
    if (argv[0]?.endsWith("etcd") === true) return flag("--name") ?? "etcd"
    if (argv.includes("worker")) return flag("--worker-id") ?? `worker ${pid}`
    if (argv.some((a) => a.includes("esbuild"))) return "esbuild"
    return argv.join(" ").slice(0, 20)
  } catch {
    return pid
  }
}

/** CPU ticks of this process's children, by pid, with a label (node id, `nats`, worker id). */
const childTimes = (): Map<string, ProcTimes> => {
  const out = new Map<string, ProcTimes>()
  if (process.platform !== "linux") return out
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    const p = readProc(pid)
    if (p === undefined || p.ppid !== process.pid) continue
    out.set(pid, { label: labelOf(pid), ticks: p.ticks })
  }
  return out
}

/** Busy CPU ticks of the whole machine (all cores), from /proc/stat. */
const machineBusy = (): number => {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    return cpu.slice(0, 8).reduce((a, b) => a + b, 0) - cpu[3]! - cpu[4]!
  } catch {
    return NaN
  }
}

interface CpuSample {
  /** Per process, % of one core: "bench 85%, n1 40%, ...". */
  readonly text: string
  /** What processes outside this run used, % of one core. */
  readonly others: number
}

const sampleCpu = (): (() => CpuSample) => {
  const t0 = performance.now()
  const self0 = process.cpuUsage()
  const kids0 = childTimes()
  const busy0 = machineBusy()
  return () => {
    const secs = (performance.now() - t0) / 1000
    const self = process.cpuUsage(self0)
    const selfPct = ((self.user + self.system) / 1e6 / secs) * 100
    const parts = [`bench ${Math.round(selfPct)}%`]
    let ours = selfPct
    const kids = [...childTimes()].sort((a, b) => a[1].label.localeCompare(b[1].label))
    for (const [pid, now] of kids) {
      const pct = ((now.ticks - (kids0.get(pid)?.ticks ?? now.ticks)) / ticksPerSecond / secs) * 100
      ours += pct
      if (pct >= 1) parts.push(`${now.label} ${Math.round(pct)}%`)
    }
    const others = Math.max(0, ((machineBusy() - busy0) / ticksPerSecond / secs) * 100 - ours)
    parts.push(`other processes ${Math.round(others)}%`)
    return { text: parts.join(", "), others }
  }
}

/**
 * Starts measuring; the returned function gives the CPU share each process of the run used
 * since, and what processes outside the run used, e.g. "bench 85%, n1 40%, n2 31%, n3 30%,
 * nats 22%, other processes 3%" (100% is one core; this machine has two).
 */
export const cpuMeter = (): (() => string) => {
  const sample = sampleCpu()
  return () => sample().text
}

/**
 * Waits until processes outside this run use less than `maxOthers`% of one core over a
 * 2-second sample (the machine is shared), for at most `maxWaitMs`; says so when it waited.
 */
export const waitQuiet = async (maxOthers = 15, maxWaitMs = 15 * 60_000): Promise<void> => {
  if (process.platform !== "linux" || process.env["BENCH_NO_WAIT"] === "1") return
  const start = performance.now()
  for (let said = false; ; ) {
    const sample = sampleCpu()
    await sleep(2000)
    const { others } = sample()
    if (others < maxOthers) {
      if (said) console.log(`  (waited ${Math.round((performance.now() - start) / 1000)} s for other processes to quieten)`)
      return
    }
    if (performance.now() - start > maxWaitMs) {
      console.log(`  (other processes still use ${Math.round(others)}% of a core after ${Math.round(maxWaitMs / 60_000)} min: measuring anyway)`)
      return
    }
    said = true
  }
}
