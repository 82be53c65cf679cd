/**
 * The typed TypeScript client (also what the CLI, tests and benchmarks use). It speaks the same
 * JSON over NATS request/reply as any other language would, and hides leader changes: requests
 * that meet `unavailable`, no responders or a lost reply are retried with jittered exponential
 * backoff until the deadline. Writes carry an idempotency token, so a retried write is applied
 * at most once even when its first attempt did commit. `busy` (a node past its bounds) is not
 * retried: it is the caller's cue to back off.
 *
 * Tokens: the server remembers one answer per token `client`, so a client id must have at most
 * one write in flight. This client keeps a pool of "lanes" (`<id>-<lane>`), one write per lane at
 * a time, each lane counting its own `seq`.
 */
import { connect, errors, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node"
import type { Bus, BusMessage } from "./bus.ts"
import type { Compare, Consistency, KvScanResponse, KvTxnResponse, TxnOp } from "./client.ts"
import { archioError, ArchioError } from "./errors.ts"
import { readError } from "./reply.ts"
import * as Subjects from "./subjects.ts"

export interface ClientOptions {
  /** Cluster name (the `<cluster>` in `archio.<cluster>.`); default `dev`. */
  readonly cluster?: string
  /**
   * Per-attempt reply timeout; default 500 ms. Core NATS is at-most-once: a request delivered
   * to a node as it dies is lost without a word, and only this timeout notices. Retrying is
   * safe (writes carry idempotency tokens), so a short one bounds the client's wait after a
   * leader crash; long polls (`jobs.lease`) set their own.
   */
  readonly attemptTimeoutMs?: number
  /** Total time a call may take with its retries; default 15 s. */
  readonly deadlineMs?: number
  /** Prefix of the idempotency client ids; default a random UUID. */
  readonly clientId?: string
  /** Time, timers and randomness; Node's by default (the simulator brings its own). */
  readonly clock?: ClientClock
  /**
   * Prefix of the reply subjects; default `_INBOX` (`connect` uses the connection's
   * `inboxPrefix`). A NATS user that may read only its own inbox (ops/nats: `_INBOX_<user>.>`)
   * must use that prefix, or the server refuses the replies and every call fails saying so.
   */
  readonly inboxPrefix?: string
  /**
   * False: every request goes to the service subjects, as a plain NATS client's would, instead
   * of writes going straight to the node that answered the last one. Default true.
   */
  readonly leaderAffinity?: boolean
}

/** What the client needs of time and chance. */
export interface ClientClock {
  /** Monotonic milliseconds. */
  now(): number
  /** Calls `fn` after `ms`, without keeping the process alive; returns a cancel. */
  after(ms: number, fn: () => void): () => void
  /** A number in [0, 1). */
  random(): number
  /** A unique id (inbox names, client ids). */
  uniqueId(): string
}

export const nodeClock: ClientClock = {
  now: () => performance.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms)
    t.unref()
    return () => clearTimeout(t)
  },
  random: Math.random,
  uniqueId: () => crypto.randomUUID().replaceAll("-", "")
}

export interface KeyValue {
  readonly key: string
  readonly value: string
  readonly createRevision: number
  readonly modRevision: number
  readonly version: number
  readonly revision: number
  readonly consistency: "linearizable" | "stale"
}

export interface WriteResult {
  readonly ok: true
  readonly key: string
  readonly revision: number
  readonly prevRevision?: number
  readonly deleted?: boolean
}

/** A `kv.scan` query: `prefix`, or a [`start`, `end`) range (either bound may be left out). */
export interface ScanQuery {
  readonly prefix?: string
  readonly start?: string
  readonly end?: string
  /** Items per page, 1..1000; the server's default is 100. */
  readonly limit?: number
  /** The `cursor` of the previous page, to read the next one. */
  readonly cursor?: string
  readonly keysOnly?: boolean
  readonly consistency?: Consistency
}

export type { ScanItem } from "./client.ts"

/** One page of keys; pass its `cursor`, when present, back (same range) for the next page. */
export type ScanPage = KvScanResponse

/** A `kv.txn`: if every `compare` holds, apply `success`, else `failure`, at one revision. */
export interface Txn {
  readonly compare?: ReadonlyArray<Compare>
  readonly success?: ReadonlyArray<TxnOp>
  readonly failure?: ReadonlyArray<TxnOp>
}

export type TxnResult = KvTxnResponse

/** Codes worth retrying: the cluster is electing, or the reply was lost. */
const retryable = new Set(["unavailable", "timeout"])

const maxBackoffMs = 100

const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder()

/** How often waiting requests are checked for their deadline: one coarse timer for all. */
const sweepEveryMs = 50

/** How one attempt ended, without allocating an Error on the hot path. */
type Outcome =
  | { readonly msg: BusMessage }
  | { readonly failed: "no_responders" | "timeout" }
  /** The NATS server refused the request or its reply (permissions): retrying cannot help. */
  | { readonly failed: "refused"; readonly why: string }

/**
 * What a NATS connection reports beyond a `Bus`: its status events, among them the
 * permissions violations of publishes the server refused (the simulator's network has none).
 */
interface StatusSource {
  status(): AsyncIterable<{ readonly type: string; readonly error?: unknown }> & { stop?(): void }
}
const hasStatus = (nc: object): nc is StatusSource => typeof (nc as Partial<StatusSource>).status === "function"

/**
 * Request/reply over one wildcard inbox subscription: a map of waiting attempts and one coarse
 * timer for all their deadlines. nats.js's `request` builds a timer, an object graph and (with
 * traces) an Error per call, several times the client CPU of this mux (BENCHMARKS.md, "Earlier
 * runs": client CPU per `nats.request`).
 */
class RequestMux {
  private readonly prefix: string
  private readonly waiting = new Map<string, { readonly done: (o: Outcome) => void; readonly deadline: number; readonly subject: string }>()
  private next = 0
  private cancelSweep: (() => void) | undefined
  /** Set once the server refused our inbox subscription: no reply can ever arrive. */
  private inboxRefused: Outcome | undefined

  constructor(
    private readonly nc: Bus,
    private readonly clock: ClientClock,
    inboxPrefix: string
  ) {
    this.prefix = `${inboxPrefix}.archio.${clock.uniqueId()}`
    const inbox = `${this.prefix}.*`
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err !== null) return
        const id = msg.subject.slice(this.prefix.length + 1)
        const w = this.waiting.get(id)
        if (w === undefined) return
        this.waiting.delete(id)
        // nats-server answers a request nobody listens to with an empty 503 status message.
        w.done(msg.data.length === 0 && msg.headers?.code === 503 ? { failed: "no_responders" } : { msg })
      }
    })
    void sub.closed.then((e) => {
      if (!(e instanceof Error)) return
      const why = `the NATS server refuses this client's replies on ${inbox} (${e.message}); connect with the inbox prefix its NATS user may read (inboxPrefix, NATS_INBOX_PREFIX)`
      this.inboxRefused = { failed: "refused", why }
      for (const w of this.waiting.values()) w.done(this.inboxRefused)
      this.waiting.clear()
    })
  }

  request(subject: string, payload: Uint8Array, timeoutMs: number): Promise<Outcome> {
    if (this.inboxRefused !== undefined) return Promise.resolve(this.inboxRefused)
    const id = (this.next++).toString(36)
    this.cancelSweep ??= this.clock.after(sweepEveryMs, this.sweep)
    return new Promise<Outcome>((done) => {
      this.waiting.set(id, { done, deadline: this.clock.now() + timeoutMs, subject })
      this.nc.publish(subject, payload, { reply: `${this.prefix}.${id}` })
    })
  }

  /** The server refused a publish on `subject` (permissions): its attempts end now, not at their timeout. */
  refusePublish(subject: string, message: string): void {
    const refused: Outcome = { failed: "refused", why: `the NATS server refuses this client's requests on ${subject} (${message}); its NATS user may not make them` }
    for (const [id, w] of this.waiting) {
      if (w.subject !== subject) continue
      this.waiting.delete(id)
      w.done(refused)
    }
  }

  private readonly sweep = (): void => {
    const now = this.clock.now()
    for (const [id, w] of this.waiting) {
      if (w.deadline <= now) {
        this.waiting.delete(id)
        w.done({ failed: "timeout" })
      }
    }
    this.cancelSweep = this.waiting.size === 0 ? undefined : this.clock.after(sweepEveryMs, this.sweep)
  }

  close(): void {
    this.cancelSweep?.()
    this.cancelSweep = undefined
    for (const w of this.waiting.values()) w.done({ failed: "timeout" })
    this.waiting.clear()
  }
}

/** `C` is the connection's own type, for callers that need more of it than the `Bus`. */
export class ArchioClient<C extends Bus = NatsConnection> {
  readonly cluster: string
  private readonly attemptTimeoutMs: number
  private readonly deadlineMs: number
  private readonly clientId: string
  private readonly freeLanes: number[] = []
  private readonly laneSeq: number[] = []
  /** The node that answered the last write: probably the leader. */
  private leader: string | undefined
  private readonly leaderAffinity: boolean
  private readonly mux: RequestMux
  private readonly clock: ClientClock
  /** The connection's status events, while we watch them for refused publishes. */
  private readonly statusEvents: ReturnType<StatusSource["status"]> | undefined

  constructor(
    readonly nc: C,
    options: ClientOptions = {},
    private readonly ownsConnection = false
  ) {
    this.cluster = options.cluster ?? "dev"
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 500
    this.deadlineMs = options.deadlineMs ?? 15_000
    this.leaderAffinity = options.leaderAffinity ?? true
    this.clock = options.clock ?? nodeClock
    this.clientId = options.clientId ?? this.clock.uniqueId()
    const mux = new RequestMux(nc, this.clock, options.inboxPrefix ?? "_INBOX")
    this.mux = mux
    this.statusEvents = hasStatus(nc) ? nc.status() : undefined
    const events = this.statusEvents
    if (events !== undefined) {
      // Ends on close(), or when the connection closes.
      void (async () => {
        for await (const s of events) {
          if (s.type === "error" && s.error instanceof errors.PermissionViolationError && s.error.operation === "publish") {
            mux.refusePublish(s.error.subject, s.error.message)
          }
        }
      })().catch(() => undefined)
    }
  }

  /** Connects to NATS and returns a client that closes the connection on `close()`. */
  static async connect(servers: string | string[], options: ClientOptions & { readonly nats?: Partial<ConnectionOptions> } = {}): Promise<ArchioClient> {
    const nc = await connect({ servers, noAsyncTraces: true, name: "archio-client", ...options.nats })
    const inboxPrefix = options.inboxPrefix ?? options.nats?.inboxPrefix
    return new ArchioClient(nc, inboxPrefix === undefined ? options : { ...options, inboxPrefix }, true)
  }

  async close(): Promise<void> {
    this.statusEvents?.stop?.()
    this.mux.close()
    if (this.ownsConnection && !this.nc.isClosed()) await this.nc.drain()
  }

  put(key: string, value: string, options: { ttl?: number } = {}): Promise<WriteResult> {
    return this.write("put", { key, value, ...options })
  }

  del(key: string): Promise<WriteResult> {
    return this.write("del", { key })
  }

  /** Sets `key` only if its mod revision is `expectedRevision` (0: only if absent); else `conflict`. */
  cas(key: string, value: string, expectedRevision: number, options: { ttl?: number } = {}): Promise<WriteResult> {
    return this.write("cas", { key, value, expectedRevision, ...options })
  }

  /** The key, or undefined when it does not exist. */
  async get(key: string, options: { consistency?: "linearizable" | "stale" } = {}): Promise<KeyValue | undefined> {
    try {
      return await this.call<KeyValue>(Subjects.kv(this.cluster, "get"), { key, ...options })
    } catch (e) {
      if (e instanceof ArchioError && e.code === "not_found") return undefined
      throw e
    }
  }

  /** One page of keys in UTF-8 byte order; follow `cursor` for more (or use `scanAll`). */
  scan(query: ScanQuery = {}): Promise<ScanPage> {
    return this.call<ScanPage>(Subjects.kv(this.cluster, "scan"), query)
  }

  /**
   * Every page of `query`, following cursors from `query.cursor` (or the start) until the last.
   * Each page is read at its own revision: a key written between pages shows up if it sorts
   * after the cursor.
   */
  async *scanAll(query: ScanQuery = {}): AsyncGenerator<ScanPage, void, undefined> {
    let cursor = query.cursor
    for (;;) {
      const page = await this.scan(cursor === undefined ? query : { ...query, cursor })
      yield page
      if (page.cursor === undefined || page.items.length === 0) return
      cursor = page.cursor
    }
  }

  /**
   * An atomic multi-key write. A txn whose compares fail is not an error: it resolves with
   * `succeeded: false` after running the `failure` branch. Missing lists count as empty.
   */
  txn(txn: Txn): Promise<TxnResult> {
    return this.write("txn", { compare: txn.compare ?? [], success: txn.success ?? [], failure: txn.failure ?? [] })
  }

  /** `admin.status` of one node (by id) or of any node. */
  status(node?: string): Promise<Record<string, unknown>> {
    const subject = node === undefined ? Subjects.admin(this.cluster, "status") : Subjects.node(this.cluster, node, "admin.status")
    return this.call(subject, {})
  }

  private write(op: "put" | "del" | "cas", body: Record<string, unknown>): Promise<WriteResult>
  private write(op: "txn", body: Record<string, unknown>): Promise<TxnResult>
  private write(op: "put" | "del" | "cas" | "txn", body: Record<string, unknown>): Promise<WriteResult | TxnResult> {
    return this.writeOnce(`kv.${op}`, body)
  }

  /**
   * A write to `<group>.<op>` (`kv.put`, `jobs.enqueue`) with an idempotency token: retried
   * until answered, applied at most once.
   */
  async writeOnce<A>(op: string, body: object): Promise<A> {
    const lane = this.freeLanes.pop() ?? this.laneSeq.push(0) - 1
    const seq = ++this.laneSeq[lane]!
    try {
      return await this.callLeader<A>(op, { ...body, token: { client: `${this.clientId}-${lane}`, seq } })
    } finally {
      this.freeLanes.push(lane)
    }
  }

  /**
   * A request to `<group>.<op>` sent first to the node that answered the last one (probably
   * the leader, saving the forwarding hop), then to the service. For requests that are safe
   * to repeat as they are.
   */
  async callLeader<A>(op: string, body: unknown, attemptTimeoutMs?: number): Promise<A> {
    const result = await this.call<A & { node?: string }>(
      (direct) => (direct && this.leader !== undefined ? Subjects.node(this.cluster, this.leader, op) : `${Subjects.root(this.cluster)}.${op}`),
      body,
      attemptTimeoutMs
    )
    if (this.leaderAffinity) this.leader = result.node
    return result
  }

  /**
   * One request with retries. Resolves with the parsed reply, or rejects with an ArchioError
   * (the server's, or `unavailable`/`timeout` when the deadline passed).
   */
  async call<A>(to: string | ((direct: boolean) => string), body: unknown, attemptTimeoutMs = this.attemptTimeoutMs): Promise<A> {
    const payload = utf8.encode(JSON.stringify(body))
    const start = this.clock.now()
    // A long poll (jobs.lease) may need one attempt longer than the usual deadline.
    const deadlineMs = Math.max(this.deadlineMs, attemptTimeoutMs)
    let backoff = 10
    // Built only when needed: an error object captures a stack, too costly for every call.
    let last: ArchioError | undefined
    // The first attempt may go straight to the node that answered last; retries use the service.
    for (let attempt = 0; this.clock.now() - start < deadlineMs; attempt++) {
      const subject = typeof to === "string" ? to : to(attempt === 0)
      if (attempt > 0) this.leader = undefined
      let outcome: Outcome
      try {
        outcome = await this.mux.request(subject, payload, attemptTimeoutMs)
      } catch (e) {
        // publish refused (e.g. a closed connection): nothing will answer
        throw archioError("unavailable", `cannot send on ${subject}: ${e instanceof Error ? e.message : String(e)}`)
      }
      if ("msg" in outcome) {
        const err = readError(outcome.msg)
        if (err === undefined) return JSON.parse(utf8Decoder.decode(outcome.msg.data)) as A
        // `busy` says this attempt was not written; after an attempt whose fate is unknown, the
        // call's outcome stays unknown, so that attempt's error is the honest answer.
        if (err.code === "busy" && last !== undefined) throw archioError(last.code, `${last.message}; then: ${err.message}`, last.detail)
        if (!retryable.has(err.code)) throw err
        last = err
      } else if (outcome.failed === "refused") {
        // Nothing of this attempt reached a node; an earlier one may have.
        throw last === undefined ? archioError("forbidden", outcome.why) : archioError(last.code, `${last.message}; then: ${outcome.why}`, last.detail)
      } else if (outcome.failed === "no_responders") {
        last = archioError("unavailable", `no Archio node answers on ${subject}`)
      } else {
        last = archioError("timeout", `no reply on ${subject} within ${attemptTimeoutMs} ms`)
      }
      await new Promise<void>((resolve) => this.clock.after(backoff * (0.5 + this.clock.random()), resolve))
      // Capped low: an election takes 150-300 ms, and a long sleep would only add to it.
      backoff = Math.min(backoff * 2, maxBackoffMs)
    }
    throw last ?? archioError("timeout", `no attempt on ${typeof to === "string" ? to : to(false)} fit in ${deadlineMs} ms`)
  }
}
