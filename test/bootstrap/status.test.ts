/**
 * `archio status` in process, against a nats-server where this test answers for the nodes: the
 * table, its problem lines and exit codes, --json, --watch on a terminal and elsewhere, --node,
 * and nodes that predate admin.members. The same against a real cluster: test/cluster/status.test.ts.
 */
import t from "tap"
import type { NatsConnection } from "@nats-io/transport-node"
import { main } from "../../bootstrap/cli.ts"
import type { Env } from "../../bootstrap/options.ts"
import { buildView, clearScreen, renderTable, Unanswered } from "../../bootstrap/statusCommand.ts"
import type { Terminal } from "../../bootstrap/terminal.ts"
import { natsClient, natsServer } from "../support/nats.ts"

const run = async (argv: ReadonlyArray<string>, env: Env = {}, more: Partial<Terminal> = {}) => {
  let out = ""
  let err = ""
  const terminal: Terminal = { out: (s) => void (out += s), err: (s) => void (err += s), env, ...more }
  const code = await main(argv, terminal)
  return { code, out, err }
}

const leaderView = [
  { id: "n1", role: "voter", matchIndex: 100, lag: 0 },
  { id: "n2", role: "voter", matchIndex: 98, lag: 2 },
  { id: "n3", role: "voter", matchIndex: 90, lag: 10 }
] as const
const rolesOnly = leaderView.map((m) => ({ ...m, matchIndex: null, lag: null }))

const status = (id: string, role: string, fields: Record<string, unknown> = {}) => ({
  ok: true, id, cluster: "s", members: role === "leader" ? leaderView : rolesOnly, role, term: 3, leader: "n1", commitIndex: 100, appliedIndex: 100,
  firstIndex: 61, lastIndex: 100, lastTerm: 3, leaderChanges: 1, uptimeMs: 5000, logBaseIndex: 60, logBaseTerm: 2,
  snapshot: { index: 60, term: 2, size: 100, time: 1 }, ...fields
})

/** Answers `subject` with `body` (JSON) until the test ends. */
const answer = (t: { teardown(fn: () => unknown): void }, nc: NatsConnection, subject: string, body: unknown | (() => unknown), queue?: string) => {
  const sub = nc.subscribe(subject, {
    ...(queue === undefined ? {} : { queue }),
    callback: (_e, m) => void m.respond(typeof body === "string" ? body : JSON.stringify(typeof body === "function" ? (body as () => unknown)() : body))
  })
  t.teardown(() => sub.unsubscribe())
  return sub
}

t.test("the table: one row per member, the leader's lag, a problem line per problem", async (t) => {
  const view = buildView("s", new Date(0), leaderView, [
    { role: "leader", term: 3, leader: "n1", commitIndex: 100, appliedIndex: 100, lastIndex: 100, logBaseIndex: 60, snapshot: { index: 60 }, members: leaderView },
    { role: "follower", term: 3, leader: "n1", commitIndex: 100, appliedIndex: 97, lastIndex: 98, logBaseIndex: 0, snapshot: null, members: rolesOnly },
    new Unanswered("nothing answers on archio.s.node.n3.admin.status", true)
  ])
  t.equal(view.leader, "n1")
  t.equal(view.term, 3)
  t.equal(
    renderTable(view),
    [
      "cluster s: leader n1, term 3; 2 of 3 members answer",
      "NODE  ROLE      MEMBER  TERM  COMMIT  APPLIED  LAG  LOG BASE  SNAPSHOT",
      "n1    leader    voter   3     100     100      0    60        60",
      "n2    follower  voter   3     100     97       2    0         -",
      "n3    -         voter   -     -       -        10   -         -",
      "problem: n3 does not answer: nothing answers on archio.s.node.n3.admin.status",
      ""
    ].join("\n")
  )
  const answering = { term: 4, leader: null, commitIndex: 1, appliedIndex: 1, lastIndex: 1, logBaseIndex: 0, snapshot: null, members: rolesOnly }
  const none = buildView("s", new Date(0), leaderView, leaderView.map(() => ({ ...answering, role: "precandidate" as const })))
  t.same(none.problems, ["no leader: writes and linearizable reads fail until one is elected"])
  t.equal(none.nodes[2]!.lag, 10, "without a leader answering, lag comes from admin.members")
  const two = buildView("s", new Date(0), leaderView, [
    { ...answering, role: "leader" as const, term: 3 },
    { ...answering, role: "leader" as const },
    { ...answering, role: "follower" as const }
  ])
  t.same(two.problems, ["2 members say they lead: n1 (term 3), n2 (term 4)"])
  t.equal(two.leader, null)
  t.match(renderTable(two), /^cluster s: no single leader; 3 of 3 members answer\n/)
})

t.test("archio status against answers from this test", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const env = { NATS_URL: server.url, CLUSTER: "s" }
  answer(t, nc, "archio.s.admin.members", { ok: true, members: leaderView, leader: "n1", term: 3, node: "n1" }, "q")
  answer(t, nc, "archio.s.node.n1.admin.status", status("n1", "leader"))
  answer(t, nc, "archio.s.node.n2.admin.status", status("n2", "follower", { appliedIndex: 97 }))
  await nc.flush()

  const missing = await run(["status", "--timeout", "500"], env)
  t.equal(missing.code, 1, "a member that does not answer is a problem: exit 1")
  t.match(missing.out, /^cluster s: leader n1, term 3; 2 of 3 members answer\nNODE +ROLE +MEMBER +TERM +COMMIT +APPLIED +LAG +LOG BASE +SNAPSHOT\n/)
  t.match(missing.out, /\nn2 +follower +voter +3 +100 +97 +2 +60 +60\n/)
  t.match(missing.out, /\nproblem: n3 does not answer: nothing answers on archio\.s\.node\.n3\.admin\.status\n$/)
  t.equal(missing.err, "")

  const json = await run(["status", "--json", "--timeout", "500"], env)
  t.equal(json.code, 1)
  t.equal(json.out.split("\n").length, 2, "one line")
  const rows = JSON.parse(json.out) as { ok: boolean; nodes: Array<Record<string, unknown>>; problems: Array<string> }
  t.match(rows, { ok: false, cluster: "s", leader: "n1", term: 3, time: /^\d{4}-/ })
  t.same(rows.nodes[0], {
    id: "n1", member: "voter", role: "leader", term: 3, leader: "n1", commitIndex: 100, appliedIndex: 100, lastIndex: 100, logBaseIndex: 60, snapshotIndex: 60,
    matchIndex: 100, lag: 0, error: null
  })
  t.match(rows.nodes[2], { id: "n3", role: null, term: null, lag: 10, error: "nothing answers on archio.s.node.n3.admin.status" })
  t.equal(rows.problems.length, 1)

  // n3 answers late: the timeout says so.
  const slow = nc.subscribe("archio.s.node.n3.admin.status", { callback: () => undefined })
  await nc.flush()
  const late = await run(["status", "--timeout", "200"], env)
  t.match(late.out, "problem: n3 does not answer: no answer on archio.s.node.n3.admin.status within 200 ms")
  slow.unsubscribe()

  answer(t, nc, "archio.s.node.n3.admin.status", status("n3", "follower", { appliedIndex: 90, commitIndex: 95 }))
  await nc.flush()
  const whole = await run(["status"], env)
  t.equal(whole.code, 0, "one leader, every member answers: exit 0")
  t.notMatch(whole.out, /problem/)
  t.match(whole.out, /\nn3 +follower +voter +3 +95 +90 +10 /)

  const one = await run(["status", "--node", "n2"], env)
  t.equal(one.code, 0)
  t.same(JSON.parse(one.out), status("n2", "follower", { appliedIndex: 97 }), "--node: that node's own admin.status")
  t.match(one.out, /^{\n {2}"ok": true,\n/, "pretty-printed")
  const oneLine = await run(["status", "--node", "n2", "--json"], env)
  t.equal(oneLine.out.split("\n").length, 2, "--node --json: one line")

  t.test("--watch elsewhere than a terminal: a timestamped block per round", async (t) => {
    const stop = new AbortController()
    let out = ""
    const terminal: Partial<Terminal> = {
      signal: stop.signal,
      out: (s) => {
        out += s
        if (out.split("--- ").length > 2) stop.abort()
      }
    }
    const watched = await run(["status", "--watch", "--interval", "100"], env, terminal)
    t.equal(watched.code, 0, "Ctrl-C ends it with 0")
    const blocks = out.split(/^--- /m).slice(1)
    t.equal(blocks.length, 2, "two blocks")
    for (const b of blocks) t.match(b, /^\d{4}-\d\d-\d\dT[0-9:.]+Z\ncluster s: leader n1, term 3; 3 of 3 members answer\nNODE/)
    t.notMatch(out, clearScreen, "no escape codes in a file or pipe")
  })

  t.test("--watch on a terminal redraws the screen", async (t) => {
    const stop = new AbortController()
    let out = ""
    const terminal: Partial<Terminal> = {
      isTTY: true,
      signal: stop.signal,
      out: (s) => {
        out += s
        if (out.split(clearScreen).length > 2) stop.abort()
      }
    }
    t.equal((await run(["status", "-w", "--interval", "100"], env, terminal)).code, 0)
    t.equal(out.split(clearScreen).length, 3, "cleared before each of two rounds")
    t.match(out, /archio status --watch: every 100 ms, Ctrl-C stops; /)
  })

  t.test("--watch --json: one line per round", async (t) => {
    const stop = new AbortController()
    let out = ""
    const terminal: Partial<Terminal> = {
      isTTY: true,
      signal: stop.signal,
      out: (s) => {
        out += s
        if (out.split("\n").length > 2) stop.abort()
      }
    }
    await run(["status", "--watch", "--json", "--interval", "100"], env, terminal)
    const lines = out.trimEnd().split("\n")
    t.equal(lines.length, 2)
    for (const l of lines) t.match(JSON.parse(l), { ok: true, leader: "n1" })
  })
})

t.test("archio status: nodes without admin.members, and no nodes at all", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const env = { NATS_URL: server.url, CLUSTER: "old" }
  const nobody = await run(["status", "--timeout", "300"], env)
  t.equal(nobody.code, 1)
  t.equal(
    nobody.err,
    `archio status: no archio node answers on archio.old.admin.members or archio.old.admin.status at ${server.url}: is the cluster running, and is its cluster name "old"?\n`
  )
  // A node from before admin.members lists its members as plain ids.
  const before = { ...status("a", "leader"), cluster: "old", members: ["a", "b"] }
  answer(t, nc, "archio.old.admin.status", before, "q")
  answer(t, nc, "archio.old.node.a.admin.status", before)
  answer(t, nc, "archio.old.node.b.admin.status", "not json")
  await nc.flush()
  const old = await run(["status", "--timeout", "300"], env)
  t.equal(old.code, 1)
  t.match(old.out, /\na +leader +voter +3 +100 +100 +- /, "members from admin.status; no lag without the leader's view")
  t.match(old.out, "problem: b does not answer: archio.old.node.b.admin.status answered something that is not JSON")

  const bad = await run(["status", "--interval", "50"], env)
  t.equal(bad.code, 2)
  t.match(bad.err, 'archio status: --interval must be an integer from 100 to 3600000, got "50"')
  t.match(bad.err, "archio status: --interval only applies with --watch")
})
