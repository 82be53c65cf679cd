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
 *   ordering indexes are rebuilt in memory on load. These state sublevels come in generations
 *   (`kv`, then `kv.1`, `kv.2`, ...): a snapshot being installed is written into the next
 *   generation and becomes the state in one atomic write of `state.generation` in `meta`, so a
 *   crash leaves the old state or the whole new one, never a mix.
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
/** A LevelDB snapshot: reads given it see the database as it was when it was taken. */
export type DbSnapshot = ReturnType<Db["snapshot"]>
export type Sublevel<K, V> = AbstractSublevel<Db, Format, K, V>

/** One operation of an atomic write, in one of the node's sublevels. */
export type StoredOp =
  | { readonly type: "put"; readonly sublevel: Sublevel<Uint8Array, Uint8Array>; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: "del"; readonly sublevel: Sublevel<Uint8Array, Uint8Array>; readonly key: Uint8Array }
  | { readonly type: "put"; readonly sublevel: Sublevel<string, Uint8Array>; readonly key: string; readonly value: Uint8Array }
  | { readonly type: "del"; readonly sublevel: Sublevel<string, Uint8Array>; readonly key: string }

/** One generation of the state machines' sublevels. */
export interface StateLevels {
  readonly generation: number
  /** The key-value state machine. */
  readonly kv: Sublevel<string, Uint8Array>
  /** Job records by id. */
  readonly jobs: Sublevel<string, Uint8Array>
  /** Client sessions for request deduplication. */
  readonly sessions: Sublevel<string, Uint8Array>
}

export interface StorageShape extends StateLevels {
  /** The root database (for tests and tools; the node writes through `write`). */
  readonly db: Db
  /** Raft log: `encodeUint64Key(index)` -> encoded entry. */
  readonly log: Sublevel<Uint8Array, Uint8Array>
  /** Hard state (term, vote), compaction base, applied index, revision, leader time, job counters. */
  readonly meta: Sublevel<string, Uint8Array>
  /** The state sublevels of any generation (an install writes the next one). */
  levelsOf(generation: number): StateLevels
  /**
   * Makes `generation` the state read and written from now on; called once a synced write
   * set `state.generation` in `meta` to it.
   */
  useGeneration(generation: number): void
  /** Writes `ops` as one atomic batch; with `sync`, they are on disk when the promise resolves. */
  write(ops: ReadonlyArray<StoredOp>, sync: boolean): Promise<void>
  /**
   * Deletes a range of a sublevel without reading it into memory (compacted log entries, a
   * dropped state generation). Not atomic with anything and not synced: only for keys nothing
   * reads any more, which a crash may leave behind for the next start to drop again.
   */
  drop<K extends string | Uint8Array>(sublevel: Sublevel<K, Uint8Array>, range: KeyRange<K>): Promise<void>
  /** LevelDB's own upkeep, where the store has it (classic-level; memory-level has none). */
  readonly upkeep: Upkeep | undefined
}

export interface Upkeep {
  /** Bytes of table files on disk (what is only in the write-ahead log is not counted). */
  sizeOnDisk(): Promise<number>
  /** Rewrites every table, dropping overwritten and deleted records; runs off the event loop. */
  compactAll(): Promise<void>
}

/** classic-level's extra methods, when the store has them. */
interface NativeLevel {
  approximateSize?: (start: string, end: string) => Promise<number>
  compactRange?: (start: string, end: string) => Promise<void>
}

/** Every sublevel's keys start with "!<name>!"; names use characters below "~". */
const everyKey = ["!", "~"] as const

const upkeepOf = (db: Db): Upkeep | undefined => {
  const native = db as Db & NativeLevel
  const { approximateSize, compactRange } = native
  if (typeof approximateSize !== "function" || typeof compactRange !== "function") return undefined
  return {
    sizeOnDisk: () => approximateSize.call(native, ...everyKey),
    compactAll: () => compactRange.call(native, ...everyKey)
  }
}

export interface KeyRange<K> {
  readonly gt?: K
  readonly gte?: K
  readonly lt?: K
  readonly lte?: K
}

export class Storage extends Context.Tag("archio/Storage")<Storage, StorageShape>() {}

export const sublevelNames = ["log", "meta", "kv", "jobs", "sessions"] as const
export type SublevelName = (typeof sublevelNames)[number]
export const stateSublevelNames = ["kv", "jobs", "sessions"] as const

/** The meta key naming the state's current generation (absent: 0). */
export const generationKey = "state.generation"

const metaOf = (db: Db): Sublevel<string, Uint8Array> => db.sublevel<string, Uint8Array>("meta", { keyEncoding: "utf8", valueEncoding: "view" })

/** The current state generation of an open database. */
export const readGeneration = async (db: Db): Promise<number> => {
  const raw = await metaOf(db).get(generationKey)
  return raw === undefined ? 0 : (JSON.parse(new TextDecoder().decode(raw)) as number)
}

const levelName = (name: string, generation: number): string => (generation === 0 ? name : `${name}.${generation}`)

/** The state sublevels of one generation. */
export const stateLevels = (db: Db, generation: number): StateLevels => ({
  generation,
  kv: db.sublevel<string, Uint8Array>(levelName("kv", generation), { keyEncoding: "utf8", valueEncoding: "view" }),
  jobs: db.sublevel<string, Uint8Array>(levelName("jobs", generation), { keyEncoding: "utf8", valueEncoding: "view" }),
  sessions: db.sublevel<string, Uint8Array>(levelName("sessions", generation), { keyEncoding: "utf8", valueEncoding: "view" })
})

/**
 * The node's storage over an open (or opening) root database.
 *
 * Writes build a chained batch, not `db.batch(array)`: classic-level reads an array's
 * operations back in C++ through N-API property lookups, several times slower per operation
 * than a chained batch, which hands each key and value over as plain arguments (BENCHMARKS.md,
 * "Chained batches"). memory-level ignores `sync`.
 */
export const over = (db: Db, generation = 0): StorageShape => {
  let state = stateLevels(db, generation)
  const write = (ops: ReadonlyArray<StoredOp>, sync: boolean): Promise<void> => {
    const batch = db.batch()
    for (const op of ops) {
      // The union's key types follow its sublevel's; abstract-level's batch is not that precise.
      const options = { sublevel: op.sublevel as Sublevel<unknown, Uint8Array> }
      if (op.type === "put") batch.put(op.key as never, op.value, options)
      else batch.del(op.key as never, options)
    }
    return batch.write({ sync } as object)
  }
  return {
    db,
    log: db.sublevel<Uint8Array, Uint8Array>("log", { keyEncoding: "view", valueEncoding: "view" }),
    meta: metaOf(db),
    get generation() {
      return state.generation
    },
    get kv() {
      return state.kv
    },
    get jobs() {
      return state.jobs
    },
    get sessions() {
      return state.sessions
    },
    levelsOf: (n) => (n === state.generation ? state : stateLevels(db, n)),
    useGeneration: (n) => {
      state = stateLevels(db, n)
    },
    write,
    drop: (sublevel, range) => sublevel.clear(range),
    upkeep: upkeepOf(db)
  }
}

/** The same storage with other writes and drops (the simulator's disk, observers). */
export const withIo = (storage: StorageShape, io: Partial<Pick<StorageShape, "write" | "drop">>): StorageShape =>
  // A prototype link keeps the generation getters live; only the given methods are replaced.
  Object.assign(Object.create(storage) as StorageShape, io)
