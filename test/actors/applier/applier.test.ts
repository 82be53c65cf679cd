import t, { type Test } from "tap"
import { Cause, Effect, Exit, Fiber, Scope } from "effect"
import { Applier, encodeCommand, flushEveryMs, type ApplyOutcome } from "../../../actors/applier/applier.ts"
import { InvariantViolation } from "../../../actors/raft/invariant.ts"
import { EntryKind, type Entry } from "../../../protocol/raft.ts"
import * as Storage from "../../../bootstrap/storage.ts"
import { tempDir } from "../../support/tmp.ts"
import { sleep, until } from "../../support/wait.ts"

const put = (index: number, key: string, value: string): Entry => ({
  index,
  term: 1,
  kind: EntryKind.Command,
  time: 1_000 + index,
  data: encodeCommand({ op: "put", key, value })
})

/** A real classic-level database in a temp folder, closed by the returned `close`. */
const openStorage = async (dir: string) => {
  const scope = Effect.runSync(Scope.make())
  const stores = await Effect.runPromise(Scope.extend(Storage.make(dir), scope))
  return { stores, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const onDisk = async (stores: Storage.StorageShape) => ({
  applied: await stores.meta.get("applied"),
  luffy: await stores.kv.get("luffy")
})

/**
 * An Applier over a real database in a temp folder, loaded and running; `prepare` runs before
 * it starts (e.g. to wire `whenStored`).
 */
const runningApplier = async (t: Test, prepare: (applier: Applier) => void = () => {}) => {
  const dir = await tempDir(t)
  const { stores, close } = await openStorage(dir)
  t.teardown(close)
  const applier = new Applier(stores)
  await Effect.runPromise(applier.load)
  prepare(applier)
  return { stores, applier, fiber: Effect.runFork(applier.run) }
}

t.test("the Applier answers at once, writes its state lazily, and writes what is left when it stops", async (t) => {
  const { stores, applier, fiber } = await runningApplier(t)

  const outcomes: ApplyOutcome[] = []
  applier.waitFor(1, 1, (o) => outcomes.push(o))
  applier.offer([put(1, "luffy", "straw hat"), put(2, "zoro", "swords")])
  await sleep(0)
  t.equal(applier.applied, 2, "applied in the turn they arrived")
  t.match(outcomes, [{ ok: true, revision: 1 }], "the waiting write is answered before any disk write")
  t.same(await onDisk(stores), { applied: undefined, luffy: undefined }, "nothing written yet")

  await until("the timer's write", async () => (await onDisk(stores)).applied !== undefined)
  const first = await onDisk(stores)
  t.ok(first.applied !== undefined && first.luffy !== undefined, "the timer wrote the state and the applied index")

  // The same key written many times reaches the disk once, with its last value.
  const later: Entry[] = []
  for (let i = 3; i <= 50; i++) later.push(put(i, "luffy", `v${i}`))
  applier.offer(later)
  await sleep(0)
  t.equal(applier.state.get("luffy")?.value, "v50")
  await Effect.runPromise(Fiber.interrupt(fiber))
  const value = await stores.kv.get("luffy")
  t.match(new TextDecoder().decode(value), /"value":"v50"/, "stopping wrote the last value")
  t.equal(new TextDecoder().decode(await stores.meta.get("applied")), "50", "and the applied index with it")

  // A new Applier over the same database starts where this one stopped.
  const again = new Applier(stores)
  await Effect.runPromise(again.load)
  t.equal(again.applied, 50)
  t.equal(again.state.get("zoro")?.value, "swords")
})

t.test("an Applier handed an entry out of order fails its run with the broken invariant", async (t) => {
  const { stores, applier, fiber } = await runningApplier(t)
  // Entry 1 applies, entry 3 does not: the drain fails halfway.
  applier.offer([put(1, "k", "v"), put(3, "k", "w")])
  const exit = await Effect.runPromise(Fiber.await(fiber))
  t.ok(Exit.isFailure(exit), "run ended")
  if (Exit.isFailure(exit)) {
    const defect = Cause.dieOption(exit.cause)
    t.ok(defect._tag === "Some" && defect.value instanceof InvariantViolation, "with the invariant violation as its defect")
  }
  applier.offer([put(2, "k", "v")])
  await sleep(0)
  t.equal(applier.applied, 1, "a failed Applier applies nothing more")
  t.equal(await stores.meta.get("applied"), undefined, "and writes nothing of the drain that failed")
})

t.test("the Applier writes its state only once the local log holds what it applied", async (t) => {
  const asked: Array<{ index: number; done: (stored: boolean) => void }> = []
  const { stores, applier, fiber } = await runningApplier(t, (a) => {
    a.whenStored = (index, done) => asked.push({ index, done })
  })

  // Committed entries arrive before this node's own log write has landed.
  applier.offer([put(1, "luffy", "straw hat")])
  await until("the timer's write to ask", () => asked.length > 0)
  t.same(
    asked.map((a) => a.index),
    [1],
    "the timer's write asks for index 1 and waits"
  )
  t.same(await onDisk(stores), { applied: undefined, luffy: undefined }, "nothing written while the log lacks it")
  applier.offer([put(2, "luffy", "gum-gum")])
  await sleep(flushEveryMs * 2) // two timer periods: room for a second write to (wrongly) start
  t.equal(asked.length, 1, "one write at a time")
  asked[0]!.done(true)
  await until("the next write to ask", () => asked.length > 1)
  t.equal(new TextDecoder().decode(await stores.meta.get("applied")), "1", "written with the applied index it was built with")
  t.match(new TextDecoder().decode(await stores.kv.get("luffy")), /straw hat/, "and the changes up to it, not later ones")
  t.same(
    asked.map((a) => a.index),
    [1, 2],
    "then the next write asks for index 2"
  )

  // A log that will never hold index 2 (the consensus actor stopped): the write is skipped.
  asked[1]!.done(false)
  await Effect.runPromise(Fiber.interrupt(fiber))
  t.equal(new TextDecoder().decode(await stores.meta.get("applied")), "1", "the node restarts from index 1 and re-applies 2 from its log")
})
