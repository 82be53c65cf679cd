/**
 * Compact binary codec for Raft RPCs (`protocol/raft.ts`) and for log entries at rest.
 *
 * Wire layout of a message (all integers big-endian):
 *
 *   u8 version (= 1)  u8 type  id from  id to  u64 term  ...body
 *
 *   id   = u16 byte length, then UTF-8 bytes
 *   u64  = unsigned 64-bit integer; values above 2^53 - 1 are refused, so every number is exact
 *   bool = u8, 0 or 1
 *   blob = u32 byte length, then the bytes
 *
 *   prevote        u64 lastLogIndex  u64 lastLogTerm
 *   prevote_resp   bool granted
 *   vote           u64 lastLogIndex  u64 lastLogTerm  bool transfer
 *   vote_resp      bool granted
 *   append         u64 prevLogIndex  u64 prevLogTerm  u64 leaderCommit  u64 round  u32 count
 *                  count × (u64 term  u8 kind  u64 time  blob data)
 *   append_resp    bool success  u64 matchIndex  u64 conflictIndex  u64 conflictTerm
 *                  u64 lastLogIndex  u64 round
 *   snapshot       u64 lastIncludedIndex  u64 lastIncludedTerm  u64 offset  bool done  blob data
 *   snapshot_resp  u64 lastIncludedIndex  u64 offset  bool success
 *   timeout_now    (nothing)
 *
 * Entries in an AppendEntries are contiguous by definition (prevLogIndex + 1, + 2, ...), so
 * their indexes are not sent: the encoder checks contiguity and the decoder recomputes them.
 *
 * Integers are u64 rather than float64: any language reads them as plain unsigned integers,
 * negative and fractional values cannot be represented at all, and the decoder only has to
 * refuse values above 2^53 - 1. The encoder refuses negative, fractional and unsafe numbers.
 *
 * Zero-copy: `decodeRaftMessage` returns entry and snapshot `data` as views (`subarray`) into
 * the input, not copies. The caller must not modify or reuse the input buffer while any
 * decoded message is alive. NATS hands each message a view into a socket frame that it never
 * writes again (nats-core parser), and classic-level returns a fresh Buffer per value, so both
 * real callers are safe. A copy per entry (one ArrayBuffer each) costs several times the whole
 * decode; binary, because JSON is slower even for small messages and would need base64 for
 * entry data (BENCHMARKS.md, "Wire codec and runtime costs"; the script at `decodeAppend`
 * re-measures).
 * Views keep the whole received frame alive while any entry is referenced; the replicator
 * should not hold decoded entries beyond persisting and applying them.
 */
import { Data } from "effect"
import type {
  AppendEntries,
  AppendEntriesReply,
  Entry,
  EntryKind,
  InstallSnapshot,
  InstallSnapshotReply,
  NodeId,
  PreVote,
  PreVoteReply,
  RaftMessage,
  RaftMessageType,
  RequestVote,
  RequestVoteReply,
  TimeoutNow
} from "./raft.ts"

/** Malformed input to the codec: which field, and what is wrong with it. */
export class RaftCodecError extends Data.TaggedError("RaftCodecError")<{
  readonly field: string
  readonly message: string
}> {}

/** First byte of every encoded message. */
export const codecVersion = 1
/** First byte of every stored entry value. */
export const entryValueVersion = 1

/** Type byte of each message (second byte on the wire). Zero is never a valid type. */
export const typeCodes: { readonly [K in RaftMessageType]: number } = {
  prevote: 1,
  prevote_resp: 2,
  vote: 3,
  vote_resp: 4,
  append: 5,
  append_resp: 6,
  snapshot: 7,
  snapshot_resp: 8,
  timeout_now: 9
}

const maxIdBytes = 0xffff
/**
 * Largest data field and whole message the encoder produces: 2 GiB - 1, below every engine's
 * typed-array limit, so encoding never fails with a RangeError. (Real messages are capped far
 * lower by `maxAppendBytes` and the snapshot chunk size.)
 */
const maxBlobBytes = 0x7fffffff
const maxMessageBytes = 0x7fffffff
const two32 = 0x1_0000_0000
/** u64 high words above this make the value exceed 2^53 - 1. */
const maxSafeHigh = 0x1fffff

/** Fixed part of one entry inside an AppendEntries: term, kind, time, data length. */
const entryFixedBytes = 8 + 1 + 8 + 4
/** Fixed part of a stored entry value: version, term, kind, time. */
const entryValueFixedBytes = 1 + 8 + 1 + 8

// ---------------------------------------------------------------------------------------------
// Encoding: one pass validates every field and sums the size, then one allocation and the writes.

function fail(field: string, message: string): never {
  throw new RaftCodecError({ field, message })
}

const checkU64 = (field: string, n: number): void => {
  if (!Number.isSafeInteger(n) || n < 0) fail(field, `${field} must be a non-negative integer up to 2^53 - 1, got ${String(n)}`)
}

const checkBool = (field: string, b: boolean): void => {
  if (typeof b !== "boolean") fail(field, `${field} must be a boolean, got ${typeof b}`)
}

/** UTF-8 byte length of an id; refuses non-strings and lone surrogates (they would not survive a round trip). */
const idLength = (field: string, s: string): number => {
  if (typeof s !== "string") fail(field, `${field} must be a string, got ${typeof s}`)
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) n += 1
    else if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1)
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) fail(field, `${field} is not valid UTF-16 (lone surrogate at ${i})`)
      n += 2
      i++
    } else n += 2
  }
  if (n > maxIdBytes) fail(field, `${field} is ${n} bytes, over the ${maxIdBytes}-byte limit`)
  return n
}

const checkKind = (field: string, kind: number): void => {
  if (kind !== 0 && kind !== 1 && kind !== 2) fail(field, `${field} must be 0, 1 or 2, got ${String(kind)}`)
}

/** Byte length of a data field, after checking it is bytes of a representable size. */
const blobLength = (field: string, data: Uint8Array): number => {
  if (!(data instanceof Uint8Array)) fail(field, `${field} must be a Uint8Array`)
  if (data.length > maxBlobBytes) fail(field, `${field} is ${data.length} bytes, over the ${maxBlobBytes}-byte limit`)
  return data.length
}

const utf8 = new TextEncoder()

class Writer {
  readonly bytes: Uint8Array
  readonly view: DataView
  pos = 0
  constructor(size: number) {
    if (size > maxMessageBytes) fail("message", `message would be ${size} bytes, over the ${maxMessageBytes}-byte limit`)
    this.bytes = new Uint8Array(size)
    this.view = new DataView(this.bytes.buffer)
  }
  u8(n: number): void {
    this.bytes[this.pos++] = n
  }
  bool(b: boolean): void {
    this.bytes[this.pos++] = b ? 1 : 0
  }
  u32(n: number): void {
    this.view.setUint32(this.pos, n)
    this.pos += 4
  }
  u64(n: number): void {
    this.view.setUint32(this.pos, Math.floor(n / two32))
    this.view.setUint32(this.pos + 4, n >>> 0)
    this.pos += 8
  }
  /** `len` was computed by `idLength`. */
  id(s: string, len: number): void {
    this.view.setUint16(this.pos, len)
    this.pos += 2
    if (len === s.length) {
      // ASCII: one byte per UTF-16 unit
      for (let i = 0; i < len; i++) this.bytes[this.pos + i] = s.charCodeAt(i)
    } else utf8.encodeInto(s, this.bytes.subarray(this.pos, this.pos + len))
    this.pos += len
  }
  blob(data: Uint8Array): void {
    this.u32(data.length)
    this.raw(data)
  }
  raw(data: Uint8Array): void {
    this.bytes.set(data, this.pos)
    this.pos += data.length
  }
}

/** Bytes one entry takes inside an encoded AppendEntries (its index is implicit). */
export const encodedEntrySize = (entry: Entry): number => entryFixedBytes + entry.data.length

/** Common header: version, type, from, to, term. */
const headerSize = (fromLen: number, toLen: number): number => 2 + 2 + fromLen + 2 + toLen + 8

/** AppendEntries fields before the entries: prevLogIndex, prevLogTerm, leaderCommit, round, count. */
const appendFixedBytes = 8 * 4 + 4

/**
 * Bytes of an AppendEntries from `from` to `to` before any entry. A batch fits in `cap` bytes
 * when `appendOverhead(from, to) + Σ encodedEntrySize(e) <= cap`.
 */
export const appendOverhead = (from: NodeId, to: NodeId): number =>
  headerSize(idLength("from", from), idLength("to", to)) + appendFixedBytes

const entriesSize = (m: AppendEntries): number => {
  if (m.prevLogIndex + m.entries.length > Number.MAX_SAFE_INTEGER) fail("entries", "entries: last entry index above 2^53 - 1")
  let n = appendFixedBytes
  let expected = m.prevLogIndex + 1
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i] as Entry
    if (e.index !== expected) {
      fail(`entries[${i}].index`, `entries[${i}].index must be ${expected} (entries follow prevLogIndex contiguously), got ${String(e.index)}`)
    }
    checkU64(`entries[${i}].term`, e.term)
    checkKind(`entries[${i}].kind`, e.kind)
    checkU64(`entries[${i}].time`, e.time)
    blobLength(`entries[${i}].data`, e.data)
    n += encodedEntrySize(e)
    expected++
  }
  return n
}

/** Checks every field of the body and returns its encoded size. */
const bodySize = (m: RaftMessage): number => {
  switch (m.type) {
    case "prevote":
    case "vote":
      checkU64("lastLogIndex", m.lastLogIndex)
      checkU64("lastLogTerm", m.lastLogTerm)
      if (m.type === "prevote") return 16
      checkBool("transfer", m.transfer)
      return 17
    case "prevote_resp":
    case "vote_resp":
      checkBool("granted", m.granted)
      return 1
    case "append":
      checkU64("prevLogIndex", m.prevLogIndex)
      checkU64("prevLogTerm", m.prevLogTerm)
      checkU64("leaderCommit", m.leaderCommit)
      checkU64("round", m.round)
      if (!Array.isArray(m.entries)) fail("entries", "entries must be an array")
      return entriesSize(m)
    case "append_resp":
      checkBool("success", m.success)
      checkU64("matchIndex", m.matchIndex)
      checkU64("conflictIndex", m.conflictIndex)
      checkU64("conflictTerm", m.conflictTerm)
      checkU64("lastLogIndex", m.lastLogIndex)
      checkU64("round", m.round)
      return 1 + 8 * 5
    case "snapshot":
      checkU64("lastIncludedIndex", m.lastIncludedIndex)
      checkU64("lastIncludedTerm", m.lastIncludedTerm)
      checkU64("offset", m.offset)
      checkBool("done", m.done)
      return 8 * 3 + 1 + 4 + blobLength("data", m.data)
    case "snapshot_resp":
      checkU64("lastIncludedIndex", m.lastIncludedIndex)
      checkU64("offset", m.offset)
      checkBool("success", m.success)
      return 8 * 2 + 1
    case "timeout_now":
      return 0
    default:
      return fail("type", `unknown message type ${JSON.stringify((m as { type: unknown }).type)}`)
  }
}

/**
 * Exact size of `encodeRaftMessage(m)`. Validates like the encoder, so it throws
 * `RaftCodecError` for a message the encoder would refuse.
 */
export const encodedSize = (m: RaftMessage): number => {
  const size = headerSize(idLength("from", m.from), idLength("to", m.to)) + bodySize(m)
  checkU64("term", m.term)
  return size
}

/**
 * Encodes one Raft message into a fresh buffer of exactly the right size. Throws
 * `RaftCodecError` naming the field when the message cannot be represented (negative or
 * fractional numbers, numbers above 2^53 - 1, non-contiguous entries, bad ids or booleans).
 */
export const encodeRaftMessage = (m: RaftMessage): Uint8Array => {
  const fromLen = idLength("from", m.from)
  const toLen = idLength("to", m.to)
  checkU64("term", m.term)
  const w = new Writer(headerSize(fromLen, toLen) + bodySize(m))
  w.u8(codecVersion)
  w.u8(typeCodes[m.type])
  w.id(m.from, fromLen)
  w.id(m.to, toLen)
  w.u64(m.term)
  switch (m.type) {
    case "prevote":
    case "vote":
      w.u64(m.lastLogIndex)
      w.u64(m.lastLogTerm)
      if (m.type === "vote") w.bool(m.transfer)
      break
    case "prevote_resp":
    case "vote_resp":
      w.bool(m.granted)
      break
    case "append":
      w.u64(m.prevLogIndex)
      w.u64(m.prevLogTerm)
      w.u64(m.leaderCommit)
      w.u64(m.round)
      w.u32(m.entries.length)
      for (const e of m.entries) {
        w.u64(e.term)
        w.u8(e.kind)
        w.u64(e.time)
        w.blob(e.data)
      }
      break
    case "append_resp":
      w.bool(m.success)
      w.u64(m.matchIndex)
      w.u64(m.conflictIndex)
      w.u64(m.conflictTerm)
      w.u64(m.lastLogIndex)
      w.u64(m.round)
      break
    case "snapshot":
      w.u64(m.lastIncludedIndex)
      w.u64(m.lastIncludedTerm)
      w.u64(m.offset)
      w.bool(m.done)
      w.blob(m.data)
      break
    case "snapshot_resp":
      w.u64(m.lastIncludedIndex)
      w.u64(m.offset)
      w.bool(m.success)
      break
    case "timeout_now":
      break
  }
  return w.bytes
}

// ---------------------------------------------------------------------------------------------
// Decoding

const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const typeByCode: ReadonlyArray<RaftMessageType | undefined> = (() => {
  const out: Array<RaftMessageType | undefined> = []
  for (const [type, code] of Object.entries(typeCodes)) out[code] = type as RaftMessageType
  return out
})()

class Reader {
  readonly bytes: Uint8Array
  readonly view: DataView
  pos = 0
  /** Index of the entry being read, for error messages; -1 outside entries. */
  entry = -1
  constructor(bytes: Uint8Array) {
    this.bytes = bytes
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }
  name(field: string): string {
    return this.entry < 0 ? field : `entries[${this.entry}].${field}`
  }
  fail(field: string, problem: string): never {
    const name = this.name(field)
    throw new RaftCodecError({ field: name, message: `${name}: ${problem}` })
  }
  need(field: string, n: number): void {
    const left = this.bytes.length - this.pos
    if (n > left) {
      this.fail(field, left === 0 && this.pos === 0
        ? "empty input"
        : `truncated input: needs ${n} bytes at offset ${this.pos}, only ${left} left`)
    }
  }
  u8(field: string): number {
    this.need(field, 1)
    return this.bytes[this.pos++] as number
  }
  bool(field: string): boolean {
    const b = this.u8(field)
    if (b > 1) this.fail(field, `expected a boolean (0 or 1), got ${b}`)
    return b === 1
  }
  u16(field: string): number {
    this.need(field, 2)
    const n = this.view.getUint16(this.pos)
    this.pos += 2
    return n
  }
  u32(field: string): number {
    this.need(field, 4)
    const n = this.view.getUint32(this.pos)
    this.pos += 4
    return n
  }
  u64(field: string): number {
    this.need(field, 8)
    const hi = this.view.getUint32(this.pos)
    const lo = this.view.getUint32(this.pos + 4)
    if (hi > maxSafeHigh) this.fail(field, "integer above 2^53 - 1 cannot be represented exactly")
    this.pos += 8
    return hi * two32 + lo
  }
  take(field: string, len: number): Uint8Array {
    this.need(field, len)
    const out = this.bytes.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }
  blob(field: string): Uint8Array {
    const len = this.u32(field)
    if (len > this.bytes.length - this.pos) {
      this.fail(field, `length prefix ${len} runs past the end (offset ${this.pos}, ${this.bytes.length - this.pos} bytes left)`)
    }
    return this.take(field, len)
  }
  id(field: string): NodeId {
    const len = this.u16(field)
    if (len > this.bytes.length - this.pos) {
      this.fail(field, `length prefix ${len} runs past the end (offset ${this.pos}, ${this.bytes.length - this.pos} bytes left)`)
    }
    const start = this.pos
    const end = start + len
    let s = ""
    for (let i = start; i < end; i++) {
      const b = this.bytes[i] as number
      if (b >= 0x80) {
        try {
          s = utf8Strict.decode(this.bytes.subarray(start, end))
        } catch {
          this.fail(field, "invalid UTF-8")
        }
        break
      }
      s += String.fromCharCode(b)
    }
    this.pos = end
    return s
  }
  kind(field: string): EntryKind {
    const k = this.u8(field)
    if (k > 2) this.fail(field, `unknown entry kind ${k}`)
    return k as EntryKind
  }
  end(type: string): void {
    const left = this.bytes.length - this.pos
    if (left !== 0) throw new RaftCodecError({ field: "end", message: `${left} trailing bytes after a complete ${type} message` })
  }
}

/*
 * decodeAppend returns entry data as views. To re-measure views against copies:
 *
 *   const m = { type: "append", from: "n1", to: "n2", term: 3, prevLogIndex: 0, prevLogTerm: 0,
 *     leaderCommit: 0, round: 1, entries: Array.from({ length: 1000 }, (_, i) =>
 *       ({ index: i + 1, term: 3, kind: 1, time: Date.now(), data: new Uint8Array(100) })) }
 *   const b = encodeRaftMessage(m); let t = performance.now()
 *   for (let i = 0; i < 10000; i++) decodeRaftMessage(b)
 *   console.log((performance.now() - t) / 10000 * 1000, "µs")   // then with take() slicing
 */
const decodeAppend = (r: Reader, from: NodeId, to: NodeId, term: number): AppendEntries => {
  const prevLogIndex = r.u64("prevLogIndex")
  const prevLogTerm = r.u64("prevLogTerm")
  const leaderCommit = r.u64("leaderCommit")
  const round = r.u64("round")
  const count = r.u32("entries")
  const left = r.bytes.length - r.pos
  if (count * entryFixedBytes > left) {
    r.fail("entries", `count ${count} needs at least ${count * entryFixedBytes} bytes, only ${left} left`)
  }
  if (prevLogIndex + count > Number.MAX_SAFE_INTEGER) r.fail("entries", "last entry index above 2^53 - 1")
  const entries: Array<Entry> = new Array(count)
  for (let i = 0; i < count; i++) {
    r.entry = i
    const eterm = r.u64("term")
    const kind = r.kind("kind")
    const time = r.u64("time")
    const data = r.blob("data")
    entries[i] = { index: prevLogIndex + 1 + i, term: eterm, kind, time, data }
  }
  r.entry = -1
  return { type: "append", from, to, term, prevLogIndex, prevLogTerm, leaderCommit, round, entries }
}

/**
 * Decodes one Raft message. Throws `RaftCodecError` (never anything else) on empty or
 * truncated input, an unknown version or type, a length prefix past the end, trailing bytes,
 * invalid UTF-8 in an id, a bad boolean or entry kind, or an integer above 2^53 - 1.
 * Entry and snapshot data are views into `bytes` (see the module note).
 */
export const decodeRaftMessage = (bytes: Uint8Array): RaftMessage => {
  if (!(bytes instanceof Uint8Array)) throw new RaftCodecError({ field: "input", message: "input: expected a Uint8Array" })
  const r: Reader = new Reader(bytes)
  const version = r.u8("version")
  if (version !== codecVersion) r.fail("version", `unknown format version ${version} (this node reads version ${codecVersion})`)
  const code = r.u8("type")
  const type = typeByCode[code]
  if (type === undefined) r.fail("type", `unknown message type ${code}`)
  const from = r.id("from")
  const to = r.id("to")
  const term = r.u64("term")
  let m: RaftMessage
  switch (type) {
    case "prevote": {
      const lastLogIndex = r.u64("lastLogIndex")
      const lastLogTerm = r.u64("lastLogTerm")
      m = { type, from, to, term, lastLogIndex, lastLogTerm } satisfies PreVote
      break
    }
    case "prevote_resp":
      m = { type, from, to, term, granted: r.bool("granted") } satisfies PreVoteReply
      break
    case "vote": {
      const lastLogIndex = r.u64("lastLogIndex")
      const lastLogTerm = r.u64("lastLogTerm")
      const transfer = r.bool("transfer")
      m = { type, from, to, term, lastLogIndex, lastLogTerm, transfer } satisfies RequestVote
      break
    }
    case "vote_resp":
      m = { type, from, to, term, granted: r.bool("granted") } satisfies RequestVoteReply
      break
    case "append":
      m = decodeAppend(r, from, to, term)
      break
    case "append_resp": {
      const success = r.bool("success")
      const matchIndex = r.u64("matchIndex")
      const conflictIndex = r.u64("conflictIndex")
      const conflictTerm = r.u64("conflictTerm")
      const lastLogIndex = r.u64("lastLogIndex")
      const round = r.u64("round")
      m = { type, from, to, term, success, matchIndex, conflictIndex, conflictTerm, lastLogIndex, round } satisfies AppendEntriesReply
      break
    }
    case "snapshot": {
      const lastIncludedIndex = r.u64("lastIncludedIndex")
      const lastIncludedTerm = r.u64("lastIncludedTerm")
      const offset = r.u64("offset")
      const done = r.bool("done")
      const data = r.blob("data")
      m = { type, from, to, term, lastIncludedIndex, lastIncludedTerm, offset, done, data } satisfies InstallSnapshot
      break
    }
    case "snapshot_resp": {
      const lastIncludedIndex = r.u64("lastIncludedIndex")
      const offset = r.u64("offset")
      const success = r.bool("success")
      m = { type, from, to, term, lastIncludedIndex, offset, success } satisfies InstallSnapshotReply
      break
    }
    case "timeout_now":
      m = { type, from, to, term } satisfies TimeoutNow
      break
  }
  r.end(type)
  return m
}

// ---------------------------------------------------------------------------------------------
// Log entries at rest (the `log` sublevel: key = encodeUint64Key(index), value = encodeEntryValue)

/**
 * The stored value of one log entry: u8 version, u64 term, u8 kind, u64 time, then the data
 * to the end (the key holds the index, so it is not repeated).
 */
export const encodeEntryValue = (entry: Entry): Uint8Array => {
  checkU64("term", entry.term)
  checkKind("kind", entry.kind)
  checkU64("time", entry.time)
  const w = new Writer(entryValueFixedBytes + blobLength("data", entry.data))
  w.u8(entryValueVersion)
  w.u64(entry.term)
  w.u8(entry.kind)
  w.u64(entry.time)
  w.raw(entry.data)
  return w.bytes
}

/**
 * Reads a stored entry value back; `index` comes from its key. `data` is a view into `bytes`
 * (classic-level returns a fresh buffer per value). Throws `RaftCodecError` when malformed.
 */
export const decodeEntryValue = (index: number, bytes: Uint8Array): Entry => {
  checkU64("index", index)
  if (!(bytes instanceof Uint8Array)) throw new RaftCodecError({ field: "input", message: "input: expected a Uint8Array" })
  const r: Reader = new Reader(bytes)
  const version = r.u8("version")
  if (version !== entryValueVersion) r.fail("version", `unknown entry format version ${version} (this node reads version ${entryValueVersion})`)
  const term = r.u64("term")
  const kind = r.kind("kind")
  const time = r.u64("time")
  const data = bytes.subarray(r.pos)
  return { index, term, kind, time, data }
}

/** 8-byte big-endian key, so LevelDB's bytewise order is numeric order. */
export const encodeUint64Key = (n: number): Uint8Array => {
  checkU64("key", n)
  const w = new Writer(8)
  w.u64(n)
  return w.bytes
}

export const decodeUint64Key = (bytes: Uint8Array): number => {
  if (!(bytes instanceof Uint8Array)) throw new RaftCodecError({ field: "key", message: "key: expected a Uint8Array" })
  if (bytes.length !== 8) throw new RaftCodecError({ field: "key", message: `key: expected 8 bytes, got ${bytes.length}` })
  return new Reader(bytes).u64("key")
}
