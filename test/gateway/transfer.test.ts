/**
 * `admin.transfer` on three in-process nodes: leadership moves to the node named (or the most
 * caught-up one) from any node's subject, the reply is exactly `TransferResponse`, writes sent
 * to the old leader during the handover wait and succeed, bad targets are `bad_request`, a
 * target that cannot take over leaves the old leader leading with `unavailable`; and a leader
 * stopped as on SIGTERM hands over before it goes.
 */
import t, { type Test } from "tap"
import { Effect, Fiber, Schema } from "effect"
import { join } from "node:path"
import { main } from "../../bootstrap/cli.ts"
import { runNode } from "../../bootstrap/node.ts"
import * as Client from "../../protocol/client.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { ask, config, quiet, strictly } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"


const ids = ["n1", "n2", "n3"]

/** Three nodes of cluster `c`, a client connection, and each node's fiber (to stop it as SIGTERM does). */
const threeNodes = async (t: Test) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const nc = await natsClient(t, server.url)
  const fibers = new Map<string, Fiber.RuntimeFiber<never, unknown>>()
  for (const id of ids) {
    const fiber = Effect.runFork(runNode(config({ NODE_ID: id, PEERS: ids.join(","), NATS_URL: server.url, DATA_DIR: join(dir, id), CLUSTER: "c" })).pipe(Effect.provide(quiet)))
    fibers.set(id, fiber)
    t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  }
  const status = async (id: string) => Schema.decodeUnknownSync(Client.StatusResponse)((await ask(nc, `archio.c.node.${id}.admin.status`, "", 1_000)).body)
  /** The leader, once every node follows it and has its whole log. */
  const settled = async (among: ReadonlyArray<string> = ids): Promise<string> => {
    let leader = ""
    await until(
      "one leader that every node follows, caught up",
      async () => {
        const all = await Promise.all(among.map(status))
        const l = all.find((s) => s.role === "leader")
        if (l === undefined || !all.every((s) => s.leader === l.id && s.lastIndex === l.lastIndex)) return false
        leader = l.id
        return true
      },
      { timeoutMs: 15_000, everyMs: 50 }
    )
    return leader
  }
  await until("a leader that answers writes", async () => (await ask(nc, "archio.c.kv.put", { key: "boot", value: "1" })).code === undefined, {
    timeoutMs: 15_000,
    everyMs: 100
  })
  return { nc, fibers, status, settled, url: server.url }
}

/** `archio <argv>` in this process; its exit code and what it wrote. */
const archio = async (argv: ReadonlyArray<string>): Promise<{ code: number; out: string; err: string }> => {
  let out = ""
  let err = ""
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s), env: {} })
  return { code, out, err }
}

t.test("admin.transfer moves leadership, from any node, and writes meanwhile wait instead of failing", async (t) => {
  const { nc, status, settled, url } = await threeNodes(t)

  t.test("to a named node, asked on a third node's own subject (forwarded to the leader)", async (t) => {
    const old = await settled()
    const before = await status(old)
    const [target, third] = ids.filter((id) => id !== old) as [string, string]
    const r = await ask(nc, `archio.c.node.${third}.admin.transfer`, { id: target })
    t.equal(r.code, undefined, `no error: ${JSON.stringify(r.body)}`)
    const reply = Schema.decodeUnknownSync(Client.TransferResponse, strictly)(r.body)
    t.match(reply, { ok: true, leader: target, node: old }, "the old leader answers: the target leads")
    t.ok(reply.term > before.term, `in a later term (${before.term} -> ${reply.term})`)
    t.comment(`handed over in ${reply.ms} ms`)
    const now = await status(target)
    t.match(now, { role: "leader", term: reply.term }, "the target says so too")
    t.equal((await ask(nc, "archio.c.kv.put", { key: "after-named", value: "x" })).body["node"], target, "and commits writes")
  })

  t.test("with {} on the shared subject: the most caught-up other voter", async (t) => {
    const old = await settled()
    const r = await ask(nc, "archio.c.admin.transfer", {})
    const reply = Schema.decodeUnknownSync(Client.TransferResponse, strictly)(r.body)
    t.not(reply.leader, old, `another node leads (${old} -> ${reply.leader})`)
    t.equal(reply.node, old)
    t.equal((await status(reply.leader)).role, "leader")
  })

  t.test("writes sent to the old leader during the handover are answered ok by the new one", async (t) => {
    const old = await settled()
    const target = ids.find((id) => id !== old)!
    const transfer = ask(nc, `archio.c.node.${old}.admin.transfer`, { id: target })
    // Sent right behind the transfer request: they meet the handover on the old leader.
    const writes = Array.from({ length: 20 }, (_, i) => ask(nc, `archio.c.node.${old}.kv.put`, { key: `during-${i}`, value: String(i) }))
    const reply = Schema.decodeUnknownSync(Client.TransferResponse, strictly)((await transfer).body)
    t.equal(reply.leader, target)
    const answers = await Promise.all(writes)
    const failed = answers.filter((a) => a.code !== undefined)
    t.same(failed, [], "no write failed")
    t.ok(answers.some((a) => a.body["node"] === target), `some were committed by the new leader (${answers.map((a) => a.body["node"]).join(",")})`)
    for (let i = 0; i < 20; i++) {
      const got = await ask(nc, "archio.c.kv.get", { key: `during-${i}` })
      t.equal(got.body["value"], String(i), `during-${i} reads back`)
    }
  })

  t.test("archio cluster transfer: to a named node, to the most caught-up one, and refused", async (t) => {
    const old = await settled()
    const target = ids.find((id) => id !== old)!
    const named = await archio(["cluster", "transfer", target, "--nats", url, "--cluster", "c"])
    t.equal(named.code, 0, named.err)
    t.match(named.out, new RegExp(`^leadership moved from ${old} to ${target} \\(term \\d+\\) in \\d+ ms\n$`))
    await settled()
    const json = await archio(["cluster", "transfer", "--json", "--nats", url, "--cluster", "c"])
    t.equal(json.code, 0, json.err)
    const reply = Schema.decodeUnknownSync(Client.TransferResponse, strictly)(JSON.parse(json.out))
    t.equal(reply.node, target, "handed over by the leader of before")
    t.not(reply.leader, target)
    const self = await archio(["cluster", "transfer", reply.leader, "--json", "--nats", url, "--cluster", "c"])
    t.equal(self.code, 1)
    t.match(JSON.parse(self.out), { ok: false, error: { code: "bad_request" } }, "--json prints the error envelope")
    t.equal(self.err, `archio cluster transfer: bad request: id: node ${reply.leader} already leads; name another voter, or send {} to pick the most caught-up one\n`)
    const usage = await archio(["cluster", "transfer", "n.2", "--nats", url])
    t.equal(usage.code, 2)
    t.match(usage.err, /^archio cluster transfer: ID must be a node id made of letters, digits, _ or - \(1 to 64 characters\), got "n\.2"\n/)
  })

  t.test("bad targets are bad_request, on the leader or through a follower", async (t) => {
    const leader = await settled()
    const follower = ids.find((id) => id !== leader)!
    const self = await ask(nc, `archio.c.node.${follower}.admin.transfer`, { id: leader })
    t.match(self, { code: "400", body: { ok: false, error: { code: "bad_request", message: new RegExp(`node ${leader} already leads; name another voter`) } } })
    const stranger = await ask(nc, `archio.c.node.${leader}.admin.transfer`, { id: "n9" })
    t.match(stranger, { code: "400", body: { error: { code: "bad_request", message: "id: node n9 is not a voting member (the voters are n1, n2, n3)" } } })
    t.equal((await status(leader)).role, "leader", "nothing moved")
  })
})

t.test("a target that cannot take over: unavailable, and the old leader goes on leading", async (t) => {
  const { nc, fibers, status, settled } = await threeNodes(t)
  const leader = await settled()
  const gone = ids.find((id) => id !== leader)!
  await Effect.runPromise(Fiber.interrupt(fibers.get(gone)!))
  const r = await ask(nc, `archio.c.node.${leader}.admin.transfer`, { id: gone })
  t.match(r, {
    code: "503",
    body: { ok: false, error: { code: "unavailable", message: `node ${gone} did not take over leadership within an election timeout; ${leader} still leads; retry`, detail: { leader, to: gone } } }
  })
  t.equal((await status(leader)).role, "leader", "the old leader still leads")
  t.equal((await ask(nc, "archio.c.kv.put", { key: "still", value: "x" })).body["node"], leader, "and takes writes again")
})

t.test("a leader stopped as on SIGTERM hands leadership over before it goes", async (t) => {
  const { nc, fibers, status, settled } = await threeNodes(t)
  const old = await settled()
  const before = await status(old)
  const others = ids.filter((id) => id !== old)
  await Effect.runPromise(Fiber.interrupt(fibers.get(old)!))
  // No election timeout to wait for: by the time the node is down, one of the others leads.
  const after = await Promise.all(others.map(status))
  const leaders = after.filter((s) => s.role === "leader")
  t.equal(leaders.length, 1, `a new leader at once (${after.map((s) => `${s.id}:${s.role}`).join(" ")})`)
  t.equal(leaders[0]?.term, before.term + 1, "elected in the next term, by TimeoutNow (no failed round)")
  t.equal((await ask(nc, "archio.c.kv.put", { key: "after-stop", value: "x" })).code, undefined, "writes go on")
  t.equal(await settled(others), leaders[0]?.id)
})
