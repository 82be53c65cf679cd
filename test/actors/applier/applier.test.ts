import t, { type Test } from "tap"
import { Effect, Layer, Scope } from "effect"
import * as Applier from "../../../actors/applier/applier.ts"
import { Storage } from "../../../actors/services/storage.ts"
import { EntryKind, type Entry } from "../../../protocol/raft.ts"
import * as StorageLayer from "../../../bootstrap/storage.ts"
import { ManualTimers, testScope, testSupervisor, timersLayer } from "../../support/services.ts"
import { tempDir } from "../../support/tmp.ts"
import { sleep, until } from "../../support/wait.ts"

const put = (index: number, key: string, value: string): Entry => ({
  index,
  term: 1,
  kind: EntryKind.Command,
  time: 1_000 + index,
  data: Applier.encodeCommand({ op: "put", key, value })
})

const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

/**
 * An Applier over a real classic-level database in a temp folder, with timers the test moves
 * by hand; `stop` closes it (its finalizer writes what is left).
 */
const runningApplier = async (t: Test) => {
  const folder = await tempDir(t)
  const { scope: dbScope } = testScope(t)
  const storage = await Effect.runPromise(Scope.extend(StorageLayer.make(folder), dbScope))
  const timers = new ManualTimers()
  const { layer: supervisorLayer, failures } = await testSupervisor()
  const { scope, close } = testScope(t)
  const services = Layer.mergeAll(Layer.succeed(Storage, storage), timersLayer(timers), supervisorLayer)
  const applier = await Effect.runPromise(Applier.make.pipe(Scope.extend(scope), Effect.provide(services)))
  const onDisk = async () => ({ applied: text(await storage.meta.get("applied")), luffy: text(await storage.kv.get("luffy")) })
  return { storage, applier, timers, failures, stop: close, onDisk }
}

t.test("the Applier answers at once, writes its state lazily, and writes what is left when it stops", async (t) => {
  const { storage, applier, timers, stop, onDisk } = await runningApplier(t)
  applier.logStored(1_000) // the local log holds everything in this test

  const outcomes: Applier.ApplyOutcome[] = []
  applier.waitFor(1, 1, (o) => outcomes.push(o))
  applier.offer([put(1, "luffy", "straw hat"), put(2, "zoro", "swords")])
  await sleep(0)
  t.equal(applier.applied, 2, "applied in the turn they arrived")
  t.match(outcomes, [{ ok: true, revision: 1 }], "the waiting write is answered before any disk write")
  t.same(await onDisk(), { applied: undefined, luffy: undefined }, "nothing written yet")

  timers.advance(Applier.flushEveryMs)
  await until("the timer's write", async () => (await onDisk()).applied === "2")
  t.match((await onDisk()).luffy, /straw hat/, "the timer wrote the state and the applied index")

  // The same key written many times reaches the disk once, with its last value.
  const later: Entry[] = []
  for (let i = 3; i <= 50; i++) later.push(put(i, "luffy", `v${i}`))
  applier.offer(later)
  await sleep(0)
  t.equal(applier.kv.get("luffy")?.value, "v50")
  await stop()
  t.equal((await onDisk()).applied, "50", "stopping wrote the applied index")
  t.match((await onDisk()).luffy, /"value":"v50"/, "and the last value")

  // A new Applier over the same data starts where this one stopped.
  const again = await Applier.loadState(storage)
  t.equal(again.applied, 50)
  t.equal(again.kv.get("zoro")?.value, "swords")
})

t.test("an Applier handed an entry out of order stops the node with the broken invariant", async (t) => {
  const { applier, failures, timers, onDisk } = await runningApplier(t)
  applier.logStored(1_000)
  // Entry 1 applies, entry 3 does not: the drain fails halfway.
  applier.offer([put(1, "k", "v"), put(3, "k", "w")])
  await until("the failure", () => failures.length > 0)
  t.equal(failures[0]!.actor, "applier")
  t.match(failures[0]!.reason, /entries apply in order/)
  t.match(failures[0]!.detail, /InvariantViolation/, "with its stack")
  applier.offer([put(2, "k", "v")])
  timers.advance(10 * Applier.flushEveryMs)
  await sleep(0)
  t.equal(applier.applied, 1, "a failed Applier applies nothing more")
  t.equal((await onDisk()).applied, undefined, "and writes nothing of the drain that failed")
})

t.test("the Applier writes its state only up to what the local log holds", async (t) => {
  const { applier, timers, stop, onDisk } = await runningApplier(t)
  applier.logStored(0)

  // Committed entries arrive before this node's own log write has landed.
  applier.offer([put(1, "luffy", "straw hat")])
  await sleep(0)
  timers.advance(Applier.flushEveryMs)
  applier.offer([put(2, "luffy", "gum-gum")])
  await sleep(0)
  timers.advance(Applier.flushEveryMs)
  await sleep(10) // a write that wrongly started would land in this time
  t.same(await onDisk(), { applied: undefined, luffy: undefined }, "nothing written while the log lacks index 1")

  applier.logStored(1)
  await until("the write up to index 1", async () => (await onDisk()).applied === "1")
  t.match((await onDisk()).luffy, /straw hat/, "with the changes up to index 1, not later ones")

  // The log never gets to index 2 before the node stops: the node re-applies 2 from its log.
  await stop()
  t.equal((await onDisk()).applied, "1", "stopping writes nothing beyond what the log holds")
})

t.test("listeners hear every applied batch, events and all", async (t) => {
  const { applier } = await runningApplier(t)
  const heard: Array<{ entries: number; kv: number }> = []
  applier.onApplied((b) => heard.push({ entries: b.entries.flat().length, kv: b.kvEvents.length }))
  applier.offer([put(1, "a", "1")])
  applier.offer([put(2, "b", "2"), { index: 3, term: 1, kind: EntryKind.Noop, time: 1_003, data: new Uint8Array(0) }])
  await sleep(0)
  t.same(heard, [{ entries: 3, kv: 2 }], "the entries handed over in one turn are one batch")
})
