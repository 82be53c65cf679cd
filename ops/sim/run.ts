/**
 * `npm run sim -- --seeds N [--start K] [--nodes 3|5] [--jobs J]` runs N seeded simulations
 * (seeds K..K+N-1) in J processes (default: one per CPU) and prints a summary;
 * `npm run sim -- --seed S --verbose` replays one seed with every node's log and the faults.
 * Exits non-zero when any seed fails, printing the command that replays it.
 */
import { fork } from "node:child_process"
import { availableParallelism } from "node:os"
import { parseArgs } from "node:util"
import { Simulation, type SimOptions, type SimResult } from "./simulation.ts"

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "100" },
    start: { type: "string", default: "1" },
    seed: { type: "string" },
    nodes: { type: "string" },
    jobs: { type: "string" },
    "chaos-ms": { type: "string", default: "8000" },
    "heal-ms": { type: "string", default: "4000" },
    verbose: { type: "boolean", default: false },
    /** Internal: this process is a worker running every `--stride`-th seed from `--start`. */
    stride: { type: "string" }
  }
})

const int = (name: string, raw: string | undefined): number => {
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return n
}

const options = (seed: number): SimOptions => ({
  seed,
  // Most seeds run three nodes; every fourth runs five.
  nodes: values.nodes !== undefined ? int("nodes", values.nodes) : seed % 4 === 0 ? 5 : 3,
  chaosMs: int("chaos-ms", values["chaos-ms"]),
  healMs: int("heal-ms", values["heal-ms"]),
  tickMs: 10,
  verbose: values.verbose
})

type Report = SimResult & { readonly cpuMs: number }

const runSeed = async (seed: number): Promise<{ report: Report; trace: ReadonlyArray<string> }> => {
  const before = process.cpuUsage()
  const sim = new Simulation(options(seed))
  const r = await sim.run()
  const used = process.cpuUsage(before)
  return { report: { ...r, cpuMs: (used.user + used.system) / 1000 }, trace: sim.traceLines() }
}

if (values.stride !== undefined) {
  // A worker: run our share of the seeds, send each result to the parent.
  const stride = int("stride", values.stride)
  const start = int("start", values.start)
  const count = int("seeds", values.seeds)
  for (let i = 0; i < count; i++) {
    const { report } = await runSeed(start + i * stride)
    process.send!(report)
  }
  process.exit(0)
}

const started = performance.now()
const reports: Report[] = []
const single = values.seed !== undefined
if (single) {
  const { report, trace } = await runSeed(int("seed", values.seed))
  for (const line of trace) console.log(line)
  reports.push(report)
} else {
  const count = int("seeds", values.seeds)
  const start = int("start", values.start)
  const jobs = Math.max(1, Math.min(count, values.jobs !== undefined ? int("jobs", values.jobs) : availableParallelism()))
  if (jobs === 1) {
    for (let i = 0; i < count; i++) reports.push((await runSeed(start + i)).report)
  } else {
    // Worker w runs seeds start+w, start+w+jobs, ...; the summary does not depend on who ran what.
    await Promise.all(
      Array.from({ length: jobs }, (_, w) => {
        const share = Math.floor(count / jobs) + (w < count % jobs ? 1 : 0)
        const child = fork(process.argv[1]!, ["--stride", String(jobs), "--start", String(start + w), "--seeds", String(share), ...passThrough()], {
          execArgv: process.execArgv
        })
        child.on("message", (r: Report) => reports.push(r))
        return new Promise<void>((resolve, reject) =>
          child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`simulation worker ${w} exited with code ${code}`))))
        )
      })
    )
  }
}

function passThrough(): string[] {
  const out: string[] = []
  if (values.nodes !== undefined) out.push("--nodes", values.nodes)
  out.push("--chaos-ms", values["chaos-ms"], "--heal-ms", values["heal-ms"])
  return out
}

reports.sort((a, b) => a.seed - b.seed)
const failed = reports.filter((r) => !r.ok)
for (const r of failed) {
  console.log(`seed ${r.seed} FAILED at ${r.failedAtMs} virtual ms: ${r.error}`)
  console.log(`  replay: npm run sim -- --seed ${r.seed} --verbose`)
}
if (single && failed.length === 0) console.log(`seed ${reports[0]!.seed} ok: ${JSON.stringify(reports[0])}`)
const sum = (pick: (r: Report) => number): number => reports.reduce((a, r) => a + pick(r), 0)
const seconds = (performance.now() - started) / 1000
console.log(
  `simulation: ${reports.length} seeds, ${reports.length - failed.length} passed, ${failed.length} failed ` +
    `(${sum((r) => r.events)} events, ${sum((r) => r.messages)} messages, ${sum((r) => r.ok_)} register operations ok, ` +
    `${sum((r) => r.enqueued)} jobs enqueued, ${sum((r) => r.completed)} completed, ${sum((r) => r.crashes)} crashes, ${sum((r) => r.restarts)} restarts, ` +
    `${sum((r) => r.partitions)} partitions, ${sum((r) => r.pauses)} pauses, ${sum((r) => r.snapshots)} snapshots, ` +
    `${sum((r) => r.wipes)} wiped disks, ${sum((r) => r.installs)} installs, ` +
    `${sum((r) => r.transfers)} leadership transfers (${sum((r) => r.transfersDone)} taken over), ` +
    `${sum((r) => r.floods)} floods, ${sum((r) => r.busy)} requests answered busy, ` +
    `${sum((r) => r.memberChanges)} membership changes (${sum((r) => r.memberChangesTaken)} appended); ${seconds.toFixed(1)} s, ${(reports.length / seconds).toFixed(2)} seeds/s, ` +
    `${(sum((r) => r.cpuMs) / reports.length / 1000).toFixed(2)} CPU s per seed)`
)
process.exit(failed.length === 0 ? 0 : 1)
