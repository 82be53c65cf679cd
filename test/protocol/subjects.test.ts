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

t.test("key event subjects: one token per '/' segment, escaped when not plain", async (t) => {
  t.equal(Subjects.kvKeyEvent("dev", "name"), "archio.dev.events.kv.name")
  t.equal(Subjects.kvKeyEvent("dev", "users/42/name"), "archio.dev.events.kv.users.42.name")
  t.equal(Subjects.kvKeyEvent("dev", "a.b"), `archio.dev.events.kv.~${Buffer.from("a.b").toString("base64url")}`)
  t.equal(Subjects.kvKeyEvent("dev", "a//b/"), "archio.dev.events.kv.a.~.b.~", "empty segments become ~")
  t.equal(Subjects.kvKeyTokens("~x"), `~${Buffer.from("~x").toString("base64url")}`, "a leading ~ is escaped, so plain and escaped never collide")
  t.equal(Subjects.kvPrefixEvents("dev", ""), "archio.dev.events.kv.>")
  t.equal(Subjects.kvPrefixEvents("dev", "users"), "archio.dev.events.kv.>", "a prefix inside the first segment needs everything")
  t.equal(Subjects.kvPrefixEvents("dev", "users/"), "archio.dev.events.kv.users.>")
  t.equal(Subjects.kvPrefixEvents("dev", "users/4"), "archio.dev.events.kv.users.>")
  t.equal(Subjects.kvPrefixEvents("dev", "a b/c/"), `archio.dev.events.kv.~${Buffer.from("a b").toString("base64url")}.c.>`)
})

t.test("key event subjects are valid NATS subjects and one to one, for awkward keys", async (t) => {
  const keys = ["a", "a.b", "a*", "a>", ">", "*", " ", "a b", "~", "~~", "é", "日本/語", "\u{1F600}", "/", "//", "a/", "/a", "x".repeat(1024), "é".repeat(512), "a\tb", "\r\n"]
  const seen = new Map<string, string>()
  for (const key of keys) {
    const subject = Subjects.kvKeyEvent("dev", key)
    t.match(subject, /^[A-Za-z0-9_~.-]+$/, `only subject-safe characters for ${JSON.stringify(key).slice(0, 20)}`)
    t.notOk(subject.split(".").some((tok) => tok === ""), "no empty token")
    t.ok(subject.length < 4000, "fits the NATS control line")
    t.notOk(seen.has(subject), `no collision with ${JSON.stringify(seen.get(subject))}`)
    seen.set(subject, key)
  }
})
