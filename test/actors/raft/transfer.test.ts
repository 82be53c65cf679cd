/**
 * Leadership transfer (Raft thesis §3.10): the leader brings the target up to date, then tells
 * it to campaign at once (TimeoutNow); voters let that campaign through despite the lease.
 */
import t from "tap"
import { Cluster, is } from "./harness.ts"

t.test("transferLeadership to an up-to-date follower: it leads the next term without an election timeout", async (t) => {
  const c = new Cluster({ size: 5 })
  const old = c.stabilize()
  const term = c.status(old).term
  const target = c.ids.find((id) => id !== old)!
  c.propose(old, "before")
  c.deliverAll()

  const now = c.now
  t.ok(c.core(old).transferLeadership(target))
  c.process(old)
  t.same(c.propose(old, "during"), { ok: false, leader: null }, "proposals are refused while the transfer is pending")
  t.same(
    c.pending(is.from(old)).map((m) => [m.type, m.to]),
    [["timeout_now", target]],
    "the target is up to date: TimeoutNow goes out at once"
  )
  c.deliverAll()
  t.equal(c.now, now, "no tick was needed")
  t.same(c.leaders(), [target], "the target leads")
  t.equal(c.status(target).term, term + 1, "in the next term")
  const votes = c.sent.filter(is.all(is.from(target), is.type("vote")))
  t.ok(votes.length > 0 && votes.every((m) => m.type === "vote" && m.transfer), "its vote requests carry the transfer flag")
  t.equal(c.sent.filter(is.all(is.from(target), is.type("prevote"))).length, 0, "and it skipped the pre-vote")
  for (const id of c.ids) t.equal(c.status(id).leader, target, `${id} follows ${target}`)

  t.ok(c.propose(target, "after").ok)
  c.deliverAll()
  c.settle()
  for (const id of c.ids) t.same(c.applied(id), ["before", "after"], `${id}: the refused proposal never existed`)
})

t.test("transferLeadership to a lagging follower: it is caught up first", async (t) => {
  const c = new Cluster({ size: 3 })
  const old = c.stabilize()
  const target = c.ids.find((id) => id !== old)!
  for (let i = 0; i < 10; i++) {
    c.propose(old, `w${i}`)
    c.deliverAll(is.to(target)) // the target's mail is slow: it piles up
  }
  t.equal(c.status(target).lastIndex, 1, "the target has not seen the ten entries yet")
  t.ok(c.pending(is.all(is.to(target), is.appendWithEntries)).length > 0, "they are on their way")

  t.ok(c.core(old).transferLeadership(target))
  c.process(old)
  t.same(c.pending(is.type("timeout_now")), [], "no TimeoutNow while the target is behind")
  t.notOk(c.propose(old, "refused").ok)
  c.deliverAll()
  t.same(c.leaders(), [target], "once caught up, it was told to campaign and won")
  const timeoutNow = c.sent.findIndex(is.type("timeout_now"))
  const lastAppend = c.sent.findLastIndex(is.all(is.from(old), is.to(target), is.appendWithEntries))
  t.ok(timeoutNow > lastAppend, "TimeoutNow went out after the last entries")
  c.run(3)
  for (const id of c.ids) t.equal(c.applied(id).length, 10, `${id} applied all ten`)
})

t.test("a transfer to an unreachable node is abandoned after an election timeout", async (t) => {
  const c = new Cluster({ size: 3 })
  const old = c.stabilize()
  const term = c.status(old).term
  const target = c.ids.find((id) => id !== old)!
  const heal = c.isolate(target)
  t.ok(c.core(old).transferLeadership(target))
  c.process(old)
  t.notOk(c.propose(old, "x").ok)
  let ticks = 0
  while (!c.propose(old, "y").ok && ticks < 50) {
    c.run(1)
    ticks++
  }
  t.equal(ticks, c.tuning.electionTicks, "proposals are taken again after one election timeout")
  t.same(c.leaders(), [old])
  t.equal(c.status(old).term, term)
  heal()
  c.run(10)
  for (const id of c.ids) t.same(c.applied(id), ["y"])
})

t.test("transferLeadership is refused by a follower and for unknown targets", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  const follower = c.ids.find((id) => id !== leader)!
  t.notOk(c.core(follower).transferLeadership(leader), "a follower cannot hand over")
  t.notOk(c.core(leader).transferLeadership("n9"), "not a member")
  t.notOk(c.core(leader).transferLeadership(leader), "not to itself")
  t.ok(c.propose(leader, "still").ok, "nothing is pending")
})

t.test("asking again for the transfer under way does not restart its timeout", async (t) => {
  const c = new Cluster({ size: 3 })
  const old = c.stabilize()
  const target = c.ids.find((id) => id !== old)!
  const heal = c.isolate(target)
  t.ok(c.core(old).transferLeadership(target))
  c.process(old)
  const half = Math.floor(c.tuning.electionTicks / 2)
  c.run(half)
  t.ok(c.core(old).transferLeadership(target), "the same transfer again: accepted")
  let ticks = half
  while (!c.propose(old, "y").ok && ticks < 50) {
    c.run(1)
    ticks++
  }
  t.equal(ticks, c.tuning.electionTicks, "still abandoned one election timeout after the first request")
  heal()
})

t.test("a lost TimeoutNow is sent again with the target's next answer (a heartbeat's)", async (t) => {
  const c = new Cluster({ size: 3 })
  const old = c.stabilize()
  const term = c.status(old).term
  const target = c.ids.find((id) => id !== old)!
  const lose = c.drop(is.type("timeout_now"))
  const mark = c.sent.length
  t.ok(c.core(old).transferLeadership(target))
  c.process(old)
  c.deliverAll()
  t.equal(c.dropped.filter(is.type("timeout_now")).length, 1, "the first TimeoutNow was lost")
  lose()
  t.same(c.leaders(), [old], "nothing happened yet")
  const ticks = c.runUntil(() => c.leader() === target, c.tuning.electionTicks)
  t.ok(ticks <= c.tuning.heartbeatTicks, `the target leads after the next heartbeat (${ticks} ticks)`)
  t.equal(c.status(target).term, term + 1)
  t.equal(c.sent.slice(mark).filter(is.type("prevote")).length, 0, "with no election of its own")
})

t.test("transferTarget: the most caught-up follower, then one heard from lately, then the lowest id", async (t) => {
  const c = new Cluster({ size: 5 })
  const leader = c.stabilize()
  const others = c.ids.filter((id) => id !== leader)
  t.equal(c.core(leader).transferTarget(), others[0], "all equal: the lowest id")
  const lagging = others[0]!
  c.propose(leader, "x")
  c.deliverAll(is.to(lagging))
  t.not(c.core(leader).transferTarget(), lagging, "one behind is not chosen")
  t.equal(c.core(leader).transferTarget(), others[1])
  c.deliverAll()
  // Past a check-quorum round nobody counts as heard from; then only others[2] answers.
  c.tick(leader, c.tuning.electionTicks)
  c.take()
  t.equal(c.core(leader).transferTarget(), others[0], "equal again: the lowest id")
  c.tick(leader, c.tuning.heartbeatTicks)
  c.deliverAll((m) => m.to === leader && m.from !== others[2])
  t.equal(c.core(leader).transferTarget(), others[2], "the one heard from this round")
  t.equal(c.core(others[1]!).transferTarget(), null, "a follower has no target")
  t.equal(new Cluster({ size: 1 }).core("n1").transferTarget(), null, "nor a node that is not leading")
})

t.test("a retiring node (shutting down) never takes leadership: not by TimeoutNow, not by its own timeout", async (t) => {
  const c = new Cluster({ size: 3 })
  const old = c.stabilize()
  const term = c.status(old).term
  const [target, other] = c.ids.filter((id) => id !== old) as [string, string]
  c.core(target).retire()
  t.ok(c.core(old).transferLeadership(target), "the leader cannot know; it asks")
  c.process(old)
  c.deliverAll()
  t.same(c.leaders(), [old], "the retiring target ignored TimeoutNow")
  t.equal(c.status(old).term, term)
  const heal = c.isolate(old)
  c.run(6 * c.tuning.electionTicks)
  heal()
  t.notOk(c.leaders().includes(target), "with the leader gone, the retiring node still never campaigns")
  t.equal(c.sent.filter((m) => m.from === target && (m.type === "prevote" || m.type === "vote")).length, 0, "it asked for no vote")
  t.ok(c.leaders().includes(other), "the other node leads, with the retiring node's vote")
})
