/**
 * The Snapshotter's decisions, as plain functions and state machines with no I/O: when to take
 * a snapshot, how much log to keep behind it, what a follower does with each chunk, and what a
 * leader sends next. The shell (snapshotter.ts) performs them.
 */
import type { InstallSnapshot } from "../../protocol/raft.ts"

/** What `meta` records of the last snapshot taken or installed. */
export interface SnapshotMeta {
  readonly index: number
  readonly term: number
  readonly members: ReadonlyArray<string>
  readonly format: number
  /** Hex SHA-256 of the snapshot's bytes (protocol/snapshotFormat.ts). */
  readonly checksum: string
  readonly size: number
  /** Wall-clock ms when it was taken or installed here. */
  readonly time: number
}

/**
 * Entries kept behind a snapshot: half the threshold, at most 5,000 (etcd's catch-up window). A
 * follower that lags by less (a GC pause, a restart, a short partition at thousands of writes a
 * second) still catches up from the log, which costs far less than a whole state; and the
 * memory the log holds stays below threshold + window entries.
 */
export const trailingEntries = (threshold: number): number => Math.min(5000, Math.max(1, Math.floor(threshold / 2)))

/**
 * Is it time for a snapshot? `threshold` entries applied since the last one, or `maxLogBytes`
 * of entry data: a few big entries (a 128-put txn, a 500-job batch) would otherwise keep
 * hundreds of megabytes of log in memory before the count is reached.
 */
export const snapshotDue = (applied: number, lastSnapshotIndex: number, threshold: number, bytesSince: number, maxLogBytes: number): boolean =>
  applied - lastSnapshotIndex >= threshold || bytesSince >= maxLogBytes

/**
 * Where the log may be compacted to after a snapshot at `index` (never backwards): keeping at
 * most `trailingEntries(threshold)` entries behind it, and only as many of those as fit in
 * `maxTrailingBytes` of entry data (`sizeAt` gives an entry's; undefined once it is gone).
 */
export const compactionBase = (
  index: number,
  threshold: number,
  currentBase: number,
  sizeAt: (index: number) => number | undefined,
  maxTrailingBytes: number
): number => {
  const floor = Math.max(currentBase, index - trailingEntries(threshold))
  let kept = 0
  for (let i = index; i > floor; i--) {
    kept += sizeAt(i) ?? 0
    if (kept > maxTrailingBytes) return Math.max(currentBase, i)
  }
  return floor
}

/** A follower's install in progress: which snapshot, and how many of its bytes are written. */
export interface InstallSession {
  readonly index: number
  readonly lastTerm: number
  received: number
}

/**
 * What a follower does with a chunk: `start` a new install (the first chunk of a snapshot we
 * are not installing), `append` it (the next bytes of ours), or `resync` (answer with the offset
 * we expect: a lost, duplicated or reordered chunk). An install survives a leader change: the
 * same (index, term) is the same state, and its bytes are the same from any leader.
 */
export const judgeChunk = (session: InstallSession | undefined, m: InstallSnapshot): "start" | "append" | "resync" => {
  const ours = session !== undefined && session.index === m.lastIncludedIndex && session.lastTerm === m.lastIncludedTerm
  if (ours) return m.offset === session.received ? "append" : "resync"
  return m.offset === 0 ? "start" : "resync"
}

/** The offset a follower asks for after a `resync`. */
export const expectedOffset = (session: InstallSession | undefined, m: InstallSnapshot): number =>
  session !== undefined && session.index === m.lastIncludedIndex && session.lastTerm === m.lastIncludedTerm ? session.received : 0

/** One chunk the leader sent and the follower has not confirmed. */
export interface SentChunk {
  readonly offset: number
  readonly data: Uint8Array
  readonly done: boolean
}

/**
 * The leader's side of one transfer: at most `maxInflight` chunks unconfirmed; what a reply or
 * a silence means. Chunks stay in the window until confirmed, so a lost one is sent again from
 * memory (the stream is read once, forwards).
 */
export class SendWindow {
  /** Bytes the follower confirmed writing. */
  acked = 0
  /** Bytes sent (or queued to send again after a rewind). */
  sent = 0
  readonly inflight: SentChunk[] = []
  /** Silences in a row with no progress. */
  silences = 0
  /** A gap was already answered by sending again from here. */
  private rewoundAt = -1

  constructor(readonly maxInflight: number) {}

  get full(): boolean {
    return this.inflight.length >= this.maxInflight
  }

  /** The last chunk is sent: nothing more to read. */
  get ended(): boolean {
    const last = this.inflight[this.inflight.length - 1]
    return last !== undefined && last.done
  }

  sentChunk(chunk: SentChunk): void {
    this.inflight.push(chunk)
    this.sent = chunk.offset + chunk.data.length
  }

  /**
   * Bytes to read past without sending: the follower confirmed more than we sent (it kept an
   * install of this same snapshot from an earlier leader, whose bytes are ours too).
   */
  get toSkip(): number {
    return Math.max(0, this.acked - this.sent)
  }

  skipped(bytes: number): void {
    this.sent += bytes
  }

  /**
   * A progress reply (`success` false) with the follower's offset: what to send again, or
   * `restart` when the follower lost the install (it asks for byte 0 after confirming more).
   */
  reply(offset: number): { readonly resend: ReadonlyArray<SentChunk> } | "restart" {
    if (offset > this.acked) {
      this.acked = offset
      this.silences = 0
      while (this.inflight.length > 0 && this.inflight[0]!.offset + this.inflight[0]!.data.length <= offset) this.inflight.shift()
      return { resend: [] }
    }
    if (offset === 0 && this.acked > 0) return "restart"
    // Confirming what it already confirmed while more is in flight: a chunk went missing.
    if (offset === this.acked && this.sent > this.acked && this.rewoundAt !== offset) {
      this.rewoundAt = offset
      return { resend: this.inflight.filter((c) => c.offset >= offset) }
    }
    return { resend: [] } // a stale or duplicated reply
  }

  /** No reply for a while: send everything unconfirmed again, or give up after `maxSilences`. */
  silence(maxSilences: number): ReadonlyArray<SentChunk> | "give_up" {
    if (++this.silences > maxSilences) return "give_up"
    this.rewoundAt = this.acked
    return [...this.inflight]
  }
}
