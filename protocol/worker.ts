/**
 * The TypeScript worker runtime: leases jobs from Archio queues and runs a handler on each,
 * up to `concurrency` at a time.
 *
 * - Leases in batches sized to its free capacity, long-polling (`waitMs`) when nothing is ready,
 *   so an idle worker costs one parked request, not a poll loop.
 * - Extends the lease of a running job every third of its length; if the lease is lost (it
 *   expired, or the job was cancelled) the handler's `signal` aborts and no ack is sent.
 * - A handler that returns acks the job with its result; one that throws fails it (retryable,
 *   unless it throws `NonRetryableError`).
 * - `stop()` stops leasing, lets running jobs finish for `graceMs`, then aborts the rest and
 *   releases them (back to ready, the attempt not counted), so a deploy loses no work.
 *
 * Jobs run at least once: a worker that dies mid-job has its job re-leased when the lease ends.
 * Fencing tokens make each job *complete* at most once.
 */
import type { LeasedJob } from "./client.ts"
import { ArchioError } from "./errors.ts"

/** The calls a worker makes (the typed client's `jobs` methods). */
export interface WorkerApi {
  lease(req: { queues: ReadonlyArray<string>; max: number; leaseMs: number; workerId: string; waitMs: number }): Promise<ReadonlyArray<LeasedJob>>
  ack(id: string, token: number, result?: unknown): Promise<unknown>
  fail(id: string, token: number, error: string, retryable: boolean): Promise<unknown>
  extend(id: string, token: number, leaseMs: number, progress?: unknown): Promise<unknown>
  release(id: string, token: number): Promise<unknown>
}

export interface JobContext {
  readonly job: LeasedJob
  /** Aborted when the lease is lost or the worker is stopping past its grace period. */
  readonly signal: AbortSignal
  /** Reports progress (stored on the job) and extends the lease now. */
  progress(progress: unknown): Promise<void>
}

export type Handler = (payload: unknown, ctx: JobContext) => unknown

/** Thrown by a handler to fail the job for good (no retry, whatever attempts remain). */
export class NonRetryableError extends Error {
  override readonly name = "NonRetryableError"
}

export interface WorkerOptions {
  readonly queues: ReadonlyArray<string>
  readonly handler: Handler
  readonly workerId: string
  readonly concurrency?: number
  /** Lease length asked for, ms (default 30 s). */
  readonly leaseMs?: number
  /** How long one lease request may wait for a job, ms (default 5 s). */
  readonly waitMs?: number
  /** How long `stop()` lets running jobs finish, ms (default 10 s). */
  readonly graceMs?: number
  /** Where the runtime reports what it did (default: nowhere). */
  readonly log?: (event: WorkerEvent) => void
}

export type WorkerEvent =
  | { readonly type: "acked" | "released" | "lost"; readonly id: string; readonly token: number }
  | { readonly type: "failed"; readonly id: string; readonly token: number; readonly error: string; readonly retryable: boolean }
  | { readonly type: "error"; readonly message: string }

export interface WorkerCounts {
  acked: number
  failed: number
  released: number
  lost: number
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

export class Worker {
  readonly counts: WorkerCounts = { acked: 0, failed: 0, released: 0, lost: 0 }
  private readonly running = new Map<string, { readonly job: LeasedJob; readonly abort: AbortController; readonly done: Promise<void> }>()
  private stopping = false
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined
  private readonly concurrency: number
  private readonly leaseMs: number
  private readonly waitMs: number
  private readonly graceMs: number

  constructor(
    private readonly api: WorkerApi,
    private readonly options: WorkerOptions
  ) {
    this.concurrency = options.concurrency ?? 1
    this.leaseMs = options.leaseMs ?? 30_000
    this.waitMs = options.waitMs ?? 5_000
    this.graceMs = options.graceMs ?? 10_000
  }

  start(): void {
    this.loop ??= this.leaseLoop()
  }

  /** Stops leasing, waits for running jobs up to the grace period, releases the rest. */
  async stop(): Promise<void> {
    this.stopping = true
    this.wake?.()
    await this.loop
    const all = Promise.all([...this.running.values()].map((r) => r.done))
    let timer: ReturnType<typeof setTimeout> | undefined
    const grace = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), this.graceMs)))
    const outcome = await Promise.race([all.then(() => "done" as const), grace])
    clearTimeout(timer)
    if (outcome === "late") {
      // Abort the handlers and give their jobs back now, without waiting for handlers that
      // ignore the signal: whatever they return later is not sent.
      const late = [...this.running.values()]
      this.running.clear()
      for (const r of late) r.abort.abort(new Error("worker stopping"))
      await Promise.all(late.map((r) => this.giveBack(r.job)))
    }
  }

  private log(event: WorkerEvent): void {
    this.options.log?.(event)
  }

  private async leaseLoop(): Promise<void> {
    let backoff = 50
    while (!this.stopping) {
      const free = this.concurrency - this.running.size
      if (free === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve))
        this.wake = undefined
        continue
      }
      let jobs: ReadonlyArray<LeasedJob>
      try {
        jobs = await this.api.lease({ queues: this.options.queues, max: free, leaseMs: this.leaseMs, workerId: this.options.workerId, waitMs: this.waitMs })
        backoff = 50
      } catch (e) {
        this.log({ type: "error", message: `lease failed: ${messageOf(e)}` })
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, 2_000)
        continue
      }
      for (const job of jobs) {
        // Leased while we were asked to stop: hand it straight back.
        if (this.stopping) void this.giveBack(job)
        else this.run(job)
      }
    }
  }

  private async giveBack(job: LeasedJob): Promise<void> {
    try {
      await this.api.release(job.id, job.token)
      this.counts.released++
      this.log({ type: "released", id: job.id, token: job.token })
    } catch (e) {
      // The lease will run out and the job return by itself.
      this.log({ type: "error", message: `release of ${job.id} failed: ${messageOf(e)}` })
    }
  }

  private run(job: LeasedJob): void {
    const abort = new AbortController()
    let lost = false
    const keepLease = async (progress?: unknown): Promise<void> => {
      try {
        await this.api.extend(job.id, job.token, this.leaseMs, progress)
      } catch (e) {
        if (e instanceof ArchioError && (e.code === "lease_lost" || e.code === "not_found")) {
          lost = true
          abort.abort(new Error(`lease lost: ${e.message}`))
        } else this.log({ type: "error", message: `extend of ${job.id} failed: ${messageOf(e)}` })
      }
    }
    const extender = setInterval(() => void keepLease(), Math.max(50, Math.floor(this.leaseMs / 3)))
    const ctx: JobContext = { job, signal: abort.signal, progress: (p) => keepLease(p) }
    const done = (async () => {
      let result: unknown
      let error: unknown
      let threw = false
      try {
        result = await this.options.handler(job.payload, ctx)
      } catch (e) {
        threw = true
        error = e
      }
      clearInterval(extender)
      try {
        // Given back by stop() after the grace time: the job is no longer ours to finish.
        if (!this.running.has(job.id)) return
        if (lost) {
          this.counts.lost++
          this.log({ type: "lost", id: job.id, token: job.token })
        } else if (!threw) {
          await this.api.ack(job.id, job.token, result)
          this.counts.acked++
          this.log({ type: "acked", id: job.id, token: job.token })
        } else {
          const retryable = !(error instanceof NonRetryableError)
          await this.api.fail(job.id, job.token, messageOf(error), retryable)
          this.counts.failed++
          this.log({ type: "failed", id: job.id, token: job.token, error: messageOf(error), retryable })
        }
      } catch (e) {
        if (e instanceof ArchioError && e.code === "lease_lost") {
          this.counts.lost++
          this.log({ type: "lost", id: job.id, token: job.token })
        } else this.log({ type: "error", message: `finishing ${job.id} failed: ${messageOf(e)}` })
      } finally {
        this.running.delete(job.id)
        this.wake?.()
      }
    })()
    this.running.set(job.id, { job, abort, done })
  }
}
