/**
 * The Election behaviour: roles, randomized timeouts, Pre-Vote (§9.6), votes, check-quorum and
 * leadership transfer. Term changes happen only through `becomeFollower`/`becomeCandidate`.
 */
import type { NodeId, PreVote, RequestVote, PreVoteReply, RequestVoteReply } from "../../protocol/raft.ts"
import { dropReads, initLeaderLog } from "./replicator.ts"
import { resetElectionTimer, type RaftState } from "./state.ts"

export const becomeFollower = (s: RaftState, term: number, leader: NodeId | null): void => {
  if (term > s.term) {
    s.term = term
    s.vote = null
  }
  if (s.role === "leader") dropReads(s)
  if (leader !== s.leader && leader !== null) s.leaderChanges++
  s.role = "follower"
  s.leader = leader
  s.progress.clear()
  s.transferee = null
  resetElectionTimer(s)
}

const becomePreCandidate = (s: RaftState): void => {
  s.role = "precandidate"
  s.leader = null
  s.votes = new Map([[s.id, true]])
  resetElectionTimer(s)
}

const becomeCandidate = (s: RaftState): void => {
  s.term++
  s.vote = s.id
  s.role = "candidate"
  s.leader = null
  s.votes = new Map([[s.id, true]])
  resetElectionTimer(s)
}

const becomeLeader = (s: RaftState): void => {
  s.role = "leader"
  s.leader = s.id
  s.leaderChanges++
  s.heartbeatElapsed = 0
  s.electionElapsed = 0
  s.transferee = null
  initLeaderLog(s)
}

/** Starts a campaign: a pre-vote round first, unless a leader handed over to us on purpose. */
export const campaign = (s: RaftState, transfer: boolean): void => {
  // Only voters campaign: a learner, a removed node or one that joins and waits never does.
  if (s.role === "leader" || s.retiring || !s.selfVoter) return
  if (transfer) startElection(s, true)
  else startPreVote(s)
}

const startPreVote = (s: RaftState): void => {
  becomePreCandidate(s)
  if (tally(s) === "won") {
    startElection(s, false)
    return
  }
  for (const to of s.voterPeers) {
    const m: PreVote = {
      type: "prevote",
      from: s.id,
      to,
      term: s.term + 1,
      lastLogIndex: s.log.lastIndex,
      lastLogTerm: s.log.lastTerm
    }
    // Pre-votes change nothing durable, so they may leave at once.
    s.sendFirst.push(m)
  }
}

const startElection = (s: RaftState, transfer: boolean): void => {
  becomeCandidate(s)
  if (tally(s) === "won") {
    becomeLeader(s)
    return
  }
  for (const to of s.voterPeers) {
    const m: RequestVote = {
      type: "vote",
      from: s.id,
      to,
      term: s.term,
      lastLogIndex: s.log.lastIndex,
      lastLogTerm: s.log.lastTerm,
      transfer
    }
    // Our own vote must be durable before we ask for others'.
    s.messages.push(m)
  }
}

const tally = (s: RaftState): "won" | "lost" | "pending" => {
  let granted = 0
  let rejected = 0
  for (const [id, v] of s.votes) {
    if (!s.voters.has(id)) continue
    if (v) granted++
    else rejected++
  }
  if (granted >= s.quorum) return "won"
  if (rejected >= s.quorum) return "lost"
  return "pending"
}

/** A pre-vote or vote request whose term is not behind ours (term bumps already applied). */
export const handleVoteRequest = (s: RaftState, m: PreVote | RequestVote): void => {
  // A node that knows no configuration at all (started with --join, or so and then wiped)
  // holds nothing a vote could promise: it would grant any log over its empty one, and a
  // removed node with a stale configuration could count it. It votes once it learned one.
  const knowsNothing = s.membership.cluster === "" && s.membership.voters.length === 0
  const upToDate = !knowsNothing && s.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)
  if (m.type === "prevote") {
    // A pre-vote for a future term is granted on the log alone; our own term and vote stay.
    const canVote = m.term > s.term || s.vote === m.from || (s.vote === null && s.leader === null)
    const granted = canVote && upToDate
    const r: PreVoteReply = { type: "prevote_resp", from: s.id, to: m.from, term: granted ? m.term : s.term, granted }
    s.sendFirst.push(r)
    return
  }
  const canVote = s.vote === m.from || (s.vote === null && s.leader === null)
  const granted = canVote && upToDate
  if (granted) {
    s.vote = m.from
    resetElectionTimer(s)
  }
  const r: RequestVoteReply = { type: "vote_resp", from: s.id, to: m.from, term: s.term, granted }
  // The vote must be durable before it is announced.
  s.messages.push(r)
}

export const handleVoteReply = (s: RaftState, m: PreVoteReply | RequestVoteReply): void => {
  if (m.type === "prevote_resp" ? s.role !== "precandidate" : s.role !== "candidate") return
  // A grant is for the term we campaign in; a late duplicate from an older pre-vote round is not.
  if (m.type === "prevote_resp" && m.granted && m.term !== s.term + 1) return
  s.votes.set(m.from, m.granted)
  const result = tally(s)
  if (result === "won") {
    if (s.role === "precandidate") startElection(s, false)
    else becomeLeader(s)
  } else if (result === "lost") {
    becomeFollower(s, s.term, null)
  }
}

/** Logical time for the election side: timeouts, check-quorum, transfer expiry. */
export const tickElection = (s: RaftState): boolean => {
  s.electionElapsed++
  if (s.role !== "leader") {
    if (s.electionElapsed >= s.randomizedElectionTimeout) campaign(s, false)
    return false
  }
  if (s.transferee !== null && ++s.transferElapsed >= s.config.electionTicks) s.transferee = null
  if (s.electionElapsed >= s.config.electionTicks) {
    s.electionElapsed = 0
    // Check-quorum: a leader that has not heard from a majority for a timeout steps down.
    let active = s.selfVoter ? 1 : 0
    for (const [id, pr] of s.progress) {
      if (pr.recentActive && s.voters.has(id)) active++
      pr.recentActive = false
    }
    if (active < s.quorum) {
      becomeFollower(s, s.term, null)
      return false
    }
  }
  return true
}
