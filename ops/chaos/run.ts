/**
 * `npm run chaos -- --seconds S --seed N --faults kill,pause,partition,nats-restart`
 *
 * Starts a real cluster (N nats-servers clustered through fault proxies, one Archio node on
 * each), runs a workload against it while the nemesis injects faults on a seeded schedule, heals
 * everything, lets the cluster settle, does final reads, and checks the history. Workloads:
 * `register` (default; linearizability), `jobs` (enqueue, lease, ack by worker processes) or
 * `both`. Prints a summary and the run folder (history, schedule, node and server logs, checker
 * output), and exits 0 when the history is linearizable (register) or valid (jobs), 1 on a
 * violation, a cluster that did not recover or a node that exited on its own,
 * 2 on bad usage or a harness failure, 3 when the checker could not decide.
 *
 * `npm run chaos -- --check <history.jsonl>` checks a saved history again.
 * See ops/chaos/README.md.
 */
import { mkdir, rm, writeFile } from "node:fs/promises"
import { join, relative, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { clock, HistoryRecorder, readHistory, type HistoryEntry } from "./history.ts"
import { defaultJobsOptions, JobsWorkload } from "./jobs.ts"
import { faultKinds, isFaultKind, Nemesis, planSchedule, Rng, type FaultKind } from "./nemesis.ts"
import { defaultRegisterOptions, RegisterWorkload } from "./register.ts"
import { ChaosCluster } from "./topology.ts"
import { CompositeWorkload, type Workload } from "./workload.ts"

/** The nodes' SNAPSHOT_THRESHOLD in a chaos run, unless `--snapshot-threshold`. */
export const defaultSnapshotThreshold = 400

export const usage = `Usage: npm run chaos -- [options]

  --seconds S        how long faults and clients run (default 60)
  --seed N           seed of the fault schedule and the workload (default: random, printed)
  --faults LIST      comma-separated: ${faultKinds.join(",")} (default: all); "none" for none
  --nodes N          Archio nodes, each on its own nats-server: 3 or 5 (default 3)
  --workload NAME    register (default), jobs, or both at once
  --snapshot-threshold N
                     the nodes' SNAPSHOT_THRESHOLD: applied entries between snapshots (default
                     ${defaultSnapshotThreshold}, far below the product's 10,000, so a run compacts many times)
  --clients N        register: concurrent clients, spread over the servers (default ${defaultRegisterOptions.clients})
  --keys N           register: keys in use at once (default ${defaultRegisterOptions.keys})
  --op-timeout MS    deadline of one operation (register op, enqueue), retries included (default ${defaultRegisterOptions.opTimeoutMs})
  --producers N      jobs: enqueueing clients, spread over the servers (default ${defaultJobsOptions.producers})
  --workers N        jobs: archio worker processes, spread over the servers (default ${defaultJobsOptions.workers})
  --lease-ms MS      jobs: the workers' lease length (default ${defaultJobsOptions.leaseMs})
  --no-worker-kill   jobs: do not kill and restart workers (on by default)
  --out DIR          parent of the run folder (default .archio/chaos)
  --stale-reads      self-test: read with consistency "stale"; partitions must then be caught
  --wrong-refusals   self-test: send some cas with an impossible revision, record the meant one;
                     the refusals of current values must then be caught
  --keep-data        keep the nodes' databases (always kept when the verdict is not clean)
  --check FILE       only check a saved history.jsonl
  -h, --help         this text

Exit: 0 linearizable (register) / valid (jobs), 1 violation, no recovery, a node that
      exited on its own or a stalled harness phase, 2 bad usage or harness failure, 3 undecided.
`

export type WorkloadName = "register" | "jobs" | "both"
const workloadNames: ReadonlyArray<WorkloadName> = ["register", "jobs", "both"]

export interface ChaosOptions {
  readonly seconds: number
  readonly seed: number
  readonly faults: ReadonlyArray<FaultKind>
  readonly nodes: number
  readonly workload: WorkloadName
  readonly clients: number
  readonly keys: number
  readonly opTimeoutMs: number
  /** The nodes' SNAPSHOT_THRESHOLD (default `defaultSnapshotThreshold`). */
  readonly snapshotThreshold?: number
  /** Jobs workload (defaults in `defaultJobsOptions`). */
  readonly producers?: number
  readonly workers?: number
  readonly leaseMs?: number
  readonly workerKill?: boolean
  readonly out: string
  readonly keepData: boolean
  /** Self-test of the harness: stale reads, which a partition must expose. */
  readonly staleReads?: boolean
  /** Self-test of the harness: cas refused although their expected value was current. */
  readonly wrongRefusals?: boolean
  /** Where progress goes (a line at a time). */
  readonly say?: (line: string) => void
  /** Aborts the run early (it still heals, checks and reports). */
  readonly stop?: AbortSignal
}

/** `linearizable`: the register workload found no violation; `valid`: jobs (or both) found none. */
export type Verdict = "linearizable" | "valid" | "violation" | "no-recovery" | "node-exit" | "stalled" | "undecided"

export interface ChaosSummary {
  readonly verdict: Verdict
  readonly exitCode: number
  readonly dir: string
  readonly operations: number
  readonly ok: number
  readonly fail: number
  readonly info: number
  readonly faults: Record<string, number>
  readonly settledMs: number | undefined
  /** Nodes that exited without the nemesis killing them. */
  readonly crashed: ReadonlyArray<string>
  /** Snapshots the nodes logged: taken (by threshold or forced) and installed from a leader. */
  readonly snapshots: { readonly taken: number; readonly installed: number }
  readonly lines: ReadonlyArray<string>
}

/** Parses argv into options, or returns the problems found. */
export const parseChaosArgs = (argv: ReadonlyArray<string>): { options: Omit<ChaosOptions, "say" | "stop">; check?: string } | { help: true } | { errors: string[] } => {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        seconds: { type: "string" },
        seed: { type: "string" },
        faults: { type: "string" },
        nodes: { type: "string" },
        workload: { type: "string" },
        clients: { type: "string" },
        keys: { type: "string" },
        "op-timeout": { type: "string" },
        "snapshot-threshold": { type: "string" },
        producers: { type: "string" },
        workers: { type: "string" },
        "lease-ms": { type: "string" },
        "no-worker-kill": { type: "boolean" },
        out: { type: "string" },
        "keep-data": { type: "boolean" },
        "stale-reads": { type: "boolean" },
        "wrong-refusals": { type: "boolean" },
        check: { type: "string" },
        help: { type: "boolean", short: "h" }
      },
      strict: true,
      allowPositionals: false
    })
  } catch (e) {
    return { errors: [e instanceof Error ? e.message : String(e)] }
  }
  const v = parsed.values
  if (v.help === true) return { help: true }
  const errors: string[] = []
  const int = (name: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) {
      errors.push(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
      return fallback
    }
    return n
  }
  const seconds = int("seconds", v.seconds, 60, 1, 86_400)
  const seed = int("seed", v.seed, Math.floor(Math.random() * 1_000_000), 0, 2 ** 32 - 1)
  const nodes = int("nodes", v.nodes, 3, 3, 5)
  if (nodes !== 3 && nodes !== 5) errors.push(`--nodes must be 3 or 5, got ${nodes}`)
  const clients = int("clients", v.clients, defaultRegisterOptions.clients, 1, 64)
  const keys = int("keys", v.keys, defaultRegisterOptions.keys, 1, 1000)
  const opTimeoutMs = int("op-timeout", v["op-timeout"], defaultRegisterOptions.opTimeoutMs, 50, 120_000)
  const producers = int("producers", v.producers, defaultJobsOptions.producers, 1, 64)
  const workers = int("workers", v.workers, defaultJobsOptions.workers, 1, 32)
  const leaseMs = int("lease-ms", v["lease-ms"], defaultJobsOptions.leaseMs, 100, 600_000)
  const snapshotThreshold = int("snapshot-threshold", v["snapshot-threshold"], defaultSnapshotThreshold, 1, 1_000_000_000)
  let faults: FaultKind[] = [...faultKinds]
  if (v.faults !== undefined) {
    faults = []
    const list = v.faults.trim() === "none" ? [] : v.faults.split(",").map((s) => s.trim())
    for (const f of list) {
      if (isFaultKind(f)) {
        if (!faults.includes(f)) faults.push(f)
      } else errors.push(`--faults: unknown fault ${JSON.stringify(f)}; known: ${faultKinds.join(", ")}, or none`)
    }
  }
  const workload = (v.workload ?? "register") as WorkloadName
  if (!workloadNames.includes(workload)) errors.push(`--workload: one of ${workloadNames.join(", ")}, got ${JSON.stringify(v.workload)}`)
  if (errors.length > 0) return { errors }
  const options = {
    seconds,
    seed,
    faults,
    nodes,
    workload,
    clients,
    keys,
    opTimeoutMs,
    snapshotThreshold,
    producers,
    workers,
    leaseMs,
    workerKill: v["no-worker-kill"] !== true,
    out: v.out ?? join(".archio", "chaos"),
    keepData: v["keep-data"] === true,
    staleReads: v["stale-reads"] === true,
    wrongRefusals: v["wrong-refusals"] === true
  }
  return v.check === undefined ? { options } : { options, check: v.check }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    const timer = setTimeout(r, ms)
    signal?.addEventListener("abort", () => {
      clearTimeout(timer)
      r()
    })
  })

const verdictText = (workload: WorkloadName): Record<Verdict, string> => {
  const clean = workload === "register" ? "history linearizable" : "history valid"
  return {
    linearizable: "linearizable",
    valid: workload === "both" ? "valid (registers linearizable; jobs: none lost, none completed twice, no stale ack, all completed)" : "valid (none lost, none completed twice, no stale ack, all completed)",
    violation: workload === "register" ? "NOT LINEARIZABLE" : "VIOLATION",
    "no-recovery": `NO RECOVERY (${clean})`,
    "node-exit": `NODE EXITED ON ITS OWN (${clean})`,
    stalled: `HARNESS STALLED (${clean}; see "stalled" above)`,
    undecided: workload === "register" ? "UNDECIDED (checker budget)" : "UNDECIDED (checker budget, or the final state could not be read)"
  }
}

/**
 * `within(what, ms, p)` waits for `p` at most `ms`; a phase that is late is added to `stalled`
 * and reported, and the caller goes on.
 */
export const phaseDeadlines =
  (stalled: Array<string>, say: (line: string) => void) =>
  async (what: string, ms: number, p: Promise<unknown>): Promise<void> => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), ms)))
    const outcome = await Promise.race([p.then(() => "done" as const), late])
    clearTimeout(timer)
    if (outcome === "late") {
      stalled.push(what)
      say(`chaos: STALLED: ${what} did not finish within ${ms / 1000} s; going on`)
    }
  }

const registerOps = new Set(["read", "write", "cas"])

/** The workload a run (or a saved history's `meta.workload`) names. */
export const makeWorkload = (name: WorkloadName, options: Partial<Omit<ChaosOptions, "say" | "stop">> = {}): Workload => {
  const register = () =>
    new RegisterWorkload({
      ...defaultRegisterOptions,
      ...(options.clients === undefined ? {} : { clients: options.clients }),
      ...(options.keys === undefined ? {} : { keys: options.keys }),
      ...(options.opTimeoutMs === undefined ? {} : { opTimeoutMs: options.opTimeoutMs }),
      staleReads: options.staleReads === true,
      wrongRefusals: options.wrongRefusals === true
    })
  const jobs = () =>
    new JobsWorkload({
      ...defaultJobsOptions,
      ...(options.producers === undefined ? {} : { producers: options.producers }),
      ...(options.workers === undefined ? {} : { workers: options.workers }),
      ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
      ...(options.opTimeoutMs === undefined ? {} : { opTimeoutMs: options.opTimeoutMs }),
      ...(options.workerKill === undefined ? {} : { workerKill: options.workerKill })
    })
  if (name === "register") return register()
  if (name === "jobs") return jobs()
  const isRegisterOp = (e: HistoryEntry): boolean => (e.type === "invoke" || e.type === "ok" || e.type === "fail" || e.type === "info") && registerOps.has(e.f)
  return new CompositeWorkload([
    { workload: register(), owns: isRegisterOp },
    { workload: jobs(), owns: (e) => !isRegisterOp(e) }
  ])
}

const stamp = (): string => new Date().toISOString().replace(/[:.]/g, "-").replace(/Z$/, "")

const exitCodes: Record<Verdict, number> = { linearizable: 0, valid: 0, violation: 1, "no-recovery": 1, "node-exit": 1, stalled: 1, undecided: 3 }

/** One chaos run, start to verdict. Throws only when the harness itself fails. */
export const runChaos = async (options: ChaosOptions): Promise<ChaosSummary> => {
  const say = options.say ?? ((line: string) => console.log(line))
  const dir = resolve(options.out, `${stamp()}-seed${options.seed}`)
  await mkdir(dir, { recursive: true })
  const now = clock()
  const history = new HistoryRecorder(now, join(dir, "history.jsonl"))
  const root = new Rng(options.seed)
  const durationMs = options.seconds * 1000
  const schedule = planSchedule(options.seed, { durationMs, faults: options.faults, nodes: options.nodes })
  const runId = `chaos${options.seed}-${Date.now().toString(36)}`
  const snapshotThreshold = options.snapshotThreshold ?? defaultSnapshotThreshold
  history.append({
    type: "meta",
    version: 1,
    seed: options.seed,
    seconds: options.seconds,
    workload: options.workload,
    faults: options.faults,
    nodes: options.nodes,
    clients: options.clients,
    keys: options.keys,
    opTimeoutMs: options.opTimeoutMs,
    snapshotThreshold,
    ...(options.workload === "register"
      ? {}
      : {
          producers: options.producers ?? defaultJobsOptions.producers,
          workers: options.workers ?? defaultJobsOptions.workers,
          leaseMs: options.leaseMs ?? defaultJobsOptions.leaseMs,
          workerKill: options.workerKill ?? defaultJobsOptions.workerKill
        }),
    staleReads: options.staleReads === true,
    wrongRefusals: options.wrongRefusals === true,
    started: new Date().toISOString(),
    timeUnit: "ns"
  })
  await writeFile(join(dir, "schedule.json"), `${JSON.stringify(schedule, null, 2)}\n`)
  const jobsText = `${options.producers ?? defaultJobsOptions.producers} producers, ${options.workers ?? defaultJobsOptions.workers} workers`
  const loadText =
    options.workload === "register"
      ? `${options.clients} clients, ${options.keys} keys`
      : options.workload === "jobs"
        ? `jobs: ${jobsText}`
        : `register: ${options.clients} clients, ${options.keys} keys; jobs: ${jobsText}`
  say(
    `chaos: seed ${options.seed}, ${options.seconds} s, faults ${options.faults.join(",") || "none"}, ${options.nodes} nodes, snapshot threshold ${snapshotThreshold}, ${loadText}${options.staleReads === true ? ", STALE READS (self-test: expect a violation)" : ""}${options.wrongRefusals === true ? ", WRONG REFUSALS (self-test: expect a violation)" : ""}`
  )
  say(`chaos: run folder ${relative(process.cwd(), dir) || dir}; ${schedule.length} fault steps planned`)

  const workload = makeWorkload(options.workload, options)
  const jitter = root.fork("proxy-jitter")
  const cluster = await ChaosCluster.start({ nodes: options.nodes, dir, random: () => jitter.next(), env: { SNAPSHOT_THRESHOLD: String(snapshotThreshold) } })
  // What the nodes say about snapshots, counted for the summary.
  const snapshots = { taken: 0, installed: 0 }
  const unlisten = cluster.nodes.onLine((_id, line) => {
    if (line.includes("snapshot at index")) snapshots.taken++
    else if (line.includes("installed a snapshot from")) snapshots.installed++
  })
  // A harness that dies must not leave servers or stopped nodes behind.
  const emergency = (): void => {
    for (const id of cluster.ids) void cluster.nodes.kill(id)
    for (const s of cluster.mesh.servers) s.handle?.process.kill("SIGKILL")
  }
  process.once("exit", emergency)
  // Every phase has a deadline: a step that never ends is reported as such (and the run goes
  // on to check what it has: unfinished operations count as unknown) instead of hanging.
  const stalled: string[] = []
  const within = phaseDeadlines(stalled, say)
  let settledMs: number | undefined
  const crashed = new Set<string>()
  let nemesis: Nemesis | undefined
  try {
    say(`chaos: cluster up (leader ${(await cluster.leader()) ?? "?"}); starting the ${workload.name} workload`)
    await workload.start({ cluster, history, rng: root.fork("workload"), runId, dir, log: say })
    nemesis = new Nemesis(cluster, history, root.fork("nemesis-runtime"), (line) => say(`nemesis: ${line}`))
    const stopLoad = new AbortController()
    const stopFaults = new AbortController()
    options.stop?.addEventListener("abort", () => {
      stopFaults.abort()
      stopLoad.abort()
    })
    const load = workload.run(stopLoad.signal, stopFaults.signal)
    const faults = nemesis.run(schedule, stopFaults.signal)
    await sleep(durationMs, options.stop)
    stopFaults.abort()
    await within("the nemesis's last step", 60_000, faults)
    say("chaos: time is up: healing everything")
    let exitedOnTheirOwn: ReadonlyArray<string> = []
    await within("healing", 60_000, nemesis.healAll().then((ids) => (exitedOnTheirOwn = ids)))
    for (const id of exitedOnTheirOwn) crashed.add(id)
    if (crashed.size > 0) say(`chaos: ${[...crashed].join(", ")} had exited on their own (see logs/); restarted`)
    const healedAt = performance.now()
    // Clients keep running through the heal, so the history covers the recovery too.
    const settled = await cluster.waitSettled(30_000)
    if (settled.settled) settledMs = performance.now() - healedAt
    stopLoad.abort()
    await within("stopping the workload", 30_000, load)
    if (settledMs !== undefined) {
      say(`chaos: cluster settled ${(settledMs / 1000).toFixed(1)} s after the heal; final reads`)
    } else {
      say(`chaos: cluster did NOT settle within 30 s of the heal: ${JSON.stringify(settled.statuses)}`)
    }
    await within("the final reads", 60_000, workload.final())
    for (const id of cluster.ids) if (!cluster.nodes.isRunning(id)) crashed.add(id)
  } finally {
    await within("closing the clients", 15_000, workload.close().catch(() => undefined))
    await history.close()
    await cluster.stop().catch((e: unknown) => say(`chaos: stopping the cluster: ${String(e)}`))
    unlisten()
    process.off("exit", emergency)
  }

  say("chaos: checking the history")
  const result = workload.check(history.entries)
  const injected = nemesis?.stats.injected ?? {}
  const faultTotal = faultKinds.reduce((n, k) => n + (injected[k] ?? 0), 0)
  const clean: Verdict = options.workload === "register" ? "linearizable" : "valid"
  let verdict: Verdict = result.valid === true ? clean : result.valid === false ? "violation" : "undecided"
  if (verdict === clean && settledMs === undefined) verdict = "no-recovery"
  if (verdict === clean && crashed.size > 0) verdict = "node-exit"
  if (verdict === clean && stalled.length > 0) verdict = "stalled"
  const paired = history.entries.filter((e) => e.type === "ok" || e.type === "fail" || e.type === "info")
  const counts = { ok: 0, fail: 0, info: 0 }
  for (const e of paired) counts[e.type as "ok" | "fail" | "info"]++
  const operations = history.entries.filter((e) => e.type === "invoke").length
  const faultLine = Object.entries(injected)
    .filter(([k]) => !k.includes(":"))
    .map(([k, n]) => `${k} ${n}`)
    .join(", ")
  const shapes = Object.entries(injected)
    .filter(([k]) => k.startsWith("partition:"))
    .map(([k, n]) => `${k.slice("partition:".length)} ${n}`)
    .join(", ")
  const lines = [
    ...result.lines,
    `faults      ${faultTotal} injected in ${nemesis?.stats.steps ?? 0} steps${faultLine === "" ? "" : `: ${faultLine}`}${shapes === "" ? "" : ` (partitions: ${shapes})`}`,
    `snapshots   ${snapshots.taken} taken by the nodes (threshold ${snapshotThreshold}; ${injected["snapshot:forced"] ?? 0} forced by the nemesis), ${snapshots.installed} installed from a leader; follower wipes ${injected["snapshot:wipe"] ?? 0}${injected["snapshot:wipe-skipped"] === undefined ? "" : ` (${injected["snapshot:wipe-skipped"]} skipped)`}, back by InstallSnapshot ${injected["snapshot:installed"] ?? 0}${injected["snapshot:not-caught-up"] === undefined ? "" : `, NOT caught up within 30 s ${injected["snapshot:not-caught-up"]}`}`,
    `recovery    ${settledMs === undefined ? "the cluster did not settle within 30 s after the heal" : `settled ${(settledMs / 1000).toFixed(1)} s after the final heal`}`,
    ...(stalled.length > 0 ? [`stalled     ${stalled.join("; ")}`] : []),
    ...(crashed.size > 0 ? [`node exits  ${[...crashed].join(", ")} exited without being killed (see logs/)`] : []),
    `verdict     ${verdictText(options.workload)[verdict]}`,
    `folder      ${relative(process.cwd(), dir) || dir}`
  ]
  await writeFile(join(dir, "check.json"), `${JSON.stringify({ verdict, valid: result.valid, details: result.details }, null, 2)}\n`)
  if (result.violations.length > 0) await writeFile(join(dir, "violations.txt"), `${result.violations.join("\n\n")}\n`)
  const summary: ChaosSummary = { verdict, exitCode: exitCodes[verdict], dir, operations, ...counts, faults: injected, settledMs, crashed: [...crashed], snapshots: { ...snapshots }, lines }
  await writeFile(
    join(dir, "summary.json"),
    `${JSON.stringify({ ...summary, seed: options.seed, seconds: options.seconds, workload: options.workload, faultsEnabled: options.faults, nodes: options.nodes, clients: options.clients, snapshotThreshold }, null, 2)}\n`
  )
  if (verdict === clean && !options.keepData) await rm(join(dir, "data"), { recursive: true, force: true })
  for (const v of result.violations) say(v)
  return summary
}

const main = async (): Promise<number> => {
  const parsed = parseChaosArgs(process.argv.slice(2))
  if ("help" in parsed) {
    process.stdout.write(usage)
    return 0
  }
  if ("errors" in parsed) {
    for (const e of parsed.errors) process.stderr.write(`chaos: ${e}\n`)
    process.stderr.write("run `npm run chaos -- --help` for the options\n")
    return 2
  }
  if (parsed.check !== undefined) {
    const entries = await readHistory(parsed.check)
    const meta = entries[0]?.type === "meta" ? entries[0] : undefined
    const name = workloadNames.find((w) => w === meta?.workload) ?? "register"
    const result = makeWorkload(name).check(entries)
    for (const line of result.lines) console.log(line)
    for (const v of result.violations) console.log(v)
    const text = verdictText(name)
    console.log(`verdict     ${result.valid === true ? text[name === "register" ? "linearizable" : "valid"] : result.valid === false ? text.violation : text.undecided}`)
    return result.valid === true ? 0 : result.valid === false ? 1 : 3
  }
  const stop = new AbortController()
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130)
    console.log("chaos: interrupted: healing, checking what was recorded (again to quit at once)")
    stop.abort()
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  const summary = await runChaos({ ...parsed.options, stop: stop.signal })
  console.log("")
  console.log(`chaos summary (seed ${parsed.options.seed}, ${parsed.options.seconds} s, faults ${parsed.options.faults.join(",") || "none"}):`)
  for (const line of summary.lines) console.log(`  ${line}`)
  return summary.exitCode
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`chaos: harness failure: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
      process.exit(2)
    }
  )
}
