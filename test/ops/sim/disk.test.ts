import t from "tap"
import { Disk } from "../../../ops/sim/disk.ts"
import { World } from "../../../ops/sim/world.ts"
import type { StorageShape } from "../../../actors/services/storage.ts"

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

const put = (s: StorageShape, key: string, value: string, sync: boolean) => s.write([{ type: "put", sublevel: s.kv, key, value: bytes(value) }], sync)

t.test("a synced write survives a crash, and takes the writes before it along", async (t) => {
  const world = new World(3)
  const disk = new Disk(world)
  const s = await disk.open()
  const done: string[] = []
  void put(s, "a", "1", false).then(() => done.push("a"))
  void put(s, "b", "2", true).then(() => done.push("b"))
  await world.run(20)
  t.same(done, ["a", "b"], "writes complete in the order they were made")
  disk.crash()
  const after = await disk.open()
  t.equal(text(await after.kv.get("a")), "1", "the unsynced write before a sync is durable")
  t.equal(text(await after.kv.get("b")), "2")
})

t.test("after a crash, unsynced writes survive as a prefix, never one without those before it", async (t) => {
  const kept = new Set<number>()
  for (let seed = 1; seed <= 60; seed++) {
    const world = new World(seed)
    const disk = new Disk(world)
    const s = await disk.open()
    const base = put(s, "base", "x", true)
    await world.run(world.now + 10)
    await base
    for (let i = 1; i <= 5; i++) void put(s, `k${i}`, String(i), false).catch(() => undefined)
    await world.run(world.now + world.int(0, 8))
    disk.crash()
    const next = await disk.open()
    const survived: number[] = []
    for (let i = 1; i <= 5; i++) if ((await next.kv.get(`k${i}`)) !== undefined) survived.push(i)
    t.same(survived, survived.map((_, j) => j + 1), `seed ${seed}: a prefix (${survived.join(",")})`)
    t.equal(text(await next.kv.get("base")), "x", `seed ${seed}: the synced write is there`)
    kept.add(survived.length)
  }
  t.ok(kept.has(0) && kept.has(5) && kept.size > 2, "crashes keep none, all, and some of the unsynced writes")
})

t.test("a clean stop keeps everything; a dead life can no longer write", async (t) => {
  const world = new World(9)
  const disk = new Disk(world)
  const s = await disk.open()
  void put(s, "a", "1", false)
  await world.run(10)
  disk.close()
  await t.rejects(put(s, "b", "2", true), /the process is gone/, "the old life's writes are refused")
  const next = await disk.open()
  t.equal(text(await next.kv.get("a")), "1", "an unsynced write survives a clean stop")
  t.equal(await next.kv.get("b"), undefined)
  const pending = put(next, "c", "3", true)
  disk.crash()
  await t.rejects(pending, /the process is gone/, "a write in flight at a crash never answers yes")
  const third = await disk.open()
  const c = await third.kv.get("c")
  t.ok(c === undefined || text(c) === "3", "and either landed whole or not at all")
})
