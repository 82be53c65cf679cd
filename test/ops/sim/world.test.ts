import t from "tap"
import { Clock, Effect } from "effect"
import { Life } from "../../../ops/sim/life.ts"
import { World } from "../../../ops/sim/world.ts"

t.test("events run in time order, ties in the order they were scheduled, and cancelled ones not at all", async (t) => {
  const w = new World(1)
  const seen: string[] = []
  w.schedule(5, () => seen.push("b@5"))
  w.schedule(1, () => seen.push("a@1"))
  w.schedule(5, () => seen.push("c@5"))
  const cancel = w.schedule(3, () => seen.push("never"))
  cancel()
  w.schedule(2.2, () => seen.push(`d@${w.now}`))
  await w.run(100)
  t.same(seen, ["a@1", "d@3", "b@5", "c@5"], "fractions round up to the next millisecond")
  t.equal(w.now, 100, "the clock ends where it was asked to")
  t.equal(w.events, 4)
})

t.test("the microtasks one millisecond's events queue run before the clock moves on", async (t) => {
  const w = new World(1)
  const seen: string[] = []
  w.schedule(1, () => {
    void Promise.resolve()
      .then(() => Promise.resolve())
      .then(() => seen.push(`chained microtasks at ${w.now}`))
  })
  w.schedule(2, () => seen.push(`next event at ${w.now}`))
  await w.run(10)
  t.same(seen, ["chained microtasks at 1", "next event at 2"])
})

t.test("timers and Effect's Clock run on the virtual clock, with a node's skew", async (t) => {
  const w = new World(1)
  const life = new Life()
  const timers = w.timers(7, life)
  const fired: number[] = []
  const stop = timers.every(10, () => fired.push(timers.now()))
  timers.after(25, () => fired.push(-1))
  await w.run(35)
  t.same(fired, [17, 27, -1, 37], "every 10 ms, 7 ms ahead of the world")
  stop()
  await w.run(60)
  t.equal(fired.length, 4, "a cancelled timer fires no more")
  timers.after(1, () => fired.push(-2))
  life.kill()
  await w.run(70)
  t.equal(fired.length, 4, "nothing fires for a process that is gone")

  const clock = w.clock(-5)
  const slept = await Promise.all([
    Effect.runPromise(Effect.gen(function* () {
      const before = yield* Clock.currentTimeMillis
      yield* Effect.sleep(20)
      return [before, yield* Clock.currentTimeMillis]
    }).pipe(Effect.withClock(clock))),
    w.run(200)
  ])
  t.same(slept[0], [65, 85], "Effect.sleep waits virtual time")
})

t.test("a failure reported from a callback stops the run", async (t) => {
  const w = new World(1)
  w.schedule(1, () => w.fail(new Error("check failed")))
  w.schedule(2, () => t.fail("runs no further"))
  await t.rejects(w.run(10), /check failed/)
  const checked = new World(2)
  checked.afterStep = () => {
    throw new Error("after-step check failed")
  }
  checked.schedule(1, () => {})
  await t.rejects(checked.run(10), /after-step check failed/)
})

t.test("one seed, one sequence of choices", async (t) => {
  const draw = (seed: number) => {
    const w = new World(seed)
    return [w.random(), w.int(0, 10), w.pick(["a", "b", "c"]), w.chance(0.5), w.seed()]
  }
  t.same(draw(42), draw(42))
  t.not(JSON.stringify(draw(42)), JSON.stringify(draw(43)))
})
