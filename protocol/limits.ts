/**
 * The documented caps of the wire contract, in one place. Clients can rely on these numbers:
 * anything above them is refused with `too_large` (sizes) or `bad_request` (rules), never
 * truncated. Sizes are UTF-8 bytes unless said otherwise.
 */

/** A key: non-empty, well-formed UTF-8, no NUL, at most this many UTF-8 bytes. */
export const maxKeyBytes = 1024

/** A kv value (UTF-8 string) at most this many bytes; above is `too_large` naming the field. */
export const maxValueBytes = 256 * 1024

/** A whole client request payload; above is `too_large` before any parsing. */
export const maxRequestBytes = 512 * 1024

/**
 * Cap on the entries of one AppendEntries, as `protocol/raftCodec.ts` encodes them: the
 * replicator stops adding entries to a batch before this (`defaultTuning` in
 * `actors/raft/state.ts`). A quarter below nats-server's default `max_payload` (1 MiB) leaves
 * room for the message's header and the subject; a single entry is always below it because
 * requests are capped at `maxRequestBytes`.
 */
export const maxAppendBytes = 768 * 1024

/** Client ids in idempotency tokens (`token.client`) and worker ids, in UTF-8 bytes. */
export const maxClientIdBytes = 256

/** Compares and operations in one `txn` (each list), as etcd's default `--max-txn-ops`. */
export const maxTxnOps = 128

/** Items in one `scan` page / `jobs.list` page; the server uses `defaultPageLimit` when absent. */
export const maxPageLimit = 1000
export const defaultPageLimit = 100

/** Jobs in one `jobs.enqueueBatch`, and jobs handed out by one `jobs.lease`. */
export const maxBatchJobs = 1000

/** Queues named in one `jobs.lease`. */
export const maxLeaseQueues = 32

/** Longest lease a worker may ask for (1 hour), and the longest a lease request may park (1 minute). */
export const maxLeaseMs = 60 * 60 * 1000
export const maxLeaseWaitMs = 60 * 1000

/** Longest a finished job may be kept (`retainMs`): 90 days. */
export const maxRetainMs = 90 * 24 * 60 * 60 * 1000

/**
 * Arrays and objects nested in one free-form JSON value (a job's payload, result or progress),
 * the value itself counting 1. Deeper is `bad_request`: JSON.parse builds any depth, but the
 * node writes the value back with JSON.stringify, which recurses and runs out of stack a few
 * thousand levels down: before this cap, a 10 KB job payload of brackets stopped every node it reached.
 */
export const maxJsonDepth = 100

/** Job ids, scan/list cursors and failure messages, in UTF-8 bytes. */
export const maxJobIdBytes = 128
export const maxCursorBytes = 4096
export const maxErrorTextBytes = 16 * 1024

// ES2024 `String.prototype.isWellFormed` (Node >= 20; our lib setting is ES2023). A /\p{Cs}/u
// regex does the same, many times slower on long non-Latin-1 strings (BENCHMARKS.md).
const nativeIsWellFormed = (String.prototype as unknown as { isWellFormed: (this: string) => boolean }).isWellFormed

/** True when `s` is well-formed UTF-16 (no lone surrogate), i.e. encodes to UTF-8 losslessly. */
export const isWellFormed = (s: string): boolean => nativeIsWellFormed.call(s)

/**
 * UTF-8 length of `s` without encoding it (a lone surrogate counts 3 bytes, as the U+FFFD it
 * would become). Node's native count: far faster than a JS loop on long strings (BENCHMARKS.md).
 */
export const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8")

/** True when the UTF-8 length of `s` is at most `max`, counting only when the answer is not obvious. */
export const fitsUtf8 = (s: string, max: number): boolean =>
  s.length * 3 <= max || (s.length <= max && utf8Length(s) <= max)

/**
 * What is wrong with `key` as a key, in words, or undefined when it is a valid key. Size is
 * checked separately (`fitsUtf8(key, maxKeyBytes)`) because it maps to `too_large`.
 */
export const keyProblem = (key: string): string | undefined => {
  if (key.length === 0) return "expected a non-empty string, got \"\""
  if (key.includes("\u0000")) return "must not contain NUL (\\u0000)"
  if (!isWellFormed(key)) return "must be valid UTF-8 (it contains a lone surrogate)"
  return undefined
}

/** True for a valid key of allowed size. */
export const isValidKey = (key: string): boolean => keyProblem(key) === undefined && fitsUtf8(key, maxKeyBytes)

/**
 * True when `u` nests arrays and objects at most `max` deep (a string or number: 0, `[]`: 1).
 * Recurses at most `max` levels whatever the input: a value nested far deeper than the call
 * stack is refused, not a crash.
 */
export const nestsWithin = (u: unknown, max: number): boolean => {
  if (typeof u !== "object" || u === null) return true
  if (max <= 0) return false
  if (Array.isArray(u)) {
    for (let i = 0; i < u.length; i++) if (!nestsWithin(u[i], max - 1)) return false
    return true
  }
  const o = u as Record<string, unknown>
  for (const k in o) if (Object.hasOwn(o, k) && !nestsWithin(o[k], max - 1)) return false
  return true
}
