/**
 * Raft's safety properties (Figure 3 of the paper), checked against live simulated nodes after
 * every step. A violation throws with what was seen, so the seed can be replayed and studied.
 */
import type { Entry, NodeId } from "../../protocol/raft.ts"
import type { RaftState } from "../../actors/raft/state.ts"

export class SafetyViolation extends Error {
  override readonly name = "SafetyViolation"
}

const fail = (what: string): never => {
  throw new SafetyViolation(what)
}

/** Same term, kind, leader time and bytes: the same entry (compared, not turned into strings). */
const same = (a: Entry, b: Entry): boolean => {
  if (a === b) return true
  if (a.term !== b.term || a.kind !== b.kind || a.time !== b.time || a.data.byteLength !== b.data.byteLength) return false
  for (let i = 0; i < a.data.byteLength; i++) if (a.data[i] !== b.data[i]) return false
  return true
}

export class SafetyChecker {
  /** term -> the one leader it had */
  private readonly leaders = new Map<number, NodeId>()
  /** "index@term" -> the entry any log holds with (index, term) */
  private readonly seen = new Map<string, Entry>()
  /** index -> entry known committed (by some node's commit index) */
  private readonly committed = new Map<number, Entry>()
  /**
   * index -> the term of the node that first showed it committed: the entry was committed in
   * that term or before, so every leader of a later term must hold it.
   */
  private readonly committedBy = new Map<number, number>()
  private maxCommitted = 0
  /** index -> entry some node applied there */
  private readonly applied = new Map<number, Entry>()
  private readonly recordedCommit = new Map<NodeId, number>()
  private readonly wasLeader = new Map<NodeId, number>()

  /** Called whenever a node's state may have changed. */
  observe(node: NodeId, s: Readonly<RaftState>): void {
    const log = s.log
    // Election Safety: at most one leader per term.
    if (s.role === "leader") {
      const other = this.leaders.get(s.term)
      if (other !== undefined && other !== node) fail(`election safety: ${other} and ${node} both lead term ${s.term}`)
      this.leaders.set(s.term, node)
      // Leader Completeness: a new leader holds every entry committed in an earlier term. Not
      // those committed since in a later one: a leader frozen (SIGSTOP) while its votes came in
      // takes office when it wakes, after the others moved on to higher terms without it.
      if (this.wasLeader.get(node) !== s.term) {
        this.wasLeader.set(node, s.term)
        for (let i = log.firstIndex; i <= this.maxCommitted; i++) {
          if ((this.committedBy.get(i) ?? Infinity) >= s.term) continue
          const e = log.entry(i)
          const want = this.committed.get(i)
          if (e === undefined || want === undefined || !same(e, want)) {
            fail(`leader completeness: ${node} leads term ${s.term} without committed entry ${i}`)
          }
        }
      }
    }
    if (!(log.handedIndex <= log.committed && log.committed <= log.lastIndex)) {
      fail(`${node}: applied ${log.handedIndex} <= commit ${log.committed} <= last ${log.lastIndex} broken`)
    }
    // Committed entries never change.
    const from = (this.recordedCommit.get(node) ?? 0) + 1
    for (let i = Math.max(from, log.firstIndex); i <= log.committed; i++) {
      const content = log.entry(i)!
      const prior = this.committed.get(i)
      if (prior === undefined) {
        this.committed.set(i, content)
        this.committedBy.set(i, s.term)
      } else if (!same(prior, content)) fail(`commit safety: ${node} committed a different entry at ${i}`)
    }
    this.recordedCommit.set(node, Math.max(this.recordedCommit.get(node) ?? 0, log.committed))
    if (log.committed > this.maxCommitted) this.maxCommitted = log.committed
  }

  /** Log Matching, entry by entry: one (index, term) names one content on every node. */
  observeWritten(node: NodeId, entries: ReadonlyArray<Entry>): void {
    for (const e of entries) {
      const k = `${e.index}@${e.term}`
      const prior = this.seen.get(k)
      if (prior === undefined) this.seen.set(k, e)
      else if (!same(prior, e)) fail(`log matching: ${node} wrote entry ${k} unlike another node's`)
    }
  }

  /** A node restarted: its commit index starts over from its applied index. */
  restarted(node: NodeId, s: Readonly<RaftState>): void {
    this.recordedCommit.set(node, s.log.committed)
  }

  /** State Machine Safety: no two nodes apply different entries at one index. */
  observeApplied(node: NodeId, entries: ReadonlyArray<Entry>): void {
    for (const e of entries) {
      const prior = this.applied.get(e.index)
      if (prior === undefined) this.applied.set(e.index, e)
      else if (!same(prior, e)) fail(`state machine safety: ${node} applied a different entry at ${e.index}`)
    }
  }

  /** The entry some node applied at `index`, if any did. */
  appliedAt(index: number): Entry | undefined {
    return this.applied.get(index)
  }

  /** Full Log Matching: logs that agree at an index agree on everything before it. */
  checkLogsMatch(cores: ReadonlyArray<readonly [NodeId, Readonly<RaftState>]>): void {
    for (let a = 0; a < cores.length; a++) {
      for (let b = a + 1; b < cores.length; b++) {
        const [na, ca] = cores[a]!
        const [nb, cb] = cores[b]!
        const la = ca.log
        const lb = cb.log
        const low = Math.max(la.firstIndex, lb.firstIndex)
        let i = Math.min(la.lastIndex, lb.lastIndex)
        while (i >= low && la.term(i) !== lb.term(i)) i--
        for (; i >= low; i--) {
          if (!same(la.entry(i)!, lb.entry(i)!)) fail(`log matching: ${na} and ${nb} differ at ${i}`)
        }
      }
    }
  }

  get commitIndex(): number {
    return this.maxCommitted
  }
}
