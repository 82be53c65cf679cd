/**
 * Effect Schemas of the Raft messages in `protocol/raft.ts`: for validation in tests and the
 * simulator, for debugging dumps, and as documentation. The hot path uses the binary codec
 * (`protocol/raftCodec.ts`), not these.
 *
 * The type-level checks at the bottom fail to compile if a schema and its TypeScript type
 * drift apart.
 */
import { Schema } from "effect"
import type * as Raft from "./raft.ts"

/** Indexes, terms, rounds, offsets and times: integers 0 .. 2^53 - 1. */
export const Counter = Schema.NonNegativeInt.annotations({ identifier: "Counter" })

export const NodeIdSchema = Schema.String.annotations({ identifier: "NodeId" })

export const EntryKindSchema = Schema.Literal(0, 1, 2).annotations({
  identifier: "EntryKind",
  description: "0 noop, 1 command, 2 config"
})

export const EntrySchema = Schema.Struct({
  index: Counter,
  term: Counter,
  kind: EntryKindSchema,
  time: Counter,
  data: Schema.Uint8ArrayFromSelf
}).annotations({ identifier: "Entry" })

const envelope = { from: NodeIdSchema, to: NodeIdSchema, term: Counter }

export const PreVoteSchema = Schema.Struct({
  type: Schema.Literal("prevote"),
  ...envelope,
  lastLogIndex: Counter,
  lastLogTerm: Counter
}).annotations({ identifier: "PreVote" })

export const PreVoteReplySchema = Schema.Struct({
  type: Schema.Literal("prevote_resp"),
  ...envelope,
  granted: Schema.Boolean
}).annotations({ identifier: "PreVoteReply" })

export const RequestVoteSchema = Schema.Struct({
  type: Schema.Literal("vote"),
  ...envelope,
  lastLogIndex: Counter,
  lastLogTerm: Counter,
  transfer: Schema.Boolean
}).annotations({ identifier: "RequestVote" })

export const RequestVoteReplySchema = Schema.Struct({
  type: Schema.Literal("vote_resp"),
  ...envelope,
  granted: Schema.Boolean
}).annotations({ identifier: "RequestVoteReply" })

export const AppendEntriesSchema = Schema.Struct({
  type: Schema.Literal("append"),
  ...envelope,
  prevLogIndex: Counter,
  prevLogTerm: Counter,
  leaderCommit: Counter,
  round: Counter,
  entries: Schema.Array(EntrySchema)
}).annotations({ identifier: "AppendEntries" })

export const AppendEntriesReplySchema = Schema.Struct({
  type: Schema.Literal("append_resp"),
  ...envelope,
  success: Schema.Boolean,
  matchIndex: Counter,
  conflictIndex: Counter,
  conflictTerm: Counter,
  lastLogIndex: Counter,
  round: Counter
}).annotations({ identifier: "AppendEntriesReply" })

export const InstallSnapshotSchema = Schema.Struct({
  type: Schema.Literal("snapshot"),
  ...envelope,
  lastIncludedIndex: Counter,
  lastIncludedTerm: Counter,
  offset: Counter,
  done: Schema.Boolean,
  data: Schema.Uint8ArrayFromSelf
}).annotations({ identifier: "InstallSnapshot" })

export const InstallSnapshotReplySchema = Schema.Struct({
  type: Schema.Literal("snapshot_resp"),
  ...envelope,
  lastIncludedIndex: Counter,
  offset: Counter,
  success: Schema.Boolean
}).annotations({ identifier: "InstallSnapshotReply" })

export const TimeoutNowSchema = Schema.Struct({
  type: Schema.Literal("timeout_now"),
  ...envelope
}).annotations({ identifier: "TimeoutNow" })

export const RaftMessageSchema = Schema.Union(
  PreVoteSchema,
  PreVoteReplySchema,
  RequestVoteSchema,
  RequestVoteReplySchema,
  AppendEntriesSchema,
  AppendEntriesReplySchema,
  InstallSnapshotSchema,
  InstallSnapshotReplySchema,
  TimeoutNowSchema
).annotations({ identifier: "RaftMessage" })

/** Every schema by message type, for per-type validation. */
export const schemaByType = {
  prevote: PreVoteSchema,
  prevote_resp: PreVoteReplySchema,
  vote: RequestVoteSchema,
  vote_resp: RequestVoteReplySchema,
  append: AppendEntriesSchema,
  append_resp: AppendEntriesReplySchema,
  snapshot: InstallSnapshotSchema,
  snapshot_resp: InstallSnapshotReplySchema,
  timeout_now: TimeoutNowSchema
} as const satisfies { readonly [K in Raft.RaftMessageType]: Schema.Schema<Extract<Raft.RaftMessage, { type: K }>> }

/** True when `u` is a valid Raft message (exact: no extra fields). */
export const isRaftMessage = Schema.is(RaftMessageSchema, { onExcessProperty: "error" })

// ---------------------------------------------------------------------------------------------
// Compile-time agreement between the schemas and the plain types in raft.ts, both directions.

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const agree = <T extends true>(_: T): void => undefined

agree<Same<Schema.Schema.Type<typeof EntrySchema>, Raft.Entry>>(true)
agree<Same<Schema.Schema.Type<typeof PreVoteSchema>, Raft.PreVote>>(true)
agree<Same<Schema.Schema.Type<typeof PreVoteReplySchema>, Raft.PreVoteReply>>(true)
agree<Same<Schema.Schema.Type<typeof RequestVoteSchema>, Raft.RequestVote>>(true)
agree<Same<Schema.Schema.Type<typeof RequestVoteReplySchema>, Raft.RequestVoteReply>>(true)
agree<Same<Schema.Schema.Type<typeof AppendEntriesSchema>, Raft.AppendEntries>>(true)
agree<Same<Schema.Schema.Type<typeof AppendEntriesReplySchema>, Raft.AppendEntriesReply>>(true)
agree<Same<Schema.Schema.Type<typeof InstallSnapshotSchema>, Raft.InstallSnapshot>>(true)
agree<Same<Schema.Schema.Type<typeof InstallSnapshotReplySchema>, Raft.InstallSnapshotReply>>(true)
agree<Same<Schema.Schema.Type<typeof TimeoutNowSchema>, Raft.TimeoutNow>>(true)
agree<Same<Schema.Schema.Type<typeof RaftMessageSchema>, Raft.RaftMessage>>(true)
