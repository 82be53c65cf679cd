import t from "tap"
import { settleMs, takesWrites, WriteRouting } from "../../actors/gateway/writeRouting.ts"

t.test("takesWrites: the leader, a node without a leader, and a follower whose leader is new", async (t) => {
  const v = { self: "n1", leaderSince: 0, now: 10_000 }
  t.ok(takesWrites({ ...v, role: "leader", leader: "n1" }), "the leader")
  t.ok(takesWrites({ ...v, role: "follower", leader: null }), "a follower that knows no leader")
  t.ok(takesWrites({ ...v, role: "precandidate", leader: null }), "a pre-candidate")
  t.ok(takesWrites({ ...v, role: "candidate", leader: null }), "a candidate")
  t.notOk(takesWrites({ ...v, role: "follower", leader: "n2" }), "a follower of a settled leader")
  t.ok(takesWrites({ ...v, role: "follower", leader: "n2", leaderSince: 10_000 - settleMs + 1 }), "a follower of a leader known for less than settleMs")
  t.notOk(takesWrites({ ...v, role: "follower", leader: "n2", leaderSince: 10_000 - settleMs }), "a follower of a leader known for settleMs")
})

t.test("WriteRouting says only changes, and follows leader changes", async (t) => {
  const r = new WriteRouting("n1", 0)
  t.equal(r.update("follower", null, 0), true, "first decision is said")
  t.equal(r.update("follower", null, 100), undefined, "no change, nothing said")
  t.equal(r.update("follower", "n2", 200), undefined, "a new leader: still taking writes while it settles")
  t.equal(r.update("follower", "n2", 200 + settleMs - 1), undefined)
  t.equal(r.update("follower", "n2", 200 + settleMs), false, "settled: let go")
  t.equal(r.update("follower", "n2", 5_000), undefined)
  t.equal(r.update("precandidate", null, 5_100), true, "the leader is lost: take writes again at once")
  t.equal(r.update("follower", "n3", 5_200), undefined, "another leader")
  t.equal(r.update("follower", "n3", 5_200 + settleMs), false)
  t.equal(r.update("leader", "n1", 9_000), true, "elected: take writes")
  r.reset()
  t.equal(r.update("leader", "n1", 9_001), true, "after reset the decision is said again")
  // A leader that changes to another without a gap restarts the settling time.
  const q = new WriteRouting("n1", 0)
  q.update("follower", "n2", 0)
  t.equal(q.update("follower", "n2", settleMs), false)
  t.equal(q.update("follower", "n3", settleMs + 10), true, "a different leader: take writes until it settles")
})
