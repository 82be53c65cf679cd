/**
 * Raft frames as a buggy peer would send them: valid messages of every type (protocol/raft.ts)
 * encoded with protocol/raftCodec.ts, then truncated, extended, bit-flipped, with a length
 * prefix or count overwritten, or replaced by random bytes behind a plausible header.
 */
import fc from "fast-check"
import type { Entry, EntryKind, NodeId, RaftMessage } from "../../protocol/raft.ts"
import { raftMessageTypes } from "../../protocol/raft.ts"
import { codecVersion, decodeRaftMessage, encodeRaftMessage, RaftCodecError, typeCodes } from "../../protocol/raftCodec.ts"

const u64 = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat(), fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER))

/** Ids as a peer names itself: mostly plain node ids, sometimes any well-formed text. */
const nodeId = (ids: ReadonlyArray<NodeId>): fc.Arbitrary<NodeId> =>
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ids) }, { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) })

const data = fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1_000, maxLength: 4_000 }) })

const entries = (prevLogIndex: number): fc.Arbitrary<ReadonlyArray<Entry>> =>
  fc
    .array(fc.tuple(u64, fc.constantFrom<EntryKind>(0, 1, 2), u64, data), { maxLength: 6 })
    .map((es) => es.map(([term, kind, time, d], i): Entry => ({ index: prevLogIndex + 1 + i, term, kind, time, data: d })))

/** A message of `type` that encodes: every field in range, entries contiguous. */
const ofType = (type: RaftMessage["type"], ids: ReadonlyArray<NodeId>): fc.Arbitrary<RaftMessage> => {
  const common = fc.record({ from: nodeId(ids), to: nodeId(ids), term: u64 })
  switch (type) {
    case "prevote":
      return fc.tuple(common, u64, u64).map(([c, lastLogIndex, lastLogTerm]) => ({ type, ...c, lastLogIndex, lastLogTerm }))
    case "vote":
      return fc.tuple(common, u64, u64, fc.boolean()).map(([c, lastLogIndex, lastLogTerm, transfer]) => ({ type, ...c, lastLogIndex, lastLogTerm, transfer }))
    case "prevote_resp":
    case "vote_resp":
      return fc.tuple(common, fc.boolean()).map(([c, granted]) => ({ type, ...c, granted }))
    case "append":
      return fc
        .tuple(common, fc.nat({ max: Number.MAX_SAFE_INTEGER - 10 }), u64, u64, u64)
        .chain(([c, prevLogIndex, prevLogTerm, leaderCommit, round]) =>
          entries(prevLogIndex).map((es) => ({ type, ...c, prevLogIndex, prevLogTerm, leaderCommit, round, entries: es }))
        )
    case "append_resp":
      return fc
        .tuple(common, fc.boolean(), u64, u64, u64, u64, u64)
        .map(([c, success, matchIndex, conflictIndex, conflictTerm, lastLogIndex, round]) => ({ type, ...c, success, matchIndex, conflictIndex, conflictTerm, lastLogIndex, round }))
    case "snapshot":
      return fc
        .tuple(common, u64, u64, u64, fc.boolean(), data)
        .map(([c, lastIncludedIndex, lastIncludedTerm, offset, done, d]) => ({ type, ...c, lastIncludedIndex, lastIncludedTerm, offset, done, data: d }))
    case "snapshot_resp":
      return fc.tuple(common, u64, u64, fc.boolean()).map(([c, lastIncludedIndex, offset, success]) => ({ type, ...c, lastIncludedIndex, offset, success }))
    case "timeout_now":
      return common.map((c) => ({ type, ...c }))
  }
}

/** A valid message of any type; every type is drawn (the list is the protocol's own). */
export const raftMessage = (ids: ReadonlyArray<NodeId> = ["n1", "n2", "n3"]): fc.Arbitrary<RaftMessage> =>
  fc.constantFrom(...raftMessageTypes).chain((type) => ofType(type, ids))

export const validFrame = (ids?: ReadonlyArray<NodeId>): fc.Arbitrary<Uint8Array> => raftMessage(ids).map(encodeRaftMessage)

/** One frame and how it was made, printed short by fast-check. */
export class Frame {
  constructor(
    readonly how: string,
    readonly bytes: Uint8Array
  ) {}
  [fc.toStringMethod](): string {
    const hex = Buffer.from(this.bytes.subarray(0, 48)).toString("hex")
    return `${this.how}: ${hex}${this.bytes.length > 48 ? `... (${this.bytes.length} bytes)` : ""}`
  }
  toString(): string {
    return this[fc.toStringMethod]()
  }
}

const flipBits = (bytes: Uint8Array, bits: ReadonlyArray<number>): Uint8Array => {
  const out = bytes.slice()
  for (const b of bits) {
    const at = b % (out.length * 8)
    out[at >>> 3]! ^= 1 << (at & 7)
  }
  return out
}

/** `bytes` with four bytes at `at` (wrapped into range) replaced by `value` big-endian: a forged length or count. */
const overwriteU32 = (bytes: Uint8Array, at: number, value: number): Uint8Array => {
  const out = bytes.slice()
  if (out.length < 4) return out
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(at % (out.length - 3), value >>> 0)
  return out
}

/** Frames a buggy peer sends: each drawn from a valid one, or random bytes behind a real header. */
export const mangledFrame = (ids?: ReadonlyArray<NodeId>): fc.Arbitrary<Frame> => {
  const valid = validFrame(ids)
  return fc.oneof(
    fc.tuple(valid, fc.nat()).map(([b, n]) => new Frame("truncated", b.subarray(0, n % b.length))),
    fc.tuple(valid, fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([b, tail]) => new Frame("trailing bytes", Buffer.concat([b, tail]))),
    fc.tuple(valid, fc.array(fc.nat(), { minLength: 1, maxLength: 8 })).map(([b, bits]) => new Frame("bit flips", flipBits(b, bits))),
    fc
      .tuple(valid, fc.nat(), fc.oneof(fc.constantFrom(0xffffffff, 0x7fffffff, 0x10000, 0xffff, 0, 1), fc.nat()))
      .map(([b, at, v]) => new Frame("forged length or count", overwriteU32(b, at, v))),
    fc
      .tuple(fc.constantFrom(...Object.values(typeCodes), 0, 10, 255), fc.uint8Array({ maxLength: 80 }))
      .map(([type, rest]) => new Frame("random body", Uint8Array.from([codecVersion, type, ...rest]))),
    fc.uint8Array({ maxLength: 80 }).map((b) => new Frame("random bytes", b))
  )
}

/** What the codec makes of `bytes`: a message, its refusal, or anything else it threw (a bug). */
export type Decoded = { readonly ok: RaftMessage } | { readonly refused: RaftCodecError } | { readonly threw: unknown }

export const decode = (bytes: Uint8Array): Decoded => {
  try {
    return { ok: decodeRaftMessage(bytes) }
  } catch (e) {
    return e instanceof RaftCodecError ? { refused: e } : { threw: e }
  }
}

/** Frames the codec refuses: what a node must drop without a trace. */
export const malformedFrame = (ids?: ReadonlyArray<NodeId>): fc.Arbitrary<Frame> => mangledFrame(ids).filter((f) => "refused" in decode(f.bytes))
