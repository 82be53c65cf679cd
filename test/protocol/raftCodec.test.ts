import t from "tap"
import type { AppendEntries, Entry, EntryKind, RaftMessage } from "../../protocol/raft.ts"
import { raftMessageTypes } from "../../protocol/raft.ts"
import {
  appendOverhead,
  codecVersion,
  decodeEntryValue,
  decodeRaftMessage,
  decodeUint64Key,
  encodedEntrySize,
  encodedSize,
  encodeEntryValue,
  encodeRaftMessage,
  encodeUint64Key,
  entryValueVersion,
  RaftCodecError,
  typeCodes
} from "../../protocol/raftCodec.ts"
import { maxAppendBytes } from "../../protocol/limits.ts"

const max = Number.MAX_SAFE_INTEGER

const bytesOf = (n: number, seed: number): Uint8Array => {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}

const entry = (index: number, term: number, kind: EntryKind, data: Uint8Array, time = 1_700_000_000_000 + index): Entry => ({
  index,
  term,
  kind,
  time,
  data
})

const append = (prevLogIndex: number, entries: ReadonlyArray<Entry>, extra: Partial<AppendEntries> = {}): AppendEntries => ({
  type: "append",
  from: "node-1",
  to: "node-2",
  term: 7,
  prevLogIndex,
  prevLogTerm: 6,
  leaderCommit: prevLogIndex,
  round: 42,
  entries,
  ...extra
})

/** One or more samples of every message type, with edge values. */
const samples: ReadonlyArray<readonly [string, RaftMessage]> = [
  ["prevote", { type: "prevote", from: "a", to: "b", term: 3, lastLogIndex: 10, lastLogTerm: 2 }],
  ["prevote at 2^53-1", { type: "prevote", from: "a", to: "b", term: max, lastLogIndex: max, lastLogTerm: max }],
  ["prevote_resp granted", { type: "prevote_resp", from: "b", to: "a", term: 3, granted: true }],
  ["prevote_resp refused", { type: "prevote_resp", from: "b", to: "a", term: 0, granted: false }],
  ["vote", { type: "vote", from: "n1", to: "n2", term: 4, lastLogIndex: 2 ** 32, lastLogTerm: 2 ** 32 - 1, transfer: false }],
  ["vote transfer", { type: "vote", from: "n1", to: "n2", term: 4, lastLogIndex: 0, lastLogTerm: 0, transfer: true }],
  ["vote_resp", { type: "vote_resp", from: "n2", to: "n1", term: 4, granted: true }],
  ["append heartbeat", append(100, [])],
  [
    "append three kinds",
    append(5, [entry(6, 7, 0, new Uint8Array(0)), entry(7, 7, 1, bytesOf(10, 1)), entry(8, 7, 2, bytesOf(3, 2), 0)])
  ],
  ["append from index 0", append(0, [entry(1, 1, 1, bytesOf(5, 3))], { prevLogTerm: 0, leaderCommit: 0, round: 0 })],
  [
    "append_resp success",
    { type: "append_resp", from: "node-2", to: "node-1", term: 7, success: true, matchIndex: 8, conflictIndex: 0, conflictTerm: 0, lastLogIndex: 8, round: 42 }
  ],
  [
    "append_resp conflict",
    { type: "append_resp", from: "node-2", to: "node-1", term: 7, success: false, matchIndex: 0, conflictIndex: 3, conflictTerm: 2, lastLogIndex: 5, round: max }
  ],
  [
    "snapshot chunk",
    { type: "snapshot", from: "n1", to: "n3", term: 9, lastIncludedIndex: 1000, lastIncludedTerm: 8, offset: 65536, done: false, data: bytesOf(100, 4) }
  ],
  [
    "snapshot last empty chunk",
    { type: "snapshot", from: "n1", to: "n3", term: 9, lastIncludedIndex: 1000, lastIncludedTerm: 8, offset: 70000, done: true, data: new Uint8Array(0) }
  ],
  ["snapshot_resp", { type: "snapshot_resp", from: "n3", to: "n1", term: 9, lastIncludedIndex: 1000, offset: 65636, success: true }],
  ["snapshot_resp refused", { type: "snapshot_resp", from: "n3", to: "n1", term: 9, lastIncludedIndex: 1000, offset: 0, success: false }],
  ["timeout_now", { type: "timeout_now", from: "n1", to: "n2", term: 10 }],
  ["non-ASCII ids", { type: "timeout_now", from: "nœud-1", to: "ノード😀", term: 1 }],
  ["empty ids", { type: "vote_resp", from: "", to: "", term: 0, granted: false }]
]

/** Deep equality that compares byte arrays by content (views or copies alike). */
const same = (a: unknown, b: unknown): boolean => {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]))
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    return ka.length === kb.length && ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  }
  return Object.is(a, b)
}

/** Runs `f`, expecting a RaftCodecError; returns it (or fails the test and returns undefined). */
const codecError = (tt: { fail(message: string): unknown }, f: () => unknown, label: string): RaftCodecError | undefined => {
  try {
    f()
  } catch (e) {
    if (e instanceof RaftCodecError) return e
    tt.fail(`${label}: threw ${String(e)} instead of RaftCodecError`)
    return undefined
  }
  tt.fail(`${label}: did not throw`)
  return undefined
}

t.test("every message type round-trips, and encodedSize is exact", async (t) => {
  const covered = new Set<string>()
  for (const [name, m] of samples) {
    const bytes = encodeRaftMessage(m)
    t.equal(bytes[0], codecVersion, `${name}: version byte`)
    t.equal(bytes[1], typeCodes[m.type], `${name}: type byte`)
    t.equal(bytes.length, encodedSize(m), `${name}: encodedSize`)
    t.ok(same(decodeRaftMessage(bytes), m), `${name}: round trip`)
    covered.add(m.type)
  }
  t.same([...covered].sort(), [...raftMessageTypes].sort(), "a sample of every type")
})

t.test("AppendEntries: many entries, large data, size accounting", async (t) => {
  const many = append(
    1000,
    Array.from({ length: 2000 }, (_, i) => entry(1001 + i, 7, 1, bytesOf(i % 50, i)))
  )
  const bytes = encodeRaftMessage(many)
  const decoded = decodeRaftMessage(bytes) as AppendEntries
  t.equal(decoded.entries.length, 2000)
  t.equal(decoded.entries[1999]?.index, 3000, "indexes recomputed from prevLogIndex")
  t.ok(same(decoded, many), "2000 entries round trip")

  const sum = many.entries.reduce((n, e) => n + encodedEntrySize(e), 0)
  t.equal(appendOverhead(many.from, many.to) + sum, bytes.length, "overhead + Σ entry sizes = encoded size")

  const big = append(0, [entry(1, 1, 1, bytesOf(1024 * 1024, 9)), entry(2, 1, 1, bytesOf(3, 1))])
  const bigBytes = encodeRaftMessage(big)
  t.ok(same(decodeRaftMessage(bigBytes), big), "1 MiB entry round trip")
  t.ok(bigBytes.length > maxAppendBytes, "the codec itself does not cap; the replicator does")

  const snap: RaftMessage = {
    type: "snapshot", from: "a", to: "b", term: 1, lastIncludedIndex: 5, lastIncludedTerm: 1, offset: 0, done: true, data: bytesOf(700 * 1024, 5)
  }
  t.ok(same(decodeRaftMessage(encodeRaftMessage(snap)), snap), "700 KiB snapshot chunk round trip")
})

t.test("decoding reads from any view and returns data as views into the input", async (t) => {
  const m = samples[8]![1] as AppendEntries
  const bytes = encodeRaftMessage(m)
  const padded = new Uint8Array(bytes.length + 13)
  padded.set(bytes, 7)
  const view = padded.subarray(7, 7 + bytes.length)
  const decoded = decodeRaftMessage(view) as AppendEntries
  t.ok(same(decoded, m), "decodes at a non-zero byteOffset")
  t.equal(decoded.entries[1]?.data.buffer, padded.buffer, "entry data is a view, not a copy")
  t.ok(same(decodeRaftMessage(Buffer.from(bytes)), m), "decodes a Buffer")
})

t.test("truncation at every byte offset throws RaftCodecError naming a field", async (t) => {
  for (const [name, m] of samples) {
    const bytes = encodeRaftMessage(m)
    let ok = 0
    for (let n = 0; n < bytes.length; n++) {
      const e = codecError(t, () => decodeRaftMessage(bytes.subarray(0, n)), `${name} cut at ${n}`)
      if (e !== undefined && e.field.length > 0 && e.message.includes(e.field)) ok++
    }
    t.equal(ok, bytes.length, `${name}: all ${bytes.length} prefixes rejected`)
  }
  const empty = codecError(t, () => decodeRaftMessage(new Uint8Array(0)), "empty")
  t.equal(empty?.field, "version")
  t.match(empty?.message, /empty input/)
  const cut = codecError(t, () => decodeRaftMessage(encodeRaftMessage(samples[0]![1]).subarray(0, 12)), "cut")
  t.equal(cut?.field, "term")
  t.match(cut?.message, /truncated input: needs 8 bytes at offset \d+, only \d+ left/)
  const inEntry = encodeRaftMessage(samples[8]![1])
  const e = codecError(t, () => decodeRaftMessage(inEntry.subarray(0, inEntry.length - 2)), "cut in entry")
  t.equal(e?.field, "entries[2].data", "the entry is named")
})

t.test("malformed headers, prefixes, values and trailing bytes", async (t) => {
  const vote = encodeRaftMessage(samples[4]![1])
  const patch = (bytes: Uint8Array, at: number, ...values: Array<number>): Uint8Array => {
    const copy = bytes.slice()
    values.forEach((v, i) => (copy[at + i] = v))
    return copy
  }
  const expect = (bytes: Uint8Array, field: string, message: RegExp, label: string): void => {
    const e = codecError(t, () => decodeRaftMessage(bytes), label)
    t.equal(e?.field, field, `${label}: field`)
    t.match(e?.message, message, `${label}: message`)
  }
  expect(patch(vote, 0, 0), "version", /unknown format version 0/, "version 0")
  expect(patch(vote, 0, 2), "version", /unknown format version 2/, "version 2")
  expect(patch(vote, 1, 0), "type", /unknown message type 0/, "type 0")
  expect(patch(vote, 1, 10), "type", /unknown message type 10/, "type 10")
  expect(patch(vote, 1, 255), "type", /unknown message type 255/, "type 255")
  expect(patch(vote, 2, 0xff, 0xff), "from", /length prefix 65535 runs past the end/, "id prefix")
  // "n1" is at offsets 4-5: replace with invalid UTF-8
  expect(patch(vote, 4, 0xc3, 0x28), "from", /invalid UTF-8/, "bad UTF-8 sequence")
  expect(patch(vote, 4, 0x80, 0x80), "from", /invalid UTF-8/, "lone continuation bytes")
  expect(patch(vote, 4, 0xc0, 0xaf), "from", /invalid UTF-8/, "overlong encoding")
  // term at offset 10: high word 0x00200000 is 2^53
  expect(patch(vote, 10, 0, 0x20, 0, 0), "term", /above 2\^53 - 1/, "term 2^53")
  expect(patch(vote, 10, 0xff, 0xff, 0xff, 0xff), "term", /above 2\^53 - 1/, "term 2^64-1")
  expect(patch(vote, vote.length - 1, 2), "transfer", /expected a boolean \(0 or 1\), got 2/, "bad boolean")
  expect(Uint8Array.from([...vote, 0]), "end", /1 trailing bytes after a complete vote message/, "trailing byte")
  expect(Uint8Array.from([...encodeRaftMessage(samples[16]![1]), 1, 2, 3]), "end", /3 trailing bytes/, "trailing bytes")

  const ae = samples[8]![1] as AppendEntries
  const aeBytes = encodeRaftMessage(ae)
  const countAt = appendOverhead(ae.from, ae.to) - 4
  expect(patch(aeBytes, countAt, 0xff, 0xff, 0xff, 0xff), "entries", /count 4294967295 needs at least/, "huge entry count")
  expect(patch(aeBytes, countAt, 0, 0, 0, 2), "end", /trailing bytes/, "count too small")
  const kindAt = countAt + 4 + 8
  expect(patch(aeBytes, kindAt, 3), "entries[0].kind", /unknown entry kind 3/, "bad kind")
  const lenAt = kindAt + 1 + 8
  expect(patch(aeBytes, lenAt, 0, 1, 0, 0), "entries[0].data", /length prefix 65536 runs past the end/, "data prefix")
  const termAt = countAt + 4
  expect(patch(aeBytes, termAt, 0, 0x40), "entries[0].term", /above 2\^53 - 1/, "entry term 2^54")
  const nearMax = encodeRaftMessage(append(max - 1, [entry(max, 1, 1, new Uint8Array(0), 5)]))
  t.ok(decodeRaftMessage(nearMax), "last index 2^53 - 1 is fine")
  // prevLogIndex 2^53 - 1 with one entry would put the entry at 2^53
  const prevAt = appendOverhead("node-1", "node-2") - 4 - 32
  expect(patch(nearMax, prevAt + 7, 0xff), "entries", /last entry index above 2\^53 - 1/, "entry index overflow")

  const snap = encodeRaftMessage(samples[12]![1])
  expect(patch(snap, snap.length - 100 - 5, 7), "done", /expected a boolean/, "snapshot done flag")
  expect(patch(snap, snap.length - 100 - 4, 0, 0, 0, 101), "data", /length prefix 101 runs past the end/, "snapshot data prefix")

  const notBytes = codecError(t, () => decodeRaftMessage("hello" as unknown as Uint8Array), "string input")
  t.equal(notBytes?.field, "input")
})

/** Small deterministic PRNG (mulberry32) so failures are reproducible. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296
}

t.test("fuzz: mutated and random input only ever yields RaftCodecError or a canonical message", async (t) => {
  const rand = prng(12345)
  const encoded = samples.map(([, m]) => encodeRaftMessage(m))
  let rejected = 0
  let accepted = 0
  let wrong = 0
  for (let i = 0; i < 20000; i++) {
    const base = encoded[Math.floor(rand() * encoded.length)]!
    const bytes = i % 10 === 0 ? Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)) : base.slice()
    if (i % 10 !== 0) {
      const flips = 1 + Math.floor(rand() * 3)
      for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256)
    }
    try {
      const m = decodeRaftMessage(bytes)
      // whatever decodes re-encodes to the very same bytes: one encoding per message
      if (Buffer.compare(encodeRaftMessage(m), bytes) === 0) accepted++
      else wrong++
    } catch (e) {
      if (e instanceof RaftCodecError) rejected++
      else wrong++
    }
  }
  t.equal(wrong, 0, `no crash and no non-canonical decode (${accepted} accepted, ${rejected} rejected)`)
  t.ok(accepted > 0 && rejected > 0, "both outcomes exercised")
})

t.test("encoding refuses what it cannot represent", async (t) => {
  const base = samples[0]![1]
  const bad = (m: unknown, field: string, label: string): void => {
    const e = codecError(t, () => encodeRaftMessage(m as RaftMessage), label)
    t.equal(e?.field, field, label)
  }
  bad({ ...base, term: -1 }, "term", "negative term")
  bad({ ...base, term: 1.5 }, "term", "fractional term")
  bad({ ...base, term: Number.NaN }, "term", "NaN term")
  bad({ ...base, term: 2 ** 53 }, "term", "term 2^53")
  bad({ ...base, lastLogIndex: -3 }, "lastLogIndex", "negative index")
  bad({ ...base, type: "gossip" }, "type", "unknown type")
  bad({ ...base, from: "\ud800x" }, "from", "lone high surrogate in id")
  bad({ ...base, to: "x\udc00" }, "to", "lone low surrogate in id")
  bad({ ...base, to: "\ud800" }, "to", "high surrogate at the end")
  bad({ ...base, from: "é".repeat(40000) }, "from", "id over 65535 bytes")
  bad(append(5, [entry(6, 1, 1, new Uint8Array(0)), entry(8, 1, 1, new Uint8Array(0))]), "entries[1].index", "gap in entries")
  bad(append(5, [entry(5, 1, 1, new Uint8Array(0))]), "entries[0].index", "entry not after prevLogIndex")
  bad(append(5, [entry(6, -1, 1, new Uint8Array(0))]), "entries[0].term", "negative entry term")
  bad(append(5, [entry(6, 1, 7 as EntryKind, new Uint8Array(0))]), "entries[0].kind", "bad entry kind")
  bad(append(5, [entry(6, 1, 1, new Uint8Array(0), -5)]), "entries[0].time", "negative time")
  bad(append(5, [entry(6, 1, 1, [1, 2] as unknown as Uint8Array)]), "entries[0].data", "data not bytes")
  bad(append(5, [], { leaderCommit: 0.5 }), "leaderCommit", "fractional commit")
  bad(append(5, [], { round: -1 }), "round", "negative round")
  const resp = samples[10]![1]
  bad({ ...resp, conflictTerm: -1 }, "conflictTerm", "append_resp field")
  const snap = samples[12]![1]
  bad({ ...snap, offset: 1.25 }, "offset", "snapshot offset")
  bad({ ...snap, data: "xyz" }, "data", "snapshot data not bytes")
  bad({ ...samples[14]![1], lastIncludedIndex: -1 }, "lastIncludedIndex", "snapshot_resp index")
  bad(append(max - 1, [entry(max, 1, 1, new Uint8Array(0), 1), entry(max + 1, 1, 1, new Uint8Array(0), 1)]), "entries", "index past 2^53 - 1")
  bad({ ...base, from: 7 }, "from", "id not a string")
  bad({ ...samples[2]![1], granted: "yes" }, "granted", "boolean not a boolean")
  bad({ ...samples[4]![1], transfer: 1 }, "transfer", "transfer not a boolean")
  bad({ ...samples[10]![1], success: undefined }, "success", "append_resp success missing")
  bad({ ...samples[12]![1], done: null }, "done", "snapshot done not a boolean")
  bad({ ...samples[14]![1], success: 0 }, "success", "snapshot_resp success not a boolean")
  bad(append(5, "abc" as unknown as ReadonlyArray<Entry>), "entries", "entries not an array")
  // sizes are checked before anything is allocated (fake arrays that only claim a length)
  const claims = (length: number): Uint8Array => Object.create(Uint8Array.prototype, { length: { value: length } }) as Uint8Array
  bad({ ...snap, data: claims(2 ** 31) }, "data", "a 2 GiB data field")
  bad(append(0, [entry(1, 1, 1, claims(2 ** 30)), entry(2, 1, 1, claims(2 ** 30))]), "message", "a message over 2 GiB")
  t.equal(encodedSize(samples[0]![1]), encodeRaftMessage(samples[0]![1]).length, "encodedSize of a valid message")
  t.equal(codecError(t, () => encodedSize({ ...base, term: -2 }), "encodedSize validates")?.field, "term")
  const msg = codecError(t, () => encodeRaftMessage({ ...base, term: -1 }), "message")
  t.match(msg?.message, /term must be a non-negative integer up to 2\^53 - 1, got -1/)
  t.equal(msg?._tag, "RaftCodecError")
})

t.test("log entries at rest", async (t) => {
  const e = entry(12, 3, 1, bytesOf(40, 7))
  const value = encodeEntryValue(e)
  t.equal(value[0], entryValueVersion, "version byte")
  t.equal(value.length, 18 + 40, "no index, no length prefix")
  t.ok(same(decodeEntryValue(12, value), e), "round trip")
  t.ok(same(decodeEntryValue(max, encodeEntryValue({ ...e, index: max, term: max, time: max })), { ...e, index: max, term: max, time: max }), "extremes")
  const empty = entry(1, 1, 0, new Uint8Array(0))
  t.ok(same(decodeEntryValue(1, encodeEntryValue(empty)), empty), "empty data")
  t.ok(same(decodeEntryValue(12, Buffer.from(value)), e), "from a Buffer")

  for (let n = 0; n < 18; n++) {
    t.ok(codecError(t, () => decodeEntryValue(12, value.subarray(0, n)), `cut at ${n}`), `cut at ${n} rejected`)
  }
  const wrongVersion = value.slice()
  wrongVersion[0] = 9
  t.equal(codecError(t, () => decodeEntryValue(12, wrongVersion), "version")?.field, "version")
  const wrongKind = value.slice()
  wrongKind[9] = 5
  t.equal(codecError(t, () => decodeEntryValue(12, wrongKind), "kind")?.field, "kind")
  t.equal(codecError(t, () => decodeEntryValue(-1, value), "index")?.field, "index")
  t.equal(codecError(t, () => decodeEntryValue(1, null as unknown as Uint8Array), "null")?.field, "input")
  t.equal(codecError(t, () => encodeEntryValue({ ...e, kind: 4 as EntryKind }), "encode kind")?.field, "kind")
  t.equal(codecError(t, () => encodeEntryValue({ ...e, term: 1.5 }), "encode term")?.field, "term")
})

t.test("uint64 keys sort numerically", async (t) => {
  const numbers = [0, 1, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, max - 1, max]
  for (const n of numbers) {
    const k = encodeUint64Key(n)
    t.equal(k.length, 8)
    t.equal(decodeUint64Key(k), n, `${n} round trip`)
  }
  const keys = [...numbers].reverse().map(encodeUint64Key).sort(Buffer.compare)
  t.same(keys.map(decodeUint64Key), numbers, "bytewise order = numeric order")
  t.equal(codecError(t, () => encodeUint64Key(-1), "negative")?.field, "key")
  t.equal(codecError(t, () => encodeUint64Key(2 ** 53), "2^53")?.field, "key")
  t.match(codecError(t, () => decodeUint64Key(new Uint8Array(7)), "short")?.message, /expected 8 bytes, got 7/)
  t.match(codecError(t, () => decodeUint64Key(Uint8Array.of(0, 0x20, 0, 0, 0, 0, 0, 0)), "2^53")?.message, /above 2\^53 - 1/)
  t.equal(codecError(t, () => decodeUint64Key("12345678" as unknown as Uint8Array), "string")?.field, "key")
})
