/**
 * Durable Raft state in the node's database: the log under big-endian index keys, the hard
 * state and compaction base in `meta`. The Readies of one fsync are one atomic batch.
 */
import { decodeEntryValue, decodeUint64Key, encodeEntryValue, encodeUint64Key } from "../../protocol/raftCodec.ts"
import type { Entry } from "../../protocol/raft.ts"
import type { StorageShape, StoredOp } from "../services/storage.ts"
import type { Ready } from "./core.ts"
import { invariant } from "./invariant.ts"
import { decodeMembership } from "../../protocol/membership.ts"
import type { HardState, Restored } from "./state.ts"

/** What the consensus actor reads and writes. */
export type RaftStores = Pick<StorageShape, "log" | "meta" | "write">

export const metaKeys = {
  hardState: "raft.hardState",
  base: "raft.base",
  /** The last snapshot taken or installed (SnapshotMeta in actors/snapshotter). */
  snapshot: "snapshot",
  /** Written by the Applier in the same batch as the state it applied. */
  applied: "applied",
  /** The configuration as of the applied index (protocol/membership.ts); the Applier writes it too. */
  membership: "raft.membership"
} as const

const text = new TextEncoder()
const untext = new TextDecoder()

export const encodeJsonValue = (value: unknown): Uint8Array => text.encode(JSON.stringify(value))
export const decodeJsonValue = <A>(bytes: Uint8Array): A => JSON.parse(untext.decode(bytes)) as A

const getMeta = async <A>(stores: RaftStores, key: string): Promise<A | undefined> => {
  const raw = await stores.meta.get(key)
  return raw === undefined ? undefined : decodeJsonValue<A>(raw)
}

/** Everything the consensus core needs to restart where it stopped. */
export const loadRestored = async (stores: RaftStores): Promise<Restored> => {
  const hardState = (await getMeta<HardState>(stores, metaKeys.hardState)) ?? { term: 0, vote: null }
  const base = (await getMeta<{ index: number; term: number }>(stores, metaKeys.base)) ?? { index: 0, term: 0 }
  const appliedRaw = await getMeta<number>(stores, metaKeys.applied)
  const entries: Entry[] = []
  // Only the tail after the compaction base: the Snapshotter keeps it short.
  const it = stores.log.iterator({ gt: encodeUint64Key(base.index) })
  try {
    for (let batch = await it.nextv(1000); batch.length > 0; batch = await it.nextv(1000)) {
      for (const [key, value] of batch) {
        const index = decodeUint64Key(key)
        invariant(index === base.index + 1 + entries.length, `log keys are contiguous (found ${index})`)
        entries.push(decodeEntryValue(index, value))
      }
    }
  } finally {
    await it.close()
  }
  const applied = Math.max(appliedRaw ?? base.index, base.index)
  const membershipRaw = await stores.meta.get(metaKeys.membership)
  const membership = membershipRaw === undefined ? null : decodeMembership(membershipRaw)
  return { hardState, baseIndex: base.index, baseTerm: base.term, entries, applied, membership }
}

/** Does this Ready carry anything that must be on disk before its messages leave? */
export const needsWrite = (rd: Ready): boolean => rd.hardState !== null || rd.truncateFrom !== null || rd.entries.length > 0

/**
 * An installed snapshot's switch, queued among the Readies: the new state's meta, generation
 * and compaction base (`ops`), and the end of the old log after `index`.
 */
export interface InstallWrite {
  readonly install: true
  readonly index: number
  readonly ops: ReadonlyArray<StoredOp>
}

export type DiskWrite = Ready | InstallWrite

export const isInstall = (w: DiskWrite): w is InstallWrite => "install" in w

/**
 * Writes the durable part of several Readies (and installs), in order, as one atomic batch (one
 * fsync for all). `lastStored` is the highest log index on disk before the write; the return
 * value is the one after it.
 */
export const persistReadies = async (
  stores: RaftStores,
  readies: ReadonlyArray<DiskWrite>,
  lastStored: number,
  sync: boolean
): Promise<number> => {
  const ops: StoredOp[] = []
  let last = lastStored
  for (const rd of readies) {
    if (isInstall(rd)) {
      // The old log's entries after the snapshot go; those up to it are dropped later, unread.
      for (let i = rd.index + 1; i <= last; i++) ops.push({ type: "del", sublevel: stores.log, key: encodeUint64Key(i) })
      ops.push(...rd.ops)
      last = rd.index
      continue
    }
    if (rd.hardState !== null) {
      ops.push({ type: "put", sublevel: stores.meta, key: metaKeys.hardState, value: encodeJsonValue(rd.hardState) })
    }
    if (rd.truncateFrom !== null) {
      for (let i = rd.truncateFrom; i <= last; i++) ops.push({ type: "del", sublevel: stores.log, key: encodeUint64Key(i) })
      last = Math.min(last, rd.truncateFrom - 1)
    }
    for (const e of rd.entries) {
      ops.push({ type: "put", sublevel: stores.log, key: encodeUint64Key(e.index), value: encodeEntryValue(e) })
    }
    const tail = rd.entries[rd.entries.length - 1]
    if (tail !== undefined) last = tail.index
  }
  if (ops.length > 0) await stores.write(ops, sync)
  return last
}
