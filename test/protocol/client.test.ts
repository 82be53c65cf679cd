import { Either, Schema } from "effect"
import t from "tap"
import * as C from "../../protocol/client.ts"
import type { ArchioError, ErrorCode } from "../../protocol/errors.ts"
import { archioError, toEnvelope } from "../../protocol/errors.ts"
import { encodeJson, makeDecoder } from "../../protocol/json.ts"
import { maxKeyBytes, maxRequestBytes, maxValueBytes } from "../../protocol/limits.ts"

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

type Decoder = (bytes: Uint8Array) => Either.Either<unknown, ArchioError>

/** Decodes `input` as JSON bytes; expects success and the same value back. */
const accepts = (t: Tap, decode: Decoder, input: unknown, label = JSON.stringify(input).slice(0, 80)): void => {
  const r = decode(json(input))
  if (Either.isLeft(r)) t.fail(`${label}: ${r.left.code}: ${r.left.message}`)
  else t.same(r.right, input, label)
}

/** Expects an error with `code` whose message contains `message`. */
const rejects = (t: Tap, decode: Decoder, input: unknown, code: ErrorCode, message: string | RegExp, label?: string): void => {
  const bytes = input instanceof Uint8Array ? input : json(input)
  const name = label ?? (input instanceof Uint8Array ? `${bytes.length} bytes` : JSON.stringify(input).slice(0, 80))
  const r = decode(bytes)
  if (Either.isRight(r)) {
    t.fail(`${name}: accepted`)
    return
  }
  t.equal(r.left.code, code, `${name}: code`)
  if (typeof message === "string") t.equal(r.left.message, message, `${name}: message`)
  else t.match(r.left.message, message, `${name}: message`)
}

interface Tap {
  fail(message: string): unknown
  same(a: unknown, b: unknown, message: string): unknown
  equal(a: unknown, b: unknown, message: string): unknown
  match(a: unknown, b: RegExp, message: string): unknown
}

const put = makeDecoder(C.KvPutRequest)

t.test("kv requests: valid examples", async (t) => {
  accepts(t, put, { key: "users/42", value: "{\"name\":\"ada\"}" })
  accepts(t, put, { key: "k", value: "", ttl: 60000, token: { client: "app-1", seq: 1 } })
  accepts(t, put, { key: "ключ/😀", value: "значение" }, "UTF-8 keys and values")
  const get = makeDecoder(C.KvGetRequest)
  accepts(t, get, { key: "k" })
  accepts(t, get, { key: "k", consistency: "stale" })
  accepts(t, get, { key: "k", consistency: "linearizable" })
  const del = makeDecoder(C.KvDelRequest)
  accepts(t, del, { key: "k" })
  accepts(t, del, { key: "k", token: { client: "c", seq: 9 } })
  const cas = makeDecoder(C.KvCasRequest)
  accepts(t, cas, { key: "k", value: "v", expectedRevision: 0 })
  accepts(t, cas, { key: "k", value: "v", expectedRevision: 17, ttl: 5, token: { client: "c", seq: 2 } })
  accepts(t, cas, { key: "k", value: "v" })
  const scan = makeDecoder(C.KvScanRequest)
  accepts(t, scan, {})
  accepts(t, scan, { prefix: "users/", limit: 1000, keysOnly: true, consistency: "stale" })
  accepts(t, scan, { prefix: "" })
  accepts(t, scan, { start: "a", end: "m", limit: 1, cursor: "opaque" })
  accepts(t, scan, { start: "" })
  const txn = makeDecoder(C.KvTxnRequest)
  accepts(t, txn, { compare: [], success: [], failure: [] })
  accepts(t, txn, {
    compare: [
      { key: "a", target: "value", op: "==", value: "1" },
      { key: "a", target: "mod", op: "<", value: 10 },
      { key: "b", target: "create", op: "==", value: 0 },
      { key: "c", target: "version", op: ">", value: 2 },
      { key: "c", target: "version", op: "!=", value: 0 }
    ],
    success: [{ op: "put", key: "a", value: "2" }, { op: "put", key: "t", value: "x", ttl: 1000 }, { op: "del", key: "b" }],
    failure: [{ op: "del", key: "a" }],
    token: { client: "c", seq: 3 }
  })
})

t.test("kv requests: wrong types, unknown and missing fields name the field", async (t) => {
  rejects(t, put, { key: 42, value: "x" }, "bad_request", "key: expected a non-empty string, got 42")
  rejects(t, put, { key: "", value: "x" }, "bad_request", "key: expected a non-empty string, got \"\"")
  rejects(t, put, { key: "a\u0000b", value: "x" }, "bad_request", "key: must not contain NUL (\\u0000)")
  rejects(t, put, { key: "a\ud800", value: "x" }, "bad_request", "key: must be valid UTF-8 (it contains a lone surrogate)")
  rejects(t, put, { key: "k", value: 5 }, "bad_request", "value: expected a string, got 5")
  rejects(t, put, { key: "k", value: { a: 1 } }, "bad_request", "value: expected a string, got an object")
  rejects(t, put, { key: "k", value: "\udfff" }, "bad_request", "value: must be valid UTF-8 (it contains a lone surrogate)")
  rejects(t, put, { key: "k", vaule: "x" }, "bad_request", "unknown field \"vaule\"; missing required field \"value\"")
  rejects(t, put, { key: "k", value: "v", ttl: 0 }, "bad_request", "ttl: expected a positive integer, got 0")
  rejects(t, put, { key: "k", value: "v", ttl: 1.5 }, "bad_request", "ttl: expected a positive integer, got 1.5")
  rejects(t, put, { key: "k", value: "v", ttl: null }, "bad_request", "ttl: expected a positive integer, got null")
  rejects(t, put, { key: "k", value: "v", token: "t" }, "bad_request", "token: expected a JSON object, got \"t\"")
  rejects(
    t, put, { key: "k", value: "v", token: { client: "", seq: 0, x: 1 } }, "bad_request",
    "token: unknown field \"x\"; token.client: expected a non-empty string, got \"\"; token.seq: expected a positive integer, got 0"
  )
  rejects(t, put, { key: "k", value: "v", token: { seq: 1 } }, "bad_request", "token: missing required field \"client\"")
  rejects(t, put, new Uint8Array(0), "bad_request", "missing required field \"key\"; missing required field \"value\"", "empty payload")
  rejects(t, put, null, "bad_request", "expected a JSON object, got null")
  rejects(t, put, [], "bad_request", "expected a JSON object, got an array")
  rejects(t, put, "k=v", "bad_request", "expected a JSON object, got \"k=v\"")
  rejects(t, put, new TextEncoder().encode("{key: 1}"), "bad_request", /^invalid JSON: /, "unquoted key")

  const get = makeDecoder(C.KvGetRequest)
  rejects(t, get, { key: "k", consistency: "strong" }, "bad_request", "consistency: expected one of \"linearizable\", \"stale\", got \"strong\"")
  const cas = makeDecoder(C.KvCasRequest)
  rejects(t, cas, { key: "k", value: "v", expectedRevision: -1 }, "bad_request", "expectedRevision: expected a non-negative integer, got -1")
  rejects(t, cas, { key: "k", value: "v", expectedRevision: "3" }, "bad_request", "expectedRevision: expected a non-negative integer, got \"3\"")

  const scan = makeDecoder(C.KvScanRequest)
  rejects(t, scan, { prefix: "a", start: "b" }, "bad_request", "prefix: cannot be combined with start/end: use one form")
  rejects(t, scan, { prefix: "a", end: "b" }, "bad_request", "prefix: cannot be combined with start/end: use one form")
  rejects(t, scan, { limit: 0 }, "bad_request", "limit: expected an integer from 1 to 1000, got 0")
  rejects(t, scan, { limit: 1001 }, "bad_request", "limit: expected an integer from 1 to 1000, got 1001")
  rejects(t, scan, { limit: 10.5 }, "bad_request", "limit: expected an integer from 1 to 1000, got 10.5")
  rejects(t, scan, { keysOnly: "yes" }, "bad_request", "keysOnly: expected true or false, got \"yes\"")
  rejects(t, scan, { cursor: "" }, "bad_request", "cursor: expected a non-empty string, got \"\"")
  rejects(t, scan, { start: "a\u0000" }, "bad_request", "start: must not contain NUL (\\u0000)")
  rejects(t, scan, { end: 3 }, "bad_request", "end: expected a string, got 3")
  rejects(t, scan, { prefx: "a" }, "bad_request", "unknown field \"prefx\"")

  const txn = makeDecoder(C.KvTxnRequest)
  rejects(t, txn, { compare: [], success: [] }, "bad_request", "missing required field \"failure\"")
  rejects(t, txn, { compare: {}, success: [], failure: [] }, "bad_request", "compare: expected an array, got an object")
  rejects(
    t, txn, { compare: [{ key: "k", target: "mod", op: "==", value: "x" }], success: [], failure: [] }, "bad_request",
    "compare[0].value: expected a non-negative integer, got \"x\""
  )
  rejects(
    t, txn, { compare: [{ key: "k", target: "value", op: "==", value: 1 }], success: [], failure: [] }, "bad_request",
    "compare[0].value: expected a string, got 1"
  )
  rejects(
    t, txn, { compare: [{ key: "k", target: "size", op: "=", value: 1 }], success: [], failure: [] }, "bad_request",
    "compare[0].target: expected one of \"value\", \"mod\", \"create\", \"version\", got \"size\""
  )
  rejects(
    t, txn, { compare: [{ key: "k", target: "mod", op: "=", value: 1 }], success: [], failure: [] }, "bad_request",
    "compare[0].op: expected one of \"==\", \"!=\", \">\", \"<\", got \"=\""
  )
  rejects(t, txn, { compare: [7], success: [], failure: [] }, "bad_request", "compare[0]: expected a compare object {\"key\",\"target\",\"op\",\"value\"}, got 7")
  rejects(t, txn, { compare: [], success: [{ op: "put", key: "k" }], failure: [] }, "bad_request", "success[0]: missing required field \"value\"")
  rejects(t, txn, { compare: [], success: [], failure: [{ op: "del", key: "k", value: "v" }] }, "bad_request", "failure[0]: unknown field \"value\"")
  rejects(t, txn, { compare: [], success: [{ op: "get", key: "k" }], failure: [] }, "bad_request", "success[0].op: expected one of \"put\", \"del\", got \"get\"")
  rejects(t, txn, { compare: [], success: ["put"], failure: [] }, "bad_request", "success[0]: expected an operation {\"op\":\"put\",...} or {\"op\":\"del\",...}, got \"put\"")
  rejects(
    t, txn, { compare: [], success: Array.from({ length: 129 }, () => ({ op: "del", key: "k" })), failure: [] }, "bad_request",
    "success: expected at most 128 items, got 129"
  )
})

t.test("kv requests: oversized key, value and request are too_large naming the field", async (t) => {
  accepts(t, put, { key: "k".repeat(maxKeyBytes), value: "v" }, "key of exactly maxKeyBytes")
  rejects(t, put, { key: "k".repeat(maxKeyBytes + 1), value: "v" }, "too_large", "key: too large: 1025 bytes, the limit is 1024")
  rejects(t, put, { key: "日".repeat(342), value: "v" }, "too_large", "key: too large: 1026 bytes, the limit is 1024", "342 characters, 1026 bytes")
  accepts(t, put, { key: "k", value: "v".repeat(maxValueBytes) }, "value of exactly maxValueBytes")
  rejects(t, put, { key: "k", value: "v".repeat(maxValueBytes + 1) }, "too_large", "value: too large: 262145 bytes, the limit is 262144")
  rejects(t, put, { key: "k", value: "é".repeat(maxValueBytes / 2 + 1) }, "too_large", "value: too large: 262146 bytes, the limit is 262144", "counted in UTF-8 bytes")
  rejects(t, put, { key: "k", value: "v".repeat(maxRequestBytes) }, "too_large", /^request is \d+ bytes, over the 524288-byte limit$/, "request")
  const txn = makeDecoder(C.KvTxnRequest)
  rejects(
    t, txn, { compare: [], success: [{ op: "put", key: "k", value: "x".repeat(maxValueBytes + 1) }], failure: [] }, "too_large",
    "success[0].value: too large: 262145 bytes, the limit is 262144"
  )
  rejects(t, makeDecoder(C.KvScanRequest), { prefix: "p".repeat(maxKeyBytes + 1) }, "too_large", "prefix: too large: 1025 bytes, the limit is 1024")
  rejects(t, put, { key: "k", value: "v", token: { client: "c".repeat(257), seq: 1 } }, "too_large", "token.client: too large: 257 bytes, the limit is 256")
})

t.test("jobs requests", async (t) => {
  const enqueue = makeDecoder(C.EnqueueRequest)
  accepts(t, enqueue, { queue: "emails", payload: { to: "a@b.c" } })
  accepts(t, enqueue, { queue: "q_1-x", payload: null, priority: -5, delay: 1000, maxAttempts: 5, leaseMs: 30000, uniqueKey: "u1", token: { client: "c", seq: 1 } })
  accepts(t, enqueue, { queue: "q", payload: [1, "two"], runAt: 1_700_000_000_000, backoff: { type: "exponential", delay: 100, max: 60000, jitter: 0.2 } })
  accepts(t, enqueue, { queue: "q", payload: 0, backoff: { type: "fixed", delay: 0 } })
  rejects(t, enqueue, { queue: "q" }, "bad_request", "missing required field \"payload\"")
  rejects(t, enqueue, { queue: "a.b", payload: 1 }, "bad_request", "queue: expected a queue name (1-64 letters, digits, \"_\" or \"-\"), got \"a.b\"")
  rejects(t, enqueue, { queue: "", payload: 1 }, "bad_request", /^queue: expected a queue name/)
  rejects(t, enqueue, { queue: 5, payload: 1 }, "bad_request", "queue: expected a queue name, got 5")
  rejects(t, enqueue, { queue: "q", payload: 1, delay: 1, runAt: 2 }, "bad_request", "runAt: cannot be combined with delay: use one")
  rejects(t, enqueue, { queue: "q", payload: 1, priority: 2_000_000 }, "bad_request", "priority: expected an integer from -1000000 to 1000000, got 2000000")
  rejects(t, enqueue, { queue: "q", payload: 1, maxAttempts: 0 }, "bad_request", "maxAttempts: expected an integer from 1 to 1000, got 0")
  rejects(t, enqueue, { queue: "q", payload: 1, leaseMs: 0 }, "bad_request", "leaseMs: expected an integer number of milliseconds from 1 to 3600000, got 0")
  rejects(
    t, enqueue, { queue: "q", payload: 1, backoff: { type: "linear", delay: -1, jitter: 2 } }, "bad_request",
    "backoff.type: expected one of \"fixed\", \"exponential\", got \"linear\"; backoff.delay: expected a non-negative integer, got -1; backoff.jitter: expected a number from 0 to 1, got 2"
  )
  rejects(t, enqueue, { queue: "q", payload: 1, uniqueKey: "" }, "bad_request", "uniqueKey: expected a non-empty string, got \"\"")
  rejects(t, enqueue, { queue: "q", payload: 1, id: "x" }, "bad_request", "unknown field \"id\"")
  // Any JSON, but nested at most maxJsonDepth deep: the node writes payloads back with a
  // recursive JSON.stringify, and 5000 levels of brackets (10 KB) overflowed its stack.
  const nested = (depth: number): unknown => {
    let v: unknown = 0
    for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { a: v }
    return v
  }
  accepts(t, enqueue, { queue: "q", payload: nested(100) }, "a payload nested 100 deep")
  rejects(t, enqueue, { queue: "q", payload: nested(101) }, "bad_request", "payload: arrays and objects nested more than 100 deep (the limit is 100)")
  const brackets = new TextEncoder().encode(`{"queue":"q","payload":${"[".repeat(5_000)}${"]".repeat(5_000)}}`)
  rejects(t, enqueue, brackets, "bad_request", /^payload: arrays and objects nested more than 100 deep/, "a payload of 5000 brackets")
  rejects(t, makeDecoder(C.AckRequest), { id: "1", token: 1, result: nested(101) }, "bad_request", /^result: arrays and objects nested/)
  rejects(t, makeDecoder(C.ExtendRequest), { id: "1", token: 1, progress: nested(101) }, "bad_request", /^progress: arrays and objects nested/)

  const batch = makeDecoder(C.EnqueueBatchRequest)
  accepts(t, batch, { jobs: [{ queue: "a", payload: 1 }, { queue: "b", payload: 2, delay: 5 }], token: { client: "c", seq: 4 } })
  rejects(t, batch, { jobs: [] }, "bad_request", "jobs: expected at least 1 item, got none")
  rejects(t, batch, { jobs: [{ queue: "a", payload: 1, token: { client: "c", seq: 1 } }] }, "bad_request", "jobs[0]: unknown field \"token\"")
  rejects(t, batch, { jobs: [{ queue: "a", payload: 1, delay: 1, runAt: 1 }] }, "bad_request", "jobs[0].runAt: cannot be combined with delay: use one")
  rejects(t, batch, { jobs: Array.from({ length: 1001 }, () => ({ queue: "a", payload: 1 })) }, "bad_request", "jobs: expected at most 1000 items, got 1001")

  const lease = makeDecoder(C.LeaseRequest)
  accepts(t, lease, { queues: ["a", "b"], workerId: "w-1" })
  accepts(t, lease, { queues: ["a"], workerId: "w", max: 10, leaseMs: 60000, waitMs: 30000 })
  rejects(t, lease, { queues: [], workerId: "w" }, "bad_request", "queues: expected at least 1 item, got none")
  rejects(t, lease, { queues: "a", workerId: "w" }, "bad_request", "queues: expected an array, got \"a\"")
  rejects(
    t, lease, { queues: ["a", "b c"], workerId: "", waitMs: 70000 }, "bad_request",
    "queues[1]: expected a queue name (1-64 letters, digits, \"_\" or \"-\"), got \"b c\"; workerId: expected a non-empty string, got \"\"; waitMs: expected an integer number of milliseconds from 0 to 60000, got 70000"
  )
  rejects(t, lease, { queues: ["a"] }, "bad_request", "missing required field \"workerId\"")
  rejects(t, lease, { queues: Array.from({ length: 33 }, (_, i) => `q${i}`), workerId: "w" }, "bad_request", "queues: expected at most 32 items, got 33")

  const ack = makeDecoder(C.AckRequest)
  accepts(t, ack, { id: "job-1", token: 12 })
  accepts(t, ack, { id: "job-1", token: 0, result: { sent: true } })
  rejects(t, ack, { id: "job-1" }, "bad_request", "missing required field \"token\"")
  rejects(t, ack, { id: "job-1", token: -1 }, "bad_request", "token: expected a non-negative integer, got -1")
  rejects(t, ack, { id: "", token: 1 }, "bad_request", "id: expected a non-empty string, got \"\"")
  rejects(t, ack, { id: "j".repeat(129), token: 1 }, "too_large", "id: too large: 129 bytes, the limit is 128")

  const fail = makeDecoder(C.FailRequest)
  accepts(t, fail, { id: "j", token: 1, error: "SMTP 550" })
  accepts(t, fail, { id: "j", token: 1, error: "", retryable: false })
  rejects(t, fail, { id: "j", token: 1 }, "bad_request", "missing required field \"error\"")
  rejects(t, fail, { id: "j", token: 1, error: { code: 1 } }, "bad_request", "error: expected a string, got an object")
  rejects(t, fail, { id: "j", token: 1, error: "e", retryable: "no" }, "bad_request", "retryable: expected true or false, got \"no\"")
  rejects(t, fail, { id: "j", token: 1, error: "e".repeat(16 * 1024 + 1) }, "too_large", "error: too large: 16385 bytes, the limit is 16384")

  const extend = makeDecoder(C.ExtendRequest)
  accepts(t, extend, { id: "j", token: 1 })
  accepts(t, extend, { id: "j", token: 1, leaseMs: 5000, progress: { done: 3, of: 10 } })
  rejects(t, extend, { id: "j", token: 1, leaseMs: 3_600_001 }, "bad_request", /^leaseMs: expected an integer number of milliseconds from 1 to 3600000/)

  for (const schema of [C.JobGetRequest, C.CancelRequest, C.RetryRequest]) {
    const d = makeDecoder(schema)
    accepts(t, d, { id: "j" })
    rejects(t, d, { id: 1 }, "bad_request", "id: expected a non-empty string, got 1")
    rejects(t, d, { id: "j", force: true }, "bad_request", "unknown field \"force\"")
  }

  const list = makeDecoder(C.ListRequest)
  accepts(t, list, { queue: "q" })
  accepts(t, list, { queue: "q", state: "failed", limit: 50, cursor: "c" })
  rejects(t, list, { queue: "q", state: "done" }, "bad_request", /^state: expected one of "scheduled", "ready", "leased", "completed", "failed", "dead", "cancelled", got "done"$/)
  rejects(t, list, {}, "bad_request", "missing required field \"queue\"")

  const stats = makeDecoder(C.StatsRequest)
  accepts(t, stats, {})
  accepts(t, stats, { queue: "q" })
  t.same(Either.getOrThrow(stats(new Uint8Array(0))), {}, "empty payload")
  rejects(t, stats, { queue: "a b" }, "bad_request", /^queue: expected a queue name/)
})

t.test("admin status", async (t) => {
  const status = makeDecoder(C.StatusRequest)
  t.same(Either.getOrThrow(status(new Uint8Array(0))), {}, "empty payload")
  accepts(t, status, {})
  rejects(t, status, { verbose: true }, "bad_request", "unknown field \"verbose\"")
  rejects(t, status, { a: 1, b: 2 }, "bad_request", "unknown field \"a\"; unknown field \"b\"")
  rejects(t, status, [], "bad_request", "expected a JSON object, got an array")
  rejects(t, status, null, "bad_request", "expected a JSON object, got null")
  rejects(t, status, 3, "bad_request", "expected a JSON object, got 3")
})

t.test("admin members", async (t) => {
  const members = makeDecoder(C.MembersRequest)
  t.same(Either.getOrThrow(members(new Uint8Array(0))), {}, "empty payload")
  accepts(t, members, {})
  rejects(t, members, { id: "n1" }, "bad_request", "unknown field \"id\"")
  const reply = Schema.decodeUnknownEither(C.MembersResponse, { onExcessProperty: "error" })
  t.ok(Either.isRight(reply({ ok: true, members: [{ id: "n1", role: "voter", matchIndex: null, lag: null }], leader: null, term: 2, node: "n1" })), "no leader's view")
  t.ok(Either.isLeft(reply({ ok: true, members: [{ id: "n1", role: "observer", matchIndex: 1, lag: 0 }], leader: "n1", term: 2, node: "n1" })), "an unknown role")
  t.ok(Either.isLeft(reply({ ok: true, members: [{ id: "n1", role: "voter", matchIndex: 1, lag: -1 }], leader: "n1", term: 2, node: "n1" })), "a negative lag")
})

t.test("admin transfer", async (t) => {
  const transfer = makeDecoder(C.TransferRequest)
  t.same(Either.getOrThrow(transfer(new Uint8Array(0))), {}, "empty payload: the most caught-up voter")
  accepts(t, transfer, {})
  accepts(t, transfer, { id: "n2" })
  rejects(t, transfer, { id: "" }, "bad_request", /^id: expected a node id/)
  rejects(t, transfer, { id: "n 2" }, "bad_request", /^id: expected a node id \(1-64 letters, digits, "_" or "-"\), got "n 2"$/)
  rejects(t, transfer, { id: 2 }, "bad_request", /^id: expected a node id, got 2$/)
  rejects(t, transfer, { to: "n2" }, "bad_request", "unknown field \"to\"")
})

t.test("request schemas reject unknown fields on their own, without makeDecoder's options", async (t) => {
  t.ok(Either.isLeft(Schema.decodeUnknownEither(C.KvPutRequest)({ key: "k", value: "v", extra: 1 })), "top level")
  t.ok(Either.isLeft(Schema.decodeUnknownEither(C.KvPutRequest)({ key: "k", value: "v", token: { client: "c", seq: 1, extra: 1 } })), "nested")
  t.ok(Either.isLeft(Schema.decodeUnknownEither(C.StatusRequest)({ extra: 1 })), "empty request")
})

/** Round-trips a reply through JSON and the reply schema (replies ignore unknown fields). */
const replyRoundTrip = <A, I>(t: Tap, schema: Schema.Schema<A, I, never>, reply: A, label: string): void => {
  const back = Schema.decodeUnknownEither(schema)(JSON.parse(new TextDecoder().decode(encodeJson(reply))))
  if (Either.isLeft(back)) t.fail(`${label}: ${back.left.message}`)
  else t.same(back.right, reply, label)
}

t.test("replies: every endpoint's reply schema accepts a sample and the table is complete", async (t) => {
  const job: C.JobView = {
    id: "j1", queue: "q", state: "completed", payload: { a: 1 }, priority: 0, attempts: 1, maxAttempts: 3,
    runAt: 1_700_000_000_000, createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_500, finishedAt: 1_700_000_000_500, result: "ok"
  }
  const samples: { readonly [G in keyof typeof C.endpoints]: { readonly [O in keyof (typeof C.endpoints)[G]]: unknown } } = {
    kv: {
      put: { ok: true, revision: 5, key: "k", prevRevision: 4, node: "n1" },
      get: { ok: true, key: "k", value: "v", createRevision: 2, modRevision: 5, version: 3, revision: 5, consistency: "linearizable", node: "n1" },
      del: { ok: true, revision: 6, deleted: false, key: "k", node: "n1" },
      cas: { ok: true, revision: 7, key: "k", node: "n1" },
      scan: { ok: true, items: [{ key: "a", value: "1", createRevision: 1, modRevision: 1, version: 1 }, { key: "b", createRevision: 2, modRevision: 3, version: 2 }], cursor: "next", revision: 8, consistency: "stale", node: "n2" },
      txn: { ok: true, succeeded: true, revision: 8, node: "n1" }
    },
    jobs: {
      enqueue: { ok: true, id: "j1", revision: 9, existing: false, node: "n1" },
      enqueueBatch: { ok: true, ids: ["j2", "j3"], existing: [false, true], revision: 10, node: "n1" },
      lease: { ok: true, jobs: [{ id: "j1", queue: "q", payload: 1, attempt: 1, token: 11, leaseUntil: 1_700_000_030_000 }], node: "n1" },
      ack: { ok: true, revision: 12, node: "n1" },
      fail: { ok: true, revision: 13, willRetry: true, runAt: 1_700_000_001_000, node: "n1" },
      extend: { ok: true, revision: 14, leaseUntil: 1_700_000_060_000, node: "n1" },
      release: { ok: true, revision: 14, node: "n1" },
      ackBatch: { ok: true, revision: 15, results: [{ ok: true, revision: 15 }, { ok: false, code: "lease_lost", message: "gone", detail: { state: "leased" } }], node: "n1" },
      get: { ok: true, job, consistency: "linearizable", node: "n2" },
      cancel: { ok: true, revision: 15, node: "n1" },
      retry: { ok: true, revision: 16, node: "n1" },
      list: { ok: true, jobs: [job], cursor: "c2", consistency: "linearizable", node: "n2" },
      stats: { ok: true, queues: [{ queue: "q", scheduled: 0, ready: 1, leased: 2, completed: 10, failed: 1, dead: 0, cancelled: 0, oldestReadyMs: 5, enqueuedLastMinute: 12, completedLastMinute: 10, failedLastMinute: 1 }], time: 1_700_000_000_000, consistency: "linearizable", node: "n2" },
      purge: { ok: true, revision: 17, purged: 3, node: "n1" }
    },
    admin: {
      status: {
        ok: true, id: "n1", cluster: "dev", clusterId: "0f3a9c2e4b5d6a71", members: [{ id: "n1", role: "voter", matchIndex: 101, lag: 0 }, { id: "n2", role: "learner", matchIndex: 99, lag: 2 }], role: "leader", term: 4, leader: "n1", commitIndex: 100, appliedIndex: 100,
        firstIndex: 1, lastIndex: 101, lastTerm: 4, leaderChanges: 1, uptimeMs: 5_000, logBaseIndex: 0, logBaseTerm: 0,
        snapshot: { index: 90, term: 4, size: 2048, time: 1_700_000_000_000 },
        admission: { held: { writes: 12, reads: 3, leases: 1, forwards: 0 }, busy: { writes: 40, reads: 0, leases: 2, forwards: 7 } },
        kv: { keys: 3, bytes: 120, writes: 57 },
        peers: [{ id: "n2", nextIndex: 102, matchIndex: 101, state: "replicate" }, { id: "n3", nextIndex: 5, matchIndex: 0, state: "snapshot" }]
      },
      members: { ok: true, members: [{ id: "n1", role: "voter", matchIndex: 101, lag: 0 }, { id: "n2", role: "voter", matchIndex: 0, lag: 101 }], leader: "n1", term: 4, node: "n1" },
      snapshot: { ok: true, node: "n1", index: 100, term: 4, size: 4096, checksum: "ab".repeat(32), time: 1_700_000_000_000 },
      backup: { ok: true, session: "n1:3", node: "n1", index: 100, term: 4, chunkBytes: 262_144 },
      backupChunk: { ok: true, offset: 262_144, data: "QVJDSElPU1M=", done: true, size: 262_152, checksum: "cd".repeat(32), node: "n1" },
      transfer: { ok: true, leader: "n2", term: 5, ms: 12, node: "n1" },
      add: { ok: true, members: [{ id: "n1", role: "voter", matchIndex: 101, lag: 0 }, { id: "n4", role: "learner", matchIndex: 0, lag: 101 }], clusterId: "0f3a9c2e4b5d6a71", index: 101, changed: true, node: "n1" },
      promote: { ok: true, members: [{ id: "n1", role: "voter", matchIndex: 120, lag: 0 }, { id: "n4", role: "voter", matchIndex: 120, lag: 0 }], clusterId: "0f3a9c2e4b5d6a71", index: 120, changed: true, node: "n1" },
      remove: { ok: true, members: [{ id: "n4", role: "voter", matchIndex: 130, lag: 0 }], clusterId: "0f3a9c2e4b5d6a71", index: 125, changed: false, node: "n4" }
    }
  }
  for (const [group, ops] of Object.entries(C.endpoints)) {
    for (const [op, { response }] of Object.entries(ops)) {
      const sample = (samples as Record<string, Record<string, unknown>>)[group]?.[op]
      replyRoundTrip(t, response as Schema.Schema<unknown>, sample, `${group}.${op}`)
    }
  }
  replyRoundTrip(t, C.StatusResponse, {
    ok: true, id: "n2", cluster: "dev", clusterId: "", members: [{ id: "n1", role: "voter", matchIndex: null, lag: null }, { id: "n2", role: "voter", matchIndex: null, lag: null }], role: "follower", term: 4, leader: null, commitIndex: 0, appliedIndex: 0, firstIndex: 0, lastIndex: 0, lastTerm: 0,
    leaderChanges: 0, uptimeMs: 10, logBaseIndex: 0, logBaseTerm: 0, snapshot: null,
    admission: { held: { writes: 0, reads: 0, leases: 0, forwards: 0 }, busy: { writes: 0, reads: 0, leases: 0, forwards: 0 } },
    kv: { keys: 0, bytes: 0, writes: 0 }
  }, "follower status without peers")
  const lenient = Schema.decodeUnknownEither(C.KvPutResponse)({ ok: true, revision: 1, key: "k", node: "n1", addedLater: "x" })
  t.ok(Either.isRight(lenient), "replies ignore fields they do not know")
})

t.test("error bodies match the ErrorBody schema", async (t) => {
  const decode = Schema.decodeUnknownEither(C.ErrorBody, { onExcessProperty: "error" })
  const parse = (e: ArchioError) => decode(JSON.parse(new TextDecoder().decode(encodeJson(toEnvelope(e)))))
  t.ok(Either.isRight(parse(archioError("conflict", "revision is 7", { revision: 7 }))), "with detail")
  t.ok(Either.isRight(parse(archioError("timeout", "no reply in 5 s"))), "without detail")
  const fromDecoder = put(json({ key: 1 }))
  if (Either.isLeft(fromDecoder)) t.ok(Either.isRight(parse(fromDecoder.left)), "a decoder error")
  else t.fail("expected an error")
  t.ok(Either.isLeft(decode({ ok: false, error: { code: "teapot", message: "x" } })), "unknown codes are refused")
})
