/**
 * Typed job calls over an `ArchioClient` (same retries, deadlines and leader affinity).
 * Enqueues carry idempotency tokens like key-value writes, so a retried enqueue never makes
 * a second job. Worker calls (`ack`, `fail`, `extend`, `release`) are safe to retry as they
 * are: a repeat after the first took effect is refused with `lease_lost` and changes nothing.
 *
 * Acks are coalesced the way group commit coalesces writes: while one `jobs.ackBatch` is in
 * flight, further acks queue and leave together in the next one. No timer: an idle worker's
 * ack leaves at once, a busy worker's acks share requests and log entries.
 */
import type { ArchioClient } from "./archioClient.ts"
import type { Bus } from "./bus.ts"
import { archioError } from "./errors.ts"
import { maxBatchJobs } from "./limits.ts"
import type {
  AckBatchResponse,
  EnqueueBatchResponse,
  EnqueueResponse,
  ExtendResponse,
  FailResponse,
  JobSpec,
  JobState,
  JobView,
  JobWriteResponse,
  LeasedJob,
  LeaseResponse,
  ListResponse,
  PurgeResponse,
  QueueStats
} from "./client.ts"
import * as Subjects from "./subjects.ts"
import type { WorkerApi } from "./worker.ts"

/** Time a parked lease may take beyond its `waitMs` before an attempt counts as lost. */
const leaseSlackMs = 5_000

interface PendingAck {
  readonly ack: { readonly id: string; readonly token: number; readonly result?: unknown }
  readonly resolve: (r: JobWriteResponse) => void
  readonly reject: (e: unknown) => void
}

export class JobsClient implements WorkerApi {
  private queuedAcks: PendingAck[] = []
  private ackInFlight = false

  constructor(private readonly client: ArchioClient<Bus>) {}

  private subject(op: string): string {
    return Subjects.jobs(this.client.cluster, op)
  }

  enqueue(spec: JobSpec): Promise<EnqueueResponse> {
    return this.client.writeOnce<EnqueueResponse>("jobs.enqueue", spec)
  }

  enqueueBatch(jobs: ReadonlyArray<JobSpec>): Promise<EnqueueBatchResponse> {
    return this.client.writeOnce<EnqueueBatchResponse>("jobs.enqueueBatch", { jobs })
  }

  async lease(req: { queues: ReadonlyArray<string>; max: number; leaseMs?: number; workerId: string; waitMs?: number }): Promise<ReadonlyArray<LeasedJob>> {
    const reply = await this.client.callLeader<LeaseResponse>("jobs.lease", req, (req.waitMs ?? 0) + leaseSlackMs)
    return reply.jobs
  }

  /** Acks one job (coalesced with other acks of this client; see above). Rejects with `lease_lost` as a single ack would. */
  ack(id: string, token: number, result?: unknown): Promise<JobWriteResponse> {
    return new Promise((resolve, reject) => {
      this.queuedAcks.push({ ack: result === undefined ? { id, token } : { id, token, result }, resolve, reject })
      if (!this.ackInFlight) void this.flushAcks()
    })
  }

  private async flushAcks(): Promise<void> {
    this.ackInFlight = true
    while (this.queuedAcks.length > 0) {
      const batch = this.queuedAcks.splice(0, maxBatchJobs)
      try {
        const reply = await this.client.callLeader<AckBatchResponse>("jobs.ackBatch", { acks: batch.map((p) => p.ack) })
        batch.forEach((p, i) => {
          const r = reply.results[i]
          if (r === undefined) p.reject(archioError("internal", "the ack batch reply is missing a result"))
          else if (r.ok) p.resolve({ ok: true, revision: r.revision, node: reply.node })
          else p.reject(archioError(r.code, r.message))
        })
      } catch (e) {
        for (const p of batch) p.reject(e)
      }
    }
    this.ackInFlight = false
  }

  fail(id: string, token: number, error: string, retryable = true): Promise<FailResponse> {
    return this.client.callLeader("jobs.fail", { id, token, error, retryable })
  }

  extend(id: string, token: number, leaseMs?: number, progress?: unknown): Promise<ExtendResponse> {
    return this.client.callLeader("jobs.extend", { id, token, ...(leaseMs === undefined ? {} : { leaseMs }), ...(progress === undefined ? {} : { progress }) })
  }

  release(id: string, token: number): Promise<JobWriteResponse> {
    return this.client.callLeader("jobs.release", { id, token })
  }

  async get(id: string): Promise<JobView> {
    return (await this.client.call<{ job: JobView }>(this.subject("get"), { id })).job
  }

  list(queue: string, options: { state?: JobState; limit?: number; cursor?: string } = {}): Promise<ListResponse> {
    return this.client.call(this.subject("list"), { queue, ...options })
  }

  async stats(queue?: string): Promise<ReadonlyArray<QueueStats>> {
    return (await this.client.call<{ queues: ReadonlyArray<QueueStats> }>(this.subject("stats"), queue === undefined ? {} : { queue })).queues
  }

  cancel(id: string): Promise<JobWriteResponse> {
    return this.client.call(this.subject("cancel"), { id })
  }

  retry(id: string): Promise<JobWriteResponse> {
    return this.client.call(this.subject("retry"), { id })
  }

  purge(queue: string, options: { states?: ReadonlyArray<"completed" | "dead" | "cancelled">; olderThanMs?: number } = {}): Promise<PurgeResponse> {
    return this.client.call(this.subject("purge"), { queue, ...options })
  }
}
