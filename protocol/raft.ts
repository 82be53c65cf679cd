/**
 * Raft wire messages. These plain types are what the consensus core consumes and produces;
 * `protocol/raftCodec.ts` turns them into compact bytes for NATS and back, refusing any field
 * it cannot represent.
 *
 * Every message carries `from`, `to` and `term`: the core checks the term in one place.
 */

export type NodeId = string

/** What a log entry holds. Config is reserved for membership changes. */
export const EntryKind = { Noop: 0, Command: 1, Config: 2 } as const
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind]

export interface Entry {
  readonly index: number
  readonly term: number
  readonly kind: EntryKind
  /** Leader-stamped wall time in ms: the state machine's only clock. */
  readonly time: number
  readonly data: Uint8Array
}

export interface PreVote {
  readonly type: "prevote"
  readonly from: NodeId
  readonly to: NodeId
  /** The term the sender would campaign in (its term + 1); its own term is not changed. */
  readonly term: number
  readonly lastLogIndex: number
  readonly lastLogTerm: number
}

export interface PreVoteReply {
  readonly type: "prevote_resp"
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly granted: boolean
}

export interface RequestVote {
  readonly type: "vote"
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly lastLogIndex: number
  readonly lastLogTerm: number
  /** Set when a leader handed over on purpose: voters skip the leader-lease check. */
  readonly transfer: boolean
}

export interface RequestVoteReply {
  readonly type: "vote_resp"
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly granted: boolean
}

export interface AppendEntries {
  readonly type: "append"
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly prevLogIndex: number
  readonly prevLogTerm: number
  readonly leaderCommit: number
  /** Leader's heartbeat round, echoed back: confirms leadership for ReadIndex. */
  readonly round: number
  readonly entries: ReadonlyArray<Entry>
}

export interface AppendEntriesReply {
  readonly type: "append_resp"
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly success: boolean
  /**
   * On success: the last index now known to match the leader. On failure: the prevLogIndex
   * the follower rejected, so the leader can tell a stale rejection from a fresh one.
   */
  readonly matchIndex: number
  /** On failure: where the leader should retry (fast backtracking hints). */
  readonly conflictIndex: number
  /** On failure: the follower's term at prevLogIndex, or 0 when its log is shorter. */
  readonly conflictTerm: number
  /** The follower's last log index, so the leader can move nextIndex in one step. */
  readonly lastLogIndex: number
  readonly round: number
}

export interface InstallSnapshot {
  readonly type: "snapshot"
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly lastIncludedIndex: number
  readonly lastIncludedTerm: number
  readonly offset: number
  readonly done: boolean
  readonly data: Uint8Array
}

export interface InstallSnapshotReply {
  readonly type: "snapshot_resp"
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly lastIncludedIndex: number
  /** Bytes received so far; the leader sends the next chunk from here. */
  readonly offset: number
  readonly success: boolean
}

export interface TimeoutNow {
  readonly type: "timeout_now"
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
}

export type RaftMessage =
  | PreVote
  | PreVoteReply
  | RequestVote
  | RequestVoteReply
  | AppendEntries
  | AppendEntriesReply
  | InstallSnapshot
  | InstallSnapshotReply
  | TimeoutNow

export type RaftMessageType = RaftMessage["type"]

export const raftMessageTypes: ReadonlyArray<RaftMessageType> = [
  "prevote",
  "prevote_resp",
  "vote",
  "vote_resp",
  "append",
  "append_resp",
  "snapshot",
  "snapshot_resp",
  "timeout_now"
]
