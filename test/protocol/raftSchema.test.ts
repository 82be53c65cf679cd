import { Either, Schema } from "effect"
import t from "tap"
import type * as Raft from "../../protocol/raft.ts"
import { raftMessageTypes } from "../../protocol/raft.ts"
import { decodeRaftMessage, encodeRaftMessage } from "../../protocol/raftCodec.ts"
import { EntrySchema, isRaftMessage, RaftMessageSchema, schemaByType } from "../../protocol/raftSchema.ts"

const data = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i & 0xff)

const samples: ReadonlyArray<Raft.RaftMessage> = [
  { type: "prevote", from: "a", to: "b", term: 3, lastLogIndex: 10, lastLogTerm: 2 },
  { type: "prevote_resp", from: "b", to: "a", term: 3, granted: true },
  { type: "vote", from: "a", to: "b", term: 4, lastLogIndex: Number.MAX_SAFE_INTEGER, lastLogTerm: 3, transfer: true },
  { type: "vote_resp", from: "b", to: "a", term: 4, granted: false },
  { type: "append", from: "a", to: "b", term: 5, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, round: 1, entries: [] },
  {
    type: "append", from: "a", to: "b", term: 5, prevLogIndex: 9, prevLogTerm: 4, leaderCommit: 9, round: 2,
    entries: [
      { index: 10, term: 5, kind: 0, time: 1_700_000_000_000, data: new Uint8Array(0) },
      { index: 11, term: 5, kind: 1, time: 1_700_000_000_001, data: data(300) },
      { index: 12, term: 5, kind: 2, time: 1_700_000_000_002, data: data(5) }
    ]
  },
  { type: "append_resp", from: "b", to: "a", term: 5, success: true, matchIndex: 12, conflictIndex: 0, conflictTerm: 0, lastLogIndex: 12, round: 2 },
  { type: "snapshot", from: "a", to: "c", term: 6, lastIncludedIndex: 100, lastIncludedTerm: 5, offset: 0, done: false, data: data(1000) },
  { type: "snapshot_resp", from: "c", to: "a", term: 6, lastIncludedIndex: 100, offset: 1000, success: true },
  { type: "timeout_now", from: "a", to: "b", term: 7 }
]

const validate = Schema.validateEither(RaftMessageSchema, { onExcessProperty: "error" })

t.test("every codec round-trip output validates against the schema", async (t) => {
  const seen = new Set<string>()
  for (const m of samples) {
    const decoded = decodeRaftMessage(encodeRaftMessage(m))
    t.ok(Either.isRight(validate(decoded)), `${m.type}: decoded message validates`)
    t.ok(isRaftMessage(decoded), `${m.type}: isRaftMessage`)
    const own = schemaByType[m.type] as Schema.Schema<Raft.RaftMessage>
    t.ok(Schema.is(own)(decoded), `${m.type}: its own schema`)
    seen.add(m.type)
  }
  t.same([...seen].sort(), [...raftMessageTypes].sort(), "every type")
})

t.test("the schemas refuse what the codec refuses", async (t) => {
  const vote = samples[2]!
  const bad: ReadonlyArray<readonly [string, unknown]> = [
    ["negative term", { ...vote, term: -1 }],
    ["fractional index", { ...vote, lastLogIndex: 1.5 }],
    ["index above 2^53 - 1", { ...vote, lastLogIndex: 2 ** 53 }],
    ["unknown type", { ...vote, type: "gossip" }],
    ["missing field", { type: "timeout_now", from: "a", term: 1 }],
    ["extra field", { ...vote, extra: 1 }],
    ["boolean as number", { ...vote, transfer: 1 }],
    ["data as array", { ...samples[7]!, data: [1, 2, 3] }],
    ["bad entry kind", { ...samples[5]!, entries: [{ index: 1, term: 1, kind: 3, time: 0, data: new Uint8Array(0) }] }]
  ]
  for (const [label, m] of bad) t.ok(Either.isLeft(validate(m)), label)
  t.notOk(Schema.is(EntrySchema)({ index: -1, term: 0, kind: 0, time: 0, data: new Uint8Array(0) }), "entry index >= 0")
})

t.test("schema types and raft.ts types agree (compile time)", async (t) => {
  type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
  const agree = <T extends true>(_: T): boolean => true
  t.ok(agree<Same<Schema.Schema.Type<typeof RaftMessageSchema>, Raft.RaftMessage>>(true), "union, both ways")
  t.ok(agree<Same<Schema.Schema.Type<typeof schemaByType.append>, Raft.AppendEntries>>(true), "append, both ways")
  t.ok(agree<Same<Schema.Schema.Type<typeof EntrySchema>, Raft.Entry>>(true), "entry, both ways")
  // The check has teeth: different shapes do not agree.
  // @ts-expect-error PreVote and PreVoteReply differ
  t.ok(agree<Same<Raft.PreVote, Raft.PreVoteReply>>(true), "a mismatch is a compile error")
  // @ts-expect-error one direction is not enough
  t.ok(agree<Same<Raft.RaftMessage, Raft.PreVote>>(true), "subset is a compile error")
  const fromSchema: Raft.RaftMessage = Schema.decodeUnknownSync(RaftMessageSchema)(samples[0])
  const toSchema: Schema.Schema.Type<typeof RaftMessageSchema> = samples[0]!
  t.same(fromSchema, toSchema, "assignable both ways")
})
