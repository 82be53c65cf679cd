import t, { type Test } from "tap"
import { Effect, Exit, Layer } from "effect"
import { spawnSync } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Storage from "../../bootstrap/storage.ts"
import { decodeUint64Key, encodeUint64Key } from "../../protocol/raftCodec.ts"
import { tempDir } from "../support/tmp.ts"

const repo = fileURLToPath(new URL("../..", import.meta.url))
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

/** Runs `use` with the Storage service from `layer`; the layer is released afterwards. */
const withStorage = <A>(layer: Layer.Layer<Storage.Storage, Storage.StorageError>, use: (s: Storage.StorageShape) => Promise<A>) =>
  Effect.runPromise(Effect.flatMap(Storage.Storage, (s) => Effect.promise(() => use(s))).pipe(Effect.provide(layer)))

const exercise = async (t: Test, s: Storage.StorageShape): Promise<void> => {
  t.same(Storage.sublevelNames, ["log", "meta", "kv", "jobs", "sessions"])
  // Every sublevel exists, with its own key space.
  await s.meta.put("hardState", bytes("meta"))
  await s.kv.put("hardState", bytes("kv"))
  await s.jobs.put("j1", bytes("job"))
  await s.sessions.put("c1", bytes("session"))
  t.equal(text(await s.meta.get("hardState")), "meta")
  t.equal(text(await s.kv.get("hardState")), "kv", "same key, different sublevel")
  t.equal(text(await s.jobs.get("j1")), "job")
  t.equal(text(await s.sessions.get("c1")), "session")
  t.ok((await s.kv.get("hardState")) instanceof Uint8Array, "values come back as Uint8Array")
  // Log keys sort by index, not by decimal text.
  const indexes = [10, 2, 256, 1, 65536, 255, 2 ** 33, 9]
  await s.log.batch(indexes.map((i) => ({ type: "put" as const, key: encodeUint64Key(i), value: bytes(`e${i}`) })))
  const keys: Array<number> = []
  for await (const key of s.log.keys()) keys.push(decodeUint64Key(key))
  t.same(keys, [...indexes].sort((a, b) => a - b), "iteration is in index order")
  const range: Array<number> = []
  for await (const key of s.log.keys({ gte: encodeUint64Key(9), lt: encodeUint64Key(256) })) range.push(decodeUint64Key(key))
  t.same(range, [9, 10, 255], "range scans by index")
  await s.log.clear({ lte: encodeUint64Key(10) })
  const left: Array<number> = []
  for await (const key of s.log.keys()) left.push(decodeUint64Key(key))
  t.same(left, [255, 256, 65536, 2 ** 33], "compaction by range")
  // One atomic batch across sublevels through the root database.
  await s.db.batch([
    { type: "put", sublevel: s.kv, key: "a", value: bytes("1") },
    { type: "put", sublevel: s.meta, key: "applied", value: bytes("7") },
    { type: "del", sublevel: s.jobs, key: "j1" }
  ])
  t.equal(text(await s.kv.get("a")), "1")
  t.equal(text(await s.meta.get("applied")), "7")
  t.equal(await s.jobs.get("j1"), undefined)
  // The sublevels really are prefixes of one database.
  const roots = new Set<string>()
  for await (const key of s.db.keys({ keyEncoding: "utf8" })) roots.add(key.split("!")[1] ?? "")
  t.same([...roots].sort(), ["kv", "log", "meta", "sessions"], "keys live under their sublevel prefix (jobs was emptied)")
}

t.test("classic-level layer: sublevels, key order, atomic batches", async (t) => {
  const dir = await tempDir(t)
  await withStorage(Storage.layer(join(dir, "n1")), (s) => exercise(t, s))
})

t.test("memory layer: the same behaviour, a fresh database each time", async (t) => {
  await withStorage(Storage.memoryLayer, (s) => exercise(t, s))
  await withStorage(Storage.memoryLayer, async (s) => t.equal(await s.kv.get("a"), undefined, "nothing carried over"))
})

t.test("the database is closed when the scope ends and reopens with its data", async (t) => {
  const dir = join(await tempDir(t), "deep", "n1")
  const db = await withStorage(Storage.layer(dir), async (s) => {
    await s.kv.put("k", bytes("v"))
    t.equal(s.db.status, "open")
    return s.db
  })
  t.equal(db.status, "closed")
  t.equal(await withStorage(Storage.layer(dir), async (s) => text(await s.kv.get("k"))), "v")
  const mem = await withStorage(Storage.memoryLayer, async (s) => s.db)
  t.equal(mem.status, "closed", "memory layer closes too")
})

t.test("a second opener in this process gets a clear error and the first keeps its lock", async (t) => {
  const dir = join(await tempDir(t), "n1")
  await withStorage(Storage.layer(dir), async (s) => {
    const exit = await Effect.runPromiseExit(Effect.scoped(Storage.make(dir)))
    t.ok(Exit.isFailure(exit))
    if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
      t.equal(exit.cause.error._tag, "StorageError")
      t.equal(
        exit.cause.error.message,
        `data dir ${dir} is in use by another archio node (already open in this process); stop that node or give this one another --data / DATA_DIR`
      )
    } else t.fail("expected a StorageError")
    await s.kv.put("still", bytes("works"))
    t.equal(text(await s.kv.get("still")), "works", "first opener unaffected")
  })
})

t.test("a second process opening the same data dir gets a clear error, not a stack trace", async (t) => {
  const dir = join(await tempDir(t), "n1")
  await withStorage(Storage.layer(dir), async () => {
    const script = [
      'import { Effect } from "effect"',
      'import * as Storage from "./bootstrap/storage.ts"',
      "const exit = await Effect.runPromiseExit(Effect.scoped(Storage.make(process.argv[1])))",
      'console.log(exit._tag === "Failure" && exit.cause._tag === "Fail" ? exit.cause.error.message : "opened")'
    ].join("\n")
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, dir], { cwd: repo, encoding: "utf8" })
    t.equal(child.status, 0, child.stderr)
    t.equal(
      child.stdout.trim(),
      `data dir ${dir} is in use by another archio node (its LevelDB lock ${dir}/LOCK is held); stop that node or give this one another --data / DATA_DIR`
    )
  })
})

t.test("a data dir that cannot be created is reported with its path", async (t) => {
  const dir = await tempDir(t)
  const blocker = join(dir, "file")
  await writeFile(blocker, "x")
  const exit = await Effect.runPromiseExit(Effect.scoped(Storage.make(join(blocker, "n1"))))
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") t.match(exit.cause.error.message, `cannot create data dir ${join(blocker, "n1")}`)
  else t.fail("expected a StorageError")
})
