/**
 * The node's database: one classic-level (LevelDB) database per data dir, behind the Storage
 * service of actors/services/storage.ts (sublevels, encodings, atomic writes). `memoryLayer` is
 * the same over memory-level, for tests.
 */
import { Data, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { ClassicLevel } from "classic-level"
import { MemoryLevel } from "memory-level"
import { mkdir } from "node:fs/promises"
import { resolve } from "node:path"
import { over, readGeneration, Storage, type Db, type StorageShape } from "../actors/services/storage.ts"

export { Storage, sublevelNames, type StorageShape } from "../actors/services/storage.ts"

export class StorageError extends Data.TaggedError("StorageError")<{
  readonly message: string
  readonly dataDir: string
  readonly cause?: unknown
}> {}

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

/** The node's storage at the state generation the database names. */
const openState = (db: Db): Effect.Effect<StorageShape> => Effect.promise(async () => over(db, await readGeneration(db)))

/** Opens (creating it when missing) the database in `dataDir` and closes it when the scope ends. */
export const make = (dataDir: string): Effect.Effect<StorageShape, StorageError, Scope.Scope> => {
  const location = resolve(dataDir)
  const acquire = Effect.gen(function* () {
    if (openHere.has(location)) return yield* Effect.fail(inUse(location, "already open in this process"))
    yield* Effect.tryPromise({
      try: () => mkdir(location, { recursive: true }),
      catch: (cause) => new StorageError({ dataDir: location, cause, message: `cannot create data dir ${location}: ${errorMessage(cause)}` })
    })
    // A 1 MiB write buffer (LevelDB: 4 MiB) keeps the write-ahead log, which no compaction
    // shrinks, small beside a small state; the memtable still batches many writes per flush.
    const db = new ClassicLevel<string, Uint8Array>(location, { keyEncoding: "utf8", valueEncoding: "view", writeBufferSize: 1024 * 1024 })
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
  ).pipe(Effect.flatMap(openState))
}

/** An in-memory database with the same sublevels, closed when the scope ends. */
export const makeMemory: Effect.Effect<StorageShape, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: "utf8", valueEncoding: "view" })
    await db.open()
    return db as unknown as Db
  }),
  (db) => Effect.promise(() => db.close())
).pipe(Effect.flatMap(openState))

/** The node's database in `dataDir` (classic-level). */
export const layer = (dataDir: string): Layer.Layer<Storage, StorageError> => Layer.scoped(Storage, make(dataDir))

/** A fresh in-memory database for each use of the layer (memory-level). */
export const memoryLayer: Layer.Layer<Storage> = Layer.scoped(Storage, makeMemory)
