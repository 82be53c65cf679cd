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
