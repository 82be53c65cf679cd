/**
 * The Replicator behaviour: the log, per-follower progress, pipelined AppendEntries with flow
 * control, fast conflict backtracking, the commit rule, and ReadIndex.
 */
import {
  EntryKind,
  type AppendEntries,
  type AppendEntriesReply,
  type Entry,
  type InstallSnapshot,
  type InstallSnapshotReply,
  type NodeId
} from "../../protocol/raft.ts"
import { invariant } from "./invariant.ts"
import { encodeMembership } from "../../protocol/membership.ts"
import { randomInt } from "./random.ts"
import { configIndex, deriveMembership, followLeader, noteConfigs, resetElectionTimer, syncConfigs, type Progress, type RaftState } from "./state.ts"

export const newProgress = (s: RaftState): Progress => ({
  match: 0,
  next: s.log.lastIndex + 1,
  state: "probe",
  probeSent: false,
  inflight: [],
  recentActive: true,
  ackedRound: 0,
  sentCommit: 0,
  sentSinceHeartbeat: false
})

/**
 * Leader setup: fresh progress for everyone and an entry of the new term so earlier terms can
 * commit: a no-op, or for the first leader of a new cluster the configuration `--peers` seeded,
 * with a random cluster id (from then on the log holds the configuration).
 */
export const initLeaderLog = (s: RaftState): void => {
  s.progress = new Map(s.peers.map((p) => [p, newProgress(s)]))
  s.round = 0
  if (s.membership.cluster === "") {
    const cluster = Array.from({ length: 4 }, () => randomInt(s, 0, 0x10000).toString(16).padStart(4, "0")).join("")
    appendLocal(s, [{ kind: EntryKind.Config, data: encodeMembership({ ...s.membership, cluster }) }])
  } else {
    appendLocal(s, [{ kind: EntryKind.Noop, data: new Uint8Array(0) }])
  }
}

/**
 * The configuration changed (appended, overwritten or installed): derive who votes and who is
 * replicated to; a leader starts tracking new members (removed ones it keeps replicating to
 * until their removal commits, so they learn of it: `forgetRemoved`), a candidate that no
 * longer votes gives up its campaign.
 */
export const membershipChanged = (s: RaftState): void => {
  deriveMembership(s)
  if (s.role === "leader") {
    for (const p of s.peers) {
      if (s.progress.has(p)) continue
      s.progress.set(p, newProgress(s))
      s.dirtyPeers.add(p)
    }
    if (s.transferee !== null && !s.voters.has(s.transferee)) s.transferee = null
  } else if (!s.selfVoter && (s.role === "candidate" || s.role === "precandidate")) {
    s.role = "follower"
    s.votes = new Map()
  }
}

/** Once the configuration in effect is committed, the leader stops replicating to nodes it removed. */
export const forgetRemoved = (s: RaftState): void => {
  if (s.progress.size === s.peers.length || configIndex(s) > s.log.committed) return
  for (const p of [...s.progress.keys()]) {
    if (s.peers.includes(p)) continue
    s.progress.delete(p)
    s.dirtyPeers.delete(p)
  }
}

export interface Proposal {
  readonly kind: EntryKind
  readonly data: Uint8Array
}

/** Appends proposals to the leader's log, stamped with the leader's time; returns the first index. */
export const appendLocal = (s: RaftState, proposals: ReadonlyArray<Proposal>): number => {
  invariant(s.role === "leader", "only a leader appends proposals")
  const first = s.log.lastIndex + 1
  // Leader time never runs backwards along the log, even across leaders with skewed clocks.
  const lastEntry = s.log.entry(s.log.lastIndex)
  const time = Math.max(s.now, lastEntry?.time ?? 0)
  const entries: Entry[] = []
  for (let i = 0; i < proposals.length; i++) {
    const p = proposals[i]!
    entries.push({ index: first + i, term: s.term, kind: p.kind, time, data: p.data })
  }
  s.log.append(entries)
  if (noteConfigs(s, entries)) membershipChanged(s)
  for (const p of s.progress.keys()) s.dirtyPeers.add(p)
  return first
}

const heartbeatMessage = (s: RaftState, to: NodeId, pr: Progress, entries: ReadonlyArray<Entry>): AppendEntries => {
  const prev = pr.next - 1
  const prevTerm = s.log.term(prev)
  invariant(prevTerm !== undefined, "a follower's next index stays inside the leader's log (below it, it gets a snapshot)")
  pr.sentCommit = s.log.committed
  pr.sentSinceHeartbeat = true
  return {
    type: "append",
    from: s.id,
    to,
    term: s.term,
    prevLogIndex: prev,
    prevLogTerm: prevTerm,
    leaderCommit: s.log.committed,
    round: s.round,
    entries
  }
}

/**
 * Sends what a follower is missing, as far as flow control allows. `force` sends even an empty
 * message (heartbeats, commit updates).
 */
export const sendAppend = (s: RaftState, to: NodeId, force: boolean): void => {
  const pr = s.progress.get(to)
  if (pr === undefined) return
  if (pr.state === "snapshot") {
    // Its heartbeat names our base, which it cannot match: it keeps its election timer reset
    // and answers the round (ReadIndex) while the Snapshotter sends it our state.
    if (force) {
      pr.sentCommit = s.log.committed
      pr.sentSinceHeartbeat = true
      s.sendFirst.push({
        type: "append",
        from: s.id,
        to,
        term: s.term,
        prevLogIndex: s.log.baseIndex,
        prevLogTerm: s.log.baseTerm,
        leaderCommit: s.log.committed,
        round: s.round,
        entries: []
      })
    }
    return
  }
  if (pr.next <= s.log.baseIndex) {
    // What it lacks was compacted away: only a snapshot of our state can catch it up.
    pr.state = "snapshot"
    pr.inflight = []
    s.snapshotsWanted.push(to)
    return
  }
  let sentSomething = false
  for (;;) {
    if (pr.state === "probe" && pr.probeSent) break
    if (pr.state === "replicate" && pr.inflight.length >= s.config.maxInflight) break
    const entries = s.log.slice(pr.next, s.log.lastIndex, s.config.maxAppendEntries, s.config.maxAppendBytes)
    if (entries.length === 0) break
    s.sendFirst.push(heartbeatMessage(s, to, pr, entries))
    sentSomething = true
    const last = entries[entries.length - 1]!.index
    if (pr.state === "replicate") {
      pr.next = last + 1
      pr.inflight.push(last)
    } else {
      pr.probeSent = true
    }
  }
  if (!sentSomething && force) s.sendFirst.push(heartbeatMessage(s, to, pr, []))
}

/**
 * The leader's periodic heartbeat. A follower that got an AppendEntries since the last one
 * already knows we lead; it is skipped unless it is being probed or has a commit index to
 * learn. While clients write, their appends are the heartbeats: no extra message pair per
 * follower every heartbeat, and a new commit index waits at most one heartbeat (as in etcd).
 */
export const heartbeat = (s: RaftState): void => {
  for (const [p, pr] of s.progress) {
    const heard = pr.sentSinceHeartbeat && pr.state === "replicate" && pr.sentCommit >= s.log.committed
    if (!heard) beat(s, p, pr)
    pr.sentSinceHeartbeat = false
  }
}

/** A heartbeat round to every follower (ReadIndex). */
const broadcastHeartbeat = (s: RaftState): void => {
  s.round++
  for (const [p, pr] of s.progress) beat(s, p, pr)
}

/** One follower's heartbeat: a probe that got no answer is retried with its entries. */
const beat = (s: RaftState, to: NodeId, pr: Progress): void => {
  pr.probeSent = false
  sendAppend(s, to, true)
  s.dirtyPeers.delete(to)
}

/** Sends to followers that have new entries or a new commit index to learn. */
export const flushPeers = (s: RaftState): void => {
  if (s.role !== "leader") {
    s.dirtyPeers.clear()
    return
  }
  if (s.readRoundWanted) {
    s.readRoundWanted = false
    broadcastHeartbeat(s)
  }
  // A new commit index rides on the next append, or on the next heartbeat if none left by
  // then. An immediate empty append per commit would double the messages of a lone client's
  // every write.
  for (const p of s.dirtyPeers) sendAppend(s, p, false)
  s.dirtyPeers.clear()
}

const matchOf = (pr: Progress): number => pr.match
const ackedRoundOf = (pr: Progress): number => pr.ackedRound

/** How many voters (us included, with `own`, if we vote) have reached `value`. */
const reached = (s: RaftState, value: number, own: number, of: (pr: Progress) => number): number => {
  let count = s.selfVoter && own >= value ? 1 : 0
  for (const p of s.voterPeers) {
    const pr = s.progress.get(p)
    if (pr !== undefined && of(pr) >= value) count++
  }
  return count
}

/**
 * The highest value a majority (us included) has reached: the quorum-th largest of ours and
 * the followers'. Counted in place rather than sorted, since it runs on every acknowledgement
 * and a sort allocates its work arrays each time (~1 KB a call, the leader's largest single
 * source of garbage per put).
 */
export const quorumValue = (s: RaftState, own: number, of: (pr: Progress) => number): number => {
  let best = s.selfVoter && reached(s, own, own, of) >= s.quorum ? own : 0
  for (const p of s.voterPeers) {
    const pr = s.progress.get(p)
    if (pr === undefined) continue
    const candidate = of(pr)
    if (candidate > best && reached(s, candidate, own, of) >= s.quorum) best = candidate
  }
  return best
}

/** Commit rule: the highest index stored on a majority, if it belongs to the current term (§5.4.2). */
export const maybeCommit = (s: RaftState): boolean => {
  const quorumIndex = quorumValue(s, s.log.persistedIndex, matchOf)
  if (quorumIndex <= s.log.committed || s.log.term(quorumIndex) !== s.term) return false
  const firstCommitInTerm = s.log.term(s.log.committed) !== s.term
  s.log.commitTo(quorumIndex)
  if (firstCommitInTerm) {
    // Reads asked before this term's first commit can now use the commit index.
    for (const r of s.pendingReads) if (r.index === null) r.index = s.log.committed
    releaseReads(s)
  }
  for (const p of s.progress.keys()) s.dirtyPeers.add(p)
  forgetRemoved(s)
  return true
}

/** Follower side of AppendEntries (the term check already happened in `step`). */
export const handleAppend = (s: RaftState, m: AppendEntries): void => {
  followLeader(s, m.from)
  resetElectionTimer(s)
  const log = s.log
  const reply = (success: boolean, matchIndex: number, conflictIndex: number, conflictTerm: number): void => {
    const r: AppendEntriesReply = {
      type: "append_resp",
      from: s.id,
      to: m.from,
      term: s.term,
      success,
      matchIndex,
      conflictIndex,
      conflictTerm,
      lastLogIndex: log.lastIndex,
      round: m.round
    }
    s.messages.push(r)
  }
  if (m.prevLogIndex < log.baseIndex) {
    // Everything up to our compaction base is committed and matches.
    reply(true, log.committed, 0, 0)
    return
  }
  if (log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
    const lastNew = log.appendFromLeader(m.prevLogIndex, m.entries)
    if (s.configs.length > 0 || m.entries.some((e) => e.kind === EntryKind.Config)) {
      if (syncConfigs(s, m.entries)) membershipChanged(s)
    }
    log.commitTo(Math.min(m.leaderCommit, lastNew))
    reply(true, lastNew, 0, 0)
    return
  }
  const ourTerm = log.term(m.prevLogIndex)
  if (ourTerm === undefined) reply(false, m.prevLogIndex, log.lastIndex + 1, 0)
  else reply(false, m.prevLogIndex, log.firstIndexOfTerm(m.prevLogIndex, ourTerm), ourTerm)
}

/** Leader side: a follower answered an AppendEntries. */
export const handleAppendReply = (s: RaftState, m: AppendEntriesReply, onCaughtUp: (peer: NodeId) => void): void => {
  const pr = s.progress.get(m.from)
  if (pr === undefined) return
  pr.recentActive = true
  if (m.round > pr.ackedRound) {
    pr.ackedRound = m.round
    releaseReads(s)
  }
  if (pr.state === "snapshot") {
    // Answers to appends sent before it fell behind our base: the snapshot decides, unless one
    // shows it holds our log after all.
    if (m.success && m.matchIndex > pr.match) {
      pr.match = m.matchIndex
      if (pr.match >= s.log.baseIndex) leaveSnapshotState(s, m.from, pr)
    }
    return
  }
  if (m.success) {
    if (m.matchIndex > pr.match) {
      pr.match = m.matchIndex
      if (pr.next <= pr.match) pr.next = pr.match + 1
      while (pr.inflight.length > 0 && pr.inflight[0]! <= pr.match) pr.inflight.shift()
      if (pr.state === "probe") {
        pr.state = "replicate"
        pr.next = pr.match + 1
        pr.inflight = []
      }
      maybeCommit(s)
      s.dirtyPeers.add(m.from)
    } else if (pr.state === "probe" && pr.probeSent) {
      // A probe answered with nothing new (e.g. a duplicate): free the slot.
      pr.probeSent = false
      s.dirtyPeers.add(m.from)
    }
    // The transferee holds our whole log: it may campaign. Each answer while the transfer lasts
    // (heartbeats' too) says so again, so a lost TimeoutNow costs a heartbeat, not the transfer.
    if (s.transferee === m.from && pr.match === s.log.lastIndex) onCaughtUp(m.from)
    return
  }
  const rejected = m.matchIndex
  if (m.lastLogIndex < pr.match) {
    // It holds fewer entries than it acknowledged: its disk was lost (a wiped or replaced data
    // dir), or this is a very late reply. Starting over from what it holds is safe either way
    // (a lower match only delays commits) and costs at most a probe.
    pr.match = 0
    pr.next = Math.min(m.lastLogIndex + 1, s.log.lastIndex + 1)
    pr.state = "probe"
    pr.probeSent = false
    pr.inflight = []
    s.dirtyPeers.add(m.from)
    return
  }
  if (pr.state === "replicate" && rejected <= pr.match) return // stale
  if (pr.state === "probe" && rejected !== pr.next - 1) return // stale
  let next: number
  if (m.conflictTerm === 0) {
    next = m.conflictIndex
  } else {
    const ours = s.log.lastIndexOfTerm(rejected, m.conflictTerm)
    next = ours > 0 ? ours + 1 : m.conflictIndex
  }
  pr.next = Math.max(pr.match + 1, Math.min(next, rejected, s.log.lastIndex + 1))
  pr.state = "probe"
  pr.probeSent = false
  pr.inflight = []
  s.dirtyPeers.add(m.from)
}

/** Confirmed reads: those whose heartbeat round a majority (us included) acknowledged. */
const releaseReads = (s: RaftState): void => {
  if (s.pendingReads.length === 0) return
  const confirmed = quorumValue(s, s.round, ackedRoundOf)
  let kept = 0
  for (const r of s.pendingReads) {
    if (r.index !== null && r.round <= confirmed) s.readStates.push({ ctx: r.ctx, index: r.index })
    else s.pendingReads[kept++] = r
  }
  s.pendingReads.length = kept
}

/**
 * ReadIndex (§6.4): remember the commit index, confirm we are still leader with a heartbeat
 * round, then the read may be served once that index is applied. Many reads share one round.
 */
export const requestRead = (s: RaftState, ctx: number): boolean => {
  if (s.role !== "leader") return false
  const committedInTerm = s.log.term(s.log.committed) === s.term
  // Alone, we are our own majority: no round to wait for.
  const alone = s.selfVoter && s.voterPeers.length === 0
  const round = alone ? s.round : s.round + 1
  s.pendingReads.push({ ctx, index: committedInTerm ? s.log.committed : null, round })
  if (alone) releaseReads(s)
  else s.readRoundWanted = true
  return true
}

export const dropReads = (s: RaftState): void => {
  for (const r of s.pendingReads) s.droppedReads.push(r.ctx)
  s.pendingReads = []
  s.readRoundWanted = false
}

/**
 * Follower side of InstallSnapshot (the term check already happened in `step`). A snapshot we
 * do not need (we hold its last entry, or committed past it: a duplicate or a late chunk) is
 * acknowledged at once and never replaces a log that may hold acknowledged entries; any other
 * chunk goes to the Snapshotter, which answers once it is written.
 */
export const handleSnapshot = (s: RaftState, m: InstallSnapshot): void => {
  followLeader(s, m.from)
  resetElectionTimer(s)
  const log = s.log
  const index = m.lastIncludedIndex
  if (index <= log.committed || log.matchTerm(index, m.lastIncludedTerm)) {
    if (index > log.committed) log.commitTo(index)
    s.messages.push({
      type: "snapshot_resp",
      from: s.id,
      to: m.from,
      term: s.term,
      lastIncludedIndex: index,
      offset: m.offset + m.data.length,
      success: true
    })
    return
  }
  s.snapshotChunks.push(m)
}

/** Leader side: a follower answered a snapshot chunk. */
export const handleSnapshotReply = (s: RaftState, m: InstallSnapshotReply): void => {
  const pr = s.progress.get(m.from)
  if (pr === undefined) return
  pr.recentActive = true
  if (pr.state === "snapshot") s.snapshotReplies.push(m)
  if (!m.success) return
  // It holds our state up to the snapshot: replicate from there.
  if (m.lastIncludedIndex > pr.match) pr.match = m.lastIncludedIndex
  if (pr.state === "snapshot") leaveSnapshotState(s, m.from, pr)
  maybeCommit(s)
}

/** Back to probing from what it holds (its transfer ends with this). */
const leaveSnapshotState = (s: RaftState, peer: NodeId, pr: Progress): void => {
  pr.state = "probe"
  pr.probeSent = false
  pr.inflight = []
  pr.next = Math.max(pr.next, pr.match + 1)
  s.dirtyPeers.add(peer)
}

/**
 * The Snapshotter gave up sending to `peer` (no answer for a while): probe it again, which
 * asks for a fresh snapshot if it still needs one.
 */
export const snapshotAbandoned = (s: RaftState, peer: NodeId): void => {
  const pr = s.progress.get(peer)
  if (pr === undefined || pr.state !== "snapshot") return
  pr.state = "probe"
  pr.probeSent = false
  s.dirtyPeers.add(peer)
}
