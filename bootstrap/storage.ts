/**
 * One LevelDB database per node (classic-level), split into five sublevels (README, "Storage").
 * Tests and the simulator use `memoryLayer`: memory-level behind the same abstract-level
 * interface, with the same sublevels and encodings.
 *
 * Encodings (the stored bytes are the contract; the encodings only say what JS type you get):
 * - `log`: keys are 8-byte big-endian indexes (`encodeUint64Key` in protocol/raftCodec.ts), so
 *   LevelDB's bytewise order is index order and range scans and `clear({ lt })` compaction
 *   work; values are encoded entries. Both `view` (Uint8Array) so no copies through Buffer and
 *   no text decoding.
 * - `meta`: utf8 keys (`raft.hardState`, `raft.base`, `applied`, `kv.revision`, ...) a person
 *   can read in a dump; `view` values so each owner picks its own codec.
 * - `kv`, `jobs`, `sessions`: utf8 keys (user keys, job ids, client ids) and `view` values
 *   (JSON records).
 *
 * A write that must be atomic across sublevels goes through one batch naming each op's
 * sublevel (`writeBatch` in actors/raft/storage.ts).
 */
import { Context, Data, Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { AbstractLevel, AbstractSublevel } from "abstract-level"
import { ClassicLevel } from "classic-level"
import { MemoryLevel } from "memory-level"
import { mkdir } from "node:fs/promises"
import { resolve } from "node:path"

/** What classic-level and memory-level accept and store internally. */
type Format = string | Buffer | Uint8Array

/** The root database; its default encodings are utf8 keys and `view` values. */
export type Db = AbstractLevel<Format, string, Uint8Array>
export type Sublevel<K, V> = AbstractSublevel<Db, Format, K, V>

export interface StorageShape {
  readonly db: Db
  /** Raft log: `encodeUint64Key(index)` -> encoded entry. */
  readonly log: Sublevel<Uint8Array, Uint8Array>
  /** Hard state (term, vote), compaction base, applied index, revision, leader time, job counters. */
  readonly meta: Sublevel<string, Uint8Array>
  /** The key-value state machine. */
  readonly kv: Sublevel<string, Uint8Array>
  /** Job records by id; their ordering indexes are rebuilt in memory on load. */
  readonly jobs: Sublevel<string, Uint8Array>
  /** Client sessions for request deduplication. */
  readonly sessions: Sublevel<string, Uint8Array>
}

export class Storage extends Context.Tag("archio/Storage")<Storage, StorageShape>() {}

export class StorageError extends Data.TaggedError("StorageError")<{
  readonly message: string
  readonly dataDir: string
  readonly cause?: unknown
}> {}

/** Names of the sublevels. */
export const sublevelNames = ["log", "meta", "kv", "jobs", "sessions"] as const

/** Builds the sublevels over an open (or opening) root database. */
export const sublevels = (db: Db): StorageShape => ({
  db,
  log: db.sublevel<Uint8Array, Uint8Array>("log", { keyEncoding: "view", valueEncoding: "view" }),
  meta: db.sublevel<string, Uint8Array>("meta", { keyEncoding: "utf8", valueEncoding: "view" }),
  kv: db.sublevel<string, Uint8Array>("kv", { keyEncoding: "utf8", valueEncoding: "view" }),
  jobs: db.sublevel<string, Uint8Array>("jobs", { keyEncoding: "utf8", valueEncoding: "view" }),
  sessions: db.sublevel<string, Uint8Array>("sessions", { keyEncoding: "utf8", valueEncoding: "view" })
})

/**
 * Data dirs this process has open. LevelDB keeps its lock with `fcntl`, which is per process:
 * a second open of the same folder in the same process fails *and* (LevelDB closes its file
 * descriptor for LOCK) silently drops the first one's lock, letting another process in. So we
 * refuse it ourselves before LevelDB sees it.
 */
const openHere = new Set<string>()

const inUse = (dataDir: string, detail: string): StorageError =>
  new StorageError({
    dataDir,
    message: `data dir ${dataDir} is in use by another archio node (${detail}); stop that node or give this one another --data / DATA_DIR`
  })

const errorCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** Opens (creating it when missing) the database in `dataDir` and closes it when the scope ends. */
export const make = (dataDir: string): Effect.Effect<StorageShape, StorageError, Scope.Scope> => {
  const location = resolve(dataDir)
  const acquire = Effect.gen(function* () {
    if (openHere.has(location)) return yield* Effect.fail(inUse(location, "already open in this process"))
    yield* Effect.tryPromise({
      try: () => mkdir(location, { recursive: true }),
      catch: (cause) => new StorageError({ dataDir: location, cause, message: `cannot create data dir ${location}: ${errorMessage(cause)}` })
    })
    const db = new ClassicLevel<string, Uint8Array>(location, { keyEncoding: "utf8", valueEncoding: "view" })
    yield* Effect.tryPromise({
      try: () => db.open(),
      catch: (cause) => {
        const inner = cause instanceof Error ? cause.cause : undefined
        if (errorCode(inner) === "LEVEL_LOCKED") return inUse(location, `its LevelDB lock ${location}/LOCK is held`)
        const why = inner === undefined ? errorMessage(cause) : `${errorMessage(cause)}: ${errorMessage(inner)}`
        return new StorageError({ dataDir: location, cause, message: `cannot open the database in data dir ${location}: ${why}` })
      }
    })
    openHere.add(location)
    // ClassicLevel<string, Uint8Array> is a Db, but abstract-level's hook types mention the
    // concrete class in both directions (invariant), so TypeScript needs the widening spelled out.
    return db as unknown as Db
  })
  return Effect.acquireRelease(acquire, (db) =>
    Effect.promise(() => db.close()).pipe(
      Effect.catchAllDefect((e) => Effect.logError(`closing the database in ${location} failed: ${errorMessage(e)}`)),
      Effect.ensuring(Effect.sync(() => openHere.delete(location))),
      Effect.zipRight(Effect.logDebug(`database closed: ${location}`))
    )
  ).pipe(Effect.map(sublevels))
}

/** An in-memory database with the same sublevels, closed when the scope ends. */
export const makeMemory: Effect.Effect<StorageShape, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: "utf8", valueEncoding: "view" })
    await db.open()
    return db as unknown as Db
  }),
  (db) => Effect.promise(() => db.close())
).pipe(Effect.map(sublevels))

/** The node's database in `dataDir` (classic-level). */
export const layer = (dataDir: string): Layer.Layer<Storage, StorageError> => Layer.scoped(Storage, make(dataDir))

/** A fresh in-memory database for each use of the layer (memory-level). */
export const memoryLayer: Layer.Layer<Storage> = Layer.scoped(Storage, makeMemory)
