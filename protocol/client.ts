/**
 * The client wire contract: Effect Schemas of every JSON request and reply on
 * `archio.<cluster>.{kv,jobs,admin}.<op>`. Gateways decode requests with `makeDecoder` from
 * `protocol/json.ts`; typed clients encode with the same types.
 *
 * Requests are strict: unknown fields are errors (each request struct carries
 * `parseOptions: { onExcessProperty: "error" }`, and `makeDecoder` decodes with it too), so a
 * typo such as `vaule` is reported instead of silently ignored. Replies are lenient: a
 * client decoding a reply ignores fields it does not know, so replies may grow.
 *
 * Schemas are transformation-free (decoded type = encoded type). Where a field has a default
 * (`limit`), the server applies it; the default is in `protocol/limits.ts`.
 */
import { ParseResult, Schema } from "effect"
import { errorCodes, type ErrorCode } from "./errors.ts"
import { describeValue, expecting, TooLargeAnnotationId } from "./json.ts"
import {
  fitsUtf8,
  isWellFormed,
  keyProblem,
  maxBatchJobs,
  maxClientIdBytes,
  maxCursorBytes,
  maxErrorTextBytes,
  maxJobIdBytes,
  maxJsonDepth,
  maxKeyBytes,
  maxLeaseMs,
  maxLeaseQueues,
  maxLeaseWaitMs,
  maxPageLimit,
  maxRetainMs,
  maxTxnOps,
  maxValueBytes,
  nestsWithin,
  utf8Length
} from "./limits.ts"
import { validToken } from "./subjects.ts"

// ---------------------------------------------------------------------------------------------
// Building blocks

const opt = <S extends Schema.Schema.All>(s: S) => Schema.optionalWith(s, { exact: true })

const tooLarge = (max: number) => (s: string) =>
  fitsUtf8(s, max) || `too large: ${utf8Length(s)} bytes, the limit is ${max}`

const sizeCap = { [TooLargeAnnotationId]: true }

const wellFormed = (s: string) => isWellFormed(s) || "must be valid UTF-8 (it contains a lone surrogate)"

/** Message for a value that should be an object; field-level problems keep their own messages. */
const notAnObject = (what: string) => ({
  message: (issue: ParseResult.ParseIssue) => `expected ${what}, got ${describeValue(issue.actual)}`
})

/** A request object: unknown fields are errors; a non-object gets a plain message. */
const request = <Fields extends Schema.Struct.Fields>(fields: Fields) =>
  Schema.Struct(fields).annotations({
    parseOptions: { onExcessProperty: "error" },
    ...notAnObject("a JSON object")
  })

/** One of a few string literals, with a message listing them. */
const oneOf = <const L extends readonly [string, ...Array<string>]>(...values: L) =>
  Schema.Literal(...values).annotations(expecting(`one of ${values.map((v) => JSON.stringify(v)).join(", ")}`))

const intIn = (min: number, max: number, what: string) =>
  Schema.Int.pipe(Schema.between(min, max)).annotations(expecting(what))

/** Integers 0 .. 2^53 - 1: revisions, versions, fencing tokens, timestamps, delays. */
export const NonNegativeInt = Schema.NonNegativeInt.annotations(expecting("a non-negative integer"))
export const PositiveInt = Schema.Int.pipe(Schema.positive()).annotations(expecting("a positive integer"))

const nonEmptyString = (maxBytes: number) =>
  Schema.String.annotations(expecting("a non-empty string")).pipe(
    Schema.filter((s) => s.length > 0 || "expected a non-empty string, got \"\""),
    Schema.filter(wellFormed),
    Schema.filter(tooLarge(maxBytes), sizeCap)
  )

/** A key: non-empty, valid UTF-8, no NUL, at most `maxKeyBytes` (above is `too_large`). */
export const Key = Schema.String.annotations(expecting("a non-empty string")).pipe(
  Schema.filter(keyProblem),
  Schema.filter(tooLarge(maxKeyBytes), sizeCap)
).annotations({ identifier: "Key" })

/** A key prefix or range bound: like a key, but may be empty. */
export const KeyBound = Schema.String.annotations(expecting("a string")).pipe(
  Schema.filter((s) => s.length === 0 || keyProblem(s)),
  Schema.filter(tooLarge(maxKeyBytes), sizeCap)
).annotations({ identifier: "KeyBound" })

/** A kv value: any valid UTF-8 string of at most `maxValueBytes` (above is `too_large`). */
export const Value = Schema.String.annotations(expecting("a string")).pipe(
  Schema.filter(wellFormed),
  Schema.filter(tooLarge(maxValueBytes), sizeCap)
).annotations({ identifier: "Value" })

/**
 * Idempotency token: the server remembers the last `seq` per `client` and answers a repeat of
 * it with the first answer instead of applying it twice. Clients count `seq` up from 1.
 */
export const Token = request({
  client: nonEmptyString(maxClientIdBytes),
  seq: PositiveInt
}).annotations({ identifier: "Token" })
export type Token = Schema.Schema.Type<typeof Token>

export const Consistency = oneOf("linearizable", "stale")
export type Consistency = Schema.Schema.Type<typeof Consistency>

/** Time to live in milliseconds. */
export const TtlMs = PositiveInt

const Cursor = nonEmptyString(maxCursorBytes)

const PageLimit = intIn(1, maxPageLimit, `an integer from 1 to ${maxPageLimit}`)

/**
 * Any JSON value (job payloads, results, progress) nesting at most `maxJsonDepth` arrays and
 * objects; its size is bounded by the request size cap.
 */
export const Json = Schema.Unknown.pipe(
  Schema.filter((u) => nestsWithin(u, maxJsonDepth) || `arrays and objects nested more than ${maxJsonDepth} deep (the limit is ${maxJsonDepth})`)
).annotations({ identifier: "Json" })

// ---------------------------------------------------------------------------------------------
// kv requests

export const KvPutRequest = request({
  key: Key,
  value: Value,
  ttl: opt(TtlMs),
  token: opt(Token)
}).annotations({ identifier: "KvPutRequest" })
export type KvPutRequest = Schema.Schema.Type<typeof KvPutRequest>

export const KvGetRequest = request({
  key: Key,
  consistency: opt(Consistency)
}).annotations({ identifier: "KvGetRequest" })
export type KvGetRequest = Schema.Schema.Type<typeof KvGetRequest>

export const KvDelRequest = request({
  key: Key,
  token: opt(Token)
}).annotations({ identifier: "KvDelRequest" })
export type KvDelRequest = Schema.Schema.Type<typeof KvDelRequest>

/**
 * Compare-and-set. `expectedRevision` is the key's current `modRevision`; 0 means "create only
 * if absent"; without it the put is unconditional. A mismatch is `conflict` with the current
 * revision in `detail`.
 */
export const KvCasRequest = request({
  key: Key,
  value: Value,
  expectedRevision: opt(NonNegativeInt),
  ttl: opt(TtlMs),
  token: opt(Token)
}).annotations({ identifier: "KvCasRequest" })
export type KvCasRequest = Schema.Schema.Type<typeof KvCasRequest>

/**
 * Range read, in key order: either every key starting with `prefix`, or keys in
 * [`start`, `end`) (either bound may be left out), never both forms. Pages hold `limit` items
 * (default `defaultPageLimit`); pass the reply's `cursor` to get the next page.
 */
export const KvScanRequest = request({
  prefix: opt(KeyBound),
  start: opt(KeyBound),
  end: opt(KeyBound),
  limit: opt(PageLimit),
  cursor: opt(Cursor),
  keysOnly: opt(Schema.Boolean.annotations(expecting("true or false"))),
  consistency: opt(Consistency)
}).pipe(
  Schema.filter((r) =>
    r.prefix !== undefined && (r.start !== undefined || r.end !== undefined)
      ? { path: ["prefix"], message: "cannot be combined with start/end: use one form" }
      : undefined
  )
).annotations({ identifier: "KvScanRequest" })
export type KvScanRequest = Schema.Schema.Type<typeof KvScanRequest>

export const CompareOp = oneOf("==", "!=", ">", "<")
export type CompareOp = Schema.Schema.Type<typeof CompareOp>

/**
 * One txn guard. `target: "value"` compares the value (a string, `==`/`!=`/`>`/`<` in
 * UTF-8 byte order, the order `kv.scan` lists keys in); `mod`, `create` and `version` compare the key's revisions (integers; a
 * missing key has 0 for all three).
 */
const compareRevision = <T extends "mod" | "create" | "version">(target: T) =>
  request({ key: Key, target: Schema.Literal(target), op: CompareOp, value: NonNegativeInt })

// One member per target literal, so a decode failure reports only the member `target` selects.
export const Compare = Schema.Union(
  request({ key: Key, target: Schema.Literal("value"), op: CompareOp, value: Value }),
  compareRevision("mod"),
  compareRevision("create"),
  compareRevision("version")
).annotations({ identifier: "Compare", ...notAnObject(`a compare object {"key","target","op","value"}`) })
export type Compare = Schema.Schema.Type<typeof Compare>

export const TxnPut = request({ op: Schema.Literal("put"), key: Key, value: Value, ttl: opt(TtlMs) })
export const TxnDel = request({ op: Schema.Literal("del"), key: Key })
export const TxnOp = Schema.Union(TxnPut, TxnDel).annotations({
  identifier: "TxnOp",
  ...notAnObject(`an operation {"op":"put",...} or {"op":"del",...}`)
})
export type TxnOp = Schema.Schema.Type<typeof TxnOp>

const listOf = <S extends Schema.Schema.Any>(item: S, max: number, nonEmpty = false) =>
  Schema.Array(item).annotations(notAnObject("an array")).pipe(
    Schema.filter((a) =>
      nonEmpty && a.length === 0 ? "expected at least 1 item, got none"
      : a.length > max ? `expected at most ${max} items, got ${a.length}`
      : undefined
    )
  )

/** If every compare holds, apply `success`, else `failure`; all in one revision. */
export const KvTxnRequest = request({
  compare: listOf(Compare, maxTxnOps),
  success: listOf(TxnOp, maxTxnOps),
  failure: listOf(TxnOp, maxTxnOps),
  token: opt(Token)
}).annotations({ identifier: "KvTxnRequest" })
export type KvTxnRequest = Schema.Schema.Type<typeof KvTxnRequest>

// ---------------------------------------------------------------------------------------------
// kv replies

const Ok = Schema.Literal(true)

/**
 * The Gateway adds the id of the node that answered to every success reply (for a write, the
 * leader that committed it), so a client can send its next request straight there.
 */
const AnsweredBy = { node: Schema.String }

/** What a kv write reply says about the key it wrote. */
const WrittenKey = {
  key: Schema.String,
  /** The key's `modRevision` before this write; absent when there was no such key. */
  prevRevision: opt(NonNegativeInt)
}

const KeyMeta = {
  /** Revision that created the key (since its last deletion). */
  createRevision: NonNegativeInt,
  /** Revision of the last write to the key. */
  modRevision: NonNegativeInt,
  /** Number of writes since creation (1 after the first put). */
  version: NonNegativeInt
}

export const KvPutResponse = Schema.Struct({ ok: Ok, revision: NonNegativeInt, ...WrittenKey, ...AnsweredBy }).annotations({ identifier: "KvPutResponse" })
export type KvPutResponse = Schema.Schema.Type<typeof KvPutResponse>

export const KvDelResponse = Schema.Struct({
  ok: Ok,
  revision: NonNegativeInt,
  /** False when the key did not exist (the delete is still a success). */
  deleted: Schema.Boolean,
  ...WrittenKey,
  ...AnsweredBy
}).annotations({ identifier: "KvDelResponse" })
export type KvDelResponse = Schema.Schema.Type<typeof KvDelResponse>

export const KvCasResponse = Schema.Struct({ ok: Ok, revision: NonNegativeInt, ...WrittenKey, ...AnsweredBy }).annotations({ identifier: "KvCasResponse" })
export type KvCasResponse = Schema.Schema.Type<typeof KvCasResponse>

/** A missing key is a `not_found` error, not a reply. */
export const KvGetResponse = Schema.Struct({
  ok: Ok,
  key: Schema.String,
  value: Schema.String,
  ...KeyMeta,
  /** The store's revision when the key was read. */
  revision: NonNegativeInt,
  consistency: Consistency,
  ...AnsweredBy
}).annotations({ identifier: "KvGetResponse" })
export type KvGetResponse = Schema.Schema.Type<typeof KvGetResponse>

export const ScanItem = Schema.Struct({
  key: Schema.String,
  /** Absent when the request had `keysOnly: true`. */
  value: opt(Schema.String),
  ...KeyMeta
}).annotations({ identifier: "ScanItem" })
export type ScanItem = Schema.Schema.Type<typeof ScanItem>

export const KvScanResponse = Schema.Struct({
  ok: Ok,
  items: Schema.Array(ScanItem),
  /** Present when there may be more: send it back as `cursor` for the next page. */
  cursor: opt(Schema.String),
  /** The store's revision when this page was read: watch events after it follow the page. */
  revision: NonNegativeInt,
  consistency: Consistency,
  ...AnsweredBy
}).annotations({ identifier: "KvScanResponse" })
export type KvScanResponse = Schema.Schema.Type<typeof KvScanResponse>

export const KvTxnResponse = Schema.Struct({
  ok: Ok,
  /** True when every compare held (the `success` branch ran). */
  succeeded: Schema.Boolean,
  revision: NonNegativeInt,
  ...AnsweredBy
}).annotations({ identifier: "KvTxnResponse" })
export type KvTxnResponse = Schema.Schema.Type<typeof KvTxnResponse>

/**
 * One committed key change, published by the leader on `archio.<cluster>.events.kv.<key tokens>`
 * (`Subjects.kvKeyEvent`). `revision` is the store revision of the change: a watcher that
 * starts with a `kv.scan` applies only events above the scan's `revision`. A put carries the
 * new value and metadata; `expire` is a delete made by a TTL running out.
 */
export const KvWatchEvent = Schema.Struct({
  type: oneOf("put", "del", "expire"),
  key: Schema.String,
  revision: NonNegativeInt,
  value: opt(Schema.String),
  createRevision: opt(NonNegativeInt),
  modRevision: opt(NonNegativeInt),
  version: opt(NonNegativeInt)
}).annotations({ identifier: "KvWatchEvent" })
export type KvWatchEvent = Schema.Schema.Type<typeof KvWatchEvent>

// ---------------------------------------------------------------------------------------------
// jobs requests (shapes may grow)

/** A queue name is one NATS subject token: 1-64 letters, digits, `_` or `-`. */
export const QueueName = Schema.String.annotations(expecting("a queue name")).pipe(
  Schema.filter((s) => validToken(s) || `expected a queue name (1-64 letters, digits, "_" or "-"), got ${JSON.stringify(s)}`)
).annotations({ identifier: "QueueName" })

export const JobId = nonEmptyString(maxJobIdBytes).annotations({ identifier: "JobId" })

/** The fencing token handed out with a lease; ack/fail/extend with an older one get `lease_lost`. */
export const FencingToken = NonNegativeInt

export const LeaseMs = intIn(1, maxLeaseMs, `an integer number of milliseconds from 1 to ${maxLeaseMs}`)

export const Backoff = request({
  type: oneOf("fixed", "exponential"),
  /** Base delay in ms: every retry waits `delay` (fixed) or `delay * 2^(attempt-1)` (exponential). */
  delay: NonNegativeInt,
  /** Upper bound on one wait, in ms. */
  max: opt(PositiveInt),
  /** Random spread as a fraction of the wait, 0..1. */
  jitter: opt(Schema.Number.pipe(Schema.between(0, 1)).annotations(expecting("a number from 0 to 1")))
}).annotations({ identifier: "Backoff" })
export type Backoff = Schema.Schema.Type<typeof Backoff>

const jobFields = {
  queue: QueueName,
  payload: Json,
  /** Higher runs first among ready jobs; default 0. */
  priority: opt(intIn(-1_000_000, 1_000_000, "an integer from -1000000 to 1000000")),
  /** Run no earlier than this many ms from now (leader time). Not with `runAt`. */
  delay: opt(NonNegativeInt),
  /** Run no earlier than this wall time, ms since the epoch. Not with `delay`. */
  runAt: opt(NonNegativeInt),
  maxAttempts: opt(intIn(1, 1000, "an integer from 1 to 1000")),
  backoff: opt(Backoff),
  leaseMs: opt(LeaseMs),
  /**
   * While a job of the same queue with this key is not finished (scheduled, ready, leased or
   * failed), enqueueing another returns that job instead.
   */
  uniqueKey: opt(Key),
  /** How long a finished (completed, dead or cancelled) job is kept, in ms; default 7 days. */
  retainMs: opt(intIn(0, maxRetainMs, `an integer number of milliseconds from 0 to ${maxRetainMs}`))
}

const delayOrRunAt = (j: { readonly delay?: number; readonly runAt?: number }) =>
  j.delay !== undefined && j.runAt !== undefined
    ? { path: ["runAt"], message: "cannot be combined with delay: use one" }
    : undefined

/** One job of an `enqueueBatch`. */
export const JobSpec = request(jobFields).pipe(Schema.filter(delayOrRunAt)).annotations({ identifier: "JobSpec" })
export type JobSpec = Schema.Schema.Type<typeof JobSpec>

export const EnqueueRequest = request({ ...jobFields, token: opt(Token) })
  .pipe(Schema.filter(delayOrRunAt))
  .annotations({ identifier: "EnqueueRequest" })
export type EnqueueRequest = Schema.Schema.Type<typeof EnqueueRequest>

export const EnqueueBatchRequest = request({
  jobs: listOf(JobSpec, maxBatchJobs, true),
  token: opt(Token)
}).annotations({ identifier: "EnqueueBatchRequest" })
export type EnqueueBatchRequest = Schema.Schema.Type<typeof EnqueueBatchRequest>

/**
 * A worker asks for up to `max` ready jobs (default 1) from `queues` (in the given order of
 * preference), waiting up to `waitMs` (default 0) for one to become ready.
 */
export const LeaseRequest = request({
  queues: listOf(QueueName, maxLeaseQueues, true),
  max: opt(intIn(1, maxBatchJobs, `an integer from 1 to ${maxBatchJobs}`)),
  leaseMs: opt(LeaseMs),
  workerId: nonEmptyString(maxClientIdBytes),
  waitMs: opt(intIn(0, maxLeaseWaitMs, `an integer number of milliseconds from 0 to ${maxLeaseWaitMs}`))
}).annotations({ identifier: "LeaseRequest" })
export type LeaseRequest = Schema.Schema.Type<typeof LeaseRequest>

export const AckRequest = request({
  id: JobId,
  token: FencingToken,
  result: opt(Json)
}).annotations({ identifier: "AckRequest" })
export type AckRequest = Schema.Schema.Type<typeof AckRequest>

/** Acks for many leased jobs in one request and one log entry; each is accepted or refused alone. */
export const AckBatchRequest = request({
  acks: listOf(request({ id: JobId, token: FencingToken, result: opt(Json) }), maxBatchJobs, true)
}).annotations({ identifier: "AckBatchRequest" })
export type AckBatchRequest = Schema.Schema.Type<typeof AckBatchRequest>

export const FailRequest = request({
  id: JobId,
  token: FencingToken,
  error: Schema.String.annotations(expecting("a string")).pipe(
    Schema.filter(wellFormed),
    Schema.filter(tooLarge(maxErrorTextBytes), sizeCap)
  ),
  /** False: do not retry even if attempts remain. Default true. */
  retryable: opt(Schema.Boolean.annotations(expecting("true or false")))
}).annotations({ identifier: "FailRequest" })
export type FailRequest = Schema.Schema.Type<typeof FailRequest>

export const ExtendRequest = request({
  id: JobId,
  token: FencingToken,
  leaseMs: opt(LeaseMs),
  progress: opt(Json)
}).annotations({ identifier: "ExtendRequest" })
export type ExtendRequest = Schema.Schema.Type<typeof ExtendRequest>

/** Gives a leased job back (a worker shutting down): ready again at once, the attempt not counted. */
export const ReleaseRequest = request({ id: JobId, token: FencingToken }).annotations({ identifier: "ReleaseRequest" })
export type ReleaseRequest = Schema.Schema.Type<typeof ReleaseRequest>

export const JobGetRequest = request({ id: JobId }).annotations({ identifier: "JobGetRequest" })
export type JobGetRequest = Schema.Schema.Type<typeof JobGetRequest>

export const CancelRequest = request({ id: JobId }).annotations({ identifier: "CancelRequest" })
export type CancelRequest = Schema.Schema.Type<typeof CancelRequest>

export const RetryRequest = request({ id: JobId }).annotations({ identifier: "RetryRequest" })
export type RetryRequest = Schema.Schema.Type<typeof RetryRequest>

/**
 * scheduled (waits for its run time), ready, leased (a worker has it), completed, failed (an
 * attempt failed; waits for its retry), dead (no attempts left, or failed as not retryable),
 * cancelled.
 */
export const JobState = oneOf("scheduled", "ready", "leased", "completed", "failed", "dead", "cancelled")
export type JobState = Schema.Schema.Type<typeof JobState>

export const ListRequest = request({
  queue: QueueName,
  state: opt(JobState),
  limit: opt(PageLimit),
  cursor: opt(Cursor)
}).annotations({ identifier: "ListRequest" })
export type ListRequest = Schema.Schema.Type<typeof ListRequest>

export const StatsRequest = request({ queue: opt(QueueName) }).annotations({ identifier: "StatsRequest" })
export type StatsRequest = Schema.Schema.Type<typeof StatsRequest>

export const FinishedState = oneOf("completed", "dead", "cancelled")
export type FinishedState = Schema.Schema.Type<typeof FinishedState>

/** Deletes finished jobs of `queue` now: those in `states` (default all three) finished at least `olderThanMs` ago. */
export const PurgeRequest = request({
  queue: QueueName,
  states: opt(listOf(FinishedState, 3, true)),
  olderThanMs: opt(NonNegativeInt)
}).annotations({ identifier: "PurgeRequest" })
export type PurgeRequest = Schema.Schema.Type<typeof PurgeRequest>

// ---------------------------------------------------------------------------------------------
// jobs replies (provisional: the job state machine may add fields)

export const JobView = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  state: JobState,
  payload: Json,
  priority: Schema.Number,
  /** Attempts started so far. */
  attempts: NonNegativeInt,
  maxAttempts: NonNegativeInt,
  /** When it becomes (or became) ready, ms since the epoch (leader time). */
  runAt: NonNegativeInt,
  createdAt: NonNegativeInt,
  updatedAt: NonNegativeInt,
  finishedAt: opt(NonNegativeInt),
  /** While leased: the fencing token, the worker and the lease end. */
  token: opt(NonNegativeInt),
  workerId: opt(Schema.String),
  leaseUntil: opt(NonNegativeInt),
  result: opt(Json),
  error: opt(Schema.String),
  progress: opt(Json),
  uniqueKey: opt(Schema.String)
}).annotations({ identifier: "JobView" })
export type JobView = Schema.Schema.Type<typeof JobView>

export const EnqueueResponse = Schema.Struct({
  ok: Ok,
  id: Schema.String,
  revision: NonNegativeInt,
  /** True when `uniqueKey` matched a live job: `id` is that job, nothing was enqueued. */
  existing: Schema.Boolean,
  ...AnsweredBy
}).annotations({ identifier: "EnqueueResponse" })
export type EnqueueResponse = Schema.Schema.Type<typeof EnqueueResponse>

export const EnqueueBatchResponse = Schema.Struct({
  ok: Ok,
  ids: Schema.Array(Schema.String),
  /** Per job, as `existing` in `EnqueueResponse`. */
  existing: Schema.Array(Schema.Boolean),
  revision: NonNegativeInt,
  ...AnsweredBy
}).annotations({ identifier: "EnqueueBatchResponse" })
export type EnqueueBatchResponse = Schema.Schema.Type<typeof EnqueueBatchResponse>

export const LeasedJob = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  payload: Json,
  /** 1 on the first attempt. */
  attempt: PositiveInt,
  /** Fencing token: send it with ack/fail/extend. */
  token: FencingToken,
  /** Lease end, ms since the epoch (leader time). */
  leaseUntil: NonNegativeInt,
  progress: opt(Json)
}).annotations({ identifier: "LeasedJob" })
export type LeasedJob = Schema.Schema.Type<typeof LeasedJob>

export const LeaseResponse = Schema.Struct({ ok: Ok, jobs: Schema.Array(LeasedJob), ...AnsweredBy }).annotations({ identifier: "LeaseResponse" })
export type LeaseResponse = Schema.Schema.Type<typeof LeaseResponse>

/** Reply of ack, release, cancel and retry. */
export const JobWriteResponse = Schema.Struct({ ok: Ok, revision: NonNegativeInt, ...AnsweredBy }).annotations({ identifier: "JobWriteResponse" })
export type JobWriteResponse = Schema.Schema.Type<typeof JobWriteResponse>

/** One result per ack, in order: `{"ok":true,"revision"}` or `{"ok":false,"code","message"}` (and `detail` when there is some). */
export const AckBatchResponse = Schema.Struct({
  ok: Ok,
  revision: NonNegativeInt,
  results: Schema.Array(
    Schema.Union(
      Schema.Struct({ ok: Ok, revision: NonNegativeInt }),
      Schema.Struct({
        ok: Schema.Literal(false),
        code: Schema.Literal(...(Object.keys(errorCodes) as [ErrorCode, ...Array<ErrorCode>])),
        message: Schema.String,
        detail: opt(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
      })
    )
  ),
  ...AnsweredBy
}).annotations({ identifier: "AckBatchResponse" })
export type AckBatchResponse = Schema.Schema.Type<typeof AckBatchResponse>

export const FailResponse = Schema.Struct({
  ok: Ok,
  revision: NonNegativeInt,
  /** True when the job will run again; `runAt` says when. */
  willRetry: Schema.Boolean,
  runAt: opt(NonNegativeInt),
  ...AnsweredBy
}).annotations({ identifier: "FailResponse" })
export type FailResponse = Schema.Schema.Type<typeof FailResponse>

export const ExtendResponse = Schema.Struct({
  ok: Ok,
  revision: NonNegativeInt,
  leaseUntil: NonNegativeInt,
  ...AnsweredBy
}).annotations({ identifier: "ExtendResponse" })
export type ExtendResponse = Schema.Schema.Type<typeof ExtendResponse>

export const JobGetResponse = Schema.Struct({ ok: Ok, job: JobView, consistency: Consistency, ...AnsweredBy }).annotations({ identifier: "JobGetResponse" })
export type JobGetResponse = Schema.Schema.Type<typeof JobGetResponse>

export const ListResponse = Schema.Struct({
  ok: Ok,
  jobs: Schema.Array(JobView),
  cursor: opt(Schema.String),
  consistency: Consistency,
  ...AnsweredBy
}).annotations({ identifier: "ListResponse" })
export type ListResponse = Schema.Schema.Type<typeof ListResponse>

export const QueueStats = Schema.Struct({
  queue: Schema.String,
  scheduled: NonNegativeInt,
  ready: NonNegativeInt,
  leased: NonNegativeInt,
  completed: NonNegativeInt,
  failed: NonNegativeInt,
  dead: NonNegativeInt,
  cancelled: NonNegativeInt,
  /** How long the longest-waiting ready job has been ready, ms (0 when none is). */
  oldestReadyMs: NonNegativeInt,
  /**
   * New jobs enqueued (a unique key's existing job not counted again), jobs completed, and
   * attempts failed (including expired leases), in the 60 s of leader time up to the reply's `time`.
   */
  enqueuedLastMinute: NonNegativeInt,
  completedLastMinute: NonNegativeInt,
  failedLastMinute: NonNegativeInt
}).annotations({ identifier: "QueueStats" })
export type QueueStats = Schema.Schema.Type<typeof QueueStats>

export const StatsResponse = Schema.Struct({
  ok: Ok,
  queues: Schema.Array(QueueStats),
  /** Leader time of the last applied entry, ms since the epoch: what `oldestReadyMs` and the last minute count from. */
  time: NonNegativeInt,
  consistency: Consistency,
  ...AnsweredBy
}).annotations({ identifier: "StatsResponse" })
export type StatsResponse = Schema.Schema.Type<typeof StatsResponse>

export const PurgeResponse = Schema.Struct({ ok: Ok, revision: NonNegativeInt, purged: NonNegativeInt, ...AnsweredBy }).annotations({ identifier: "PurgeResponse" })
export type PurgeResponse = Schema.Schema.Type<typeof PurgeResponse>

/**
 * One job transition, published on `archio.<cluster>.events.jobs.<queue>.<id>.<state>`
 * (`Subjects.jobEvent`) by the leader as it applies it.
 */
export const JobEvent = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  state: JobState,
  attempts: NonNegativeInt,
  revision: NonNegativeInt,
  /** Leader time of the transition. */
  time: NonNegativeInt,
  result: opt(Json),
  error: opt(Schema.String)
}).annotations({ identifier: "JobEvent" })
export type JobEvent = Schema.Schema.Type<typeof JobEvent>

// ---------------------------------------------------------------------------------------------
// admin

/**
 * A request without fields: an empty payload or `{}`. (`Schema.Struct({})` alone would accept
 * any object, so the unknown-field check is explicit here.)
 */
const emptyRequest = () =>
  Schema.Object.annotations(notAnObject("a JSON object")).pipe(
    Schema.filter((o) => {
      if (Array.isArray(o)) return "expected a JSON object, got an array"
      const extra = Object.keys(o)
      return extra.length === 0
        ? undefined
        : extra.map((k) => new ParseResult.Pointer(k, o, new ParseResult.Unexpected((o as Record<string, unknown>)[k])))
    })
  )

/** No fields; an empty payload decodes as `{}`. */
export const StatusRequest = emptyRequest().annotations({ identifier: "StatusRequest" })
export type StatusRequest = Schema.Schema.Type<typeof StatusRequest>

/** A node's Raft role; the consensus core (`actors/raft/state.ts`) uses this type too. */
export const RaftRole = Schema.Literal("follower", "candidate", "precandidate", "leader")
export type RaftRole = Schema.Schema.Type<typeof RaftRole>

export const PeerProgress = Schema.Struct({
  id: Schema.String,
  nextIndex: NonNegativeInt,
  matchIndex: NonNegativeInt,
  /**
   * `probe` while the leader looks for where the follower's log matches, then `replicate`;
   * `snapshot` while it sends the follower a snapshot because the log it needs is compacted.
   */
  state: oneOf("probe", "replicate", "snapshot")
}).annotations({ identifier: "PeerProgress" })
export type PeerProgress = Schema.Schema.Type<typeof PeerProgress>

/** Whether a member counts for quorum (`voter`) or only receives the log (`learner`). */
export const MemberRole = oneOf("voter", "learner")
export type MemberRole = Schema.Schema.Type<typeof MemberRole>

/**
 * One member of the cluster as `admin.members` and `admin.status` list it. `matchIndex` (the
 * highest log index the leader knows the member holds; the leader's own last index for itself)
 * and `lag` (the leader's last index minus `matchIndex`) come from the leader's view: both are
 * null when the answering node has none (it does not lead, and no leader is known).
 */
export const Member = Schema.Struct({
  id: Schema.String,
  role: MemberRole,
  matchIndex: Schema.NullOr(NonNegativeInt),
  lag: Schema.NullOr(NonNegativeInt)
}).annotations({ identifier: "Member" })
export type Member = Schema.Schema.Type<typeof Member>

/** The last snapshot a node took or installed, as `admin.status` reports it. */
export const SnapshotSummary = Schema.Struct({
  /** Log index and term the snapshot covers. */
  index: NonNegativeInt,
  term: NonNegativeInt,
  /** Its size in the snapshot format, bytes. */
  size: NonNegativeInt,
  /** When it was taken or installed on this node, ms since the epoch. */
  time: NonNegativeInt
}).annotations({ identifier: "SnapshotSummary" })
export type SnapshotSummary = Schema.Schema.Type<typeof SnapshotSummary>

/** Counts of client requests by what they wait for (README, "Overload: busy"). */
export const WaitingCounts = Schema.Struct({
  writes: NonNegativeInt,
  reads: NonNegativeInt,
  leases: NonNegativeInt,
  forwards: NonNegativeInt
}).annotations({ identifier: "WaitingCounts" })
export type WaitingCounts = Schema.Schema.Type<typeof WaitingCounts>

export const StatusResponse = Schema.Struct({
  ok: Ok,
  /** This node's id. */
  id: Schema.String,
  cluster: Schema.String,
  /** The cluster's id, chosen by its first leader ("" until this node knows it). */
  clusterId: Schema.String,
  /**
   * Every member, with match index and lag from this node's view when it leads (null
   * otherwise: ask `admin.members` for the leader's view from any node).
   */
  members: Schema.Array(Member),
  role: RaftRole,
  term: NonNegativeInt,
  /** The leader this node knows of in `term`, or null. */
  leader: Schema.NullOr(Schema.String),
  commitIndex: NonNegativeInt,
  appliedIndex: NonNegativeInt,
  firstIndex: NonNegativeInt,
  lastIndex: NonNegativeInt,
  lastTerm: NonNegativeInt,
  /** Changes of leader this node has seen since it started. */
  leaderChanges: NonNegativeInt,
  /** Milliseconds since this node's Gateway started. */
  uptimeMs: NonNegativeInt,
  /** Index and term of the last entry compacted away (0 while nothing is): the log starts after it. */
  logBaseIndex: NonNegativeInt,
  logBaseTerm: NonNegativeInt,
  /** The last snapshot taken or installed here, or null. */
  snapshot: Schema.NullOr(SnapshotSummary),
  /** Requests this node holds while they wait, and those it answered `busy` since it started. */
  admission: Schema.Struct({ held: WaitingCounts, busy: WaitingCounts }),
  /**
   * Keys held here as of `appliedIndex`, the UTF-8 bytes of their keys and values, and the key
   * changes (puts, deletes, TTL expiries; each key a txn writes counts) this node applied since
   * its process started: a counter, the sum of /metrics' `archio_kv_writes_total`. Job
   * transitions are not in it (they move the revision, not this).
   */
  kv: Schema.Struct({ keys: NonNegativeInt, bytes: NonNegativeInt, writes: NonNegativeInt }),
  /** Replication progress of each follower; only on the leader. */
  peers: opt(Schema.Array(PeerProgress))
}).annotations({ identifier: "StatusResponse" })
export type StatusResponse = Schema.Schema.Type<typeof StatusResponse>

/** No fields: the members as the leader sees them (any node answers). */
export const MembersRequest = emptyRequest().annotations({ identifier: "MembersRequest" })
export type MembersRequest = Schema.Schema.Type<typeof MembersRequest>

export const MembersResponse = Schema.Struct({
  ok: Ok,
  members: Schema.Array(Member),
  /** The leader whose view this is, or null when none is known (then every matchIndex and lag is null). */
  leader: Schema.NullOr(Schema.String),
  /** The answering node's term. */
  term: NonNegativeInt,
  /** The node that answered: the leader, unless none is known. */
  ...AnsweredBy
}).annotations({ identifier: "MembersResponse" })
export type MembersResponse = Schema.Schema.Type<typeof MembersResponse>

/** No fields: take a snapshot now on the node that answers (and compact its log behind it). */
export const SnapshotRequest = emptyRequest().annotations({ identifier: "SnapshotRequest" })
export type SnapshotRequest = Schema.Schema.Type<typeof SnapshotRequest>

export const SnapshotResponse = Schema.Struct({
  ok: Ok,
  ...AnsweredBy,
  /** Log index and term of the applied state the snapshot holds. */
  index: NonNegativeInt,
  term: NonNegativeInt,
  /** Bytes in the snapshot format. */
  size: NonNegativeInt,
  /** Hex SHA-256 of those bytes (the snapshot's trailer). */
  checksum: Schema.String,
  /** When it was taken, ms since the epoch (the node's clock). */
  time: NonNegativeInt
}).annotations({ identifier: "SnapshotResponse" })
export type SnapshotResponse = Schema.Schema.Type<typeof SnapshotResponse>

/** No fields: open a backup session on the node that answers (a consistent view of its applied state). */
export const BackupRequest = emptyRequest().annotations({ identifier: "BackupRequest" })
export type BackupRequest = Schema.Schema.Type<typeof BackupRequest>

export const BackupResponse = Schema.Struct({
  ok: Ok,
  /** Send it with every `admin.backupChunk`; it names the node that holds the session (`<node>:<n>`). */
  session: Schema.String,
  ...AnsweredBy,
  /** Log index and term of the state being backed up. */
  index: NonNegativeInt,
  term: NonNegativeInt,
  /** Bytes per chunk (the last chunk may be shorter). */
  chunkBytes: PositiveInt
}).annotations({ identifier: "BackupResponse" })
export type BackupResponse = Schema.Schema.Type<typeof BackupResponse>

const backupSessionPattern = /^[A-Za-z0-9_-]{1,64}:[0-9]{1,15}$/

/** A backup session id from an `admin.backup` reply: `<node>:<n>`. */
export const BackupSession = Schema.String.annotations(expecting("a backup session id")).pipe(
  Schema.filter(
    (s) => backupSessionPattern.test(s) || `expected a session id from an admin.backup reply ("<node>:<n>"), got ${JSON.stringify(s)}`
  )
).annotations({ identifier: "BackupSession" })

/** The node holding a backup session (the part of its id before ":"). */
export const backupSessionNode = (session: string): string => session.slice(0, session.indexOf(":"))

/**
 * The next chunk of a backup: `offset` is the number of bytes received so far (0 first). Asking
 * again for the offset of the chunk just received gets the same bytes (a retry).
 */
export const BackupChunkRequest = request({
  session: BackupSession,
  offset: NonNegativeInt
}).annotations({ identifier: "BackupChunkRequest" })
export type BackupChunkRequest = Schema.Schema.Type<typeof BackupChunkRequest>

export const BackupChunkResponse = Schema.Struct({
  ok: Ok,
  offset: NonNegativeInt,
  /** Base64 of up to `chunkBytes` bytes of the snapshot, from `offset`. */
  data: Schema.String,
  /** True on the last chunk: then `size` and `checksum` (hex SHA-256) describe the whole stream. */
  done: Schema.Boolean,
  size: opt(NonNegativeInt),
  checksum: opt(Schema.String),
  ...AnsweredBy
}).annotations({ identifier: "BackupChunkResponse" })
export type BackupChunkResponse = Schema.Schema.Type<typeof BackupChunkResponse>

/** A node id as `--id` takes it: 1-64 letters, digits, `_` or `-`. */
export const NodeIdName = Schema.String.annotations(expecting("a node id")).pipe(
  Schema.filter((s) => validToken(s) || `expected a node id (1-64 letters, digits, "_" or "-"), got ${JSON.stringify(s)}`)
).annotations({ identifier: "NodeIdName" })

/**
 * Move leadership to voter `id`, or (no `id`) to the most caught-up other voter. Any node takes
 * it; a follower passes it to the leader, which answers once the new leader has taken over.
 */
export const TransferRequest = request({
  id: opt(NodeIdName)
}).annotations({ identifier: "TransferRequest" })
export type TransferRequest = Schema.Schema.Type<typeof TransferRequest>

export const TransferResponse = Schema.Struct({
  ok: Ok,
  /** The node that leads now: the one named, or the one chosen. */
  leader: Schema.String,
  /** Its term. */
  term: NonNegativeInt,
  /** Milliseconds from the old leader taking the request to hearing from the new one. */
  ms: NonNegativeInt,
  /** The old leader, which handed over and answered. */
  ...AnsweredBy
}).annotations({ identifier: "TransferResponse" })
export type TransferResponse = Schema.Schema.Type<typeof TransferResponse>

/**
 * `admin.add` (as a learner), `admin.promote` (a caught-up learner to voter), `admin.remove`
 * (a voter, the leader included, or a learner): one member at a time. Any node takes it; a
 * follower passes it to the leader, which answers once the change is committed and applied.
 */
export const MembershipChangeRequest = request({
  id: NodeIdName
}).annotations({ identifier: "MembershipChangeRequest" })
export type MembershipChangeRequest = Schema.Schema.Type<typeof MembershipChangeRequest>

export const MembershipChangeResponse = Schema.Struct({
  ok: Ok,
  /** The members once the change took effect (as the leader saw them when it answered). */
  members: Schema.Array(Member),
  /** The cluster's id (protocol/membership.ts). */
  clusterId: Schema.String,
  /** The log index of the configuration now in effect; false `changed`: it already was. */
  index: NonNegativeInt,
  changed: Schema.Boolean,
  /** The leader that took the change and answered. */
  ...AnsweredBy
}).annotations({ identifier: "MembershipChangeResponse" })
export type MembershipChangeResponse = Schema.Schema.Type<typeof MembershipChangeResponse>

// ---------------------------------------------------------------------------------------------
// errors and the endpoint table

const codes = Object.keys(errorCodes) as [ErrorCode, ...Array<ErrorCode>]

/** The body of every error reply (`protocol/errors.ts`). */
export const ErrorBody = Schema.Struct({
  ok: Schema.Literal(false),
  error: Schema.Struct({
    code: Schema.Literal(...codes),
    message: Schema.String,
    detail: opt(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
  })
}).annotations({ identifier: "ErrorBody" })
export type ErrorBody = Schema.Schema.Type<typeof ErrorBody>

/** Request and reply schema of every endpoint, by subject group and operation. */
export const endpoints = {
  kv: {
    put: { request: KvPutRequest, response: KvPutResponse },
    get: { request: KvGetRequest, response: KvGetResponse },
    del: { request: KvDelRequest, response: KvDelResponse },
    cas: { request: KvCasRequest, response: KvCasResponse },
    scan: { request: KvScanRequest, response: KvScanResponse },
    txn: { request: KvTxnRequest, response: KvTxnResponse }
  },
  jobs: {
    enqueue: { request: EnqueueRequest, response: EnqueueResponse },
    enqueueBatch: { request: EnqueueBatchRequest, response: EnqueueBatchResponse },
    lease: { request: LeaseRequest, response: LeaseResponse },
    ack: { request: AckRequest, response: JobWriteResponse },
    ackBatch: { request: AckBatchRequest, response: AckBatchResponse },
    fail: { request: FailRequest, response: FailResponse },
    extend: { request: ExtendRequest, response: ExtendResponse },
    release: { request: ReleaseRequest, response: JobWriteResponse },
    get: { request: JobGetRequest, response: JobGetResponse },
    cancel: { request: CancelRequest, response: JobWriteResponse },
    retry: { request: RetryRequest, response: JobWriteResponse },
    list: { request: ListRequest, response: ListResponse },
    stats: { request: StatsRequest, response: StatsResponse },
    purge: { request: PurgeRequest, response: PurgeResponse }
  },
  admin: {
    status: { request: StatusRequest, response: StatusResponse },
    members: { request: MembersRequest, response: MembersResponse },
    snapshot: { request: SnapshotRequest, response: SnapshotResponse },
    backup: { request: BackupRequest, response: BackupResponse },
    backupChunk: { request: BackupChunkRequest, response: BackupChunkResponse },
    transfer: { request: TransferRequest, response: TransferResponse },
    add: { request: MembershipChangeRequest, response: MembershipChangeResponse },
    promote: { request: MembershipChangeRequest, response: MembershipChangeResponse },
    remove: { request: MembershipChangeRequest, response: MembershipChangeResponse }
  }
} as const
