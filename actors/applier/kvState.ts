/**
 * The key-value state machine: pure and deterministic. It applies committed commands in log
 * order; its only clock is the leader-stamped entry time. Every write bumps one global
 * revision (etcd semantics); each key keeps its create revision, mod revision and version.
 *
 * The whole map lives in memory (like etcd's index) and is mirrored to the `kv` sublevel by
 * the Applier, in the same batch as the applied index.
 */
import type { ErrorCode } from "../../protocol/errors.ts"

export interface KeyRecord {
  readonly value: string
  readonly createRevision: number
  readonly modRevision: number
  readonly version: number
  /** Leader time (ms) after which the key is gone; absent for keys without a TTL. */
  readonly expiresAt?: number
}

/** Idempotency token: a client id and a sequence number that grows with each new write. */
export interface Token {
  readonly client: string
  readonly seq: number
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

export type KvResult =
  | { readonly ok: true; readonly revision: number; readonly key: string; readonly deleted?: boolean; readonly prevRevision?: number }
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

export interface SessionRecord {
  readonly seq: number
  readonly result: KvResult
  readonly lastSeen: number
}

/** Sessions unused this long (leader time) are forgotten; a retry after that is a new write. */
export const sessionTtlMs = 10 * 60 * 1000

export const newChanges = (): KvChanges => ({ puts: new Map(), dels: new Set(), sessions: new Map(), events: [] })

export class KvState {
  readonly records = new Map<string, KeyRecord>()
  readonly sessions = new Map<string, SessionRecord>()
  revision = 0
  /** Latest leader time applied: reads use it to hide keys whose TTL ran out. */
  time = 0
  /** Keys with a TTL, for expiry without scanning everything. */
  private readonly expiring = new Set<string>()

  /** Rebuilds in-memory indexes after loading records from disk. */
  restore(records: Iterable<[string, KeyRecord]>, sessions: Iterable<[string, SessionRecord]>, revision: number, time: number): void {
    for (const [k, r] of records) {
      this.records.set(k, r)
      if (r.expiresAt !== undefined) this.expiring.add(k)
    }
    for (const [c, s] of sessions) this.sessions.set(c, s)
    this.revision = revision
    this.time = time
  }

  /** Visible value of a key at the applied time (an expired key is already invisible). */
  get(key: string): KeyRecord | undefined {
    const r = this.records.get(key)
    if (r === undefined || (r.expiresAt !== undefined && r.expiresAt <= this.time)) return undefined
    return r
  }

  /** Advances leader time: expires due keys and idle sessions. */
  advanceTime(time: number, changes: KvChanges): void {
    if (time <= this.time) return
    this.time = time
    // Expire in (expiresAt, key) order so revisions match on every replica, whatever order
    // its in-memory set was rebuilt in.
    const due: Array<[number, string]> = []
    for (const key of this.expiring) {
      const r = this.records.get(key)
      if (r === undefined || r.expiresAt === undefined) this.expiring.delete(key)
      else if (r.expiresAt <= time) due.push([r.expiresAt, key])
    }
    due.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    for (const [, key] of due) {
      this.revision++
      this.remove(key, changes)
      changes.events.push({ type: "expire", key, revision: this.revision })
    }
    for (const [client, s] of this.sessions) {
      if (s.lastSeen + sessionTtlMs <= time) {
        this.sessions.delete(client)
        changes.sessions.set(client, null)
      }
    }
  }

  apply(cmd: KvCommand, changes: KvChanges): KvResult {
    const token = cmd.token
    if (token !== undefined) {
      const seen = this.sessions.get(token.client)
      if (seen !== undefined && token.seq === seen.seq) return seen.result
      if (seen !== undefined && token.seq < seen.seq) {
        return {
          ok: false,
          code: "conflict",
          message: `idempotency token ${token.client}/${token.seq} is older than the last write seen from that client (${seen.seq})`
        }
      }
    }
    const result = this.applyWrite(cmd, changes)
    if (token !== undefined) {
      const record: SessionRecord = { seq: token.seq, result, lastSeen: this.time }
      this.sessions.set(token.client, record)
      changes.sessions.set(token.client, record)
    }
    return result
  }

  private applyWrite(cmd: KvCommand, changes: KvChanges): KvResult {
    const current = this.get(cmd.key)
    switch (cmd.op) {
      case "put":
        return this.put(cmd.key, cmd.value, cmd.ttl, current, changes)
      case "del": {
        if (current === undefined) return { ok: true, revision: this.revision, key: cmd.key, deleted: false }
        this.revision++
        this.remove(cmd.key, changes)
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

  private put(key: string, value: string, ttl: number | undefined, current: KeyRecord | undefined, changes: KvChanges): KvResult {
    this.revision++
    const base = {
      value,
      createRevision: current?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (current?.version ?? 0) + 1
    }
    const record: KeyRecord = ttl === undefined ? base : { ...base, expiresAt: this.time + ttl }
    this.records.set(key, record)
    if (record.expiresAt !== undefined) this.expiring.add(key)
    else this.expiring.delete(key)
    changes.puts.set(key, record)
    changes.dels.delete(key)
    changes.events.push({ type: "put", key, record, revision: this.revision })
    return current === undefined
      ? { ok: true, revision: this.revision, key }
      : { ok: true, revision: this.revision, key, prevRevision: current.modRevision }
  }

  private remove(key: string, changes: KvChanges): void {
    this.records.delete(key)
    this.expiring.delete(key)
    changes.puts.delete(key)
    changes.dels.add(key)
  }
}
