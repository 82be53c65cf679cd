/**
 * The harness itself: deterministic runs, and the safety nets every story relies on.
 */
import t from "tap"
import { Cluster, HarnessSafetyError, is } from "./harness.ts"

const trace = (seed: number): string[] => {
  const c = new Cluster({ size: 5, seed })
  c.stabilize()
  const heal = c.isolate(c.leader()!)
  c.run(50)
  heal()
  c.run(50)
  return c.sent.map((m) => `${m.type} ${m.from}>${m.to} t${m.term}`)
}

t.test("a run is a pure function of the seed", async (t) => {
  t.same(trace(3), trace(3), "same seed, same messages in the same order")
  t.not(trace(3).join("\n"), trace(4).join("\n"), "another seed, another run")
})

t.test("filters: drop, isolate, partition, heal", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  const undo = c.drop(is.to("n2"))
  c.run(5)
  t.ok(c.dropped.some(is.to("n2")), "messages to n2 are lost")
  undo()
  const dropped = c.dropped.length
  c.run(5)
  t.equal(c.dropped.length, dropped, "and delivered again once the filter is removed")
  c.partition([leader], c.ids.filter((id) => id !== leader))
  c.run(40)
  t.equal(c.leaders().filter((id) => id !== leader).length, 1, "the majority side elects its own leader")
  c.heal()
  c.run(40)
  t.equal(c.leaders().length, 1)
})

t.test("the harness catches a Ready that would leave a hole in the log", async (t) => {
  const c = new Cluster({ size: 1 })
  c.tick("n1", 20)
  c.node("n1").disk.entries.length = 0 // a disk that lost its log behind the core's back
  t.throws(() => c.propose("n1", "x"), HarnessSafetyError)
})

t.test("crashBeforePersist: a node can lose a Ready's writes", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  c.crashBeforePersist = (id, rd) => id === leader && rd.entries.length > 0
  c.propose(leader, "unsure")
  c.crashBeforePersist = null
  t.notOk(c.node(leader).up, "it crashed")
  t.equal(c.node(leader).disk.entries.length, 1, "its disk lacks the new entry")
  c.restart(leader)
  c.run(60)
  const now = c.leader()!
  c.propose(now, "sure")
  c.run(5)
  const applied = c.applied(now)
  for (const id of c.ids) t.same(c.applied(id), applied, `${id} agrees (the unsure write may or may not survive)`)
  t.equal(applied.at(-1), "sure")
})
