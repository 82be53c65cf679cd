/**
 * ReadIndex (Raft thesis §6.4): a leader serves a linearizable read at its commit index only
 * after a heartbeat round proves a majority still follows it, and only once an entry of its own
 * term is committed.
 */
import t from "tap"
import { Cluster, drain, is, lone } from "./harness.ts"

t.test("a leader releases a read only after a majority acknowledged a heartbeat round", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  c.propose(leader, "x")
  c.deliverAll()
  const [f1, f2] = c.ids.filter((id) => id !== leader) as [string, string]
  t.equal(c.status(leader).commitIndex, 2)

  t.notOk(c.core(f1).requestRead(1), "a follower refuses (the caller forwards the read)")
  const mark = c.sent.length
  t.ok(c.core(leader).requestRead(7))
  t.ok(c.core(leader).requestRead(8), "a second read joins the same round")
  c.process(leader)
  t.same(c.node(leader).readStates, [], "not before anyone answered")
  const round = c.sent.slice(mark).filter(is.all(is.from(leader), is.type("append")))
  t.equal(round.length, 2, "one heartbeat per follower for both reads")

  c.deliverOne(is.to(f1))
  t.same(c.node(leader).readStates, [], "the follower answered, but the answer is still on the way")
  c.deliverOne(is.all(is.from(f1), is.to(leader)))
  t.same(
    c.node(leader).readStates,
    [
      { ctx: 7, index: 2 },
      { ctx: 8, index: 2 }
    ],
    "with one follower's acknowledgement (two of three) both reads are released at commit index 2"
  )
  t.equal(c.pending(is.to(f2)).length, 1, "without waiting for the other follower")
  c.deliverAll()
  t.equal(c.node(leader).readStates.length, 2, "later acknowledgements release nothing twice")
})

t.test("a heartbeat sent before the read was asked does not confirm it", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  c.tick(leader, c.tuning.heartbeatTicks) // a heartbeat round leaves before the read
  const early = c.take()
  t.ok(early.length > 0)
  c.core(leader).requestRead(1)
  c.process(leader)
  for (const m of early) c.deliver(m)
  c.deliverAll(is.from(leader))
  t.same(c.node(leader).readStates, [], "answers to the earlier round do not count")
  c.deliverAll()
  t.same(c.node(leader).readStates, [{ ctx: 1, index: 1 }], "answers to the read's own round do")
})

t.test("a leader cut off from the majority never releases a read; it drops it when it steps down", async (t) => {
  const c = new Cluster({ size: 5 })
  const leader = c.stabilize()
  c.isolate(leader)
  t.ok(c.core(leader).requestRead(42))
  c.process(leader)
  let ticks = 0
  while (c.status(leader).role === "leader" && ticks < 100) {
    c.run(1)
    ticks++
    t.same(c.node(leader).readStates, [], `tick ${ticks}: nothing released`)
  }
  t.equal(c.status(leader).role, "follower", `check-quorum stepped it down after ${ticks} ticks`)
  t.same(c.node(leader).droppedReads, [42], "the read was handed back as dropped (the caller retries elsewhere)")
  t.same(c.node(leader).readStates, [])
  t.notOk(c.core(leader).requestRead(43), "as a follower it takes no reads")
})

t.test("reads pending on a leader that learns a higher term are dropped", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  const other = c.ids.find((id) => id !== leader)!
  c.core(leader).requestRead(5)
  c.process(leader)
  t.ok(c.take(is.from(leader)).length > 0, "the read's heartbeat round is lost")
  c.core(leader).transferLeadership(other)
  c.process(leader)
  c.deliverAll()
  t.equal(c.leader(), other)
  t.same(c.node(leader).droppedReads, [5])
})

t.test("a read on a brand-new leader waits until the no-op of its term commits", async (t) => {
  const c = new Cluster({ size: 3 })
  c.campaign("n1")
  // n1 replicates two commands to n2 only, then crashes; n3 (restarted, so it knows no leader)
  // has only the first no-op and will need log repair before n2's no-op can commit.
  const cut = c.drop(is.all(is.from("n1"), is.to("n3")))
  c.propose("n1", "a")
  c.propose("n1", "b")
  c.deliverAll()
  c.settle()
  cut()
  t.equal(c.status("n2").commitIndex, 3, "n2 knows 2 and 3 are committed")
  c.crash("n1")
  c.restart("n3")

  const fromN2Append = is.all(is.from("n2"), is.type("append"))
  for (let i = 0; i < 30 && c.pending(is.all(is.from("n2"), is.type("prevote"))).length === 0; i++) c.tick("n2")
  c.deliverAll(fromN2Append)
  t.equal(c.status("n2").role, "leader", "n2 wins term 2 with n3's vote")
  t.equal(c.status("n2").commitIndex, 3)
  t.ok(c.core("n2").requestRead(99))
  c.process("n2")

  const s = c.core("n2").s
  let sawConfirmedButWaiting = false
  for (let i = 0; i < 100 && c.queue.length > 0; i++) {
    c.deliverOne()
    const released = c.node("n2").readStates
    if (released.length > 0) {
      t.ok(c.status("n2").commitIndex >= 4, "released only once the term-2 no-op (index 4) is committed")
      break
    }
    if ((s.progress.get("n3")?.ackedRound ?? 0) >= 1) sawConfirmedButWaiting = true
  }
  t.ok(sawConfirmedButWaiting, "n3 had acknowledged the read's round (a majority) while the read still waited")
  c.deliverAll()
  t.same(c.node("n2").readStates, [{ ctx: 99, index: 4 }], "served at the no-op's index, never at the older commit index 3")
})

t.test("a single-node leader answers at once, after its no-op commits", async (t) => {
  const core = lone({ members: ["n1"] })
  t.notOk(core.requestRead(1), "not leader yet")
  for (let i = 0; i < 20 && core.status().role !== "leader"; i++) core.tick(i)
  t.equal(core.status().role, "leader")
  t.ok(core.requestRead(2), "asked before its no-op is durable")
  const first = core.ready()
  t.same(first.readStates, [], "the no-op is not committed yet: the read waits")
  core.advance(first)
  const rest = drain(core)
  t.same(rest.readStates, [{ ctx: 2, index: 1 }], "once the no-op commits, the read is served at index 1")
  t.ok(core.requestRead(3))
  t.same(drain(core).readStates, [{ ctx: 3, index: 1 }], "later reads need no round at all")
})
