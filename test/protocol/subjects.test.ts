import t from "tap"
import * as Subjects from "../../protocol/subjects.ts"

t.test("subject names", async (t) => {
  t.equal(Subjects.kv("dev", "put"), "archio.dev.kv.put")
  t.equal(Subjects.jobs("dev", "lease"), "archio.dev.jobs.lease")
  t.equal(Subjects.admin("dev", "status"), "archio.dev.admin.status")
  t.equal(Subjects.raft("dev", "n1", "append"), "archio.dev.raft.n1.append")
  t.equal(Subjects.raftInbox("dev", "n1"), "archio.dev.raft.n1.>")
  t.equal(Subjects.node("dev", "n2", "propose"), "archio.dev.node.n2.propose")
  t.equal(Subjects.events("dev"), "archio.dev.events")
})

t.test("tokens", async (t) => {
  for (const ok of ["a", "node-1", "Queue_2", "x".repeat(64)]) t.ok(Subjects.validToken(ok), ok)
  for (const bad of ["", "a.b", "a b", "*", ">", "x".repeat(65), "é"]) t.notOk(Subjects.validToken(bad), JSON.stringify(bad))
})
