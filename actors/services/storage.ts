/**
 * The node's database as a service: one LevelDB database (classic-level, bootstrap/storage.ts)
 * split into sublevels, or memory-level disks in tests and the simulator (ops/sim/disk.ts, where
 * a crash loses what was written without `sync`).
 *
 * Sublevels and their encodings (the stored bytes are the contract; encodings only say what JS
 * type reads give back):
 * - `log`: keys are 8-byte big-endian indexes (`encodeUint64Key` in protocol/raftCodec.ts), so
 *   LevelDB's bytewise order is index order and range scans work; values are encoded entries.
 * - `meta`: utf8 keys a person can read in a dump (`raft.hardState`, `raft.base`, `applied`,
 *   `kv.revision`, ...).
 * - `kv`, `jobs`, `sessions`: utf8 keys (user keys, job ids, client ids), JSON records; job
 *   ordering indexes are rebuilt in memory on load.
 * Values are `view` (Uint8Array) everywhere, so each owner picks its own codec.
 *
 * Every write goes through `write`: one atomic batch, across sublevels, durable when `sync` is
 * asked and the promise resolves. Reads go to the sublevels directly.
 */
import type { AbstractLevel, AbstractSublevel } from "abstract-level"
import { Context } from "effect"

/** What classic-level and memory-level accept and store internally. */
type Format = string | Buffer | Uint8Array

/** The root database; its default encodings are utf8 keys and `view` values. */
export type Db = AbstractLevel<Format, string, Uint8Array>
export type Sublevel<K, V> = AbstractSublevel<Db, Format, K, V>

/** One operation of an atomic write, in one of the node's sublevels. */
export type StoredOp =
  | { readonly type: "put"; readonly sublevel: Sublevel<Uint8Array, Uint8Array>; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: "del"; readonly sublevel: Sublevel<Uint8Array, Uint8Array>; readonly key: Uint8Array }
  | { readonly type: "put"; readonly sublevel: Sublevel<string, Uint8Array>; readonly key: string; readonly value: Uint8Array }
  | { readonly type: "del"; readonly sublevel: Sublevel<string, Uint8Array>; readonly key: string }

export interface StorageShape {
  /** The root database (for tests and tools; the node writes through `write`). */
  readonly db: Db
  /** Raft log: `encodeUint64Key(index)` -> encoded entry. */
  readonly log: Sublevel<Uint8Array, Uint8Array>
  /** Hard state (term, vote), compaction base, applied index, revision, leader time, job counters. */
  readonly meta: Sublevel<string, Uint8Array>
  /** The key-value state machine. */
  readonly kv: Sublevel<string, Uint8Array>
  /** Job records by id. */
  readonly jobs: Sublevel<string, Uint8Array>
  /** Client sessions for request deduplication. */
  readonly sessions: Sublevel<string, Uint8Array>
  /** Writes `ops` as one atomic batch; with `sync`, they are on disk when the promise resolves. */
  write(ops: ReadonlyArray<StoredOp>, sync: boolean): Promise<void>
}

export class Storage extends Context.Tag("archio/Storage")<Storage, StorageShape>() {}

export const sublevelNames = ["log", "meta", "kv", "jobs", "sessions"] as const
export type SublevelName = (typeof sublevelNames)[number]

/**
 * The node's storage over an open (or opening) root database.
 *
 * Writes build a chained batch, not `db.batch(array)`: classic-level reads an array's
 * operations back in C++ through N-API property lookups, several times slower per operation
 * than a chained batch, which hands each key and value over as plain arguments (BENCHMARKS.md,
 * "Chained batches"). memory-level ignores `sync`.
 */
export const over = (db: Db): StorageShape => ({
  db,
  log: db.sublevel<Uint8Array, Uint8Array>("log", { keyEncoding: "view", valueEncoding: "view" }),
  meta: db.sublevel<string, Uint8Array>("meta", { keyEncoding: "utf8", valueEncoding: "view" }),
  kv: db.sublevel<string, Uint8Array>("kv", { keyEncoding: "utf8", valueEncoding: "view" }),
  jobs: db.sublevel<string, Uint8Array>("jobs", { keyEncoding: "utf8", valueEncoding: "view" }),
  sessions: db.sublevel<string, Uint8Array>("sessions", { keyEncoding: "utf8", valueEncoding: "view" }),
  write: (ops, sync) => {
    const batch = db.batch()
    for (const op of ops) {
      // The union's key types follow its sublevel's; abstract-level's batch is not that precise.
      const options = { sublevel: op.sublevel as Sublevel<unknown, Uint8Array> }
      if (op.type === "put") batch.put(op.key as never, op.value, options)
      else batch.del(op.key as never, options)
    }
    return batch.write({ sync } as object)
  }
})
