/**
 * The key-value state machine: pure and deterministic. It applies committed commands in log
 * order; its only clock is the leader-stamped entry time. Every write bumps one global
 * revision (etcd semantics); each key keeps its create revision, mod revision and version.
 *
 * The whole map lives in memory (like etcd's index) and is mirrored to the `kv` sublevel by
 * the Applier, in the same batch as the applied index. Next to it, a B+ tree of the keys
 * serves `scan` in key order (see `KvState.scan`). For /metrics it keeps the bytes of its keys
 * and values up to date as it writes, and counts the writes it applies.
 */
import BTreeModule from "sorted-btree"
import type { Compare, CompareOp, Token, TxnOp } from "../../protocol/client.ts"
import type { ErrorCode } from "../../protocol/errors.ts"
import type { JobResult } from "./jobQueue.ts"
import { MinHeap } from "./minHeap.ts"

// A CommonJS package: under Node's ESM interop its default import is `module.exports`.
const BTree = BTreeModule.default

export interface KeyRecord {
  readonly value: string
  readonly createRevision: number
  readonly modRevision: number
  readonly version: number
  /** Leader time (ms) after which the key is gone; absent for keys without a TTL. */
  readonly expiresAt?: number
}

export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: string; readonly ttl?: number; readonly token?: Token }
  | { readonly op: "del"; readonly key: string; readonly token?: Token }
  | {
      readonly op: "cas"
      readonly key: string
      readonly value: string
      /** The mod revision the key must have; 0 means "only if absent". */
      readonly expectedRevision: number
      readonly ttl?: number
      readonly token?: Token
    }
  | {
      /** etcd-style transaction: one log entry, one revision for everything it writes. */
      readonly op: "txn"
      readonly compare: ReadonlyArray<Compare>
      readonly success: ReadonlyArray<TxnOp>
      readonly failure: ReadonlyArray<TxnOp>
      readonly token?: Token
    }

export type KvResult =
  | { readonly ok: true; readonly revision: number; readonly key: string; readonly deleted?: boolean; readonly prevRevision?: number }
  | { readonly ok: true; readonly revision: number; readonly succeeded: boolean }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly detail?: Readonly<Record<string, unknown>> }

export type KvEvent =
  | { readonly type: "put"; readonly key: string; readonly record: KeyRecord; readonly revision: number }
  | { readonly type: "del" | "expire"; readonly key: string; readonly revision: number }

/** What one applied entry changed, for the Applier to persist and publish. */
export interface KvChanges {
  readonly puts: Map<string, KeyRecord>
  readonly dels: Set<string>
  readonly sessions: Map<string, SessionRecord | null>
  readonly events: KvEvent[]
}

/** The answer to one applied command, key-value or job: what a session records and a waiting write gets. */
export type CommandResult = KvResult | JobResult

export interface SessionRecord {
  readonly seq: number
  readonly result: CommandResult
  readonly lastSeen: number
}

/** Sessions unused this long (leader time) are forgotten; a retry after that is a new write. */
export const sessionTtlMs = 10 * 60 * 1000

/** A scan: keys starting with `prefix`, or in [`start`, `end`); strictly after `after` when given. */
export interface ScanQuery {
  readonly prefix?: string
  readonly start?: string
  /** Exclusive upper bound; absent or "" means no upper bound. */
  readonly end?: string
  /** Continue strictly after this key (the last key of the previous page). */
  readonly after?: string
  readonly limit: number
}

export interface ScanPage {
  readonly items: ReadonlyArray<readonly [string, KeyRecord]>
  /** True when at least one more visible key is in range after the last item. */
  readonly more: boolean
}

/** Maps a UTF-16 code unit at or above 0xD800 so that surrogates sort after U+E000..U+FFFF. */
const codePointRank = (u: number): number => (u < 0xe000 ? u + 0x2000 : u - 0x800)

/**
 * Key order: UTF-8 byte order (the same as Unicode code point order), as LevelDB, etcd and
 * byte-comparing clients in other languages sort. It differs from JavaScript's `<` (UTF-16
 * code units) only between characters U+E000..U+FFFF and those above U+FFFF.
 */
export const compareKeys = (a: string, b: string): number => {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return x >= 0xd800 && y >= 0xd800 ? codePointRank(x) - codePointRank(y) : x - y
  }
  return a.length - b.length
}

/** Whether `order` (negative, zero or positive, as from a comparator) satisfies `op`. */
const satisfies = (order: number, op: CompareOp): boolean => {
  switch (op) {
    case "==":
      return order === 0
    case "!=":
      return order !== 0
    case ">":
      return order > 0
    case "<":
      return order < 0
  }
}

/** UTF-8 bytes of a key or value (Node's native count: no copy). */
const utf8Bytes = (s: string): number => Buffer.byteLength(s, "utf8")

/** Keys written, deleted and expired by applied entries, since this object was made (metrics counters). */
export interface KvWrites {
  put: number
  del: number
  expire: number
}

/** Every key change counted in `writes`, whatever its op: what `admin.status` reports as `kv.writes`. */
export const totalWrites = (w: Readonly<KvWrites>): number => w.put + w.del + w.expire

const byTimeThenName = (a: readonly [number, string], b: readonly [number, string]): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])

export const newChanges = (): KvChanges => ({ puts: new Map(), dels: new Set(), sessions: new Map(), events: [] })

export class KvState {
  readonly records = new Map<string, KeyRecord>()
  readonly sessions = new Map<string, SessionRecord>()
  revision = 0
  /** Latest leader time applied: reads use it to hide keys whose TTL ran out. */
  time = 0
  /** UTF-8 bytes of every key and value in `records` (revisions and TTLs not counted). */
  bytes = 0
  /** What applied entries wrote (not persisted: a restart or an installed snapshot starts at 0). */
  readonly writes: KvWrites = { put: 0, del: 0, expire: 0 }
  /**
   * (expiresAt, key) of keys with a TTL, earliest first, ties by key: every replica expires in
   * the same order. An entry is stale once its key was rewritten or removed.
   */
  private readonly expiring = new MinHeap<readonly [number, string]>(byTimeThenName)
  /** (time a session lapses, client id), earliest first; stale once the client wrote again. */
  private readonly lapsing = new MinHeap<readonly [number, string]>(byTimeThenName)
  /**
   * Every key in `records`, in `compareKeys` order, so a scan is a search plus a walk of the
   * page instead of a sort of the whole map per request. A B+ tree: creating or removing a key
   * is O(log n), where a sorted array's splice is O(n) per new key, which many clients writing
   * new keys felt (BENCHMARKS.md, "Side by side, warm"). Overwriting an existing key costs
   * nothing here.
   */
  private readonly index = new BTree<string, undefined>(undefined, compareKeys)

  /** Rebuilds in-memory indexes after loading records from disk. */
  restore(records: Iterable<[string, KeyRecord]>, sessions: Iterable<[string, SessionRecord]>, revision: number, time: number): void {
    for (const [k, r] of records) {
      this.index.set(k, undefined)
      const before = this.records.get(k)
      if (before !== undefined) this.bytes -= utf8Bytes(k) + utf8Bytes(before.value)
      this.bytes += utf8Bytes(k) + utf8Bytes(r.value)
      this.records.set(k, r)
      if (r.expiresAt !== undefined) this.expiring.push([r.expiresAt, k])
    }
    for (const [c, s] of sessions) {
      this.sessions.set(c, s)
      this.lapsing.push([s.lastSeen + sessionTtlMs, c])
    }
    this.revision = revision
    this.time = time
  }

  /** Visible value of a key at the applied time (an expired key is already invisible). */
  get(key: string): KeyRecord | undefined {
    const r = this.records.get(key)
    if (r === undefined || (r.expiresAt !== undefined && r.expiresAt <= this.time)) return undefined
    return r
  }

  /**
   * One page of visible keys in key order (a pure read of the applied state). Walks from the
   * first candidate key and stops after `limit` items plus one more visible key (to know
   * whether to hand out a cursor); expired keys not yet removed are skipped.
   */
  scan(q: ScanQuery): ScanPage {
    const first = q.prefix ?? q.start ?? ""
    // Strictly after the cursor's key, when that is past the first candidate.
    const from = q.after !== undefined && compareKeys(q.after, first) >= 0 ? this.index.nextHigherKey(q.after) : first
    const prefix = q.prefix
    const end = q.end === undefined || q.end === "" ? undefined : q.end
    const items: Array<readonly [string, KeyRecord]> = []
    if (from === undefined) return { items, more: false }
    for (const key of this.index.keys(from)) {
      if (prefix !== undefined ? !key.startsWith(prefix) : end !== undefined && compareKeys(key, end) >= 0) break
      const r = this.get(key)
      if (r === undefined) continue
      if (items.length >= q.limit) return { items, more: true }
      items.push([key, r])
    }
    return { items, more: false }
  }

  /** The keys in index order (for tests and checks). */
  sortedKeys(): ReadonlyArray<string> {
    return this.index.keysArray()
  }

  /** Advances leader time: expires due keys and idle sessions. */
  advanceTime(time: number, changes: KvChanges): void {
    if (time <= this.time) return
    this.time = time
    for (let top = this.expiring.peek(); top !== undefined && top[0] <= time; top = this.expiring.peek()) {
      this.expiring.pop()
      const [at, key] = top
      if (this.records.get(key)?.expiresAt !== at) continue
      this.revision++
      this.remove(key, changes)
      this.writes.expire++
      changes.events.push({ type: "expire", key, revision: this.revision })
    }
    for (let top = this.lapsing.peek(); top !== undefined && top[0] <= time; top = this.lapsing.peek()) {
      this.lapsing.pop()
      const [at, client] = top
      const s = this.sessions.get(client)
      if (s === undefined) continue
      // One entry per client: seen again since it was queued, it goes back for its new deadline
      // (which may already have passed: then it lapses in this same loop).
      if (s.lastSeen + sessionTtlMs !== at) {
        this.lapsing.push([s.lastSeen + sessionTtlMs, client])
        continue
      }
      this.sessions.delete(client)
      changes.sessions.set(client, null)
    }
  }

  /** The leader time at which the next key expires (possibly a stale entry: harmless). */
  nextExpiry(): number | undefined {
    return this.expiring.peek()?.[0]
  }

  apply(cmd: KvCommand, changes: KvChanges): KvResult {
    return this.withSession(cmd.token, changes, () => this.applyWrite(cmd, changes))
  }

  /**
   * Runs a write at most once per idempotency token: a repeat of the client's last sequence
   * number gets the recorded answer, an older one is refused, a newer one runs and is recorded.
   */
  withSession<R extends CommandResult>(token: Token | undefined, changes: KvChanges, run: () => R): R {
    if (token !== undefined) {
      const seen = this.sessions.get(token.client)
      // A repeated (client, seq) is a retry of the same request, so the recorded answer has
      // the caller's result type; a refusal has the failure shape every result type shares.
      if (seen !== undefined && token.seq === seen.seq) return seen.result as R
      if (seen !== undefined && token.seq < seen.seq) {
        return {
          ok: false,
          code: "conflict",
          message: `idempotency token ${token.client}/${token.seq} is older than the last write seen from that client (${seen.seq})`
        } as R
      }
    }
    const result = run()
    if (token !== undefined) {
      const record: SessionRecord = { seq: token.seq, result, lastSeen: this.time }
      const before = this.sessions.get(token.client)
      // A new client gets its entry; one seen before already has one, moved on when it comes due.
      if (before === undefined) this.lapsing.push([record.lastSeen + sessionTtlMs, token.client])
      this.sessions.set(token.client, record)
      changes.sessions.set(token.client, record)
    }
    return result
  }

  private applyWrite(cmd: KvCommand, changes: KvChanges): KvResult {
    if (cmd.op === "txn") return this.txn(cmd.compare, cmd.success, cmd.failure, changes)
    const current = this.get(cmd.key)
    switch (cmd.op) {
      case "put":
        return this.put(cmd.key, cmd.value, cmd.ttl, current, changes)
      case "del": {
        if (current === undefined) return { ok: true, revision: this.revision, key: cmd.key, deleted: false }
        this.revision++
        this.remove(cmd.key, changes)
        this.writes.del++
        changes.events.push({ type: "del", key: cmd.key, revision: this.revision })
        return { ok: true, revision: this.revision, key: cmd.key, deleted: true, prevRevision: current.modRevision }
      }
      case "cas": {
        const actual = current?.modRevision ?? 0
        if (actual !== cmd.expectedRevision) {
          return {
            ok: false,
            code: "conflict",
            message:
              cmd.expectedRevision === 0
                ? `key "${cmd.key}" already exists (revision ${actual})`
                : `key "${cmd.key}" is at revision ${actual}, not ${cmd.expectedRevision}`,
            detail: { revision: actual }
          }
        }
        return this.put(cmd.key, cmd.value, cmd.ttl, current, changes)
      }
    }
  }

  /**
   * Evaluates every compare against the state before the txn, then applies the chosen branch's
   * operations in order, all at one new revision (etcd: each key the txn writes gets the same
   * modRevision). A branch that changes nothing (empty, or only deletes of missing keys) keeps
   * the revision. The gateway refuses a branch naming one key twice; it is refused here too so
   * that the state machine never depends on that check.
   */
  private txn(compare: ReadonlyArray<Compare>, success: ReadonlyArray<TxnOp>, failure: ReadonlyArray<TxnOp>, changes: KvChanges): KvResult {
    const succeeded = compare.every((c) => this.holds(c))
    const ops = succeeded ? success : failure
    const duplicate = duplicateKey(ops)
    if (duplicate !== undefined) {
      return {
        ok: false,
        code: "bad_request",
        message: `${succeeded ? "success" : "failure"}: key "${duplicate}" appears more than once; a txn writes each key at most once`
      }
    }
    const writes = ops.some((op) => op.op === "put" || this.get(op.key) !== undefined)
    if (!writes) return { ok: true, succeeded, revision: this.revision }
    this.revision++
    for (const op of ops) {
      const current = this.get(op.key)
      if (op.op === "put") this.write(op.key, op.value, op.ttl, current, changes)
      else if (current !== undefined) {
        this.remove(op.key, changes)
        this.writes.del++
        changes.events.push({ type: "del", key: op.key, revision: this.revision })
      }
    }
    return { ok: true, succeeded, revision: this.revision }
  }

  /**
   * Evaluated against the state before the txn: a missing (or expired) key compares as value ""
   * with mod, create and version 0; values compare in key order (`compareKeys`, as etcd compares
   * bytes).
   */
  private holds(c: Compare): boolean {
    const r = this.get(c.key)
    switch (c.target) {
      case "value":
        return satisfies(compareKeys(r?.value ?? "", c.value), c.op)
      case "mod":
        return satisfies((r?.modRevision ?? 0) - c.value, c.op)
      case "create":
        return satisfies((r?.createRevision ?? 0) - c.value, c.op)
      case "version":
        return satisfies((r?.version ?? 0) - c.value, c.op)
    }
  }

  private put(key: string, value: string, ttl: number | undefined, current: KeyRecord | undefined, changes: KvChanges): KvResult {
    this.revision++
    this.write(key, value, ttl, current, changes)
    return current === undefined
      ? { ok: true, revision: this.revision, key }
      : { ok: true, revision: this.revision, key, prevRevision: current.modRevision }
  }

  /** Writes `key` at the current revision (the caller has bumped it). */
  private write(key: string, value: string, ttl: number | undefined, current: KeyRecord | undefined, changes: KvChanges): void {
    const base = {
      value,
      createRevision: current?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (current?.version ?? 0) + 1
    }
    const record: KeyRecord = ttl === undefined ? base : { ...base, expiresAt: this.time + ttl }
    // The record replaced may be an expired one `current` hides: its bytes go all the same.
    const replaced = this.records.get(key)
    if (replaced === undefined) {
      this.index.set(key, undefined)
      this.bytes += utf8Bytes(key) + utf8Bytes(value)
    } else this.bytes += utf8Bytes(value) - utf8Bytes(replaced.value)
    this.writes.put++
    this.records.set(key, record)
    if (record.expiresAt !== undefined) this.expiring.push([record.expiresAt, key])
    changes.puts.set(key, record)
    changes.dels.delete(key)
    changes.events.push({ type: "put", key, record, revision: this.revision })
  }

  private remove(key: string, changes: KvChanges): void {
    const removed = this.records.get(key)
    if (removed !== undefined) {
      this.records.delete(key)
      this.index.delete(key)
      this.bytes -= utf8Bytes(key) + utf8Bytes(removed.value)
    }
    changes.puts.delete(key)
    changes.dels.add(key)
  }
}

/** The first key named twice in `ops`, if any. */
export const duplicateKey = (ops: ReadonlyArray<TxnOp>): string | undefined => {
  const seen = new Set<string>()
  for (const op of ops) {
    if (seen.has(op.key)) return op.key
    seen.add(op.key)
  }
  return undefined
}
