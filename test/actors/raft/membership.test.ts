/**
 * Membership as log entries (thesis §4.1, single-server changes): a configuration takes effect
 * when appended, learners receive the log without voting or counting, one change at a time, a
 * removed leader leads until its removal commits and then hands over, and an overwritten
 * configuration entry no longer counts.
 */
import t from "tap"
import { seedMembership } from "../../../protocol/membership.ts"
import { promoteMaxLag } from "../../../actors/raft/core.ts"
import { Cluster, is, lone } from "./harness.ts"

/** Three voters n1-n3 under a stable leader n1, and n4 up, empty, not a member. */
const withSpare = (size = 4): { c: Cluster; leader: string } => {
  const c = new Cluster({ size, voters: ["n1", "n2", "n3"] })
  const spares = c.ids.slice(3)
  for (const id of spares) c.crash(id)
  c.campaign("n1")
  const leader = c.stabilize()
  for (const id of spares) c.restart(id)
  return { c, leader }
}

/** Asks the leader for a change and runs until it is applied everywhere it reaches. */
const change = (c: Cluster, leader: string, op: "add" | "promote" | "remove", id: string) => {
  const r = c.core(leader).changeMembership(op, id)
  c.process(leader)
  c.settle()
  return r
}

t.test("the first leader writes the seeded configuration with a new cluster id; every node takes it", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  c.settle()
  const m = c.status(leader).membership
  t.match(m, { cluster: /^[0-9a-f]{16}$/, voters: ["n1", "n2", "n3"], learners: [] })
  for (const id of c.ids) {
    t.same(c.status(id).membership, m, `${id} holds it`)
    t.equal(c.status(id).configIndex, 1, `${id}: it is entry 1`)
  }
  t.same(c.appliedLog(leader)[0], "1@1:<config>")
})

t.test("a node outside the configuration never campaigns; added as a learner it gets the log but neither votes nor counts", async (t) => {
  const { c, leader } = withSpare()
  c.run(10 * c.tuning.electionTicks)
  t.equal(c.sent.filter(is.all(is.from("n4"), (m) => m.type === "prevote" || m.type === "vote")).length, 0, "n4 never asked for a vote")
  t.ok(c.propose(leader, "a").ok)
  c.settle()
  const r = change(c, leader, "add", "n4")
  t.match(r, { ok: true, changed: true, membership: { voters: ["n1", "n2", "n3"], learners: ["n4"] } })
  t.same(c.applied("n4"), ["a"], "the learner caught up from the log")
  t.same(c.status("n4").membership.learners, ["n4"], "and knows it is a learner")
  // The leader and the learner alone are no majority of n1-n3.
  const heal = c.partition([leader, "n4"], ["n2", "n3"])
  t.ok(c.propose(leader, "b").ok)
  c.deliverAll()
  t.equal(c.status(leader).commitIndex, c.status("n2").commitIndex, "nothing commits with a learner's acknowledgement")
  t.same(c.applied(leader), ["a"])
  heal()
  c.settle()
  c.run(10 * c.tuning.electionTicks)
  t.equal(c.sent.filter(is.all(is.from("n4"), (m) => m.type === "prevote" || m.type === "vote")).length, 0, "the learner never campaigned")
  for (const id of c.ids) t.same(c.applied(id), ["a", "b"], `${id} applied both`)
})

t.test("promote: refused while the learner lags, taken once it caught up; then it votes and counts", async (t) => {
  const { c, leader } = withSpare()
  change(c, leader, "add", "n4")
  const heal = c.isolate("n4")
  for (let i = 0; i <= promoteMaxLag; i++) c.core(leader).propose([{ kind: 1, data: new TextEncoder().encode(`w${i}`) }])
  c.process(leader)
  c.settle()
  const refused = c.core(leader).changeMembership("promote", "n4")
  t.match(refused, { ok: false, reason: "lagging", message: /learner n4 is not caught up/ })
  heal()
  c.settle()
  c.settle()
  const r = change(c, leader, "promote", "n4")
  t.match(r, { ok: true, changed: true, membership: { voters: ["n1", "n2", "n3", "n4"], learners: [] } })
  for (const id of c.ids) t.same(c.status(id).membership.voters, ["n1", "n2", "n3", "n4"], `${id} has four voters`)
  // Four voters: three make a majority, and n4 is one of them.
  const cut = c.partition([leader, "n4"], ["n2"], ["n3"])
  t.ok(c.propose(leader, "x").ok)
  c.deliverAll()
  const before = c.status(leader).commitIndex
  t.ok(before < c.status(leader).lastIndex, "n1 and n4 alone do not commit")
  cut()
  const cut2 = c.partition([leader, "n4", "n3"], ["n2"])
  c.run(3 * c.tuning.heartbeatTicks)
  t.ok(c.status(leader).commitIndex > before, "n1, n3 and n4 commit (without n4, n1 and n3 would be two of four)")
  cut2()
  t.same(change(c, leader, "promote", "n4"), { ok: true, index: c.status(leader).configIndex, term: c.status(leader).term, membership: c.status(leader).membership, changed: false }, "promoting a voter again changes nothing")
})

t.test("one change at a time, and not before the leader committed an entry of its term", async (t) => {
  const { c, leader } = withSpare(5)
  const hold = c.drop(is.from(leader))
  const first = c.core(leader).changeMembership("add", "n4")
  t.match(first, { ok: true, changed: true })
  t.same(c.status(leader).membership.learners, ["n4"], "in effect on the leader as soon as appended")
  t.match(c.core(leader).changeMembership("add", "n5"), { ok: false, reason: "busy", message: /not committed yet/ })
  hold()
  c.process(leader)
  c.settle()
  c.settle()
  t.match(change(c, leader, "add", "n5"), { ok: true, changed: true, membership: { learners: ["n4", "n5"] } })
  t.match(c.core("n2").changeMembership("add", "n5"), { ok: false, reason: "not_leader", leader })
  t.match(c.core(leader).changeMembership("promote", "n9"), { ok: false, reason: "refused", message: /n9 is not a learner/ })
  t.match(c.core(leader).changeMembership("add", "n2"), { ok: false, reason: "refused", message: /already a voter/ })
  const fresh = lone({ id: "n1", members: ["n1"] })
  t.match(fresh.changeMembership("remove", "n1"), { ok: false, reason: "not_leader" })
})

t.test("removing a follower: it gets nothing more and never campaigns; the others go on", async (t) => {
  const { c, leader } = withSpare(3)
  const r = change(c, leader, "remove", "n3")
  t.match(r, { ok: true, membership: { voters: ["n1", "n2"] } })
  t.same(c.status("n3").membership.voters, ["n1", "n2"], "n3 learned of its removal")
  const mark = c.sent.length
  t.ok(c.propose(leader, "after").ok)
  c.settle()
  c.run(10 * c.tuning.electionTicks)
  t.same(c.applied("n2"), ["after"])
  t.same(c.applied("n3"), [], "n3 gets no more entries")
  t.equal(c.sent.slice(mark).filter((m) => m.to === "n3").length, 0, "nothing is sent to it")
  t.equal(c.sent.slice(mark).filter((m) => m.from === "n3" && (m.type === "prevote" || m.type === "vote")).length, 0, "it never campaigns")
  t.same(c.leaders(), [leader])
})

t.test("removing the leader: it leads until its removal commits (counting only the others), then hands over at once", async (t) => {
  const { c, leader } = withSpare(3)
  const term = c.status(leader).term
  const hold = c.drop(is.type("append_resp"))
  const r = c.core(leader).changeMembership("remove", leader)
  c.process(leader)
  c.deliverAll()
  t.match(r, { ok: true, changed: true, membership: { voters: ["n2", "n3"] } })
  t.equal(c.status(leader).role, "leader", "still leading while its removal is not committed")
  t.ok(c.propose(leader, "during").ok, "and taking writes")
  hold()
  const now = c.now
  c.settle()
  t.notOk(c.leaders().includes(leader), "it stepped down once the removal committed")
  c.deliverAll()
  const next = c.leader()
  t.ok(next !== undefined && next !== leader, `another node leads (${next})`)
  t.ok(c.now - now <= 2 * c.tuning.heartbeatTicks * 10, "without waiting out an election timeout (TimeoutNow)")
  t.equal(c.status(next!).term, term + 1)
  t.ok(c.propose(next!, "after").ok)
  c.settle()
  for (const id of ["n2", "n3"]) t.same(c.applied(id), ["during", "after"], `${id} applied the old leader's last write and the new one's`)
})

t.test("an uncommitted configuration entry overwritten by a new leader no longer counts", async (t) => {
  const { c, leader } = withSpare(4)
  const cut = c.isolate(leader)
  t.match(c.core(leader).changeMembership("add", "n4"), { ok: true, changed: true })
  c.process(leader)
  t.same(c.status(leader).membership.learners, ["n4"])
  c.deliverAll()
  c.runUntil(() => c.leaders().some((id) => id !== leader))
  const next = c.leaders().find((id) => id !== leader)!
  t.ok(c.propose(next, "x").ok)
  cut()
  c.settle()
  c.settle()
  t.same(c.status(leader).membership.learners, [], `${leader}'s entry was overwritten: n4 is no member again`)
  t.equal(c.status(leader).configIndex, 1)
})

t.test("restart and install keep the configuration", async (t) => {
  const { c, leader } = withSpare()
  change(c, leader, "add", "n4")
  change(c, leader, "promote", "n4")
  c.crash("n4")
  c.restart("n4")
  t.same(c.status("n4").membership.voters, ["n1", "n2", "n3", "n4"], "from its log after a restart")
  const core = lone({ id: "n5", members: [] })
  const installed = { ...seedMembership(["n1", "n5"]), cluster: "abc" }
  core.step({ type: "append", from: "n1", to: "n5", term: 2, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, round: 0, entries: [] })
  core.installSnapshot(10, 2, installed)
  t.same(core.status().membership, installed, "an installed snapshot's configuration is in effect")
  t.equal(core.status().configIndex, 0)
})

t.test("a learner the leader has not heard from is not promoted, however short the log", async (t) => {
  const { c, leader } = withSpare()
  c.crash("n4")
  change(c, leader, "add", "n4")
  t.match(c.core(leader).changeMembership("promote", "n4"), { ok: false, reason: "lagging", message: /has not heard where its log stands/ })
  c.restart("n4")
  c.settle()
  c.settle()
  t.match(change(c, leader, "promote", "n4"), { ok: true, changed: true })
})

t.test("a node that knows no configuration (--join, or wiped so) grants no vote: its empty log promises nothing", async (t) => {
  const core = lone({ id: "n4", members: [] })
  core.step({ type: "prevote", from: "n2", to: "n4", term: 5, lastLogIndex: 3, lastLogTerm: 2 })
  core.step({ type: "vote", from: "n2", to: "n4", term: 5, lastLogIndex: 3, lastLogTerm: 2, transfer: false })
  const rd = core.ready()
  const answers = [...rd.sendFirst, ...rd.messages].map((m) => [m.type, "granted" in m && m.granted])
  t.same(answers, [["prevote_resp", false], ["vote_resp", false]])
  t.equal(core.status().vote, null, "and it voted for no one")
  const seeded = lone({ id: "n4", members: ["n2", "n4"] })
  seeded.step({ type: "vote", from: "n2", to: "n4", term: 5, lastLogIndex: 3, lastLogTerm: 2, transfer: false })
  t.equal(seeded.status().vote, "n2", "a node seeded by --peers votes (a new cluster must elect)")
})
