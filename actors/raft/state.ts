/**
 * The consensus state of one node, shared by the Election and Replicator behaviours.
 *
 * Election and Replicator are separate modules with separate concerns, but they run in one step
 * over one state: Raft's safety needs the term check, the vote and the log check to be atomic.
 * (A node that voted in term T+1 and then appended a term-T leader's entries could acknowledge an
 * entry the new leader lacks, and a committed write would be lost.)
 */
import type { RaftRole } from "../../protocol/client.ts"
import { maxAppendBytes } from "../../protocol/limits.ts"
import { decodeMembership, seedMembership, type Membership } from "../../protocol/membership.ts"
import { EntryKind, type Entry, type InstallSnapshot, type InstallSnapshotReply, type NodeId, type RaftMessage } from "../../protocol/raft.ts"
import { RaftLog } from "./log.ts"
import { randomInt } from "./random.ts"

export interface HardState {
  readonly term: number
  readonly vote: NodeId | null
}

export interface RaftConfig {
  readonly id: NodeId
  /**
   * The voters `--peers` names: the configuration of a brand-new cluster until its first leader
   * writes it to the log (empty for a node that joins: it waits to be added).
   */
  readonly members: ReadonlyArray<NodeId>
  /** Base election timeout in ticks; each node waits a random number in [n, 2n). */
  readonly electionTicks: number
  readonly heartbeatTicks: number
  /** AppendEntries messages in flight per follower while replicating. */
  readonly maxInflight: number
  /** Cap on one AppendEntries' entry bytes (kept below NATS max_payload). */
  readonly maxAppendBytes: number
  readonly maxAppendEntries: number
  readonly seed: number
}

/** Replication windows and batch caps. */
export type Tuning = Pick<RaftConfig, "maxInflight" | "maxAppendBytes" | "maxAppendEntries">

export const defaultTuning: Tuning = {
  maxInflight: 64,
  maxAppendBytes,
  maxAppendEntries: 4096
}

/** What a follower's leader looks like from the leader: etcd's Progress. */
export interface Progress {
  match: number
  next: number
  /**
   * probe: one message at a time until we find where logs agree; replicate: pipelined;
   * snapshot: it needs entries we compacted away, and the Snapshotter is sending it our state.
   */
  state: "probe" | "replicate" | "snapshot"
  probeSent: boolean
  /** Last index of each AppendEntries in flight (replicate state). */
  inflight: number[]
  /** Heard from since the last check-quorum round. */
  recentActive: boolean
  /** Highest heartbeat round acknowledged: confirms our leadership for ReadIndex. */
  ackedRound: number
  /** Highest commit index sent to this follower: a new commit is worth one message, no more. */
  sentCommit: number
  /** An AppendEntries went to it since the last heartbeat: that served as one. */
  sentSinceHeartbeat: boolean
}

export interface PendingRead {
  readonly ctx: number
  /** The commit index at request time; null until this leader commits an entry of its term. */
  index: number | null
  round: number
}

export interface ReadState {
  readonly ctx: number
  readonly index: number
}

/** What persisted state a node restarts from. */
export interface Restored {
  readonly hardState: HardState
  readonly baseIndex: number
  readonly baseTerm: number
  readonly entries: Entry[]
  /** The Applier's applied index: entries up to here are not handed out again. */
  readonly applied: number
  /** The configuration as of `applied` (the Applier keeps it), or null if none was ever applied. */
  readonly membership: Membership | null
}

/** A configuration entry still in the log (it may yet be overwritten, and then no longer counts). */
export interface ConfigEntry {
  readonly index: number
  readonly term: number
  readonly membership: Membership
}

export interface RaftState {
  readonly config: RaftConfig
  readonly id: NodeId
  /**
   * The configuration in effect: that of the last configuration entry in the log, committed or
   * not (a configuration takes effect when appended, thesis §4.1), else `baseMembership`.
   */
  membership: Membership
  /** The configuration before the first of `configs`: applied, installed or seeded. */
  baseMembership: Membership
  /** Configuration entries in the log after `baseMembership`, oldest first. */
  configs: ConfigEntry[]
  /** Derived from `membership`: every other member (replicated to), the other voters, ... */
  peers: NodeId[]
  voterPeers: NodeId[]
  voters: Set<NodeId>
  /** ... whether this node votes, and how many voters make a majority. */
  selfVoter: boolean
  quorum: number
  term: number
  vote: NodeId | null
  role: RaftRole
  leader: NodeId | null
  readonly log: RaftLog
  electionElapsed: number
  heartbeatElapsed: number
  randomizedElectionTimeout: number
  /** Votes (or pre-votes) received in the current campaign. */
  votes: Map<NodeId, boolean>
  progress: Map<NodeId, Progress>
  /** Leader's heartbeat round counter. */
  round: number
  /** Reads asked this round that still need a heartbeat broadcast. */
  readRoundWanted: boolean
  pendingReads: PendingRead[]
  readStates: ReadState[]
  droppedReads: number[]
  transferee: NodeId | null
  transferElapsed: number
  /** The node is shutting down: it never campaigns or takes leadership again (it still votes). */
  retiring: boolean
  rng: number
  /** Wall time from the last tick (ms); stamped on entries by the leader. */
  now: number
  /** Messages that may leave before this step's writes are durable (leader appends). */
  sendFirst: RaftMessage[]
  /** Messages that must wait until this step's writes are durable. */
  messages: RaftMessage[]
  /** Followers with something new to send. */
  dirtyPeers: Set<NodeId>
  /** Followers that just entered the snapshot state: the Snapshotter starts sending to them. */
  snapshotsWanted: NodeId[]
  /** Snapshot chunks from our leader for the Snapshotter to install (term already checked). */
  snapshotChunks: InstallSnapshot[]
  /** Followers' answers to snapshot chunks, for the Snapshotter's senders. */
  snapshotReplies: InstallSnapshotReply[]
  /** Last hard state handed out for persisting. */
  persistedHardState: HardState
  /** Leader changes observed (for metrics). */
  leaderChanges: number
}

export const makeState = (config: RaftConfig, restored: Restored): RaftState => {
  const base = restored.membership ?? seedMembership(config.members)
  const configs: ConfigEntry[] = []
  for (const e of restored.entries) {
    // Those up to `applied` are in `membership` already; the last entry still decides.
    if (e.kind === EntryKind.Config) configs.push({ index: e.index, term: e.term, membership: decodeMembership(e.data) })
  }
  const s: RaftState = {
    config,
    id: config.id,
    membership: base,
    baseMembership: base,
    configs,
    peers: [],
    voterPeers: [],
    voters: new Set(),
    selfVoter: false,
    quorum: 1,
    term: restored.hardState.term,
    vote: restored.hardState.vote,
    role: "follower",
    leader: null,
    log: new RaftLog(restored.baseIndex, restored.baseTerm, restored.entries, restored.applied),
    electionElapsed: 0,
    heartbeatElapsed: 0,
    randomizedElectionTimeout: config.electionTicks,
    votes: new Map(),
    progress: new Map(),
    round: 0,
    readRoundWanted: false,
    pendingReads: [],
    readStates: [],
    droppedReads: [],
    transferee: null,
    transferElapsed: 0,
    retiring: false,
    rng: config.seed | 0,
    now: 0,
    sendFirst: [],
    messages: [],
    dirtyPeers: new Set(),
    snapshotsWanted: [],
    snapshotChunks: [],
    snapshotReplies: [],
    persistedHardState: restored.hardState,
    leaderChanges: 0
  }
  deriveMembership(s)
  resetElectionTimer(s)
  return s
}

/** Sets `membership` from the configuration entries and base, and what follows from it. */
export const deriveMembership = (s: RaftState): void => {
  const m = s.configs[s.configs.length - 1]?.membership ?? s.baseMembership
  s.membership = m
  s.voters = new Set(m.voters)
  s.peers = [...m.voters, ...m.learners].filter((id) => id !== s.id)
  s.voterPeers = m.voters.filter((id) => id !== s.id)
  s.selfVoter = s.voters.has(s.id)
  s.quorum = Math.floor(m.voters.length / 2) + 1
}

/** Records configuration entries a leader just appended; true when one was among them. */
export const noteConfigs = (s: RaftState, entries: ReadonlyArray<Entry>): boolean => {
  let noted = false
  for (const e of entries) {
    if (e.kind !== EntryKind.Config) continue
    s.configs.push({ index: e.index, term: e.term, membership: decodeMembership(e.data) })
    noted = true
  }
  return noted
}

/**
 * After a follower's append: forgets configuration entries the log no longer holds (a new
 * leader overwrote them: the configuration before them is back in effect) and records those
 * just written. True when the configuration changed.
 */
export const syncConfigs = (s: RaftState, entries: ReadonlyArray<Entry>): boolean => {
  const before = s.configs.length
  let kept = before
  while (kept > 0) {
    const c = s.configs[kept - 1]!
    if (s.log.term(c.index) === c.term) break
    kept--
  }
  s.configs.length = kept
  const last = s.configs[kept - 1]?.index ?? s.log.baseIndex
  for (const e of entries) {
    if (e.kind === EntryKind.Config && e.index > last && s.log.term(e.index) === e.term) {
      s.configs.push({ index: e.index, term: e.term, membership: decodeMembership(e.data) })
    }
  }
  return kept !== before || s.configs.length !== kept
}

/** Folds configuration entries at or below a new compaction base into the base configuration. */
export const foldConfigs = (s: RaftState): void => {
  let folded = 0
  while (folded < s.configs.length && s.configs[folded]!.index <= s.log.baseIndex) folded++
  if (folded === 0) return
  s.baseMembership = s.configs[folded - 1]!.membership
  s.configs.splice(0, folded)
}

/** Index of the entry that set the configuration in effect (0: none in the log). */
export const configIndex = (s: RaftState): number => s.configs[s.configs.length - 1]?.index ?? 0

/** `leader` leads us now; a different leader than the last one known counts as a change. */
export const followLeader = (s: RaftState, leader: NodeId): void => {
  if (s.leader !== leader) s.leaderChanges++
  s.leader = leader
}

export const resetElectionTimer = (s: RaftState): void => {
  s.electionElapsed = 0
  s.randomizedElectionTimeout = randomInt(s, s.config.electionTicks, 2 * s.config.electionTicks)
}
