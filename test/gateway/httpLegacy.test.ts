/**
 * The older service's REST shapes on the HTTP shim (issue 23, "older REST clients unchanged"):
 * `message`/`key` on writes, `state`/`leaderId` on /health, the older status fields on
 * /raft/status, `/kv/<key>`, `/raft/leader`, `/raft/state`, and `--http-follower-writes=reject`
 * answering 409 `not_leader` with the leader's URL from `HTTP_PEERS`. Against a real three-node
 * cluster of `archio node` processes; plus one in-process node for the token, a node without a
 * leader and the older configuration names (`RAFT_NODES`, `RAFT_DATA_DIR`) end to end.
 */
import t from "tap"
import { stat } from "node:fs/promises"
import { Effect, Fiber } from "effect"
import * as Http from "../../actors/gateway/http.ts"
import { freePort } from "../../bootstrap/natsServer.ts"
import { runNode } from "../../bootstrap/node.ts"
import { testCluster } from "../support/cluster.ts"
import { natsServer } from "../support/nats.ts"
import { ask, config, quiet, singleNode } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

interface Answer {
  readonly status: number
  readonly headers: Headers
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: Record<string, unknown> | undefined
}

const request = async (port: number, method: string, path: string, body?: string | Uint8Array, headers?: Record<string, string>): Promise<Answer> => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body === undefined ? {} : { body }),
    ...(headers === undefined ? {} : { headers })
  })
  const text = await res.text()
  let json: Record<string, unknown> | undefined
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, json }
}

const ids = ["n1", "n2", "n3"] as const
type Id = (typeof ids)[number]

t.test("the older shapes on a three-node cluster", async (t) => {
  const ports = { n1: await freePort(), n2: await freePort(), n3: await freePort() }
  const url = (id: Id) => `http://127.0.0.1:${ports[id]}`
  const httpPeers = ids.map((id) => `${id}=${url(id)}/`).join(",")
  // n1 and n2 reject writes while they follow; n2 does not know the others' URLs; n3 forwards.
  const { cluster } = await testCluster(t, {}, {
    envOf: {
      n1: { HTTP_PORT: String(ports.n1), HTTP_FOLLOWER_WRITES: "reject", HTTP_PEERS: httpPeers },
      n2: { HTTP_PORT: String(ports.n2), HTTP_FOLLOWER_WRITES: "reject" },
      n3: { HTTP_PORT: String(ports.n3), HTTP_PEERS: httpPeers }
    }
  })
  const http = (id: Id, method: string, path: string, body?: string | Uint8Array, headers?: Record<string, string>) =>
    request(ports[id], method, path, body, headers)
  const every = { timeoutMs: 20_000, everyMs: 50 }
  await until("every node's HTTP shim to answer", async () => (await Promise.all(ids.map((id) => http(id, "GET", "/health")))).every((r) => r.status === 200), every)

  /** Moves leadership to `target` and waits until every node's /health names it. */
  const lead = async (target: Id): Promise<void> => {
    const now = (await http(target, "GET", "/health")).json!["leaderId"]
    if (now !== target) {
      const r = await ask(cluster.nc, "archio.dev.admin.transfer", { id: target }, 10_000)
      if (r.body["ok"] !== true || r.body["leader"] !== target) throw new Error(`leadership did not move to ${target}: ${JSON.stringify(r.body)}`)
    }
    await until(`every node to follow ${target}`, async () => (await Promise.all(ids.map((id) => http(id, "GET", "/health")))).every((r) => r.json!["leaderId"] === target), every)
  }

  t.test("forward (the default): writes through a follower carry message and key, answered by the leader", async (t) => {
    await lead("n1")
    const put = await http("n3", "PUT", "/set", '{"key":"name","value":"luffy"}')
    t.equal(put.status, 200)
    t.match(put.json, { ok: true, message: "stored", key: "name", revision: Number, node: "n1" })
    t.same(Object.keys(put.json!).slice(0, 3), ["ok", "message", "key"], "the older fields first")
    const post = await http("n3", "POST", "/set", '{"key":"name","value":"zoro"}')
    t.match(post.json, { ok: true, message: "stored", key: "name", prevRevision: put.json!["revision"] }, "POST too, with today's fields")
    const got = await http("n3", "GET", "/get?key=name")
    t.match(got.json, { ok: true, key: "name", value: "zoro" }, "the older /get shape is today's")
    const del = await http("n3", "DELETE", "/delete?key=name")
    t.match(del.json, { ok: true, message: "deleted", key: "name", deleted: true, node: "n1" })
    const again = await http("n3", "DELETE", "/delete?key=name")
    t.match(again.json, { ok: true, message: "deleted", key: "name", deleted: false }, "a missing key: still 200, deleted false")
    const bad = await http("n3", "PUT", "/set", '{"key":""}')
    t.equal(bad.status, 400)
    t.match(bad.json, { ok: false, message: /key/, error: { code: "bad_request" } }, "errors keep the older message and our envelope")
  })

  t.test("/health: state and leaderId", async (t) => {
    await lead("n1")
    for (const id of ids) {
      const r = await http(id, "GET", "/health")
      t.equal(r.status, 200)
      t.match(r.json, { ok: true, id, role: id === "n1" ? "leader" : "follower", state: id === "n1" ? "leader" : "follower", leader: "n1", leaderId: "n1", term: Number })
    }
  })

  t.test("/raft/status: admin.status and the older names for its values", async (t) => {
    await lead("n1")
    await http("n1", "PUT", "/set", '{"key":"status","value":"1"}')
    for (const id of ids) {
      const r = await http(id, "GET", "/raft/status")
      t.equal(r.status, 200)
      const s = r.json!
      const nats = (await ask(cluster.nc, `archio.dev.node.${id}.admin.status`, "")).body
      for (const field of Object.keys(nats)) t.ok(field in s, `${id}: today's ${field} is still there`)
      t.match(s, { state: id === "n1" ? "leader" : "follower", leaderId: "n1" })
      t.equal(s["lastApplied"], s["appliedIndex"], `${id}: lastApplied is appliedIndex`)
      t.equal(s["lastLogIndex"], s["lastIndex"], `${id}: lastLogIndex is lastIndex`)
      // Against the NATS status's number, so a lastLogTerm missing on both sides cannot pass.
      const lastTerm = nats["lastTerm"]
      t.ok(typeof lastTerm === "number" && Number.isInteger(lastTerm) && lastTerm > 0, `${id}: admin.status has a positive lastTerm`)
      t.equal(s["lastLogTerm"], lastTerm, `${id}: lastLogTerm is lastTerm`)
      t.equal(s["logLen"], (s["lastIndex"] as number) - (s["logBaseIndex"] as number), `${id}: logLen counts the entries after the base`)
      t.ok((s["logLen"] as number) > 0, `${id}: the log holds entries`)
      t.type(s["logBaseIndex"], "number")
      t.type(s["logBaseTerm"], "number")
      if (id === "n1") {
        const peers = s["peers"] as ReadonlyArray<{ id: string; nextIndex: number; matchIndex: number }>
        t.same(Object.keys(s["nextIndex"] as object).sort(), ["n2", "n3"], "the leader's nextIndex per follower")
        t.same(s["nextIndex"], Object.fromEntries(peers.map((p) => [p.id, p.nextIndex])))
        t.same(s["matchIndex"], Object.fromEntries(peers.map((p) => [p.id, p.matchIndex])))
      } else {
        t.same(s["nextIndex"], {}, `${id}: no nextIndex on a follower`)
        t.same(s["matchIndex"], {}, `${id}: no matchIndex on a follower`)
      }
    }
  })

  t.test("/raft/leader and /raft/state", async (t) => {
    await lead("n1")
    t.same((await http("n3", "GET", "/raft/leader")).json, { ok: true, leaderId: "n1", leader: url("n1"), term: (await http("n3", "GET", "/health")).json!["term"] })
    t.match((await http("n1", "GET", "/raft/leader")).json, { ok: true, leaderId: "n1", leader: url("n1") }, "the leader names itself")
    t.match((await http("n2", "GET", "/raft/leader")).json, { ok: true, leaderId: "n1", leader: null }, "without HTTP_PEERS: the id only")
    for (const id of ids) {
      const r = await http(id, "GET", "/raft/state")
      t.equal(r.status, 200)
      const role = id === "n1" ? "leader" : "follower"
      t.same(r.json, { ok: true, id, state: role, role, term: r.json!["term"], leaderId: "n1" })
      t.type(r.json!["term"], "number")
    }
  })

  t.test("/kv/<key>: get, put (raw or JSON) and delete, keys with slashes", async (t) => {
    await lead("n1")
    const key = "users/42 é?"
    const path = `/kv/users/42${encodeURIComponent(" é?")}`
    const put = await http("n3", "PUT", path, "raw text, not JSON")
    t.equal(put.status, 200)
    t.match(put.json, { ok: true, message: "stored", key, revision: Number, node: "n1" })
    t.match((await http("n3", "GET", path)).json, { ok: true, key, value: "raw text, not JSON", consistency: "linearizable" })
    t.match((await http("n2", "GET", `/get?key=${encodeURIComponent(key)}`)).json, { ok: true, value: "raw text, not JSON" }, "the same key as /get's")
    t.match((await http("n2", "GET", `${path}?consistency=stale`)).json, { ok: true, consistency: "stale" }, "query parameters as on /get")

    const json = await http("n3", "PUT", "/kv/session", '{"value":"abc","ttl":60000}', { "Content-Type": "application/json; charset=utf-8" })
    t.match(json.json, { ok: true, message: "stored", key: "session" })
    t.match((await http("n3", "GET", "/kv/session")).json, { ok: true, value: "abc" }, "application/json: the object's value (and ttl)")
    await http("n3", "PUT", "/kv/doc", '{"value":"abc"}')
    t.match((await http("n3", "GET", "/kv/doc")).json, { value: '{"value":"abc"}' }, "any other type: the body itself is the value")
    await http("n3", "PUT", "/kv/empty", "")
    t.match((await http("n3", "GET", "/kv/empty")).json, { ok: true, value: "" }, "an empty body is an empty value")

    const del = await http("n3", "DELETE", path)
    t.match(del.json, { ok: true, message: "deleted", key, deleted: true, node: "n1" })
    const gone = await http("n3", "GET", path)
    t.equal(gone.status, 404)
    t.match(gone.json, { ok: false, error: { code: "not_found" } })

    const refused: Array<[string, string, string | Uint8Array | undefined, Record<string, string> | undefined, RegExp]> = [
      ["PUT", "/kv/a", '{"key":"b","value":"1"}', { "Content-Type": "application/json" }, /takes the key from the path/],
      ["GET", "/kv/a?key=b", undefined, undefined, /takes the key from the path/],
      ["PUT", "/kv/a", "[1]", { "Content-Type": "application/json" }, /must be a JSON object/],
      ["PUT", "/kv/a", "{", { "Content-Type": "application/json" }, /invalid JSON/],
      ["PUT", "/kv/a", '{"value":1}', { "Content-Type": "application/json" }, /value/],
      ["PUT", "/kv/a", '{"value":"1","ttl":"soon"}', { "Content-Type": "application/json" }, /ttl/],
      ["PUT", "/kv/a", '{"value":"1","colour":"red"}', { "Content-Type": "application/json" }, /unknown field "colour"/],
      ["PUT", "/kv/a?ttl=5", "x", undefined, /takes no query parameters/],
      ["PUT", "/kv/a", new Uint8Array([0xff, 0xfe]), undefined, /not valid UTF-8/],
      ["GET", "/kv/%E0%A4%A", undefined, undefined, /percent-encoding/],
      ["GET", "/kv/", undefined, undefined, /key/],
      ["DELETE", "/kv/a?force=1", undefined, undefined, /unknown field "force"/]
    ]
    for (const [method, target, body, headers, message] of refused) {
      const r = await http("n3", method, target, body, headers)
      t.equal(r.status, 400, `${method} ${target}`)
      t.match(r.json, { ok: false, error: { code: "bad_request", message } }, `${method} ${target}`)
    }
    t.equal((await http("n3", "GET", "/kv/a")).status, 404, "none of them wrote")
    const wrong = await http("n3", "POST", "/kv/a", "x")
    t.equal(wrong.status, 405)
    t.equal(wrong.headers.get("allow"), "GET, PUT, DELETE")
    const metrics = await (await fetch(`${url("n3")}/metrics`)).text()
    t.match(metrics, /archio_http_requests_total\{endpoint="\/kv\/",code="200"\} \d+/, "one metrics series for every key")
    t.notMatch(metrics, /endpoint="\/kv\/users/, "no series per key")
  })

  t.test("reject: writes on a follower are 409 not_leader with the leader's id and URL; reads still work", async (t) => {
    await lead("n3")
    await http("n3", "PUT", "/kv/kept", "yes")
    const writes: Array<[string, string, string | undefined]> = [
      ["PUT", "/set", '{"key":"x","value":"1"}'],
      ["POST", "/set", '{"key":"x","value":"1"}'],
      ["DELETE", "/delete?key=kept", undefined],
      ["PUT", "/kv/x", "1"],
      ["DELETE", "/kv/kept", undefined]
    ]
    for (const [method, path, body] of writes) {
      const r = await http("n1", method, path, body)
      t.equal(r.status, 409, `n1 ${method} ${path}`)
      t.same(r.json, { ok: false, error: "not_leader", message: "not leader", leaderId: "n3", leader: url("n3") }, `n1 ${method} ${path}`)
      const blind = await http("n2", method, path, body)
      t.equal(blind.status, 409, `n2 ${method} ${path}`)
      t.same(blind.json, { ok: false, error: "not_leader", message: "not leader", leaderId: "n3", leader: null }, `n2 ${method} ${path}: no HTTP_PEERS, no URL`)
    }
    t.equal((await http("n1", "GET", "/kv/x")).status, 404, "the refused writes wrote nothing")
    t.match((await http("n1", "GET", "/kv/kept")).json, { ok: true, value: "yes" }, "reads are served on a rejecting follower")
    t.match((await http("n2", "GET", "/get?key=kept")).json, { ok: true, value: "yes" })
    t.equal((await http("n1", "PUT", "/set", "{")).status, 409, "refused before the body is read")
    // The setting is about the older routes: the dashboard's API forwards writes either way.
    const api = await http("n1", "POST", "/api/kv.put", '{"key":"api","value":"1"}', { "Content-Type": "application/json" })
    t.equal(api.status, 200, "POST /api/kv.put on a rejecting follower is not refused")
    t.match(api.json, { ok: true, key: "api", node: "n3" }, "the leader answered it")

    // Leading, a node in reject mode takes writes as usual.
    await lead("n1")
    const put = await http("n1", "PUT", "/kv/x", "1")
    t.equal(put.status, 200)
    t.match(put.json, { ok: true, message: "stored", key: "x", node: "n1" })
    t.match((await http("n3", "PUT", "/kv/y", "2")).json, { ok: true, node: "n1" }, "n3 (forward) passes its writes to the leader")
  })

})

t.test("HTTP_TOKEN guards PUT and DELETE /kv/<key>, not GET", async (t) => {
  const port = await freePort()
  const token = "s3cret-token-of-some-length"
  await singleNode(t, { HTTP_PORT: String(port), HTTP_TOKEN: token })
  await until("the shim answers", async () => (await request(port, "GET", "/health").catch(() => undefined))?.status === 200)
  const bearer = { Authorization: `Bearer ${token}` }
  for (const method of ["PUT", "DELETE"]) {
    const r = await request(port, method, "/kv/k", method === "PUT" ? "v" : undefined)
    t.equal(r.status, 401, `${method} without a token`)
    t.match(r.json, { ok: false, error: { code: "unauthorized", message: /needs the node's HTTP token/ } })
  }
  t.equal((await request(port, "PUT", "/kv/k", "v", bearer)).status, 200)
  t.match((await request(port, "GET", "/kv/k")).json, { ok: true, value: "v" }, "reads need no token")
  t.equal((await request(port, "GET", "/raft/leader")).status, 200, "/raft/leader is open like /health")
  t.equal((await request(port, "GET", "/raft/state")).status, 200, "/raft/state is open like /health")
  t.match((await request(port, "DELETE", "/kv/k", undefined, bearer)).json, { ok: true, message: "deleted" })
})

t.test("a node without a leader, configured with the older names RAFT_NODES and RAFT_DATA_DIR", async (t) => {
  const server = await natsServer(t)
  const root = await tempDir(t)
  const port = await freePort()
  const c = config({ NODE_ID: "n1", RAFT_NODES: "n1,n2,n3", RAFT_DATA_DIR: root, NATS_URL: server.url, CLUSTER: "c", HTTP_PORT: String(port), HTTP_FOLLOWER_WRITES: "reject" })
  const fiber = Effect.runFork(runNode(c).pipe(Effect.provide(quiet)))
  t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  await until("n1 to answer HTTP", async () => (await request(port, "GET", "/health")).json !== undefined, { timeoutMs: 15_000, everyMs: 50 })
  t.ok((await stat(`${root}/n1`)).isDirectory(), "the database is in RAFT_DATA_DIR/<id>")
  const status = (await request(port, "GET", "/raft/status")).json!
  t.match(status, { members: [{ id: "n1" }, { id: "n2" }, { id: "n3" }] }, "RAFT_NODES seeded the members")
  t.match(status, { leader: null, leaderId: null, nextIndex: {}, matchIndex: {} })
  t.match(status["state"], /^(follower|candidate)$/, "an older state name")
  const health = await request(port, "GET", "/health")
  t.equal(health.status, 503)
  t.match(health.json, { ok: false, leader: null, leaderId: null, state: status["state"] })
  const leader = await request(port, "GET", "/raft/leader")
  t.equal(leader.status, 503)
  t.match(leader.json, { ok: false, leaderId: null, leader: null, message: /no leader is known/ })
  t.match((await request(port, "GET", "/raft/state")).json, { ok: true, id: "n1", leaderId: null })
  const put = await request(port, "PUT", "/kv/a", "1")
  t.equal(put.status, 409, "reject mode without a leader")
  t.same(put.json, { ok: false, error: "not_leader", message: "not leader", leaderId: null, leader: null })
})

t.test("the older state names", async (t) => {
  t.equal(Http.legacyState("leader"), "leader")
  t.equal(Http.legacyState("follower"), "follower")
  t.equal(Http.legacyState("candidate"), "candidate")
  t.equal(Http.legacyState("precandidate"), "candidate", "a pre-vote campaign is a campaign: no leader is followed")
})
