/**
 * The jobs checker: reads a jobs-workload history (enqueue operations, worker outcome lines,
 * job events, and the final state read with `jobs.list` after the heal) and checks:
 *
 * 1. **No acknowledged enqueue is lost.** Every `ok` enqueue's job ids exist at the end and
 *    carry the payload that enqueue sent. No payload id exists twice (a retried enqueue made a
 *    second job: the idempotency token failed), no job exists whose payload was never sent or
 *    was sent by an enqueue that definitely failed (`fail`). An `info` enqueue may or may not
 *    exist; the counts are reported.
 * 2. **Nothing completed twice.** No job id has two `acked` worker lines (a worker prints
 *    `acked` only when the cluster answered ok to its ack); every acked job is `completed` at
 *    the end; the acked line's token is the token of the ack that took effect (below). When the
 *    event stream saw a job complete at two different revisions, that is reported too.
 * 3. **No ack accepted from a stale lease.** `jobs.get`/`jobs.list` show a job's fencing token
 *    only while it is leased, so the workload's handler returns the identity of the lease it ran
 *    under, `{p, token, attempt}`, as the job's result; only an accepted ack stores a result, so
 *    a completed job's `result` names the lease whose ack was accepted. It was the job's last
 *    lease when:
 *    - `result.attempt` equals the job's final `attempts`. A lease sets `attempts` to its own
 *      attempt number and nothing but a later lease (or a `release`) changes it before the ack,
 *      so a difference proves a stale ack (or a completed job leased again). Exact unless a
 *      release sat between the two leases (a release takes the attempt back, so a stale ack
 *      from the lease before it could match): then the token check below still applies.
 *    - no worker reported any outcome (`acked`, `failed`, `released`, `lost`) for the job with a
 *      larger token: tokens grow with every lease, so a larger one is a later lease of the same
 *      job, granted either before the accepted ack (the ack was stale) or after the completion
 *      (a finished job leased again). Only leases some worker reported on are seen.
 *    - the event stream (at most once, so possibly incomplete) shows no `leased` transition of
 *      the job after its `completed` one, and the `completed` event's `attempts` equals
 *      `result.attempt`.
 *    `result.p` must also be the job's own payload id.
 * 4. **Liveness.** After the heal the workload waits for the queue to drain; every job not
 *    `completed` in the final state is a straggler, reported with its state (a failure, but a
 *    liveness one: it is listed apart from the safety violations).
 *
 * When the final state could not be read completely, only the checks that do not need it run
 * (double acks, event-stream checks) and the verdict is at best "unknown".
 */
import { pairOps, type HistoryEntry, type JobEventEntry, type PairedOp, type WorkerEntry } from "./history.ts"

/** A job as the final read records it (a compact `JobView`). */
export interface FinalJob {
  readonly id: string
  readonly state: string
  /** The payload id the producer gave the job (`payload.p`), null when there is none. */
  readonly p: string | null
  readonly attempts: number
  readonly result?: unknown
  readonly error?: string
}

export type JobsViolationKind =
  | "lost"
  | "duplicate"
  | "phantom"
  | "double-ack"
  | "ack-not-completed"
  | "ack-mismatch"
  | "stale-ack"
  | "completed-twice"
  | "leased-after-completed"
  | "not-completed"

export interface JobsViolation {
  readonly kind: JobsViolationKind
  readonly id?: string
  readonly explanation: string
}

export interface JobsCounts {
  readonly enqueueOps: { readonly ok: number; readonly fail: number; readonly info: number }
  /** Payloads (jobs) sent by ok / fail / info enqueues. */
  readonly payloads: { readonly ok: number; readonly fail: number; readonly info: number }
  /** Of the info payloads: found in the final state, or not. */
  readonly unknownApplied: number
  readonly unknownNotApplied: number
  readonly workerLines: Readonly<Record<string, number>>
  readonly workerKills: number
  readonly workerExits: number
  readonly events: Readonly<Record<string, number>>
  readonly finalJobs: number
  readonly finalByState: Readonly<Record<string, number>>
  /** Completed jobs whose result carried the lease identity (checked for stale acks). */
  readonly leaseChecked: number
}

export interface JobsReport {
  readonly valid: boolean | "unknown"
  /** No safety violation (1-3). */
  readonly safe: boolean
  /** Every job completed (4); undefined without a complete final state. */
  readonly live: boolean | undefined
  readonly finalComplete: boolean
  readonly counts: JobsCounts
  readonly violations: ReadonlyArray<JobsViolation>
  /** Jobs not completed at the end (up to 50). */
  readonly stragglers: ReadonlyArray<FinalJob>
}

const secs = (ns: number | undefined): string => (ns === undefined ? "t=?" : `t=${(ns / 1e9).toFixed(3)}s`)

const isStrings = (v: unknown): v is ReadonlyArray<string> => Array.isArray(v) && v.every((x) => typeof x === "string")

interface LeaseResult {
  readonly p: unknown
  readonly token: number
  readonly attempt: number
}

const leaseResult = (r: unknown): LeaseResult | undefined => {
  if (typeof r !== "object" || r === null) return undefined
  const o = r as { p?: unknown; token?: unknown; attempt?: unknown }
  return typeof o.token === "number" && typeof o.attempt === "number" ? { p: o.p, token: o.token, attempt: o.attempt } : undefined
}

const describeOp = (op: PairedOp): string =>
  `${op.client} enqueue ${JSON.stringify(op.invoke.value)} (op ${op.id}, invoked ${secs(op.invoke.time)}, ${op.type}${op.complete === undefined ? "" : ` ${secs(op.end)}`}${
    op.complete?.ids === undefined ? "" : `, ids ${JSON.stringify(op.complete.ids)}`
  }${op.complete?.error === undefined ? "" : `, ${op.complete.error}`})`

const describeLine = (w: WorkerEntry): string => `${w.worker} ${w.event} job ${w.id} token ${w.token} (read ${secs(w.time)})`

/**
 * The final state from the `list` pages of the final reader: the last chain of ok pages that
 * starts at no cursor and follows each reply's `cursor` to a reply without one.
 */
export const finalState = (ops: ReadonlyArray<PairedOp>): FinalJob[] | undefined => {
  const pages = ops.filter((o) => o.f === "list" && o.type === "ok").sort((a, b) => a.invoke.time - b.invoke.time || a.id - b.id)
  let chain: FinalJob[] | undefined
  let next: string | null = null
  let done: FinalJob[] | undefined
  for (const page of pages) {
    const asked = (page.invoke.value ?? null) as string | null
    if (asked === null) chain = []
    else if (chain === undefined || asked !== next) continue
    chain.push(...((page.complete?.value ?? []) as FinalJob[]))
    const cursor = page.complete?.cursor
    next = typeof cursor === "string" ? cursor : null
    if (next === null) {
      done = chain
      chain = undefined
    }
  }
  return done
}

export const checkJobsHistory = (entries: ReadonlyArray<HistoryEntry>): JobsReport => {
  const ops = pairOps(entries)
  const violations: JobsViolation[] = []
  const enqueues = ops.filter((o) => o.f === "enqueue")
  const lines = entries.filter((e): e is WorkerEntry => e.type === "worker")
  const events = entries.filter((e): e is JobEventEntry => e.type === "job-event")
  const workerKills = entries.filter((e) => e.type === "nemesis" && e.phase === "start" && e.fault === "worker-kill").length
  const workerExits = entries.filter((e) => e.type === "nemesis" && e.phase === "note" && e.fault === "worker-exit").length

  const enqueueOps = { ok: 0, fail: 0, info: 0 }
  const payloads = { ok: 0, fail: 0, info: 0 }
  /** Payload id → the enqueue that sent it and the job id it got (ok only). */
  const sent = new Map<string, { readonly op: PairedOp; readonly id: string | undefined }>()
  for (const op of enqueues) {
    enqueueOps[op.type]++
    const ps = isStrings(op.invoke.value) ? op.invoke.value : []
    const ids = op.type === "ok" && isStrings(op.complete?.ids) ? op.complete.ids : undefined
    payloads[op.type] += ps.length
    ps.forEach((p, i) => sent.set(p, { op, id: ids?.[i] }))
    if (ids !== undefined && ids.length !== ps.length) {
      violations.push({ kind: "lost", explanation: `${describeOp(op)}: sent ${ps.length} jobs but was acknowledged with ${ids.length} ids` })
    }
  }

  const workerLines: Record<string, number> = {}
  const linesById = new Map<string, WorkerEntry[]>()
  for (const w of lines) {
    workerLines[w.event] = (workerLines[w.event] ?? 0) + 1
    let l = linesById.get(w.id)
    if (l === undefined) linesById.set(w.id, (l = []))
    l.push(w)
  }

  const eventCounts: Record<string, number> = {}
  const eventsById = new Map<string, Map<string, JobEventEntry>>()
  for (const e of events) {
    let m = eventsById.get(e.id)
    if (m === undefined) eventsById.set(e.id, (m = new Map()))
    const k = `${e.state}@${e.revision}`
    if (m.has(k)) continue
    m.set(k, e)
    eventCounts[e.state] = (eventCounts[e.state] ?? 0) + 1
  }

  // 2 (needs no final state): two accepted acks for one job.
  for (const [id, l] of linesById) {
    const acked = l.filter((w) => w.event === "acked")
    if (acked.length > 1) {
      violations.push({ kind: "double-ack", id, explanation: `job ${id} was acknowledged complete ${acked.length} times:\n  ${acked.map(describeLine).join("\n  ")}` })
    }
  }
  // Event stream (needs no final state): completed at two revisions; leased after completion.
  for (const [id, m] of eventsById) {
    const all = [...m.values()].sort((a, b) => a.revision - b.revision)
    const completed = all.filter((e) => e.state === "completed")
    if (completed.length > 1) {
      violations.push({ kind: "completed-twice", id, explanation: `job ${id} completed at revisions ${completed.map((e) => e.revision).join(", ")} (event stream)` })
    }
    const first = completed[0]
    if (first !== undefined) {
      const later = all.filter((e) => e.state === "leased" && e.revision > first.revision)
      if (later.length > 0) {
        violations.push({
          kind: "leased-after-completed",
          id,
          explanation: `job ${id} completed at revision ${first.revision} and was leased again at ${later.map((e) => `${e.revision} (attempt ${e.attempts})`).join(", ")} (event stream)`
        })
      }
    }
  }

  const final = finalState(ops)
  const finalByState: Record<string, number> = {}
  let unknownApplied = 0
  let unknownNotApplied = 0
  let leaseChecked = 0
  const stragglers: FinalJob[] = []
  let notCompleted = 0
  if (final !== undefined) {
    const byId = new Map<string, FinalJob>()
    const byP = new Map<string, FinalJob[]>()
    for (const j of final) {
      finalByState[j.state] = (finalByState[j.state] ?? 0) + 1
      byId.set(j.id, j)
      if (j.p !== null) {
        let l = byP.get(j.p)
        if (l === undefined) byP.set(j.p, (l = []))
        l.push(j)
      }
    }
    // 1. Acknowledged enqueues exist, with their payload; nothing doubled or invented.
    for (const [p, s] of sent) {
      if (s.op.type === "ok") {
        const j = s.id === undefined ? undefined : byId.get(s.id)
        if (j === undefined) {
          const elsewhere = byP.get(p)
          violations.push({
            kind: "lost",
            ...(s.id === undefined ? {} : { id: s.id }),
            explanation: `lost: payload ${p} was acknowledged as job ${s.id ?? "?"} by ${describeOp(s.op)}, and job ${s.id ?? "?"} is not in the final state${
              elsewhere === undefined ? "" : ` (payload ${p} is in job ${elsewhere.map((x) => x.id).join(", ")})`
            }`
          })
        } else if (j.p !== p) {
          violations.push({ kind: "lost", id: j.id, explanation: `lost: payload ${p} was acknowledged as job ${j.id} by ${describeOp(s.op)}, but job ${j.id} holds payload ${j.p ?? "none"}` })
        }
      } else if (s.op.type === "info") {
        if (byP.has(p)) unknownApplied++
        else unknownNotApplied++
      }
    }
    for (const [p, js] of byP) {
      if (js.length > 1) {
        const s = sent.get(p)
        violations.push({
          kind: "duplicate",
          id: js[0]!.id,
          explanation: `payload ${p} exists as ${js.length} jobs (${js.map((j) => j.id).join(", ")}): one enqueue made two jobs${s === undefined ? "" : `; sent by ${describeOp(s.op)}`}`
        })
      }
    }
    for (const j of final) {
      const s = j.p === null ? undefined : sent.get(j.p)
      if (s === undefined) violations.push({ kind: "phantom", id: j.id, explanation: `job ${j.id} (payload ${j.p ?? "none"}) exists but no enqueue sent that payload` })
      else if (s.op.type === "fail") violations.push({ kind: "phantom", id: j.id, explanation: `job ${j.id} exists but the enqueue that sent payload ${j.p} failed for sure: ${describeOp(s.op)}` })
    }
    // 2. Each acked job is completed, by the ack that worker got ok for.
    for (const [id, l] of linesById) {
      const acked = l.filter((w) => w.event === "acked")
      if (acked.length === 0) continue
      const j = byId.get(id)
      if (j === undefined || j.state !== "completed") {
        violations.push({
          kind: "ack-not-completed",
          id,
          explanation: `job ${id} was acknowledged complete (${acked.map(describeLine).join("; ")}) but is ${j === undefined ? "missing from" : `${j.state} in`} the final state`
        })
        continue
      }
      const r = leaseResult(j.result)
      if (r !== undefined && acked.length === 1 && acked[0]!.token !== r.token) {
        violations.push({
          kind: "ack-mismatch",
          id,
          explanation: `job ${id}: ${describeLine(acked[0]!)}, but the result stored by the ack that completed it is from token ${r.token} (attempt ${r.attempt})`
        })
      }
    }
    // 3. The accepted ack came from the job's last lease.
    for (const j of final) {
      if (j.state !== "completed") {
        notCompleted++
        if (stragglers.length < 50) stragglers.push(j)
        continue
      }
      const r = leaseResult(j.result)
      if (r === undefined) continue
      leaseChecked++
      const l = linesById.get(j.id) ?? []
      if (r.p !== j.p) {
        violations.push({ kind: "ack-mismatch", id: j.id, explanation: `job ${j.id} (payload ${j.p ?? "none"}) completed with the result of payload ${String(r.p)} (token ${r.token})` })
      }
      if (r.attempt !== j.attempts) {
        violations.push({
          kind: "stale-ack",
          id: j.id,
          explanation: `job ${j.id}: the accepted ack came from the lease of attempt ${r.attempt} (token ${r.token}), but the job records ${j.attempts} attempts: that lease was not its last${
            l.length === 0 ? "" : `\n  worker lines: ${l.map(describeLine).join("; ")}`
          }`
        })
      }
      const newer = l.filter((w) => w.token > r.token)
      if (newer.length > 0) {
        violations.push({
          kind: "stale-ack",
          id: j.id,
          explanation: `job ${j.id}: the accepted ack came from token ${r.token} (attempt ${r.attempt}), but a later lease of the job existed:\n  ${newer.map(describeLine).join("\n  ")}`
        })
      }
      const completedEvent = [...(eventsById.get(j.id)?.values() ?? [])].find((e) => e.state === "completed")
      if (completedEvent !== undefined && completedEvent.attempts !== r.attempt) {
        violations.push({
          kind: "stale-ack",
          id: j.id,
          explanation: `job ${j.id}: completed (revision ${completedEvent.revision}) with ${completedEvent.attempts} attempts, but the accepted ack came from the lease of attempt ${r.attempt} (token ${r.token})`
        })
      }
    }
    if (notCompleted > 0) {
      const states = Object.entries(finalByState)
        .filter(([s]) => s !== "completed")
        .map(([s, n]) => `${s} ${n}`)
        .join(", ")
      violations.push({
        kind: "not-completed",
        explanation: `liveness: ${notCompleted} of ${final.length} jobs not completed after the heal and the drain wait (${states}); first: ${stragglers
          .slice(0, 10)
          .map((j) => `${j.id} ${j.state} attempts ${j.attempts}${j.error === undefined ? "" : ` "${j.error}"`}`)
          .join("; ")}`
      })
    }
  }

  const safe = violations.every((v) => v.kind === "not-completed")
  const live = final === undefined ? undefined : notCompleted === 0
  return {
    valid: !safe || live === false ? false : final === undefined ? "unknown" : true,
    safe,
    live,
    finalComplete: final !== undefined,
    counts: {
      enqueueOps,
      payloads,
      unknownApplied,
      unknownNotApplied,
      workerLines,
      workerKills,
      workerExits,
      events: eventCounts,
      finalJobs: final?.length ?? 0,
      finalByState,
      leaseChecked
    },
    violations,
    stragglers
  }
}
