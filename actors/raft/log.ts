/**
 * The in-memory Raft log of one node: the entries after the compaction base, plus how far they
 * are durable and committed. Like etcd's MemoryStorage + unstable log in one place; the
 * Snapshotter moves the base forward (`compact`) or replaces the log with an installed
 * snapshot (`restart`), so memory holds the recent tail, not the history.
 */
import type { Entry } from "../../protocol/raft.ts"
import { encodedEntrySize } from "../../protocol/raftCodec.ts"
import { invariant } from "./invariant.ts"

export class RaftLog {
  /** Index and term of the last entry folded into a snapshot (0/0 for a fresh log). */
  baseIndex: number
  baseTerm: number
  /** entries[i].index === baseIndex + 1 + i */
  entries: Entry[]
  /** Highest index known durable on this node's disk. */
  persistedIndex: number
  /** Entries at or above this index have not yet been handed out for persisting. */
  unstableFrom: number
  /** Set when a conflict cut the log below what was already handed out: storage must drop keys from here. */
  truncateFrom: number | null = null
  committed: number
  /** Highest committed index handed to the Applier. */
  handedIndex: number
  /** Installs so far: a Ready made before an install must not move `persistedIndex` after it. */
  epoch = 0

  constructor(baseIndex: number, baseTerm: number, entries: Entry[], applied: number) {
    this.baseIndex = baseIndex
    this.baseTerm = baseTerm
    this.entries = entries
    const last = baseIndex + entries.length
    for (let i = 0; i < entries.length; i++) {
      invariant(entries[i]!.index === baseIndex + 1 + i, "log entries are contiguous from the base")
    }
    invariant(applied >= baseIndex && applied <= last, "applied index lies within the log")
    this.persistedIndex = last
    this.unstableFrom = last + 1
    this.committed = applied
    this.handedIndex = applied
  }

  get firstIndex(): number {
    return this.baseIndex + 1
  }

  get lastIndex(): number {
    return this.baseIndex + this.entries.length
  }

  get lastTerm(): number {
    return this.term(this.lastIndex) ?? 0
  }

  /** Term of the entry at `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.baseIndex) return this.baseTerm
    if (index < this.baseIndex || index > this.lastIndex) return undefined
    return this.entries[index - this.baseIndex - 1]!.term
  }

  entry(index: number): Entry | undefined {
    return this.entries[index - this.baseIndex - 1]
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term
  }

  /** Entries in [from, to] (inclusive), capped by count and by their size in an encoded AppendEntries. */
  slice(from: number, to: number, maxCount = Infinity, maxBytes = Infinity): Entry[] {
    invariant(from > this.baseIndex, "slice starts after the compaction base")
    const last = Math.min(to, this.lastIndex)
    const out: Entry[] = []
    let bytes = 0
    for (let i = from; i <= last && out.length < maxCount; i++) {
      const e = this.entries[i - this.baseIndex - 1]!
      bytes += encodedEntrySize(e)
      // Always send at least one entry, even a large one, or replication would stall.
      if (out.length > 0 && bytes > maxBytes) break
      out.push(e)
    }
    return out
  }

  /** Is a log ending at (lastIndex, lastTerm) at least as up to date as ours? (Raft §5.4.1) */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex)
  }

  /** Leader append: new entries at the end. */
  append(entries: ReadonlyArray<Entry>): void {
    for (const e of entries) {
      invariant(e.index === this.lastIndex + 1, "appended entries extend the log by one")
      this.entries.push(e)
    }
  }

  /**
   * Follower append after a matched prevLogIndex: skips entries we already hold, cuts the log at
   * the first conflicting term and appends the rest. Returns the last index the leader's entries
   * cover (what we may acknowledge).
   */
  appendFromLeader(prevIndex: number, entries: ReadonlyArray<Entry>): number {
    let i = 0
    while (i < entries.length) {
      const e = entries[i]!
      const ours = this.term(e.index)
      if (ours === undefined || ours !== e.term) break
      i++
    }
    if (i < entries.length) {
      const first = entries[i]!
      if (first.index <= this.lastIndex) {
        invariant(first.index > this.committed, "a committed entry is never overwritten")
        this.entries.length = first.index - this.baseIndex - 1
        if (first.index < this.unstableFrom) {
          this.truncateFrom = Math.min(this.truncateFrom ?? Infinity, first.index)
          this.unstableFrom = first.index
        }
        this.persistedIndex = Math.min(this.persistedIndex, first.index - 1)
      }
      for (let j = i; j < entries.length; j++) this.entries.push(entries[j]!)
    }
    return prevIndex + entries.length
  }

  /** Index of the first entry of `term` at or before `index`, walking back (fast backtracking hint). */
  firstIndexOfTerm(index: number, term: number): number {
    let i = index
    while (i - 1 > this.baseIndex && this.term(i - 1) === term) i--
    return i
  }

  /** Highest index at or below `index` whose term is `term`, or 0. */
  lastIndexOfTerm(index: number, term: number): number {
    for (let i = Math.min(index, this.lastIndex); i > this.baseIndex; i--) {
      const t = this.term(i)!
      if (t === term) return i
      if (t < term) return 0
    }
    return 0
  }

  /** Drops the entries up to `index` (applied and durable, kept in a snapshot). */
  compact(index: number): void {
    if (index <= this.baseIndex) return
    invariant(index <= this.handedIndex && index <= this.persistedIndex, "only applied, durable entries are compacted")
    const term = this.term(index)!
    this.entries = this.entries.slice(index - this.baseIndex)
    this.baseIndex = index
    this.baseTerm = term
  }

  /** An installed snapshot replaces the whole log: everything up to `index` is in the state. */
  restart(index: number, term: number): void {
    invariant(index > this.committed, "an installed snapshot never replaces committed entries")
    this.baseIndex = index
    this.baseTerm = term
    this.entries = []
    this.committed = index
    this.handedIndex = index
    this.persistedIndex = index
    this.unstableFrom = index + 1
    this.truncateFrom = null
    this.epoch++
  }

  commitTo(index: number): void {
    invariant(index <= this.lastIndex, "commit index never passes the end of the log")
    if (index > this.committed) this.committed = index
  }
}
