/** The member list of `admin.members` and `admin.status`, from one node's consensus status. */
import t from "tap"
import { memberList } from "../../actors/gateway/members.ts"

const peer = (id: string, matchIndex: number) => ({ id, matchIndex, nextIndex: matchIndex + 1, state: "replicate" as const })
const voters = (...ids: string[]) => ({ cluster: "c0ffee", voters: ids, learners: [] })

t.test("a leader lists every member with its match index and lag; its own lag is 0", async (t) => {
  const members = memberList({ id: "n2", role: "leader", lastIndex: 120, peers: [peer("n1", 120), peer("n3", 97)], membership: voters("n1", "n2", "n3") })
  t.same(members, [
    { id: "n1", role: "voter", matchIndex: 120, lag: 0 },
    { id: "n2", role: "voter", matchIndex: 120, lag: 0 },
    { id: "n3", role: "voter", matchIndex: 97, lag: 23 }
  ])
})

t.test("a node that does not lead lists roles only", async (t) => {
  for (const role of ["follower", "candidate", "precandidate"] as const) {
    t.same(memberList({ id: "n1", role, lastIndex: 50, peers: [peer("n2", 40)], membership: voters("n1", "n2") }), [
      { id: "n1", role: "voter", matchIndex: null, lag: null },
      { id: "n2", role: "voter", matchIndex: null, lag: null }
    ], role)
  }
})

t.test("a member the leader tracks no progress for has no view; a match past the last index is no negative lag", async (t) => {
  t.same(memberList({ id: "n1", role: "leader", lastIndex: 10, peers: [peer("n2", 12)], membership: voters("n1", "n2", "n3") }), [
    { id: "n1", role: "voter", matchIndex: 10, lag: 0 },
    { id: "n2", role: "voter", matchIndex: 12, lag: 0 },
    { id: "n3", role: "voter", matchIndex: null, lag: null }
  ])
})

t.test("learners follow the voters, with their own role", async (t) => {
  const membership = { cluster: "c0ffee", voters: ["n2", "n1"], learners: ["n4"] }
  t.same(memberList({ id: "n1", role: "leader", lastIndex: 30, peers: [peer("n2", 30), peer("n4", 5)], membership }), [
    { id: "n2", role: "voter", matchIndex: 30, lag: 0 },
    { id: "n1", role: "voter", matchIndex: 30, lag: 0 },
    { id: "n4", role: "learner", matchIndex: 5, lag: 25 }
  ])
})
