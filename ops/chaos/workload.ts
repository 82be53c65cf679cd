/**
 * What a chaos workload provides. The runner starts the cluster and the nemesis; a workload
 * drives clients against the cluster, records every operation in the history, does its final
 * reads once the cluster has healed, and checks the history at the end.
 *
 * Two workloads exist: registers (`register.ts`, checked for linearizability) and jobs
 * (`jobs.ts`: enqueue, lease, ack by worker processes, checked by `jobsChecker.ts` for lost
 * enqueues, double completions and acks from stale leases). `CompositeWorkload` runs several
 * at once (`--workload both`). A new one implements `Workload` and gets a name in `run.ts`.
 */
import { ArchioClient } from "../../protocol/archioClient.ts"
import type { HistoryEntry, HistoryRecorder } from "./history.ts"
import type { Rng } from "./nemesis.ts"
import type { ChaosCluster } from "./topology.ts"

export interface WorkloadContext {
  readonly cluster: ChaosCluster
  readonly history: HistoryRecorder
  /** The workload's own seeded stream (op mix, keys, values). */
  readonly rng: Rng
  /** Unique per run; prefix of client ids. */
  readonly runId: string
  /** The run folder (logs in `logs/`), for files a workload needs. */
  readonly dir: string
  readonly log: (line: string) => void
}

/**
 * A workload client on NATS server `server` of the mesh: it retries through faults (short
 * attempts, endless reconnects, no cluster gossip so it stays on its server) until `deadlineMs`.
 */
export const connectClient = (ctx: WorkloadContext, name: string, server: number, deadlineMs: number): Promise<ArchioClient> =>
  ArchioClient.connect(ctx.cluster.mesh.url(server), {
    cluster: ctx.cluster.cluster,
    deadlineMs,
    attemptTimeoutMs: Math.min(500, deadlineMs),
    clientId: `${ctx.runId}-${name}`,
    nats: { name: `archio-chaos-${name}`, ignoreClusterUpdates: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, reconnectJitter: 100 }
  })

export interface CheckResult {
  /** true: no violation; false: a violation; "unknown": the checker could not decide. */
  readonly valid: boolean | "unknown"
  /** A few lines for the summary. */
  readonly lines: ReadonlyArray<string>
  /** Readable explanation of each violation (written to `violations.txt`). */
  readonly violations: ReadonlyArray<string>
  /** Everything else the checker found, written to `check.json`. */
  readonly details: unknown
}

export interface Workload {
  readonly name: string
  /** Connects the workload's clients (spread across the NATS servers). */
  start(ctx: WorkloadContext): Promise<void>
  /**
   * Runs operations until `stop` aborts; resolves once every client is idle. `faults` (when
   * given) aborts when the nemesis stops, before the heal: faults a workload injects itself
   * (the jobs workload's worker kills) end there.
   */
  run(stop: AbortSignal, faults?: AbortSignal): Promise<void>
  /** After the cluster healed and settled: final reads that pin down the end state. */
  final(): Promise<void>
  close(): Promise<void>
  check(entries: ReadonlyArray<HistoryEntry>): CheckResult
}

/**
 * Several workloads at once on the same cluster and history. Each checks only the entries it
 * `owns` (plus `meta` and `nemesis` lines); the verdict is false if any says false, else
 * "unknown" if any could not decide.
 */
export class CompositeWorkload implements Workload {
  readonly name: string

  constructor(private readonly parts: ReadonlyArray<{ readonly workload: Workload; readonly owns: (e: HistoryEntry) => boolean }>) {
    this.name = parts.map((p) => p.workload.name).join("+")
  }

  async start(ctx: WorkloadContext): Promise<void> {
    for (const p of this.parts) await p.workload.start({ ...ctx, rng: ctx.rng.fork(p.workload.name) })
  }

  async run(stop: AbortSignal, faults?: AbortSignal): Promise<void> {
    await Promise.all(this.parts.map((p) => p.workload.run(stop, faults)))
  }

  async final(): Promise<void> {
    for (const p of this.parts) await p.workload.final()
  }

  async close(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.workload.close()))
  }

  check(entries: ReadonlyArray<HistoryEntry>): CheckResult {
    const results = this.parts.map((p) => ({
      name: p.workload.name,
      result: p.workload.check(entries.filter((e) => e.type === "meta" || e.type === "nemesis" || p.owns(e)))
    }))
    const valid = results.some((r) => r.result.valid === false) ? false : results.some((r) => r.result.valid === "unknown") ? "unknown" : true
    return {
      valid,
      lines: results.flatMap((r) => [
        `[${r.name}] ${r.result.valid === true ? "valid" : r.result.valid === false ? "VIOLATION" : "undecided"}`,
        ...r.result.lines
      ]),
      violations: results.flatMap((r) => r.result.violations.map((v) => `[${r.name}] ${v}`)),
      details: Object.fromEntries(results.map((r) => [r.name, r.result.details]))
    }
  }
}
