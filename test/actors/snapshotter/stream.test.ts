/**
 * Snapshots are LevelDB views read in batches (real classic-level): the stream holds exactly
 * the state at the view, whatever is written after; state generations switch atomically.
 */
import t from "tap"
import { Effect, Scope } from "effect"
import * as StorageLayer from "../../../bootstrap/storage.ts"
import { stateMetaKeys, loadState, type StateView } from "../../../actors/applier/applier.ts"
import { SnapshotStream } from "../../../actors/snapshotter/stream.ts"
import { encodeJsonValue } from "../../../actors/raft/storage.ts"
import { generationKey, type StorageShape } from "../../../actors/services/storage.ts"
import { SnapshotDecoder, type SnapshotRecord } from "../../../protocol/snapshotFormat.ts"
import { tempDir } from "../../support/tmp.ts"
import { testScope } from "../../support/services.ts"

const open = async (t: Parameters<typeof tempDir>[0], dir?: string): Promise<{ storage: StorageShape; close: () => Promise<void> }> => {
  const { scope, close } = testScope(t as never)
  const storage = await Effect.runPromise(Scope.extend(StorageLayer.make(dir ?? (await tempDir(t))), scope))
  return { storage, close }
}

const record = (_key: string, value: string): Uint8Array => encodeJsonValue({ value, createRevision: 1, modRevision: 1, version: 1 })

const viewOf = (storage: StorageShape, index: number): StateView => ({
  index,
  levels: storage.levelsOf(storage.generation),
  meta: storage.meta,
  snapshot: storage.db.snapshot()
})

const readAll = async (stream: SnapshotStream, chunkBytes: number): Promise<{ records: SnapshotRecord[]; bytes: number }> => {
  const decoder = new SnapshotDecoder()
  const records: SnapshotRecord[] = []
  let bytes = 0
  while (!stream.finished) {
    const chunk = await stream.next(chunkBytes)
    bytes += chunk.length
    decoder.push(chunk)
    records.push(...decoder.takeRecords())
  }
  decoder.end()
  t.equal(decoder.digest, stream.digest, "the decoder's checksum is the stream's")
  return { records, bytes }
}

t.test("a stream of a view holds the state at the view, in batches, whatever is written after", async (t) => {
  const { storage } = await open(t)
  const n = 2500 // more than two read batches
  const ops = []
  for (let i = 0; i < n; i++) ops.push({ type: "put" as const, sublevel: storage.kv, key: `k${String(i).padStart(5, "0")}`, value: record(`k${i}`, `v${i}`) })
  ops.push({ type: "put" as const, sublevel: storage.jobs, key: "j1", value: encodeJsonValue({ id: "j1" }) })
  ops.push({ type: "put" as const, sublevel: storage.sessions, key: "c1", value: encodeJsonValue({ seq: 1 }) })
  ops.push({ type: "put" as const, sublevel: storage.meta, key: "applied", value: encodeJsonValue(77) })
  ops.push({ type: "put" as const, sublevel: storage.meta, key: "kv.revision", value: encodeJsonValue(2500) })
  await storage.write(ops, false)
  const stream = new SnapshotStream(viewOf(storage, 77), { index: 77, term: 3, members: ["n1"], cluster: "c", createdAt: 0 })
  // Written after the view: never in it.
  await storage.write(
    [
      { type: "put", sublevel: storage.kv, key: "late", value: record("late", "x") },
      { type: "del", sublevel: storage.kv, key: "k00000" },
      { type: "put", sublevel: storage.meta, key: "applied", value: encodeJsonValue(99) }
    ],
    false
  )
  const { records, bytes } = await readAll(stream, 1000)
  await stream.close()
  t.equal(bytes, stream.produced)
  const by = (section: string) => records.filter((r) => r.section === section)
  t.equal(by("kv").length, n, "every key of the view")
  t.ok(by("kv").some((r) => r.key === "k00000"), "a key deleted after the view is in it")
  t.notOk(by("kv").some((r) => r.key === "late"), "a key written after the view is not")
  t.same(by("jobs").map((r) => r.key), ["j1"])
  t.same(by("sessions").map((r) => r.key), ["c1"])
  t.same(
    by("meta").map((r) => r.key),
    stateMetaKeys.filter((k) => k === "applied" || k === "kv.revision"),
    "the state's meta keys present in the view, in order"
  )
  t.equal(new TextDecoder().decode(by("meta")[0]!.value), "77", "the applied index as of the view")
})

t.test("closing a stream mid-read waits for the read and releases the snapshot", async (t) => {
  const { storage } = await open(t)
  const ops = []
  for (let i = 0; i < 3000; i++) ops.push({ type: "put" as const, sublevel: storage.kv, key: `k${i}`, value: record(`k${i}`, "v") })
  await storage.write(ops, false)
  const stream = new SnapshotStream(viewOf(storage, 1), { index: 1, term: 1, members: ["n1"], cluster: "c", createdAt: 0 })
  const reading = stream.next(1_000_000)
  await stream.close()
  await reading.then(
    () => t.pass("the read in flight finished"),
    (e: unknown) => t.match(String(e), /closed/, "or it says the stream closed")
  )
  await t.rejects(stream.next(10), /closed/, "no reads after close")
})

t.test("state generations: the storage follows `state.generation` across a reopen", async (t) => {
  const dir = await tempDir(t)
  const first = await open(t, dir)
  const g1 = first.storage.levelsOf(1)
  await first.storage.write([{ type: "put", sublevel: first.storage.kv, key: "old", value: record("old", "gen0") }], false)
  await first.storage.write([{ type: "put", sublevel: g1.kv, key: "new", value: record("new", "gen1") }], false)
  t.same(Object.keys(Object.fromEntries((await loadState(first.storage)).kv.records)), ["old"], "generation 0 until switched")
  await first.storage.write([{ type: "put", sublevel: first.storage.meta, key: generationKey, value: encodeJsonValue(1) }], true)
  first.storage.useGeneration(1)
  t.equal(first.storage.generation, 1)
  t.same([...(await loadState(first.storage)).kv.records.keys()], ["new"], "the switched generation at once")
  await first.close()
  const again = await open(t, dir)
  t.equal(again.storage.generation, 1, "and after a reopen")
  t.same([...(await loadState(again.storage)).kv.records.keys()], ["new"])
  await again.storage.drop(again.storage.levelsOf(0).kv, {})
  t.equal((await again.storage.levelsOf(0).kv.keys().all()).length, 0, "the old generation is dropped without reading it")
})
