/**
 * `archio status` and `archio cluster members` against three real node processes: the table and
 * its rows, the leader's view of every member, --watch from the real command (stdout a pipe, so
 * timestamped blocks, stopped with SIGINT), and the problem line once a member is gone.
 */
import t from "tap"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { main } from "../../bootstrap/cli.ts"
import type { Env } from "../../bootstrap/options.ts"
import type { ClusterView } from "../../bootstrap/statusCommand.ts"
import type { Terminal } from "../../bootstrap/terminal.ts"
import type { MembersResponse } from "../../protocol/client.ts"
import { testCluster } from "../support/cluster.ts"
import { until } from "../support/wait.ts"

t.setTimeout(240_000)

const bin = fileURLToPath(new URL("../../bin/archio.js", import.meta.url))

const run = async (argv: ReadonlyArray<string>, env: Env) => {
  let out = ""
  let err = ""
  const terminal: Terminal = { out: (s) => void (out += s), err: (s) => void (err += s), env }
  const code = await main(argv, terminal)
  return { code, out, err }
}

t.test("the table of a real cluster, its members, --watch, and a member gone", async (t) => {
  const { cluster, client, nats } = await testCluster(t)
  const env = { NATS_URL: nats.url, CLUSTER: cluster.cluster }
  const leader = await cluster.waitForLeader(30_000)
  for (let i = 0; i < 10; i++) await client.put(`status/${i}`, "v")

  let view: ClusterView | undefined
  await until("one leader, every member caught up", async () => {
    const r = await run(["status", "--json"], env)
    view = JSON.parse(r.out) as ClusterView
    // A follower learns the commit index with the leader's next append, so wait for it too.
    const leaderCommit = view.nodes.find((n) => n.id === view!.leader)?.commitIndex ?? 0
    return r.code === 0 && leaderCommit >= 11 &&
      view.nodes.every((n) => n.lag === 0 && n.commitIndex === leaderCommit && n.appliedIndex === n.commitIndex)
  }, { timeoutMs: 30_000, everyMs: 200 })
  t.equal(view!.leader, leader)
  t.same(view!.problems, [])
  t.same(view!.nodes.map((n) => n.id), cluster.ids, "one row per member")
  const leaderRow = view!.nodes.find((n) => n.id === leader)!
  for (const n of view!.nodes) {
    t.match(n, { member: "voter", role: n.id === leader ? "leader" : "follower", term: leaderRow.term, leader, error: null }, `${n.id}'s row`)
    t.ok(n.commitIndex! >= 11, `${n.id} committed the writes`)
    t.equal(n.matchIndex, leaderRow.lastIndex, `${n.id} holds the leader's whole log`)
  }

  const table = await run(["status"], env)
  t.equal(table.code, 0, table.err)
  const lines = table.out.trimEnd().split("\n")
  t.equal(lines[0], `cluster ${cluster.cluster}: leader ${leader}, term ${leaderRow.term}; 3 of 3 members answer`)
  t.match(lines[1], /^NODE +ROLE +MEMBER +TERM +COMMIT +APPLIED +LAG +LOG BASE +SNAPSHOT$/)
  t.equal(lines.length, 5, "a title, a header and three rows, no problem")
  t.match(lines.find((l) => l.startsWith(`${leader} `)), new RegExp(`^${leader} +leader +voter +${leaderRow.term} +\\d+ +\\d+ +0 `))

  const members = await run(["cluster", "members", "--json"], env)
  t.equal(members.code, 0, members.err)
  const reply = JSON.parse(members.out) as MembersResponse
  t.match(reply, { ok: true, leader, node: leader, term: leaderRow.term })
  t.same(reply.members.map((m) => [m.id, m.role]), cluster.ids.map((id) => [id, "voter"]))
  const follower = cluster.ids.find((id) => id !== leader)!
  const direct = await run(["cluster", "members", "--node", follower], env)
  t.equal(direct.code, 0, direct.err)
  t.match(direct.out, new RegExp(`^members as leader ${leader} sees them \\(term ${leaderRow.term}\\)\\nNODE +ROLE +MATCH +LAG\\n`), `asked on ${follower}: the leader's view`)
  t.match(direct.out, new RegExp(`\\n${leader} +voter +\\d+ +0 +leader\\n`))

  t.test("archio status --watch, the real command with stdout a pipe: timestamped blocks until SIGINT", async (t) => {
    const child = spawn(process.execPath, [bin, "status", "--watch", "--interval", "200"], {
      env: { ...process.env, ...env, _TAPJS_PROCESSINFO_COVERAGE_: "0" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")))
    let out = ""
    child.stdout.on("data", (b: Buffer) => (out += b.toString()))
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    await until("two blocks", () => out.split(/^--- /m).length > 3 && out.endsWith("\n"), { timeoutMs: 30_000, everyMs: 50 })
    child.kill("SIGINT")
    t.equal(await exited, 0, "Ctrl-C stops it with 0")
    const blocks = out.split(/^--- /m).slice(1)
    t.ok(blocks.length >= 2, `${blocks.length} blocks`)
    for (const b of blocks) t.match(b, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z\\ncluster ${cluster.cluster}: leader ${leader}, term \\d+; 3 of 3 members answer\\nNODE `))
    t.notMatch(out, "\x1b[", "no escape codes in a pipe")
  })

  t.test("a member gone: a problem line, exit 1", async (t) => {
    await cluster.kill(follower)
    const after = await run(["status", "--timeout", "500"], env)
    t.equal(after.code, 1)
    t.match(after.out, `; 2 of 3 members answer\n`)
    t.match(after.out, new RegExp(`\\n${follower} +- +voter +- +- +- +\\d+ +- +-\\n`), "its row, with the leader's view of its lag")
    t.match(after.out, `\nproblem: ${follower} does not answer: nothing answers on archio.${cluster.cluster}.node.${follower}.admin.status\n`)
  })
})
