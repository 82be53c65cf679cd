/**
 * The Raft codec against what a buggy peer sends (raftFrames.ts): random bytes, truncated and
 * extended frames, bit flips, forged lengths and counts. Decoding returns a message or throws
 * `RaftCodecError`, never anything else; a message it returns is the one the bytes encode (the
 * encoding is canonical); a strict prefix of a frame and a frame with bytes after it are always
 * refused; no input makes it loop or work in proportion to a forged count.
 * Stored entries (`decodeEntryValue`) and log keys (`decodeUint64Key`) likewise.
 *
 * Seeds: see seed.ts.
 */
import t from "tap"
import fc from "fast-check"
import { decodeEntryValue, decodeUint64Key, encodeEntryValue, encodeRaftMessage, RaftCodecError } from "../../protocol/raftCodec.ts"
import { decode, mangledFrame, raftMessage, validFrame } from "./raftFrames.ts"
import { fuzzSetup } from "./seed.ts"

const fuzz = fuzzSetup(t, "test/fuzz/raftCodec.test.ts")

/** Far above what decoding 80 KB takes; a decoder looping over a forged count of 2^32 would take seconds. */
const slowMs = 250

const timed = <A>(f: () => A): { result: A; ms: number } => {
  const start = performance.now()
  const result = f()
  return { result, ms: performance.now() - start }
}

const describe = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e))

t.test("every valid message round-trips", async (t) => {
  fc.assert(
    fc.property(raftMessage(), (m) => {
      const bytes = encodeRaftMessage(m)
      const d = decode(bytes)
      if (!("ok" in d)) throw new Error(`a valid ${m.type} did not decode: ${"refused" in d ? d.refused.message : describe(d.threw)}`)
      if (Buffer.compare(encodeRaftMessage(d.ok), bytes) !== 0) throw new Error(`${m.type} re-encodes differently`)
    }),
    fuzz.parameters(500)
  )
  t.pass(`${fuzz.runs(500)} messages`)
})

t.test("mangled frames: a canonical message or RaftCodecError, quickly, never another exception", async (t) => {
  const seen = { accepted: 0, refused: 0 }
  fc.assert(
    fc.property(mangledFrame(), (frame) => {
      const { result, ms } = timed(() => decode(frame.bytes))
      if (ms > slowMs) throw new Error(`decoding took ${ms.toFixed(0)} ms`)
      if ("threw" in result) throw new Error(`threw ${describe(result.threw)}`)
      if ("refused" in result) {
        seen.refused++
        if (result.refused.field === "" || result.refused.message === "") throw new Error("a refusal without a field or message")
        return
      }
      seen.accepted++
      if (Buffer.compare(encodeRaftMessage(result.ok), frame.bytes) !== 0) throw new Error(`decoded to a ${result.ok.type} that encodes to other bytes`)
    }),
    fuzz.parameters(20_000)
  )
  t.ok(seen.refused > 0 && seen.accepted > 0, `both outcomes seen (${seen.accepted} decoded, ${seen.refused} refused)`)
})

t.test("a strict prefix of a frame, or a frame with bytes after it, is always refused", async (t) => {
  fc.assert(
    fc.property(validFrame(), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), (bytes, cut, tail) => {
      for (const mangled of [bytes.subarray(0, cut % bytes.length), Buffer.concat([bytes, tail])]) {
        const d = decode(mangled)
        if (!("refused" in d)) throw new Error(`${mangled.length} of ${bytes.length} bytes: ${"ok" in d ? "decoded" : describe(d.threw)}`)
      }
    }),
    fuzz.parameters(1_000)
  )
  t.pass(`${fuzz.runs(1_000)} frames cut short and extended`)
})

t.test("forged counts and lengths are refused without allocating or looping for them", async (t) => {
  // An append with no entries, then its count and the first length prefix set to the largest values.
  const append = encodeRaftMessage({ type: "append", from: "n1", to: "n2", term: 3, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, round: 1, entries: [] })
  const count = append.slice()
  new DataView(count.buffer).setUint32(count.length - 4, 0xffffffff)
  const huge = Buffer.concat([count, new Uint8Array(21 * 1000)])
  const snapshot = encodeRaftMessage({ type: "snapshot", from: "n1", to: "n2", term: 3, lastIncludedIndex: 9, lastIncludedTerm: 2, offset: 0, done: false, data: new Uint8Array(8) })
  const blob = snapshot.slice()
  new DataView(blob.buffer).setUint32(blob.length - 12, 0xffffffff)
  const id = encodeRaftMessage({ type: "timeout_now", from: "n1", to: "n2", term: 1 }).slice()
  new DataView(id.buffer).setUint16(2, 0xffff)
  for (const [name, bytes, field] of [
    ["entry count 2^32 - 1", count, "entries"],
    ["entry count 2^32 - 1 with 21 KB after it", huge, "entries"],
    ["snapshot data length 2^32 - 1", blob, "data"],
    ["id length 65535", id, "from"]
  ] as const) {
    const { result, ms } = timed(() => decode(bytes))
    t.ok("refused" in result && result.refused.field === field, `${name}: refused (${"refused" in result ? result.refused.message : "not refused"})`)
    t.ok(ms < slowMs, `${name}: in ${ms.toFixed(1)} ms`)
  }
})

t.test("stored entries and log keys: a value or RaftCodecError", async (t) => {
  const entryBytes = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc
      .tuple(fc.maxSafeNat(), fc.constantFrom(0, 1, 2), fc.maxSafeNat(), fc.uint8Array({ maxLength: 20 }), fc.nat())
      .map(([term, kind, time, data, cut]) => {
        const b = encodeEntryValue({ index: 1, term, kind: kind as 0 | 1 | 2, time, data })
        return cut % 3 === 0 ? b.subarray(0, cut % b.length) : b
      })
  )
  fc.assert(
    fc.property(fc.maxSafeNat(), entryBytes, fc.uint8Array({ maxLength: 12 }), (index, value, key) => {
      for (const f of [() => decodeEntryValue(index, value), () => decodeUint64Key(key)]) {
        try {
          f()
        } catch (e) {
          if (!(e instanceof RaftCodecError)) throw new Error(`threw ${describe(e)}`)
        }
      }
    }),
    fuzz.parameters(2_000)
  )
  t.pass(`${fuzz.runs(2_000)} entry values and keys`)
})
