/**
 * Seeding a new node's data dir from a snapshot file, as `archio snapshot restore` does. The
 * database is built in a sibling temporary folder and renamed to the data dir only when it is
 * complete, so a failed or interrupted restore leaves no data dir a node could start from.
 *
 * What it writes is what a node has after installing that snapshot from a leader
 * (actors/snapshotter/snapshotter.ts): generation 0 of the state sublevels (`kv`, `jobs`,
 * `sessions`) holding the snapshot's records; the state's meta records (applied index,
 * revision, leader time, job counters); the compaction base `raft.base` at the snapshot's
 * index and term, with no log after it; `snapshot`, the SnapshotMeta; and `raft.hardState`
 * at the snapshot's term with no vote. Membership is the new cluster's (`peers`): every node
 * of it starts from the same state and index and elects a leader among themselves.
 */
import { Effect, Either, Exit, Scope } from "effect"
import { mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { snapshotFormatVersion, type SnapshotRecord } from "../../protocol/snapshotFormat.ts"
import { encodeJsonValue, metaKeys } from "../../actors/raft/storage.ts"
import type { StorageShape, StoredOp } from "../../actors/services/storage.ts"
import type { SnapshotMeta } from "../../actors/snapshotter/decisions.ts"
import { make as openStorage } from "../storage.ts"
import { syncFolder } from "./partialFile.ts"
import { readSnapshotFile } from "./snapshotFile.ts"
import type { SnapshotSummary } from "./verify.ts"

/** Records written per batch. */
export const batchRecords = 1000

export interface SeedTarget {
  /** The data dir to create (absolute). */
  readonly dataDir: string
  /** The members of the new cluster. */
  readonly peers: ReadonlyArray<string>
  /** Wall-clock ms recorded as the snapshot's install time. */
  readonly now: number
}

/** Why a data dir cannot be seeded, or undefined when it is absent or an empty folder. */
export const dataDirProblem = async (dataDir: string): Promise<string | undefined> => {
  try {
    const entries = await readdir(dataDir)
    return entries.length === 0 ? undefined : `${dataDir} exists and is not empty: restore only into a new (or empty) folder, never over a node's data`
  } catch (e) {
    const code = typeof e === "object" && e !== null && "code" in e ? e.code : undefined
    if (code === "ENOENT") return undefined
    if (code === "ENOTDIR") return `${dataDir} exists and is not a folder`
    return `cannot read ${dataDir}: ${e instanceof Error ? e.message : String(e)}`
  }
}

/** The records of one batch as writes into generation 0 of the state sublevels. */
const stateOps = (storage: StorageShape, records: ReadonlyArray<SnapshotRecord>): Array<StoredOp> =>
  records.map((r) => {
    const sublevel = r.section === "kv" ? storage.kv : r.section === "jobs" ? storage.jobs : storage.sessions
    return { type: "put", sublevel, key: r.key, value: r.value }
  })

/** The meta records that make the state a node's applied state at the snapshot. */
const metaOps = (storage: StorageShape, summary: SnapshotSummary, target: SeedTarget): Array<StoredOp> => {
  const { header } = summary
  const snapshot: SnapshotMeta = {
    index: header.index,
    term: header.term,
    members: target.peers,
    format: snapshotFormatVersion,
    checksum: summary.checksum,
    size: summary.size,
    time: target.now
  }
  const put = (key: string, value: Uint8Array): StoredOp => ({ type: "put", sublevel: storage.meta, key, value })
  return [
    // A new cluster: its members are --peers (the first leader writes them with a new cluster
    // id), not those of the cluster the snapshot came from.
    ...[...summary.meta].filter(([key]) => key !== metaKeys.applied && key !== metaKeys.membership).map(([key, value]) => put(key, value)),
    put(metaKeys.applied, encodeJsonValue(header.index)),
    put(metaKeys.base, encodeJsonValue({ index: header.index, term: header.term })),
    put(metaKeys.snapshot, encodeJsonValue(snapshot)),
    put(metaKeys.hardState, encodeJsonValue({ term: header.term, vote: null }))
  ]
}

/** Writes the whole snapshot in `file` into the database of the (empty) folder `folder`. */
const fill = async (folder: string, file: string, target: SeedTarget): Promise<SnapshotSummary> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const opened = await Effect.runPromise(Effect.either(Scope.extend(openStorage(folder), scope)))
    if (Either.isLeft(opened)) throw new Error(opened.left.message)
    const storage = opened.right
    let pending: Array<SnapshotRecord> = []
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return
      const batch = pending
      pending = []
      await storage.write(stateOps(storage, batch), false)
    }
    const summary = await readSnapshotFile(file, async (records) => {
      for (const r of records) {
        pending.push(r)
        if (pending.length >= batchRecords) await flush()
      }
    })
    await flush()
    // Synced: LevelDB's log is one file, so this makes every earlier batch durable too.
    await storage.write(metaOps(storage, summary, target), true)
    return summary
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/**
 * Creates `target.dataDir` from the snapshot `file`: built in a temporary folder beside it,
 * then renamed into place. Rejects (leaving nothing behind) when the file stops being a valid
 * snapshot while it is read, when it is not the one `expected` summarises, or when the data
 * dir was created meanwhile.
 */
export const seed = async (file: string, target: SeedTarget, expected: SnapshotSummary): Promise<SnapshotSummary> => {
  const parent = dirname(target.dataDir)
  /** The first folder this created on the way to the data dir, removed again on failure. */
  const created = await mkdir(parent, { recursive: true })
  let temp: string | undefined
  try {
    temp = await mkdtemp(join(parent, `.${basename(target.dataDir)}.restoring-`))
    const summary = await fill(temp, file, target)
    if (summary.checksum !== expected.checksum) throw new Error(`${file} changed while it was being restored`)
    const problem = await dataDirProblem(target.dataDir)
    if (problem !== undefined) throw new Error(problem)
    // Replaces the data dir only if it is an empty folder (or absent); never one with files.
    await rename(temp, target.dataDir)
    await syncFolder(parent)
    return summary
  } catch (e) {
    if (temp !== undefined) await rm(temp, { recursive: true, force: true }).catch(() => undefined)
    if (created !== undefined) await rm(created, { recursive: true, force: true }).catch(() => undefined)
    throw e
  }
}
