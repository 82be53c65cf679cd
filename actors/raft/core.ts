/**
 * The consensus core of one node (Election + Replicator), in the style of etcd-io/raft: inputs
 * go in through `step`, `tick`, `propose` and `requestRead`; `ready()` hands out what to persist,
 * send and apply; `advance()` is told what became durable. No I/O, no clock, no Math.random:
 * the same code runs in the node and in the deterministic simulator.
 *
 * The shell must perform a Ready in this order:
 *   1. send `sendFirst` (leader appends and pre-votes: safe before our own writes are durable)
 *   2. persist `hardState`, drop log keys from `truncateFrom`, write `entries` — one synced batch
 *   3. call `advance(ready)`
 *   4. send `messages` (votes and acknowledgements: only after what they promise is durable)
 *   5. apply `committed`, serve `readStates`, fail `droppedReads`
 *      (committed entries already durable before step 2 may be applied before it)
 */
import type { RaftRole } from "../../protocol/client.ts"
import { changeMembership, encodeMembership, type Membership, type MembershipOp } from "../../protocol/membership.ts"
import { EntryKind, type Entry, type InstallSnapshot, type InstallSnapshotReply, type NodeId, type RaftMessage } from "../../protocol/raft.ts"
import { becomeFollower, campaign, handleVoteReply, handleVoteRequest, tickElection } from "./election.ts"
import { invariant } from "./invariant.ts"
import {
  appendLocal,
  flushPeers,
  handleAppend,
  handleAppendReply,
  handleSnapshot,
  handleSnapshotReply,
  heartbeat,
  maybeCommit,
  membershipChanged,
  requestRead,
  sendAppend,
  snapshotAbandoned,
  type Proposal
} from "./replicator.ts"
import { configIndex, foldConfigs, makeState, type HardState, type Progress, type RaftConfig, type RaftState, type ReadState, type Restored } from "./state.ts"

export interface Ready {
  /** The log's epoch when this Ready was made (see RaftLog.epoch). */
  readonly epoch: number
  readonly hardState: HardState | null
  readonly truncateFrom: number | null
  readonly entries: ReadonlyArray<Entry>
  readonly sendFirst: ReadonlyArray<RaftMessage>
  readonly messages: ReadonlyArray<RaftMessage>
  readonly committed: ReadonlyArray<Entry>
  readonly readStates: ReadonlyArray<ReadState>
  readonly droppedReads: ReadonlyArray<number>
  /** Followers the Snapshotter must send a snapshot to. */
  readonly snapshotsWanted: ReadonlyArray<NodeId>
  /** Chunks of a snapshot from our leader, for the Snapshotter to install. */
  readonly snapshotChunks: ReadonlyArray<InstallSnapshot>
  /** Followers' answers to the chunks we sent. */
  readonly snapshotReplies: ReadonlyArray<InstallSnapshotReply>
}

export type ProposeResult =
  | { readonly ok: true; readonly firstIndex: number; readonly term: number }
  | { readonly ok: false; readonly leader: NodeId | null }

/**
 * A configuration change the leader took (appended at `index`; `index` is that of the
 * configuration in effect when nothing changed), or why not: `not_leader`, `busy` (another
 * change or a transfer under way, or this term's first entry not committed yet: retry),
 * `refused` (the change makes no sense here: `message` says why), `lagging` (a learner not
 * caught up yet: retry later).
 */
export type ChangeResult =
  | { readonly ok: true; readonly index: number; readonly term: number; readonly membership: Membership; readonly changed: boolean }
  | { readonly ok: false; readonly reason: "not_leader" | "busy" | "refused" | "lagging"; readonly message: string; readonly leader: NodeId | null }

/** A learner within this many entries of the leader's log, and replicating, may be promoted. */
export const promoteMaxLag = 1000

export interface Status {
  readonly id: NodeId
  /** The configuration in effect here, and the index of the entry that set it (0: not in the log). */
  readonly membership: Membership
  readonly configIndex: number
  readonly role: RaftRole
  readonly term: number
  readonly vote: NodeId | null
  readonly leader: NodeId | null
  readonly commitIndex: number
  /** Index and term of the last entry compacted into a snapshot. */
  readonly baseIndex: number
  readonly baseTerm: number
  readonly firstIndex: number
  readonly lastIndex: number
  readonly lastTerm: number
  readonly persistedIndex: number
  readonly leaderChanges: number
  readonly peers: ReadonlyArray<{ id: NodeId; matchIndex: number; nextIndex: number; state: Progress["state"] }>
}

export class RaftCore {
  readonly s: RaftState

  constructor(config: RaftConfig, restored: Restored) {
    this.s = makeState(config, restored)
  }

  /** One message from a peer. All term checks live here (etcd's `Step`). */
  step(m: RaftMessage): void {
    this.stepMessage(m)
    this.leaveIfRemoved()
  }

  // Any node may send: one being added is not yet in our configuration, and a removed one's
  // votes are refused by Pre-Vote and the leader lease, and its answers find no progress.
  private stepMessage(m: RaftMessage): void {
    const s = this.s
    if (m.to !== s.id || m.from === s.id) return
    if (m.term > s.term) {
      if (m.type === "prevote" || m.type === "vote") {
        const forced = m.type === "vote" && m.transfer
        // Check-quorum lease: while we hear from a live leader, ignore would-be disruptors.
        if (!forced && s.leader !== null && s.electionElapsed < s.config.electionTicks) return
      }
      if (m.type === "prevote" || (m.type === "prevote_resp" && m.granted)) {
        // Pre-vote terms are hypothetical: they never move ours.
      } else {
        const leader = m.type === "append" || m.type === "snapshot" ? m.from : null
        becomeFollower(s, m.term, leader)
      }
    } else if (m.term < s.term) {
      if (m.type === "append" || m.type === "snapshot") {
        // Tell a stale leader about the newer term so it steps down.
        s.messages.push({
          type: "append_resp",
          from: s.id,
          to: m.from,
          term: s.term,
          success: false,
          matchIndex: 0,
          conflictIndex: 0,
          conflictTerm: 0,
          lastLogIndex: s.log.lastIndex,
          round: 0
        })
      } else if (m.type === "prevote") {
        s.sendFirst.push({ type: "prevote_resp", from: s.id, to: m.from, term: s.term, granted: false })
      }
      return
    }
    switch (m.type) {
      case "prevote":
      case "vote":
        handleVoteRequest(s, m)
        return
      case "prevote_resp":
      case "vote_resp":
        handleVoteReply(s, m)
        return
      case "append":
        if (s.role === "leader") return // two leaders in one term cannot happen; ignore defensively
        if (s.role !== "follower") becomeFollower(s, m.term, m.from)
        handleAppend(s, m)
        return
      case "append_resp":
        if (s.role === "leader") handleAppendReply(s, m, (peer) => this.sendTimeoutNow(peer))
        return
      case "timeout_now":
        if (s.role === "follower") campaign(s, true)
        return
      case "snapshot":
        if (s.role === "leader") return
        if (s.role !== "follower") becomeFollower(s, m.term, m.from)
        handleSnapshot(s, m)
        return
      case "snapshot_resp":
        if (s.role === "leader") handleSnapshotReply(s, m)
        return
    }
  }

  /** Logical clock: one tick, with the wall time the leader stamps on new entries. */
  tick(now: number): void {
    const s = this.s
    if (now > s.now) s.now = now
    const leading = tickElection(s)
    if (!leading) return
    if (++s.heartbeatElapsed >= s.config.heartbeatTicks) {
      s.heartbeatElapsed = 0
      heartbeat(s)
    }
  }

  /** Appends client commands if we lead; the caller learns the indexes to wait for. */
  propose(proposals: ReadonlyArray<Proposal>): ProposeResult {
    const s = this.s
    if (s.role !== "leader" || s.transferee !== null) return { ok: false, leader: s.role === "leader" ? null : s.leader }
    if (proposals.length === 0) return { ok: true, firstIndex: s.log.lastIndex + 1, term: s.term }
    const firstIndex = appendLocal(s, proposals)
    return { ok: true, firstIndex, term: s.term }
  }

  /** ReadIndex: false when we are not the leader (the caller forwards or fails the read). */
  requestRead(ctx: number): boolean {
    return requestRead(this.s, ctx)
  }

  /**
   * Hands leadership to `to` once it has our whole log (§3.10). Proposals are refused until it
   * leads, or until an election timeout passes without that (then we go on leading, as etcd
   * does). Asking again for the transfer under way changes nothing (its timeout keeps running).
   */
  transferLeadership(to: NodeId): boolean {
    const s = this.s
    const pr = s.progress.get(to)
    if (s.role !== "leader" || pr === undefined || !s.voters.has(to)) return false
    if (s.transferee === to) return true
    s.transferee = to
    s.transferElapsed = 0
    if (pr.match === s.log.lastIndex) this.sendTimeoutNow(to)
    else sendAppend(s, to, false)
    return true
  }

  /**
   * The node is shutting down: it never campaigns again, so a leader handing over (to it, or to
   * anyone) cannot make it lead for the moment it has left. A leader leads on until it hands over.
   */
  retire(): void {
    this.s.retiring = true
  }

  /**
   * The follower most worth handing leadership to: the most caught-up one (highest match), then
   * one heard from this check-quorum round, then the lowest id. Null when we do not lead or
   * lead alone.
   */
  transferTarget(): NodeId | null {
    const s = this.s
    if (s.role !== "leader") return null
    let best: NodeId | null = null
    let bestPr: Progress | undefined
    for (const [id, pr] of s.progress) {
      if (!s.voters.has(id)) continue
      if (bestPr !== undefined && best !== null) {
        if (pr.match !== bestPr.match ? pr.match < bestPr.match : pr.recentActive !== bestPr.recentActive ? !pr.recentActive : id > best) continue
      }
      best = id
      bestPr = pr
    }
    return best
  }

  /**
   * One configuration change, single-server style (thesis §4.1): taken only once the previous
   * configuration is committed and this term has committed an entry (so no older leader's
   * uncommitted change can still take effect), and appended at once: it is in effect from here.
   */
  changeMembership(op: MembershipOp, id: NodeId): ChangeResult {
    const s = this.s
    const no = (reason: "not_leader" | "busy" | "refused" | "lagging", message: string): ChangeResult => ({ ok: false, reason, message, leader: s.role === "leader" ? s.id : s.leader })
    if (s.role !== "leader") return no("not_leader", `node ${s.id} does not lead`)
    if (s.transferee !== null) return no("busy", `leadership is being handed to ${s.transferee}`)
    if (s.log.term(s.log.committed) !== s.term) return no("busy", "the new leader has not committed an entry of its term yet")
    const pending = configIndex(s)
    if (pending > s.log.committed) return no("busy", `the membership change at index ${pending} is not committed yet`)
    const next = changeMembership(s.membership, op, id)
    if (next === null) return { ok: true, index: pending, term: s.log.term(pending) ?? s.term, membership: s.membership, changed: false }
    if ("refused" in next) return no("refused", next.refused)
    if (op === "promote") {
      const pr = s.progress.get(id)
      const lag = pr === undefined ? Infinity : s.log.lastIndex - pr.match
      // Replicating (the leader found where their logs agree and streams to it), and close behind.
      if (pr === undefined || pr.state !== "replicate" || lag > promoteMaxLag) {
        const why = pr === undefined ? "no progress known" : pr.state === "snapshot" ? "it is receiving a snapshot" : pr.state === "probe" ? "the leader has not heard where its log stands yet" : `${lag} entries behind`
        return no("lagging", `learner ${id} is not caught up (${why}); promote it once it is within ${promoteMaxLag} entries`)
      }
    }
    const index = appendLocal(s, [{ kind: EntryKind.Config, data: encodeMembership(next) }])
    return { ok: true, index, term: s.term, membership: next, changed: true }
  }

  /**
   * A leader whose removal is committed stops leading: it tells the most caught-up voter that
   * holds its whole log to campaign at once (no election timeout), then follows.
   */
  private leaveIfRemoved(): void {
    const s = this.s
    if (s.role !== "leader" || s.selfVoter || configIndex(s) > s.log.committed) return
    const to = this.transferTarget()
    if (to !== null && s.progress.get(to)!.match === s.log.lastIndex) this.sendTimeoutNow(to)
    becomeFollower(s, s.term, null)
  }

  private sendTimeoutNow(to: NodeId): void {
    this.s.sendFirst.push({ type: "timeout_now", from: this.s.id, to, term: this.s.term })
  }

  /** The Snapshotter stopped sending to `peer` without an answer: probe it again. */
  snapshotAbandoned(peer: NodeId): void {
    snapshotAbandoned(this.s, peer)
  }

  /** A snapshot at or past `index` is durable: entries up to it are no longer needed in memory. */
  compact(index: number): void {
    this.s.log.compact(Math.min(index, this.s.log.handedIndex, this.s.log.persistedIndex))
    foldConfigs(this.s)
  }

  /**
   * Can a snapshot at (index, term) from the leader of `term` replace our log now? Not once we
   * committed past it or hold its last entry (then the log catches us up), nor from an old term.
   */
  canInstall(index: number, snapshotTerm: number, leaderTerm: number): boolean {
    const s = this.s
    return s.role === "follower" && s.term === leaderTerm && index > s.log.committed && !s.log.matchTerm(index, snapshotTerm)
  }

  /** Replaces the log with a snapshot at (index, term), and its configuration, that the Snapshotter has verified. */
  installSnapshot(index: number, term: number, membership: Membership): void {
    const s = this.s
    s.log.restart(index, term)
    s.baseMembership = membership
    s.configs = []
    membershipChanged(s)
  }

  hasReady(): boolean {
    const s = this.s
    return (
      s.snapshotsWanted.length > 0 ||
      s.snapshotChunks.length > 0 ||
      s.snapshotReplies.length > 0 ||
      s.sendFirst.length > 0 ||
      s.messages.length > 0 ||
      s.dirtyPeers.size > 0 ||
      s.readRoundWanted ||
      s.readStates.length > 0 ||
      s.droppedReads.length > 0 ||
      s.log.unstableFrom <= s.log.lastIndex ||
      s.log.truncateFrom !== null ||
      s.log.committed > s.log.handedIndex ||
      s.term !== s.persistedHardState.term ||
      s.vote !== s.persistedHardState.vote
    )
  }

  ready(): Ready {
    const s = this.s
    const log = s.log
    flushPeers(s)
    const hardChanged = s.term !== s.persistedHardState.term || s.vote !== s.persistedHardState.vote
    const hardState = hardChanged ? { term: s.term, vote: s.vote } : null
    const entries = log.unstableFrom <= log.lastIndex ? log.slice(log.unstableFrom, log.lastIndex) : []
    const committed = log.committed > log.handedIndex ? log.slice(log.handedIndex + 1, log.committed) : []
    invariant(log.handedIndex <= log.committed && log.committed <= log.lastIndex, "handed <= commit <= last")
    const rd: Ready = {
      epoch: log.epoch,
      hardState,
      truncateFrom: log.truncateFrom,
      entries,
      sendFirst: s.sendFirst,
      messages: s.messages,
      committed,
      readStates: s.readStates,
      droppedReads: s.droppedReads,
      snapshotsWanted: s.snapshotsWanted,
      snapshotChunks: s.snapshotChunks,
      snapshotReplies: s.snapshotReplies
    }
    if (hardState !== null) s.persistedHardState = hardState
    log.truncateFrom = null
    log.unstableFrom = log.lastIndex + 1
    log.handedIndex = log.committed
    s.sendFirst = []
    s.messages = []
    s.readStates = []
    s.droppedReads = []
    s.snapshotsWanted = []
    s.snapshotChunks = []
    s.snapshotReplies = []
    return rd
  }

  /** The shell made a Ready's writes durable. */
  advance(rd: Ready): void {
    const s = this.s
    const last = rd.entries[rd.entries.length - 1]
    // Only count entries that are still ours: a later step may have cut the log, an install replaced it.
    if (last !== undefined && rd.epoch === s.log.epoch && s.log.term(last.index) === last.term && last.index > s.log.persistedIndex) {
      s.log.persistedIndex = last.index
      if (s.role === "leader") maybeCommit(s)
    }
    this.leaveIfRemoved()
  }

  status(): Status {
    const s = this.s
    return {
      id: s.id,
      membership: s.membership,
      configIndex: configIndex(s),
      role: s.role,
      term: s.term,
      vote: s.vote,
      leader: s.leader,
      commitIndex: s.log.committed,
      baseIndex: s.log.baseIndex,
      baseTerm: s.log.baseTerm,
      firstIndex: s.log.firstIndex,
      lastIndex: s.log.lastIndex,
      lastTerm: s.log.lastTerm,
      persistedIndex: s.log.persistedIndex,
      leaderChanges: s.leaderChanges,
      peers: [...s.progress].map(([id, pr]) => ({ id, matchIndex: pr.match, nextIndex: pr.next, state: pr.state }))
    }
  }
}

export type { Proposal }
