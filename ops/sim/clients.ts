/**
 * Simulated clients: the shipped typed client (protocol/archioClient.ts, jobsClient.ts) on
 * simulated connections and the virtual clock, so retries, leader affinity, idempotency tokens
 * and ack batching run as they do for users.
 *
 * - Register clients put, cas, txn (a compare-and-put) and read a few keys, linearizably, and
 *   record every call and answer in the chaos harness's history format for the
 *   linearizability checker; they also read stale, which is checked against what was written.
 *   Keys change every few dozen operations, which keeps each key's search small.
 * - Producers enqueue jobs; workers lease them and ack, fail, extend or abandon each; what each
 *   was told is recorded for the final job checks.
 */
import { ArchioClient, type ClientClock } from "../../protocol/archioClient.ts"
import { ArchioError } from "../../protocol/errors.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import type { Completion } from "../chaos/history.ts"
import { HistoryRecorder } from "../chaos/history.ts"
import { RotatingKeys } from "../chaos/rotatingKeys.ts"
import type { Connection, Network } from "./network.ts"
import type { World } from "./world.ts"

export const queue = "q"

/** Codes that say a request was refused as it was sent: a client bug here, never retried. */
const refused = new Set(["bad_request", "too_large"])

export class ClientBug extends Error {
  override readonly name = "ClientBug"
}

/** How one call ended, for the history: `fail` only when it certainly took no effect. */
const outcomeOf = (e: unknown): { readonly type: Completion; readonly error: string; readonly revision?: number } => {
  if (e instanceof ArchioError) {
    if (refused.has(e.code)) throw new ClientBug(`the cluster refused a simulated client's request: ${e.code}: ${e.message}`)
    if (e.code === "conflict") {
      const revision = e.detail?.["revision"]
      return typeof revision === "number" ? { type: "fail", error: e.code, revision } : { type: "fail", error: e.code }
    }
    // The typed client says `busy` only when no attempt of the call may have been written.
    if (e.code === "busy") return { type: "fail", error: e.code }
    return { type: "info", error: e.code }
  }
  return { type: "info", error: e instanceof Error ? e.message : String(e) }
}

const clockFor = (world: World, name: string): ClientClock => {
  let ids = 0
  return {
    now: () => world.now,
    after: (ms, fn) => world.schedule(ms, fn),
    random: () => world.random(),
    uniqueId: () => `${name}x${(ids++).toString(36)}`
  }
}

export interface ClientOptions {
  readonly cluster: string
  /** Register keys in use at once, and operations on each before it is replaced by a fresh key. */
  readonly keys: number
  readonly opsPerKey: number
  /** Most virtual ms a client waits between two calls. */
  readonly thinkMs: number
}

interface Seen {
  readonly value: string | null
  readonly revision: number
}

/** What the job clients were told, for the final checks. */
export interface JobsRecord {
  /** Job ids whose enqueue was acknowledged. */
  readonly enqueued: Set<string>
  /** Acks answered ok: job id -> the lease token acked. */
  readonly acked: Map<string, number>
  /** The same job acked ok twice (a violation), as "id: token1, token2". */
  readonly ackedTwice: string[]
  /** Fencing tokens handed out with leases: token -> job id. */
  readonly tokens: Map<number, string>
  /** A token handed out for two jobs, or twice (a violation). */
  readonly tokenReused: string[]
}

export class Clients {
  readonly history: HistoryRecorder
  readonly jobs: JobsRecord = { enqueued: new Set(), acked: new Map(), ackedTwice: [], tokens: new Map(), tokenReused: [] }
  /** Values any register client wrote (or tried to): a stale read must return one of them. */
  private readonly written = new Set<string>()
  private readonly staleReadsOf = new Map<string, string>()
  readonly staleViolations: string[] = []
  private readonly connections: Connection[] = []
  private readonly keys: RotatingKeys
  private readonly seen = new Map<string, Seen>()
  private stopping = false
  private readonly loops: Array<Promise<void>> = []
  /** Calls completed, by kind, for the summary. */
  readonly counts = { ok: 0, fail: 0, info: 0 }

  constructor(
    private readonly world: World,
    private readonly network: Network,
    private readonly options: ClientOptions,
    /** Where a line per completed call goes (the verbose trace). */
    private readonly trace: (line: string) => void = () => {}
  ) {
    this.history = new HistoryRecorder(() => world.now * 1_000_000)
    this.keys = new RotatingKeys(options.keys, options.opsPerKey)
  }

  private client(name: string, leaderAffinity = true): ArchioClient<Connection> {
    const conn = this.network.connect(name)
    this.connections.push(conn)
    // Short deadlines: an answer that does not come is an unknown outcome, which is the point.
    return new ArchioClient(conn, {
      cluster: this.options.cluster,
      clientId: name,
      attemptTimeoutMs: 300,
      deadlineMs: 2_000,
      clock: clockFor(this.world, name),
      leaderAffinity
    })
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.world.schedule(ms, resolve))
  }

  private observe(key: string, value: string | null, revision: number): void {
    const s = this.seen.get(key)
    if (s === undefined || revision > s.revision) this.seen.set(key, { value, revision })
  }

  private complete(done: (type: Completion, value: unknown, extra?: Record<string, unknown>) => void, type: Completion, value: unknown, extra: Record<string, unknown> = {}): void {
    this.counts[type]++
    done(type, value, extra)
    const e = this.history.entries[this.history.entries.length - 1]!
    if (e.type === type) this.trace(`${e.client} ${"f" in e ? e.f : ""} ${"key" in e ? e.key : ""} ${JSON.stringify(value)} ${type}${extra["error"] === undefined ? "" : ` ${String(extra["error"])}`}`)
  }

  /** Starts `registers` register clients, `producers` producers and `workers` workers. */
  start(registers: number, producers: number, workers: number): void {
    for (let i = 1; i <= registers; i++) this.loops.push(this.registerLoop(`c${i}`, this.client(`c${i}`, i % 2 === 1)))
    for (let i = 1; i <= producers; i++) this.loops.push(this.producerLoop(`p${i}`, new JobsClient(this.client(`p${i}`))))
    for (let i = 1; i <= workers; i++) this.loops.push(this.workerLoop(`w${i}`, new JobsClient(this.client(`w${i}`))))
  }

  /** No new calls from now; resolves once every call in flight has ended. */
  async stop(): Promise<void> {
    this.stopping = true
    await Promise.all(this.loops)
  }

  /** Linearizable reads of every key used, by a fresh client: they pin down the end state. */
  async finalReads(): Promise<void> {
    const client = this.client("final")
    for (const key of [...this.keys.used].sort()) await this.read(client, "final", key)
  }

  private async read(client: ArchioClient<Connection>, name: string, key: string): Promise<void> {
    const done = this.history.invoke(name, "read", key, null)
    try {
      const rec = await client.get(key)
      if (rec === undefined) this.complete(done, "ok", null)
      else {
        this.observe(key, rec.value, rec.modRevision)
        this.complete(done, "ok", rec.value, { revision: rec.modRevision })
      }
    } catch (e) {
      const o = outcomeOf(e)
      this.complete(done, o.type === "fail" ? "info" : o.type, null, { error: o.error })
    }
  }

  private async staleRead(client: ArchioClient<Connection>, key: string): Promise<void> {
    try {
      const rec = await client.get(key, { consistency: "stale" })
      if (rec !== undefined && !this.written.has(rec.value)) this.staleViolations.push(`stale read of ${key} returned ${JSON.stringify(rec.value)}, which no client wrote`)
      if (rec !== undefined) this.staleReadsOf.set(key, rec.value)
    } catch {
      // a stale read that fails says nothing
    }
  }

  private async registerLoop(name: string, client: ArchioClient<Connection>): Promise<void> {
    let counter = 0
    await this.sleep(this.world.int(0, 50))
    while (!this.stopping) {
      const key = this.keys.next(this.world.int(0, this.options.keys))
      const r = this.world.random()
      if (r < 0.3) await this.read(client, name, key)
      else if (r < 0.38) await this.staleRead(client, key)
      else if (r < 0.65) {
        const value = `${name}-${++counter}`
        this.written.add(value)
        const done = this.history.invoke(name, "write", key, value)
        try {
          const res = await client.put(key, value)
          this.observe(key, value, res.revision)
          this.complete(done, "ok", value, { revision: res.revision })
        } catch (e) {
          const o = outcomeOf(e)
          this.complete(done, o.type, value, { error: o.error })
        }
      } else {
        const value = `${name}-${++counter}`
        this.written.add(value)
        const expect = this.expectation(key)
        const done = this.history.invoke(name, "cas", key, [expect.value, value], { expectedRevision: expect.revision })
        try {
          if (this.world.chance(0.5)) {
            const res = await client.cas(key, value, expect.revision)
            this.observe(key, value, res.revision)
            this.complete(done, "ok", [expect.value, value], { revision: res.revision })
          } else {
            // The same compare-and-set as a txn: compare the value, put on success, nothing else.
            const compare =
              expect.value === null ? { key, target: "create" as const, op: "==" as const, value: 0 } : { key, target: "value" as const, op: "==" as const, value: expect.value }
            const res = await client.txn({ compare: [compare], success: [{ op: "put", key, value }] })
            if (res.succeeded) {
              this.observe(key, value, res.revision)
              this.complete(done, "ok", [expect.value, value], { revision: res.revision })
            } else this.complete(done, "fail", [expect.value, value], { error: "conflict" })
          }
        } catch (e) {
          const o = outcomeOf(e)
          this.complete(done, o.type, [expect.value, value], o.revision === undefined ? { error: o.error } : { error: o.error, revision: o.revision })
        }
      }
      await this.sleep(this.world.int(0, this.options.thinkMs))
    }
  }

  /** Mostly the newest value seen, sometimes absent (a cas that should usually be refused). */
  private expectation(key: string): Seen {
    const s = this.seen.get(key)
    if (s === undefined || this.world.chance(0.15)) return { value: null, revision: 0 }
    return s
  }

  private async producerLoop(name: string, jobs: JobsClient): Promise<void> {
    let n = 0
    await this.sleep(this.world.int(0, 50))
    while (!this.stopping) {
      try {
        const r = await jobs.enqueue({
          queue,
          payload: { from: name, n: ++n },
          maxAttempts: this.world.int(1, 4),
          ...(this.world.chance(0.2) ? { delay: this.world.int(1, 300) } : {}),
          ...(this.world.chance(0.3) ? { backoff: { type: "fixed" as const, delay: this.world.int(1, 100) } } : {})
        })
        this.jobs.enqueued.add(r.id)
        this.trace(`${name} enqueued job ${r.id}`)
      } catch (e) {
        outcomeOf(e) // unknown: the job may or may not exist
      }
      await this.sleep(this.world.int(0, 4 * this.options.thinkMs))
    }
  }

  private async workerLoop(name: string, jobs: JobsClient): Promise<void> {
    await this.sleep(this.world.int(0, 50))
    while (!this.stopping) {
      let leased: Awaited<ReturnType<JobsClient["lease"]>> = []
      try {
        leased = await jobs.lease({ queues: [queue], max: this.world.int(1, 4), workerId: name, waitMs: this.world.int(0, 300), leaseMs: this.world.int(100, 600) })
      } catch (e) {
        outcomeOf(e)
      }
      for (const job of leased) {
        const prior = this.jobs.tokens.get(job.token)
        if (prior !== undefined) this.jobs.tokenReused.push(`fencing token ${job.token} handed out for job ${prior} and again for job ${job.id}`)
        this.jobs.tokens.set(job.token, job.id)
      }
      await Promise.all(leased.map((job) => this.work(jobs, job.id, job.token)))
      if (leased.length === 0) await this.sleep(this.world.int(0, this.options.thinkMs))
    }
  }

  private async work(jobs: JobsClient, id: string, token: number): Promise<void> {
    await this.sleep(this.world.int(0, 150))
    const r = this.world.random()
    try {
      if (r < 0.05) return // abandoned: the lease runs out
      if (r < 0.2) {
        await jobs.fail(id, token, "simulated failure", this.world.chance(0.8))
        return
      }
      if (r < 0.3) {
        await jobs.extend(id, token, this.world.int(100, 600))
        await this.sleep(this.world.int(0, 100))
      }
      await jobs.ack(id, token, { by: token })
      const before = this.jobs.acked.get(id)
      if (before !== undefined && before !== token) this.jobs.ackedTwice.push(`job ${id}: acked with token ${before}, then with ${token}`)
      this.jobs.acked.set(id, token)
      this.trace(`acked job ${id} with token ${token}`)
    } catch (e) {
      outcomeOf(e) // lease_lost and unknown outcomes are part of the game
    }
  }

  close(): void {
    for (const c of this.connections) c.kill()
  }
}
