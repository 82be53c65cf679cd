/**
 * The job queue state machine: pure and deterministic, like `KvState`, and sharing its
 * revision counter. Every job transition is a committed command applied here in log order;
 * the only clock is the leader-stamped entry time, so every replica moves every job at the
 * same log position.
 *
 * Time-driven transitions (a scheduled or failed job becoming ready, a lease running out, a
 * finished job's retention ending) happen in `advanceTime`, which the Applier calls with each
 * entry's time. The JobWorker makes sure an entry arrives when one is due (`nextDue`).
 *
 * Indexes kept in memory and rebuilt on load: per queue a ready structure (priority, then the
 * order jobs became ready), a timer heap ordered by (due time, job seq), unique keys of live
 * jobs, state counts, and the job ids in enqueue order for paging. Per queue too, for
 * /metrics, the transitions applied since this object was made (`QueueTotals`): plain
 * increments in the transitions themselves, never persisted.
 */
import type { Backoff, FinishedState, JobEvent, JobSpec, JobState, LeasedJob, QueueStats } from "../../protocol/client.ts"
import type { ErrorCode } from "../../protocol/errors.ts"
import { invariant } from "../raft/invariant.ts"
import { MinHeap } from "./minHeap.ts"

/** A job timer: (due time, job seq, job id), ordered by due time then seq. Stale once the job moves on. */
type Timer = readonly [number, number, string]
const timerBefore = (x: Timer, y: Timer): boolean => x[0] < y[0] || (x[0] === y[0] && x[1] < y[1])

export interface JobRecord {
  readonly id: string
  /** Enqueue order; the id is its decimal form. */
  readonly seq: number
  readonly queue: string
  readonly payload: unknown
  readonly priority: number
  readonly state: JobState
  readonly attempts: number
  readonly maxAttempts: number
  readonly backoff?: Backoff
  readonly leaseMs: number
  readonly retainMs: number
  readonly runAt: number
  readonly createdAt: number
  readonly updatedAt: number
  readonly finishedAt?: number
  readonly uniqueKey?: string
  readonly result?: unknown
  readonly error?: string
  readonly progress?: unknown
  /** Fencing token of the current or last lease (0 before the first). */
  readonly token: number
  readonly workerId?: string
  readonly leaseUntil?: number
  /** Order in which ready jobs of one priority are handed out. */
  readonly readySeq: number
  /** When it last became ready (for the oldest-ready statistic). */
  readonly readyAt: number
}

export type JobCommand =
  | { readonly op: "jobs.enqueue"; readonly jobs: ReadonlyArray<JobSpec>; readonly batch: boolean }
  | { readonly op: "jobs.lease"; readonly queues: ReadonlyArray<string>; readonly max: number; readonly leaseMs?: number; readonly workerId: string }
  | { readonly op: "jobs.ack"; readonly id: string; readonly fence: number; readonly result?: unknown }
  /** Many acks in one entry (a busy worker's acks, coalesced); each succeeds or fails alone. */
  | { readonly op: "jobs.ackBatch"; readonly acks: ReadonlyArray<{ readonly id: string; readonly fence: number; readonly result?: unknown }> }
  | { readonly op: "jobs.fail"; readonly id: string; readonly fence: number; readonly error: string; readonly retryable: boolean }
  | { readonly op: "jobs.extend"; readonly id: string; readonly fence: number; readonly leaseMs?: number; readonly progress?: unknown }
  /** A worker gives a job back unstarted or interrupted (shutting down): ready again, the attempt not counted. */
  | { readonly op: "jobs.release"; readonly id: string; readonly fence: number }
  | { readonly op: "jobs.cancel"; readonly id: string }
  | { readonly op: "jobs.retry"; readonly id: string }
  | { readonly op: "jobs.purge"; readonly queue: string; readonly states: ReadonlyArray<FinishedState>; readonly olderThanMs: number }
  /** Carries only its leader time: lets due timers fire when no other entry would. */
  | { readonly op: "jobs.tick" }

export type JobResult =
  | { readonly ok: true; readonly revision: number; readonly [field: string]: unknown }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly detail?: Readonly<Record<string, unknown>> }

/** What applied job commands changed, for the Applier to persist and publish. */
export interface JobChanges {
  /** A record to write, or null to delete it. */
  readonly jobs: Map<string, JobRecord | null>
  readonly jobEvents: JobEvent[]
}

/** The revision counter shared with the key-value store (one revision for the whole state). */
export interface Revision {
  revision: number
}

/** Counters that must survive restarts (ids are never reused, even after purges). */
export interface JobCounters {
  readonly nextSeq: number
  readonly nextReadySeq: number
  readonly nextToken: number
}

export const defaultMaxAttempts = 3
const defaultLeaseMs = 30_000
const defaultRetainMs = 7 * 24 * 60 * 60 * 1000
const minuteMs = 60_000

const isLive = (s: JobState): boolean => s === "scheduled" || s === "ready" || s === "leased" || s === "failed"
const isFinished = (s: JobState): s is FinishedState => s === "completed" || s === "dead" || s === "cancelled"

type Counts = Record<JobState, number>
const zeroCounts = (): Counts => ({ scheduled: 0, ready: 0, leased: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 })

/** A 32-bit FNV-1a hash as a fraction in [0, 1): jitter every replica computes the same. */
const unitHash = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) / 2 ** 32
}

/** Wait before retry number `attempts` (1 after the first failure), in ms. */
export const backoffDelay = (b: Backoff | undefined, attempts: number, id: string): number => {
  if (b === undefined) return 0
  const raw = b.type === "fixed" ? b.delay : b.delay * 2 ** Math.min(attempts - 1, 40)
  const capped = b.max === undefined ? raw : Math.min(raw, b.max)
  const jitter = b.jitter ?? 0
  return Math.round(capped * (1 - jitter * unitHash(`${id}:${attempts}`)))
}

/** Ready jobs of one queue: FIFO lists by priority, highest priority first, stale entries skipped. */
class ReadyQueue {
  private readonly byPriority = new Map<number, { seqs: Array<[number, string]>; head: number }>()
  /** Priorities present, highest first. */
  private priorities: number[] = []

  push(priority: number, readySeq: number, id: string): void {
    let list = this.byPriority.get(priority)
    if (list === undefined) {
      list = { seqs: [], head: 0 }
      this.byPriority.set(priority, list)
      this.priorities.push(priority)
      this.priorities.sort((a, b) => b - a)
    }
    list.seqs.push([readySeq, id])
  }

  /** The next ready job by priority then ready order, removing it; `isCurrent` filters stale entries. */
  pop(isCurrent: (id: string, readySeq: number) => boolean): string | undefined {
    for (const p of this.priorities) {
      const list = this.byPriority.get(p)!
      while (list.head < list.seqs.length) {
        const [seq, id] = list.seqs[list.head++]!
        if (isCurrent(id, seq)) {
          this.compact(p, list)
          return id
        }
      }
      this.compact(p, list)
    }
    return undefined
  }

  /** The earliest `readyAt` among current heads (each priority's head became ready first). */
  oldestHead(isCurrent: (id: string, readySeq: number) => boolean, readyAt: (id: string) => number): number | undefined {
    let oldest: number | undefined
    for (const p of this.priorities) {
      const list = this.byPriority.get(p)!
      while (list.head < list.seqs.length && !isCurrent(list.seqs[list.head]![1], list.seqs[list.head]![0])) list.head++
      const head = list.seqs[list.head]
      if (head !== undefined) oldest = Math.min(oldest ?? Infinity, readyAt(head[1]))
    }
    return oldest
  }

  private compact(p: number, list: { seqs: Array<[number, string]>; head: number }): void {
    if (list.head === list.seqs.length) {
      this.byPriority.delete(p)
      this.priorities = this.priorities.filter((x) => x !== p)
    } else if (list.head > 1024 && list.head * 2 > list.seqs.length) {
      list.seqs = list.seqs.slice(list.head)
      list.head = 0
    }
  }
}

/** Per-second buckets of the last minute: new jobs, completions and failed attempts. */
class MinuteCounter {
  private readonly buckets = new Map<number, number>()

  add(time: number): void {
    const second = Math.floor(time / 1000)
    this.buckets.set(second, (this.buckets.get(second) ?? 0) + 1)
    if (this.buckets.size > 120) this.prune(time)
  }

  /** Events in (time - 60 s, time]. */
  count(time: number): number {
    this.prune(time)
    let n = 0
    for (const v of this.buckets.values()) n += v
    return n
  }

  private prune(time: number): void {
    const first = Math.floor((time - minuteMs) / 1000) + 1
    for (const s of this.buckets.keys()) if (s < first) this.buckets.delete(s)
  }
}

/**
 * Seconds from a job becoming ready (its enqueue, or its run-at time when delayed) to its first
 * lease: 5 ms to an hour.
 */
export const startDelayBuckets: ReadonlyArray<number> = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]

/**
 * Transitions of one queue applied by this object (metrics counters): every replica applies
 * the same ones, so they count the cluster's transitions, as far as this node applied them.
 * Not persisted: a restart (or an installed snapshot, which replaces the object) starts at 0.
 */
export class QueueTotals {
  /** New jobs (a unique key's existing job is not counted again). */
  enqueued = 0
  /** Leases handed out, every attempt. */
  leased = 0
  completed = 0
  /** Failed attempts: reported by a worker or a lease that ran out, retried or not. */
  failed = 0
  /** Jobs that ran out of attempts or failed without retry. */
  dead = 0
  /** Leases that ran out before their worker acked, failed or extended. */
  leaseExpired = 0
  /** Enqueue-to-start (`startDelayBuckets`), observed at each job's first lease: per bucket, not cumulative; the last is +Inf. */
  readonly startDelay = new Float64Array(startDelayBuckets.length + 1)
  startDelaySum = 0
  startDelayCount = 0

  observeStartDelay(seconds: number): void {
    let i = 0
    while (i < startDelayBuckets.length && seconds > startDelayBuckets[i]!) i++
    this.startDelay[i]!++
    this.startDelaySum += seconds
    this.startDelayCount++
  }
}

/** One queue's jobs by state now, and its transitions so far (what /metrics shows). */
export interface QueueMetrics {
  readonly queue: string
  readonly counts: Readonly<Record<JobState, number>>
  readonly totals: QueueTotals
}

interface QueueIndex {
  readonly ready: ReadyQueue
  readonly counts: Counts
  readonly totals: QueueTotals
  /** Job seqs in enqueue order; entries of deleted jobs are skipped and compacted lazily. */
  seqs: number[]
  deletedSeqs: number
  readonly enqueued: MinuteCounter
  readonly completed: MinuteCounter
  readonly failed: MinuteCounter
}

export interface ListPage {
  readonly jobs: ReadonlyArray<JobRecord>
  /** The seq to continue after, when there may be more. */
  readonly next?: number
}

export class JobQueue {
  readonly jobs = new Map<string, JobRecord>()
  private readonly queues = new Map<string, QueueIndex>()
  private readonly timers = new MinHeap<Timer>(timerBefore)
  /** `${queue}\0${uniqueKey}` of live jobs -> job id. */
  private readonly unique = new Map<string, string>()
  private nextSeq = 1
  private nextReadySeq = 1
  /** Fencing tokens grow across all jobs, so no two leases ever share one. */
  private nextToken = 1
  /** Leader time of the last applied entry. */
  time = 0

  constructor(private readonly rev: Revision) {}

  counters(): JobCounters {
    return { nextSeq: this.nextSeq, nextReadySeq: this.nextReadySeq, nextToken: this.nextToken }
  }

  /** Rebuilds the indexes from stored records (any order) and counters. */
  restore(records: Iterable<JobRecord>, counters: JobCounters | undefined, time: number): void {
    this.time = time
    const sorted = [...records].sort((a, b) => a.seq - b.seq)
    for (const j of sorted) {
      this.jobs.set(j.id, j)
      this.index(j)
      this.nextSeq = Math.max(this.nextSeq, j.seq + 1)
      this.nextReadySeq = Math.max(this.nextReadySeq, j.readySeq + 1)
      this.nextToken = Math.max(this.nextToken, j.token + 1)
    }
    // Ready order across a restart must match the replicas that never restarted: by readySeq.
    for (const j of [...sorted].sort((a, b) => a.readySeq - b.readySeq)) if (j.state === "ready") this.queue(j.queue).ready.push(j.priority, j.readySeq, j.id)
    if (counters !== undefined) {
      this.nextSeq = Math.max(this.nextSeq, counters.nextSeq)
      this.nextReadySeq = Math.max(this.nextReadySeq, counters.nextReadySeq)
      this.nextToken = Math.max(this.nextToken, counters.nextToken)
    }
  }

  get(id: string): JobRecord | undefined {
    return this.jobs.get(id)
  }

  /** Ready jobs in any of `queues` (the JobWorker asks before proposing a lease). */
  readyCount(queues: ReadonlyArray<string>): number {
    let n = 0
    for (const q of queues) n += this.queues.get(q)?.counts.ready ?? 0
    return n
  }

  /** The earliest leader time at which a timer is due, if any (stale timers included: harmless). */
  nextDue(): number | undefined {
    return this.timers.peek()?.[0]
  }

  apply(cmd: JobCommand, changes: JobChanges): JobResult {
    switch (cmd.op) {
      case "jobs.tick":
        return { ok: true, revision: this.rev.revision }
      case "jobs.enqueue":
        return this.enqueue(cmd.jobs, cmd.batch, changes)
      case "jobs.lease":
        return this.lease(cmd.queues, cmd.max, cmd.leaseMs, cmd.workerId, changes)
      case "jobs.ack":
        return this.ack(cmd.id, cmd.fence, cmd.result, changes)
      case "jobs.ackBatch": {
        const results = cmd.acks.map((a) => this.ack(a.id, a.fence, a.result, changes))
        return { ok: true, revision: this.rev.revision, results }
      }
      case "jobs.fail":
        return this.withLease(cmd.id, cmd.fence, (j) => {
          const revision = this.bump()
          return this.failAttempt(j, cmd.error, cmd.retryable, revision, changes)
        })
      case "jobs.extend":
        return this.withLease(cmd.id, cmd.fence, (j) => {
          const revision = this.bump()
          const leaseUntil = this.time + (cmd.leaseMs ?? j.leaseMs)
          const next: JobRecord = { ...j, leaseUntil, updatedAt: this.time, ...(cmd.progress === undefined ? {} : { progress: cmd.progress }) }
          this.save(next, changes)
          this.timers.push([leaseUntil, j.seq, j.id])
          return { ok: true, revision, leaseUntil }
        })
      case "jobs.release":
        return this.withLease(cmd.id, cmd.fence, (j) => {
          const revision = this.bump()
          const { workerId: _w, leaseUntil: _l, ...rest } = j
          this.makeReady({ ...rest, attempts: j.attempts - 1 }, revision, changes)
          return { ok: true, revision }
        })
      case "jobs.cancel":
        return this.cancel(cmd.id, changes)
      case "jobs.retry":
        return this.retry(cmd.id, changes)
      case "jobs.purge":
        return this.purge(cmd.queue, cmd.states, cmd.olderThanMs, changes)
    }
  }

  /** Fires every timer due at `time`, in (due, seq) order. */
  advanceTime(time: number, changes: JobChanges): void {
    if (time <= this.time) return
    this.time = time
    for (;;) {
      const top = this.timers.peek()
      if (top === undefined || top[0] > time) return
      this.timers.pop()
      const [due, , id] = top
      const j = this.jobs.get(id)
      if (j === undefined) continue
      if ((j.state === "scheduled" || j.state === "failed") && j.runAt === due) this.makeReady(j, this.bump(), changes)
      else if (j.state === "leased" && j.leaseUntil === due) {
        this.queue(j.queue).totals.leaseExpired++
        this.failAttempt(j, `lease expired (worker ${j.workerId ?? "?"} did not ack, fail or extend in time)`, true, this.bump(), changes)
      } else if (isFinished(j.state) && j.finishedAt !== undefined && j.finishedAt + j.retainMs === due) this.remove(j, changes)
    }
  }

  stats(queue: string | undefined): QueueStats[] {
    const names = queue === undefined ? [...this.queues.keys()].sort() : [queue]
    return names.map((name) => {
      const q = this.queues.get(name)
      if (q === undefined) return { queue: name, ...zeroCounts(), oldestReadyMs: 0, enqueuedLastMinute: 0, completedLastMinute: 0, failedLastMinute: 0 }
      const oldest = q.ready.oldestHead((id, seq) => this.isReady(id, seq), (id) => this.jobs.get(id)!.readyAt)
      return {
        queue: name,
        ...q.counts,
        oldestReadyMs: oldest === undefined ? 0 : Math.max(0, this.time - oldest),
        enqueuedLastMinute: q.enqueued.count(this.time),
        completedLastMinute: q.completed.count(this.time),
        failedLastMinute: q.failed.count(this.time)
      }
    })
  }

  /** Every queue's counts and transition totals, read (not copied) for a /metrics scrape. */
  metrics(): QueueMetrics[] {
    const out: QueueMetrics[] = []
    for (const [queue, q] of this.queues) out.push({ queue, counts: q.counts, totals: q.totals })
    return out
  }

  /** One page of `queue`'s jobs in enqueue order, optionally in one state, after seq `after`. */
  list(queue: string, state: JobState | undefined, after: number, limit: number): ListPage {
    const q = this.queues.get(queue)
    if (q === undefined) return { jobs: [] }
    let lo = 0
    let hi = q.seqs.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (q.seqs[mid]! <= after) lo = mid + 1
      else hi = mid
    }
    const jobs: JobRecord[] = []
    for (let i = lo; i < q.seqs.length; i++) {
      const j = this.jobs.get(String(q.seqs[i]))
      if (j === undefined || (state !== undefined && j.state !== state)) continue
      if (jobs.length === limit) return { jobs, next: jobs[jobs.length - 1]!.seq }
      jobs.push(j)
    }
    return { jobs }
  }

  // -------------------------------------------------------------------------------------------

  private bump(): number {
    return ++this.rev.revision
  }

  private queue(name: string): QueueIndex {
    let q = this.queues.get(name)
    if (q === undefined) {
      q = { ready: new ReadyQueue(), counts: zeroCounts(), totals: new QueueTotals(), seqs: [], deletedSeqs: 0, enqueued: new MinuteCounter(), completed: new MinuteCounter(), failed: new MinuteCounter() }
      this.queues.set(name, q)
    }
    return q
  }

  private isReady(id: string, readySeq: number): boolean {
    const j = this.jobs.get(id)
    return j !== undefined && j.state === "ready" && j.readySeq === readySeq
  }

  /** Adds a restored or new record to the indexes (not the ready queue: callers order that). */
  private index(j: JobRecord): void {
    const q = this.queue(j.queue)
    q.counts[j.state]++
    q.seqs.push(j.seq)
    if (j.uniqueKey !== undefined && isLive(j.state)) this.unique.set(`${j.queue}\u0000${j.uniqueKey}`, j.id)
    this.armTimer(j)
  }

  private armTimer(j: JobRecord): void {
    if (j.state === "scheduled" || j.state === "failed") this.timers.push([j.runAt, j.seq, j.id])
    else if (j.state === "leased" && j.leaseUntil !== undefined) this.timers.push([j.leaseUntil, j.seq, j.id])
    else if (isFinished(j.state) && j.finishedAt !== undefined) this.timers.push([j.finishedAt + j.retainMs, j.seq, j.id])
  }

  /** Stores `next` over the current record of its id, keeping counts and the unique index right. */
  private save(next: JobRecord, changes: JobChanges): void {
    const prev = this.jobs.get(next.id)
    invariant(prev !== undefined, "save replaces an existing job")
    if (prev.state !== next.state) {
      const counts = this.queue(next.queue).counts
      counts[prev.state]--
      counts[next.state]++
      if (next.uniqueKey !== undefined && isLive(prev.state) && !isLive(next.state)) this.unique.delete(`${next.queue}\u0000${next.uniqueKey}`)
    }
    this.jobs.set(next.id, next)
    changes.jobs.set(next.id, next)
  }

  private event(j: JobRecord, revision: number, changes: JobChanges): void {
    changes.jobEvents.push({
      id: j.id,
      queue: j.queue,
      state: j.state,
      attempts: j.attempts,
      revision,
      time: this.time,
      ...(j.state === "completed" && j.result !== undefined ? { result: j.result } : {}),
      ...((j.state === "failed" || j.state === "dead") && j.error !== undefined ? { error: j.error } : {})
    })
  }

  private makeReady(j: JobRecord, revision: number, changes: JobChanges): JobRecord {
    const readySeq = this.nextReadySeq++
    const next: JobRecord = { ...j, state: "ready", readySeq, readyAt: this.time, updatedAt: this.time }
    this.save(next, changes)
    this.queue(j.queue).ready.push(j.priority, readySeq, j.id)
    this.event(next, revision, changes)
    return next
  }

  private finish(j: JobRecord, state: FinishedState, extra: { result?: unknown; error?: string }, revision: number, changes: JobChanges): void {
    const { workerId: _w, leaseUntil: _l, ...rest } = j
    const next: JobRecord = {
      ...rest,
      state,
      updatedAt: this.time,
      finishedAt: this.time,
      ...(extra.result === undefined ? {} : { result: extra.result }),
      ...(extra.error === undefined ? {} : { error: extra.error })
    }
    this.save(next, changes)
    this.armTimer(next)
    this.event(next, revision, changes)
  }

  private failAttempt(j: JobRecord, error: string, retryable: boolean, revision: number, changes: JobChanges): JobResult {
    const q = this.queue(j.queue)
    q.failed.add(this.time)
    q.totals.failed++
    if (!retryable || j.attempts >= j.maxAttempts) {
      q.totals.dead++
      this.finish(j, "dead", { error }, revision, changes)
      return { ok: true, revision, willRetry: false }
    }
    const runAt = this.time + backoffDelay(j.backoff, j.attempts, j.id)
    const { workerId: _w, leaseUntil: _l, ...rest } = j
    const failed: JobRecord = { ...rest, state: "failed", error, runAt, updatedAt: this.time }
    this.save(failed, changes)
    this.event(failed, revision, changes)
    // A retry due now is ready at once (same revision), not one entry later.
    if (runAt <= this.time) this.makeReady(failed, revision, changes)
    else this.timers.push([runAt, j.seq, j.id])
    return { ok: true, revision, willRetry: true, runAt }
  }

  private enqueue(specs: ReadonlyArray<JobSpec>, batch: boolean, changes: JobChanges): JobResult {
    // Only a new job makes a new revision: returning existing ones changes nothing.
    const revision = specs.some((spec) => spec.uniqueKey === undefined || !this.unique.has(`${spec.queue}\u0000${spec.uniqueKey}`)) ? this.bump() : this.rev.revision
    const ids: string[] = []
    const existing: boolean[] = []
    for (const spec of specs) {
      const uniqueId = spec.uniqueKey === undefined ? undefined : this.unique.get(`${spec.queue}\u0000${spec.uniqueKey}`)
      if (uniqueId !== undefined) {
        ids.push(uniqueId)
        existing.push(true)
        continue
      }
      const seq = this.nextSeq++
      const runAt = spec.runAt ?? this.time + (spec.delay ?? 0)
      const job: JobRecord = {
        id: String(seq),
        seq,
        queue: spec.queue,
        payload: spec.payload,
        priority: spec.priority ?? 0,
        state: runAt > this.time ? "scheduled" : "ready",
        attempts: 0,
        maxAttempts: spec.maxAttempts ?? defaultMaxAttempts,
        ...(spec.backoff === undefined ? {} : { backoff: spec.backoff }),
        leaseMs: spec.leaseMs ?? defaultLeaseMs,
        retainMs: spec.retainMs ?? defaultRetainMs,
        runAt,
        createdAt: this.time,
        updatedAt: this.time,
        ...(spec.uniqueKey === undefined ? {} : { uniqueKey: spec.uniqueKey }),
        token: 0,
        readySeq: 0,
        readyAt: 0
      }
      this.jobs.set(job.id, job)
      changes.jobs.set(job.id, job)
      this.index(job)
      const q = this.queue(job.queue)
      q.totals.enqueued++
      q.enqueued.add(this.time)
      if (job.state === "ready") {
        // `index` counted it as ready; makeReady re-saves it with its ready order.
        const readySeq = this.nextReadySeq++
        const ready: JobRecord = { ...job, readySeq, readyAt: this.time }
        this.jobs.set(job.id, ready)
        changes.jobs.set(job.id, ready)
        q.ready.push(ready.priority, readySeq, ready.id)
        this.event(ready, revision, changes)
      } else this.event(job, revision, changes)
      ids.push(job.id)
      existing.push(false)
    }
    return batch ? { ok: true, revision, ids, existing } : { ok: true, revision, id: ids[0], existing: existing[0] }
  }

  private lease(queues: ReadonlyArray<string>, max: number, leaseMs: number | undefined, workerId: string, changes: JobChanges): JobResult {
    if (this.readyCount(queues) === 0) return { ok: true, revision: this.rev.revision, jobs: [] }
    const revision = this.bump()
    const leased: LeasedJob[] = []
    for (const name of queues) {
      const q = this.queues.get(name)
      if (q === undefined) continue
      while (leased.length < max) {
        const id = q.ready.pop((id, seq) => this.isReady(id, seq))
        if (id === undefined) break
        const j = this.jobs.get(id)!
        const token = this.nextToken++
        const leaseUntil = this.time + (leaseMs ?? j.leaseMs)
        const next: JobRecord = { ...j, state: "leased", attempts: j.attempts + 1, token, workerId, leaseUntil, updatedAt: this.time }
        this.save(next, changes)
        q.totals.leased++
        // From when it could first run: its enqueue, or its run-at time when delayed (not when
        // an entry's advancing time noticed that, which `readyAt` records).
        if (j.attempts === 0) q.totals.observeStartDelay(Math.max(0, this.time - Math.max(j.createdAt, j.runAt)) / 1000)
        this.timers.push([leaseUntil, j.seq, j.id])
        this.event(next, revision, changes)
        leased.push({
          id,
          queue: j.queue,
          payload: j.payload,
          attempt: next.attempts,
          token,
          leaseUntil,
          ...(j.progress === undefined ? {} : { progress: j.progress })
        })
      }
      if (leased.length === max) break
    }
    return { ok: true, revision, jobs: leased }
  }

  private ack(id: string, fence: number, result: unknown, changes: JobChanges): JobResult {
    return this.withLease(id, fence, (j) => {
      const revision = this.bump()
      const q = this.queue(j.queue)
      q.completed.add(this.time)
      q.totals.completed++
      this.finish(j, "completed", { result }, revision, changes)
      return { ok: true, revision }
    })
  }

  private withLease(id: string, fence: number, run: (j: JobRecord) => JobResult): JobResult {
    const j = this.jobs.get(id)
    if (j === undefined) return { ok: false, code: "not_found", message: `job ${id} does not exist` }
    if (j.state !== "leased" || j.token !== fence) {
      return {
        ok: false,
        code: "lease_lost",
        message:
          j.state === "leased"
            ? `job ${id} was leased again (token ${j.token}); token ${fence} no longer holds it`
            : `job ${id} is ${j.state}; the lease with token ${fence} no longer holds it`,
        detail: { state: j.state }
      }
    }
    return run(j)
  }

  private cancel(id: string, changes: JobChanges): JobResult {
    const j = this.jobs.get(id)
    if (j === undefined) return { ok: false, code: "not_found", message: `job ${id} does not exist` }
    if (isFinished(j.state)) return { ok: false, code: "conflict", message: `job ${id} is already ${j.state}`, detail: { state: j.state } }
    const revision = this.bump()
    this.finish(j, "cancelled", {}, revision, changes)
    return { ok: true, revision }
  }

  private retry(id: string, changes: JobChanges): JobResult {
    const j = this.jobs.get(id)
    if (j === undefined) return { ok: false, code: "not_found", message: `job ${id} does not exist` }
    if (j.state !== "dead" && j.state !== "failed" && j.state !== "cancelled") {
      return { ok: false, code: "conflict", message: `job ${id} is ${j.state}; only dead, failed or cancelled jobs can be retried`, detail: { state: j.state } }
    }
    if (j.uniqueKey !== undefined && j.state !== "failed") {
      const holder = this.unique.get(`${j.queue}\u0000${j.uniqueKey}`)
      if (holder !== undefined) return { ok: false, code: "conflict", message: `job ${holder} now holds unique key "${j.uniqueKey}"`, detail: { id: holder } }
      this.unique.set(`${j.queue}\u0000${j.uniqueKey}`, j.id)
    }
    const revision = this.bump()
    // A dead or cancelled job gets its attempts back; a failed one just skips its wait.
    const { finishedAt: _f, ...rest } = j
    const revived: JobRecord = { ...rest, attempts: j.state === "failed" ? j.attempts : 0, runAt: this.time }
    this.jobs.set(j.id, revived)
    this.makeReady(revived, revision, changes)
    return { ok: true, revision }
  }

  private purge(queue: string, states: ReadonlyArray<FinishedState>, olderThanMs: number, changes: JobChanges): JobResult {
    const q = this.queues.get(queue)
    if (q === undefined) return { ok: true, revision: this.rev.revision, purged: 0 }
    const doomed: JobRecord[] = []
    for (const seq of q.seqs) {
      const j = this.jobs.get(String(seq))
      if (j !== undefined && isFinished(j.state) && states.includes(j.state) && (j.finishedAt ?? 0) + olderThanMs <= this.time) doomed.push(j)
    }
    if (doomed.length === 0) return { ok: true, revision: this.rev.revision, purged: 0 }
    const revision = this.bump()
    for (const j of doomed) this.remove(j, changes)
    return { ok: true, revision, purged: doomed.length }
  }

  private remove(j: JobRecord, changes: JobChanges): void {
    const q = this.queue(j.queue)
    q.counts[j.state]--
    this.jobs.delete(j.id)
    changes.jobs.set(j.id, null)
    if (++q.deletedSeqs > 1024 && q.deletedSeqs * 2 > q.seqs.length) {
      q.seqs = q.seqs.filter((s) => this.jobs.has(String(s)))
      q.deletedSeqs = 0
    }
  }
}

export const newJobChanges = (): JobChanges => ({ jobs: new Map(), jobEvents: [] })
