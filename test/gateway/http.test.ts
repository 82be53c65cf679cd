/**
 * The HTTP shim: routes, codes and bodies on a real node (private nats-server, real
 * classic-level), writes through a follower reaching the leader, the Prometheus exposition, and
 * the shell's own behaviour (throwing handlers, request logs, shutdown) with a stub backend.
 */
import { networkInterfaces } from "node:os"
import t, { type Test } from "tap"
import { createServer } from "node:http"
import { connect as connectSocket, type AddressInfo } from "node:net"
import { join } from "node:path"
import { Effect, Exit, Fiber, HashMap, Logger, Scope } from "effect"
import * as Http from "../../actors/gateway/http.ts"
import * as Metrics from "../../actors/gateway/metrics.ts"
import { runNode } from "../../bootstrap/node.ts"
import { config, quiet, send, singleNode } from "../support/node.ts"
import { natsServer } from "../support/nats.ts"
import { parseConfig } from "../../bootstrap/config.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

/** A port nobody listens on right now. */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.on("error", reject)
    s.listen(0, () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: Record<string, unknown> | undefined
}

const request = async (port: number, method: string, path: string, body?: string, headers?: Record<string, string>): Promise<Answer> => {
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
  return { status: res.status, headers: res.headers, text, json }
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

interface Exposition {
  readonly samples: ReadonlyArray<Sample>
  readonly types: ReadonlyMap<string, string>
  readonly helps: ReadonlyMap<string, string>
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/g

/** A strict reader of the text format: throws on any line it cannot read. */
const parseExposition = (text: string): Exposition => {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline")
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  const helps = new Map<string, string>()
  for (const line of text.slice(0, -1).split("\n")) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line)
    if (meta !== null) {
      const [, kind, name, rest] = meta
      if (kind === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest!)) throw new Error(`bad TYPE: ${line}`)
        if (types.has(name!)) throw new Error(`TYPE given twice for ${name}`)
        if (!helps.has(name!)) throw new Error(`TYPE before HELP for ${name}`)
        types.set(name!, rest!)
      } else helps.set(name!, rest!)
      continue
    }
    const m = sampleLine.exec(line)
    if (m === null) throw new Error(`unreadable line: ${JSON.stringify(line)}`)
    const [, name, labelText, valueText] = m
    const labels: Record<string, string> = {}
    if (labelText !== undefined && labelText !== "") {
      let consumed = 0
      for (const pair of labelText.matchAll(labelPair)) {
        labels[pair[1]!] = pair[2]!
        consumed += pair[0].length
      }
      if (consumed !== labelText.length) throw new Error(`bad labels: ${line}`)
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText)
    if (Number.isNaN(value) && valueText !== "NaN") throw new Error(`bad value: ${line}`)
    const family = types.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, "")
    if (!types.has(family)) throw new Error(`sample before its TYPE: ${line}`)
    samples.push({ name: name!, labels, value })
  }
  return { samples, types, helps }
}

const value = (e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined =>
  e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

/** Buckets of every histogram series (labelled or not) rise with `le` and end at `+Inf` = `_count`. */
const checkHistograms = (t: Test, e: Exposition): void => {
  for (const [family, type] of e.types) {
    if (type !== "histogram") continue
    const bySeries = new Map<string, { labels: Record<string, string>; buckets: Array<Sample> }>()
    for (const s of e.samples.filter((s) => s.name === `${family}_bucket`)) {
      const labels = Object.fromEntries(Object.entries(s.labels).filter(([k]) => k !== "le"))
      const key = JSON.stringify(labels)
      const series = bySeries.get(key) ?? { labels, buckets: [] }
      series.buckets.push(s)
      bySeries.set(key, series)
    }
    t.ok(bySeries.size > 0, `${family} has series`)
    for (const [key, { labels, buckets }] of bySeries) {
      const les = buckets.map((b) => (b.labels["le"] === "+Inf" ? Infinity : Number(b.labels["le"])))
      t.same(les, [...les].sort((a, b) => a - b), `${family}${key} le ascending`)
      t.equal(les[les.length - 1], Infinity, `${family}${key} ends at +Inf`)
      const counts = buckets.map((b) => b.value)
      t.ok(counts.every((c, i) => i === 0 || c >= counts[i - 1]!), `${family}${key} cumulative`)
      const count = e.samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key)?.value
      t.equal(counts[counts.length - 1], count, `${family}${key} +Inf = count`)
      t.ok(e.samples.some((s) => s.name === `${family}_sum` && JSON.stringify(s.labels) === JSON.stringify(labels)), `${family}${key} has a sum`)
    }
  }
}

// ---------------------------------------------------------------------------------------------

t.test("the HTTP shim of a single node", async (t) => {
  const port = await freePort()
  const nc = await singleNode(t, { HTTP_PORT: String(port) })
  const http = (method: string, path: string, body?: string, headers?: Record<string, string>) => request(port, method, path, body, headers)

  t.test("GET /health: who leads, 200 with a leader", async (t) => {
    const r = await http("GET", "/health")
    t.equal(r.status, 200)
    t.match(r.headers.get("content-type"), /^application\/json/)
    t.match(r.headers.get("x-request-id"), /^n1-[0-9a-z]+-[0-9a-z]+$/, "a generated request id")
    t.same(Object.keys(r.json!).sort(), ["id", "leader", "leaderId", "ok", "role", "state", "term"])
    t.match(r.json, { ok: true, id: "n1", role: "leader", leader: "n1", state: "leader", leaderId: "n1" })
    t.ok((r.json!["term"] as number) >= 1)
    const mine = await http("GET", "/health", undefined, { "X-Request-Id": "abc-123" })
    t.equal(mine.headers.get("x-request-id"), "abc-123", "a client's request id is kept")
  })

  t.test("GET /raft/status is admin.status", async (t) => {
    const r = await http("GET", "/raft/status")
    t.equal(r.status, 200)
    const nats = (await nc.request("archio.c.admin.status", "", { timeout: 5000 })).json<Record<string, unknown>>()
    const missing = Object.keys(nats).filter((k) => !(k in r.json!))
    t.same(missing, [], "every field of admin.status (and the older service's beside them)")
    t.match(r.json, {
      ok: true,
      id: "n1",
      cluster: "c",
      role: "leader",
      leader: "n1",
      members: [{ id: "n1", role: "voter", matchIndex: Number, lag: 0 }],
      commitIndex: Number,
      appliedIndex: Number,
      firstIndex: Number,
      lastIndex: Number,
      lastTerm: Number,
      leaderChanges: Number,
      logBaseIndex: Number,
      logBaseTerm: Number,
      peers: []
    })
    t.ok("snapshot" in r.json!, "the last snapshot (null while none was taken)")
    // One key "boot" ("1") is written at start (support/node.ts) before anything else here.
    const kv = nats["kv"] as { keys: number; bytes: number; writes: number }
    t.ok(kv.keys >= 1 && kv.bytes >= kv.keys * 2, `admin.status counts keys and their bytes (${JSON.stringify(kv)})`)
    t.ok(kv.writes >= 1, `and the key writes applied (${kv.writes}), "boot" among them`)
    // A new key, an overwrite and a delete: three key changes, whatever they do to the key count.
    for (const [op, body] of [["put", '{"key":"counted","value":"1"}'], ["put", '{"key":"counted","value":"2"}'], ["del", '{"key":"counted"}']]) {
      t.match((await nc.request(`archio.c.kv.${op}`, body, { timeout: 5000 })).json(), { ok: true })
    }
    const after = (await nc.request("archio.c.admin.status", "", { timeout: 5000 })).json<{ kv: typeof kv }>().kv
    t.equal(after.writes - kv.writes, 3, "kv.writes grew by the three changes")
    t.equal(after.keys, kv.keys, "while the keys came back to where they were")
  })

  t.test("PUT and POST /set write through the same path as kv.put", async (t) => {
    const r = await http("PUT", "/set", '{"key":"fruit","value":"apple"}')
    t.equal(r.status, 200)
    t.match(r.json, { ok: true, key: "fruit", revision: Number, node: "n1" })
    const viaNats = await send(nc, "get", '{"key":"fruit"}')
    t.match(viaNats.body, { ok: true, value: "apple", modRevision: r.json!["revision"] }, "committed, applied, visible over NATS")
    const post = await http("POST", "/set", '{"key":"fruit","value":"banana","ttl":60000}')
    t.equal(post.status, 200)
    t.equal(post.json!["revision"], (r.json!["revision"] as number) + 1)
    const curlish = await http("PUT", "/set", '{"key":"form","value":"x"}', { "Content-Type": "application/x-www-form-urlencoded" })
    t.equal(curlish.status, 200, "the content type does not matter (curl -d sends a form type)")
  })

  t.test("GET /get reads linearizably, or stale when asked", async (t) => {
    await http("PUT", "/set", '{"key":"color","value":"blue"}')
    const r = await http("GET", "/get?key=color")
    t.equal(r.status, 200)
    t.match(r.json, { ok: true, key: "color", value: "blue", version: 1, consistency: "linearizable", node: "n1" })
    const stale = await http("GET", "/get?key=color&consistency=stale")
    t.match(stale.json, { ok: true, value: "blue", consistency: "stale" })
    const odd = await http("GET", `/get?key=${encodeURIComponent("a b/é?&=")}`)
    t.equal(odd.status, 404, "an escaped key is decoded (and missing)")
    t.match(odd.json, { ok: false, message: 'key "a b/é?&=" does not exist' })
  })

  t.test("GET /get of a missing key is 404", async (t) => {
    const r = await http("GET", "/get?key=nothing-here")
    t.equal(r.status, 404)
    t.match(r.json, { ok: false, message: /does not exist/, error: { code: "not_found", message: /does not exist/, detail: { revision: Number } } })
  })

  t.test("DELETE /delete removes the key", async (t) => {
    await http("PUT", "/set", '{"key":"gone","value":"soon"}')
    const r = await http("DELETE", "/delete?key=gone")
    t.equal(r.status, 200)
    t.match(r.json, { ok: true, key: "gone", deleted: true, revision: Number, node: "n1" })
    t.equal((await http("GET", "/get?key=gone")).status, 404)
    const again = await http("DELETE", "/delete?key=gone")
    t.equal(again.status, 200, "deleting a missing key is not an error")
    t.match(again.json, { ok: true, deleted: false })
    t.match((await send(nc, "get", '{"key":"gone"}')).body, { ok: false, error: { code: "not_found" } }, "gone over NATS too")
  })

  t.test("bad input is 400 with the gateway's message, and writes nothing", async (t) => {
    const before = (await http("GET", "/raft/status")).json!["commitIndex"]
    const cases: Array<[string, string, string | undefined, RegExp]> = [
      ["PUT", "/set", "{", /invalid JSON/],
      ["PUT", "/set", "[1,2]", /JSON object/],
      ["PUT", "/set", '{"key":"a","value":"1","vaule":"2"}', /unknown field "vaule"/],
      ["PUT", "/set", '{"value":"1"}', /key/],
      ["PUT", "/set", "", /key/],
      ["PUT", "/set", '{"key":"a","value":1}', /value/],
      ["PUT", "/set", '{"key":"","value":"1"}', /key/],
      ["GET", "/get", undefined, /key/],
      ["GET", "/get?key=", undefined, /key/],
      ["GET", "/get?key=a&key=b", undefined, /key/],
      ["GET", "/get?key=a&colour=red", undefined, /unknown field "colour"/],
      ["GET", "/get?key=a&consistency=eventual", undefined, /consistency/],
      ["DELETE", "/delete", undefined, /key/],
      ["DELETE", "/delete?key=a&force=1", undefined, /unknown field "force"/]
    ]
    for (const [method, path, body, message] of cases) {
      const r = await http(method, path, body)
      t.equal(r.status, 400, `${method} ${path} ${body ?? ""}`)
      t.match(r.json, { ok: false, message, error: { code: "bad_request", message } }, `${method} ${path} ${body ?? ""}`)
    }
    const big = await http("PUT", "/set", JSON.stringify({ key: "big", value: "x".repeat(300 * 1024) }))
    t.equal(big.status, 413, "a value over 256 KiB")
    t.match(big.json, { ok: false, error: { code: "too_large", message: /value/ } })
    const huge = await http("PUT", "/set", "x".repeat(600 * 1024)).catch((e: unknown) => e)
    if (huge instanceof Error) t.pass("a body over 512 KiB: the connection was closed early")
    else t.match(huge, { status: 413, json: { ok: false, error: { code: "too_large" } } }, "a body over 512 KiB")
    t.equal((await http("GET", "/raft/status")).json!["commitIndex"], before, "nothing was proposed")
    t.equal((await http("GET", "/health")).status, 200, "still serving")
  })

  t.test("unknown paths are 404 and wrong methods 405, in JSON", async (t) => {
    const r = await http("GET", "/nope")
    t.equal(r.status, 404)
    t.match(r.json, { ok: false, message: /no route \/nope/, error: { code: "not_found" } })
    t.equal((await http("GET", "/dashboard/nope.js")).status, 404)
    t.equal((await http("GET", "/health/")).status, 404, "no trailing-slash aliases")
    const wrong: Array<[string, string, string]> = [
      ["GET", "/set", "PUT, POST"],
      ["DELETE", "/set", "PUT, POST"],
      ["POST", "/get", "GET"],
      ["PUT", "/delete", "DELETE"],
      ["POST", "/health", "GET"],
      ["DELETE", "/metrics", "GET"],
      ["PUT", "/raft/status", "GET"]
    ]
    for (const [method, path, allow] of wrong) {
      const w = await http(method, path, method === "GET" || method === "DELETE" ? undefined : "{}")
      t.equal(w.status, 405, `${method} ${path}`)
      t.equal(w.headers.get("allow"), allow)
      t.match(w.json, { ok: false, message: new RegExp(`^${path} takes`), error: { code: "method_not_allowed" } })
    }
  })

  t.test("GET /metrics: Prometheus text that counts HTTP and NATS requests", async (t) => {
    const first = await http("GET", "/metrics")
    t.equal(first.status, 200)
    t.equal(first.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
    const a = parseExposition(first.text)
    for (const [name, type] of [
      ["archio_node_info", "gauge"],
      ["archio_http_requests_total", "counter"],
      ["archio_http_request_duration_seconds", "histogram"],
      ["archio_nats_requests_total", "counter"],
      ["archio_nats_request_duration_seconds", "histogram"],
      ["archio_raft_term", "gauge"],
      ["archio_raft_commit_index", "gauge"],
      ["archio_raft_applied_index", "gauge"],
      ["archio_raft_log_entries", "gauge"],
      ["archio_raft_last_index", "gauge"],
      ["archio_raft_leader_changes_total", "counter"],
      ["archio_raft_is_leader", "gauge"],
      ["archio_raft_has_leader", "gauge"],
      ["archio_raft_log_base_index", "gauge"],
      ["archio_snapshot_last_index", "gauge"],
      ["archio_requests_held", "gauge"],
      ["archio_requests_busy_total", "counter"],
      ["kvstore_snapshot_operations_total", "counter"],
      ["kvstore_snapshot_duration_seconds", "histogram"],
      ["kvstore_snapshot_size_bytes", "histogram"],
      ["kvstore_snapshot_restore_duration_seconds", "histogram"]
    ] as const) {
      t.equal(a.types.get(name), type, `TYPE ${name} ${type}`)
      t.ok(a.helps.get(name), `HELP ${name}`)
    }
    checkHistograms(t, a)
    t.equal(value(a, "archio_node_info", { node: "n1", cluster: "c" }), 1)
    t.equal(value(a, "archio_raft_is_leader"), 1)
    t.equal(value(a, "archio_raft_has_leader"), 1)
    t.ok(value(a, "archio_raft_term")! >= 1)
    t.ok(value(a, "archio_raft_leader_changes_total")! >= 1)
    const status = (await http("GET", "/raft/status")).json!
    t.equal(value(a, "archio_raft_log_entries"), (status["lastIndex"] as number) - (status["logBaseIndex"] as number))
    t.equal(value(a, "archio_raft_log_base_index"), status["logBaseIndex"])
    t.ok(value(a, "archio_raft_applied_index")! <= value(a, "archio_raft_commit_index")!)
    t.ok(value(a, "archio_http_requests_total", { endpoint: "/set", code: "200" })! >= 3, "earlier /set requests")
    t.ok(value(a, "archio_http_requests_total", { endpoint: "/get", code: "400" })! >= 1)
    t.ok(value(a, "archio_http_requests_total", { endpoint: "other", code: "404" })! >= 1, "unknown paths in one series")
    t.equal(
      a.samples.filter((s) => s.name === "archio_http_requests_total" && s.labels["endpoint"]?.startsWith("/nope")).length,
      0,
      "no series per unknown path"
    )

    await http("PUT", "/set", '{"key":"counted","value":"1"}')
    await http("GET", "/get?key=missing")
    await send(nc, "put", '{"key":"counted","value":"2"}')
    await send(nc, "get", '{"key":"missing"}')
    await send(nc, "put", "{")
    await nc.request("archio.c.node.n1.kv.put", '{"key":"direct","value":"1"}', { timeout: 5000 })
    await nc.request("archio.c.admin.status", "", { timeout: 5000 })
    const b = parseExposition((await http("GET", "/metrics")).text)
    checkHistograms(t, b)
    const grew = (name: string, labels: Record<string, string>, by: number) =>
      t.equal((value(b, name, labels) ?? 0) - (value(a, name, labels) ?? 0), by, `${name}${JSON.stringify(labels)} +${by}`)
    grew("archio_http_requests_total", { endpoint: "/set", code: "200" }, 1)
    grew("archio_http_requests_total", { endpoint: "/get", code: "404" }, 1)
    grew("archio_http_requests_total", { endpoint: "/metrics", code: "200" }, 1)
    grew("archio_http_request_duration_seconds_count", { endpoint: "/set" }, 1)
    grew("archio_nats_requests_total", { endpoint: "kv.put", code: "ok" }, 2)
    grew("archio_nats_requests_total", { endpoint: "kv.put", code: "bad_request" }, 1)
    grew("archio_nats_requests_total", { endpoint: "kv.get", code: "not_found" }, 1)
    grew("archio_nats_requests_total", { endpoint: "admin.status", code: "ok" }, 1)
    grew("archio_nats_request_duration_seconds_count", { endpoint: "kv.put" }, 3)
    t.ok(value(b, "archio_raft_commit_index")! >= value(a, "archio_raft_commit_index")! + 3, "three more writes committed")
  })

  t.test("GET /metrics after admin.snapshot: the snapshot families count it", async (t) => {
    const before = parseExposition((await http("GET", "/metrics")).text)
    const taken = (await nc.request("archio.c.admin.snapshot", "", { timeout: 5000 })).json<{ ok: boolean; index: number; size: number }>()
    t.match(taken, { ok: true, index: Number, size: Number })
    const after = parseExposition((await http("GET", "/metrics")).text)
    checkHistograms(t, after)
    const ops = "kvstore_snapshot_operations_total"
    const grew = (name: string, labels: Record<string, string>, by: number) =>
      t.equal((value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0), by, `${name}${JSON.stringify(labels)} +${by}`)
    grew(ops, { phase: "snapshot", status: "started" }, 1)
    grew(ops, { phase: "snapshot", status: "succeeded" }, 1)
    grew(ops, { phase: "persist", status: "succeeded" }, 1)
    grew(ops, { phase: "snapshot", status: "failed" }, 0)
    t.equal(value(after, ops, { phase: "restore", status: "succeeded" }), 0, "a restore series, at 0")
    grew("kvstore_snapshot_duration_seconds_count", {}, 1)
    grew("kvstore_snapshot_size_bytes_count", {}, 1)
    grew("kvstore_snapshot_size_bytes_sum", {}, taken.size)
    t.equal(value(after, "kvstore_snapshot_size_bytes_bucket", { le: "+Inf" }), value(after, "kvstore_snapshot_size_bytes_count"))
    t.equal(value(after, "kvstore_snapshot_restore_duration_seconds_count"), 0, "nothing restored on a single node")
    t.equal(value(after, "archio_snapshot_last_index"), taken.index)
    const status = (await http("GET", "/raft/status")).json!
    t.match(status["snapshot"], { index: taken.index, term: Number, size: taken.size, time: Number }, "/raft/status has the last snapshot")
    grew("archio_nats_requests_total", { endpoint: "admin.snapshot", code: "ok" }, 1)
    // classic-level can tell the log's size on disk: the gauge appears once its first read ended.
    await until("the log disk gauge", async () => value(parseExposition((await http("GET", "/metrics")).text), "archio_raft_log_disk_bytes") !== undefined, {
      timeoutMs: 5_000,
      everyMs: 50
    })
    const disk = parseExposition((await http("GET", "/metrics")).text)
    t.equal(disk.types.get("archio_raft_log_disk_bytes"), "gauge")
    t.ok(value(disk, "archio_raft_log_disk_bytes")! >= 0)
  })
})

t.test("a node without a leader, then a write through a follower", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const ports = { n1: await freePort(), n2: await freePort() }
  const start = (id: "n1" | "n2") => {
    const c = config({ NODE_ID: id, PEERS: "n1,n2,n3", NATS_URL: server.url, DATA_DIR: join(dir, id), CLUSTER: "c", HTTP_PORT: String(ports[id]) })
    const fiber = Effect.runFork(runNode(c).pipe(Effect.provide(quiet)))
    t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  }
  // Each check is an HTTP round trip to a node still starting: every 50 ms, for up to 15 s.
  const booting = { timeoutMs: 15_000, everyMs: 50 }

  // One of three members alone cannot elect anyone.
  start("n1")
  await until("n1 to answer HTTP", async () => (await request(ports.n1, "GET", "/health")).json !== undefined, booting)
  const lonely = await request(ports.n1, "GET", "/health")
  t.equal(lonely.status, 503, "no leader: not ready")
  t.match(lonely.json, { ok: false, id: "n1", leader: null, message: /no leader/ })
  const refused = await request(ports.n1, "PUT", "/set", '{"key":"k","value":"v"}')
  t.equal(refused.status, 503)
  t.match(refused.json, { ok: false, message: /no leader/, error: { code: "unavailable", detail: { leader: null } } })
  t.equal((await request(ports.n1, "GET", "/get?key=k")).status, 503, "no linearizable read without a leader")
  t.equal((await request(ports.n1, "GET", "/get?key=k&consistency=stale")).status, 404, "a stale read answers locally")
  const noLeaderMetrics = parseExposition((await request(ports.n1, "GET", "/metrics")).text)
  t.equal(value(noLeaderMetrics, "archio_raft_has_leader"), 0)
  t.equal(value(noLeaderMetrics, "archio_raft_is_leader"), 0)

  start("n2")
  await until("a leader", async () => (await request(ports.n1, "GET", "/health")).status === 200 && (await request(ports.n2, "GET", "/health")).status === 200, booting)
  const leader = (await request(ports.n1, "GET", "/health")).json!["leader"] as "n1" | "n2"
  const follower = leader === "n1" ? "n2" : "n1"
  t.match((await request(ports[follower], "GET", "/health")).json, { ok: true, role: "follower", leader })

  const put = await request(ports[follower], "PUT", "/set", '{"key":"via-follower","value":"yes"}')
  t.equal(put.status, 200)
  t.match(put.json, { ok: true, key: "via-follower", node: leader }, "the leader committed and answered")
  const get = await request(ports[follower], "GET", "/get?key=via-follower")
  t.match(get.json, { ok: true, value: "yes", consistency: "linearizable", node: follower }, "a linearizable read on the follower sees it")
  const del = await request(ports[follower], "DELETE", "/delete?key=via-follower")
  t.match(del.json, { ok: true, deleted: true, node: leader })
  const bad = await request(ports[follower], "PUT", "/set", '{"key":"x"}')
  t.equal(bad.status, 400, "refused on the follower before any forwarding")
  t.match((await request(ports[leader], "GET", "/raft/status")).json, {
    role: "leader",
    peers: [{ id: follower, nextIndex: Number, matchIndex: Number }, { id: "n3", nextIndex: Number, matchIndex: Number }]
  }, "the leader's status has its peers' progress")
  const fm = parseExposition((await request(ports[follower], "GET", "/metrics")).text)
  t.equal(value(fm, "archio_raft_is_leader"), 0)
  t.equal(value(fm, "archio_http_requests_total", { endpoint: "/set", code: "200" }), 1)
  const lm = parseExposition((await request(ports[leader], "GET", "/metrics")).text)
  t.ok(value(lm, "archio_nats_requests_total", { endpoint: "kv.put", code: "ok" })! >= 1, "the leader counted the forwarded write")
})

t.test("HTTP_TOKEN guards writes and /raft/status; reads, health and metrics stay open; 127.0.0.1 by default", async (t) => {
  const port = await freePort()
  const token = "s3cret-token-of-some-length"
  await singleNode(t, { HTTP_PORT: String(port), HTTP_TOKEN: token })
  const http = (method: string, path: string, body?: string, headers?: Record<string, string>) => request(port, method, path, body, headers)
  const bearer = { Authorization: `Bearer ${token}` }
  await until("the shim answers", async () => (await http("GET", "/health").catch(() => undefined))?.status === 200)

  for (const [method, path, body] of [["PUT", "/set", '{"key":"k","value":"v"}'], ["DELETE", "/delete?key=k", undefined], ["GET", "/raft/status", undefined]] as const) {
    const none = await http(method, path, body)
    t.equal(none.status, 401, `${method} ${path} without a token`)
    t.match(none.json, { ok: false, error: { code: "unauthorized", message: /needs the node's HTTP token/ } })
    t.equal(none.headers.get("www-authenticate"), 'Bearer realm="archio"')
    t.equal((await http(method, path, body, { Authorization: "Bearer wrong-token-wrong-token" })).status, 401, `${method} ${path} with a wrong token`)
    t.equal((await http(method, path, body, { Authorization: token })).status, 401, `${method} ${path} with the token but not as a bearer`)
  }
  const put = await http("PUT", "/set", '{"key":"k","value":"v"}', bearer)
  t.equal(put.status, 200, "a write with the token")
  t.equal((await http("GET", "/raft/status", undefined, bearer)).status, 200, "status with the token")
  t.match((await http("GET", "/get?key=k")).json, { ok: true, value: "v" }, "reads need no token")
  t.equal((await http("GET", "/health")).status, 200, "health needs none")
  t.equal((await http("GET", "/metrics")).status, 200, "metrics need none")
  t.equal((await http("DELETE", "/delete?key=k", undefined, { authorization: `bearer ${token}` })).status, 200, "the scheme is case-insensitive")

  // Only on 127.0.0.1: another address of this machine is refused.
  const other = Object.values(networkInterfaces())
    .flat()
    .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address
  if (other === undefined) t.comment("no non-loopback IPv4 address here: the interface check is skipped")
  else await t.rejects(fetch(`http://${other}:${port}/health`), `not listening on ${other}`)
})

t.test("--http-host and HTTP_TOKEN are checked", async (t) => {
  t.match(parseConfig([], { NODE_ID: "n1", HTTP_PORT: "8081" }), { _tag: "Right", right: { httpHost: "127.0.0.1", httpToken: undefined } })
  t.match(parseConfig([], { NODE_ID: "n1", HTTP_HOST: "0.0.0.0", HTTP_TOKEN: "0123456789abcdef" }), { _tag: "Right", right: { httpHost: "0.0.0.0", httpToken: "0123456789abcdef" } })
  const short = parseConfig([], { NODE_ID: "n1", HTTP_TOKEN: "short" })
  t.match(short, { _tag: "Left", left: { problems: [/HTTP_TOKEN must be at least 16 characters/] } })
})

t.test("a node whose HTTP port is taken does not start, and says why", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const squatter = createServer()
  await new Promise<void>((resolve) => squatter.listen(0, resolve))
  t.teardown(() => new Promise((resolve) => squatter.close(resolve)))
  const port = (squatter.address() as AddressInfo).port
  const c = config({ NODE_ID: "n1", PEERS: "n1", NATS_URL: server.url, DATA_DIR: join(dir, "n1"), CLUSTER: "c", HTTP_PORT: String(port) })
  const exit = await Effect.runPromiseExit(runNode(c).pipe(Effect.provide(quiet)))
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
    t.equal(exit.cause.error._tag, "HttpError")
    t.match(exit.cause.error.message, `cannot serve HTTP on port ${port}`)
  } else t.fail("expected an HttpError")
  // Everything it opened was released: the same data dir starts on a free port.
  const again = { ...c, httpPort: await freePort() }
  const fiber = Effect.runFork(runNode(again).pipe(Effect.provide(quiet)))
  t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  await until("the restarted node to be healthy", async () => (await request(again.httpPort, "GET", "/health")).status === 200, { timeoutMs: 15_000, everyMs: 50 })
  t.pass("restarted on the same data dir")
})

// ---------------------------------------------------------------------------------------------
// The shell alone, with a stub backend

interface LogLine {
  readonly level: string
  readonly message: string
  readonly requestId: unknown
  readonly failure: boolean
}

const stubStatus = (leader: string | null) => ({
  ok: true as const,
  id: "s1",
  cluster: "c",
  role: leader === "s1" ? "leader" : "follower",
  term: 7,
  leader,
  commitIndex: 12,
  appliedIndex: 11,
  firstIndex: 3,
  lastIndex: 12,
  leaderChanges: 2,
  logBaseIndex: 2,
  snapshot: leader === null ? null : { index: 2 },
  admission: { held: { writes: 3, reads: 0, leases: 1, forwards: 0 }, busy: { writes: 5, reads: 0, leases: 0, forwards: 2 } }
})

const startStub = async (t: Test, backend: Http.Backend, port = 0, closeGraceMs = 200) => {
  const logs: Array<LogLine> = []
  const logger = Logger.make(({ logLevel, message, annotations, cause }) => {
    logs.push({
      level: logLevel.label,
      message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
      requestId: HashMap.get(annotations, "requestId").pipe((o) => (o._tag === "Some" ? o.value : undefined)),
      failure: cause._tag !== "Empty"
    })
  })
  const scope = Effect.runSync(Scope.make())
  const metrics = Metrics.make("0.0.0")
  const exit = await Effect.runPromiseExit(
    Http.make({ port, instanceId: "s1-x", metrics, closeGraceMs }, backend).pipe(
      Scope.extend(scope),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  )
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  t.teardown(close)
  return { exit, logs, metrics, close }
}

t.test("the shell: thrown handlers, request logs, shutdown, a port in use", async (t) => {
  let throwOnce = true
  const backend: Http.Backend = {
    status: () => {
      if (throwOnce) {
        throwOnce = false
        throw new Error("status exploded")
      }
      return stubStatus("s1")
    },
    write: () => {
      throw new Error("write exploded")
    },
    // An answer that cannot be encoded, given later from another callback (as the gateway does).
    get: (r) => void setTimeout(() => r.ok({ ok: true, big: 1n }), 5)
  }
  const { exit, logs, metrics, close } = await startStub(t, backend)
  if (!Exit.isSuccess(exit)) throw new Error("the stub server did not start")
  const port = exit.value.port
  t.ok(port > 0, "port 0 picks a free port")
  const connectAnswer = await new Promise<string>((resolve, reject) => {
    const socket = connectSocket(port, "127.0.0.1", () => socket.write("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
    let text = ""
    socket.on("data", (b: Buffer) => (text += b.toString()))
    socket.on("end", () => resolve(text))
    socket.on("error", reject)
  })
  t.match(connectAnswer, /^HTTP\/1\.1 405 Method Not Allowed\r\n/, "CONNECT is refused with 405, not a silently dropped socket")

  const thrown = await request(port, "GET", "/raft/status")
  t.equal(thrown.status, 500, "a throwing status handler")
  t.same(thrown.json, {
    ok: false,
    message: "internal error while handling the request",
    error: { code: "internal", message: "internal error while handling the request" }
  })
  const write = await request(port, "PUT", "/set", '{"key":"a","value":"b"}', { "X-Request-Id": "req-42" })
  t.equal(write.status, 500, "a throwing write handler")
  t.equal(write.headers.get("x-request-id"), "req-42")
  const later = await request(port, "GET", "/get?key=a")
  t.equal(later.status, 500, "an answer that cannot be encoded")
  t.match(later.json, { ok: false, error: { code: "internal" } })
  const health = await request(port, "GET", "/health")
  t.equal(health.status, 200, "still serving after three failures")
  t.same(health.json, { ok: true, id: "s1", role: "leader", term: 7, leader: "s1", state: "leader", leaderId: "s1" })
  const unsafeId = await request(port, "GET", "/health", undefined, { "X-Request-Id": "no spaces allowed" })
  t.match(unsafeId.headers.get("x-request-id"), /^s1-x-[0-9a-z]+$/, "an unusable client id is replaced")

  const text = Metrics.render(metrics, stubStatus("s1"))
  const e = parseExposition(text)
  t.equal(value(e, "archio_http_requests_total", { endpoint: "/raft/status", code: "500" }), 1)
  t.equal(value(e, "archio_http_requests_total", { endpoint: "/set", code: "500" }), 1)
  t.equal(value(e, "archio_raft_log_entries"), 10)
  t.equal(value(e, "archio_raft_log_base_index"), 2)
  t.equal(value(e, "archio_snapshot_last_index"), 2)
  t.equal(value(e, "archio_raft_log_disk_bytes"), undefined, "no disk gauge without a reader")
  t.equal(value(e, "archio_raft_leader_changes_total"), 2)
  t.equal(value(e, "archio_requests_held", { waiting: "writes" }), 3)
  t.equal(value(e, "archio_requests_held", { waiting: "leases" }), 1)
  t.equal(value(e, "archio_requests_busy_total", { waiting: "forwards" }), 2)

  const requestLines = logs.filter((l) => /^http [A-Z]+ /.test(l.message))
  t.equal(requestLines.length, 5, "one log line per request")
  t.match(requestLines[0], { level: "ERROR", message: /^http GET \/raft\/status 500 \d+\.\dms$/, failure: true, requestId: /^s1-x-1$/ })
  t.match(requestLines[1], { level: "ERROR", message: /^http PUT \/set 500 /, requestId: "req-42" })
  t.match(requestLines[3], { level: "INFO", message: /^http GET \/health 200 \d+\.\dms$/, failure: false })
  t.ok(logs.some((l) => /^http listening on every interface port \d+$/.test(l.message)), "the listening line")

  // A port in use fails with a clear error.
  const taken = await startStub(t, backend, port)
  t.ok(Exit.isFailure(taken.exit), "a second server on the same port fails")
  if (Exit.isFailure(taken.exit) && taken.exit.cause._tag === "Fail") {
    t.equal(taken.exit.cause.error._tag, "HttpError")
    t.match(taken.exit.cause.error.message, new RegExp(`^cannot serve HTTP on port ${port}: .*EADDRINUSE`))
  } else t.fail("expected an HttpError")

  // Closing the scope stops the server, even with a keep-alive connection open.
  await close()
  const after = await request(port, "GET", "/health").catch((err: unknown) => err)
  t.ok(after instanceof Error, "nothing listens after shutdown")
})

t.test("a shutdown waits for a request in flight, up to the grace period", async (t) => {
  let pending: ((body: unknown) => void) | undefined
  const backend: Http.Backend = {
    status: () => stubStatus(null),
    write: () => {},
    get: (r) => {
      pending = (body) => r.ok(body)
    }
  }
  const { exit, close } = await startStub(t, backend, 0, 10_000)
  if (!Exit.isSuccess(exit)) throw new Error("the stub server did not start")
  const port = exit.value.port
  t.equal((await request(port, "GET", "/health")).status, 503, "no leader: 503 (and a keep-alive connection left open)")
  const inFlight = request(port, "GET", "/get?key=a")
  await until("the request to reach the backend", () => pending !== undefined, { everyMs: 5 })
  const began = performance.now()
  const closing = close()
  setTimeout(() => pending!({ ok: true, value: "late" }), 50)
  const answer = await inFlight
  t.match(answer.json, { ok: true, value: "late" }, "answered during shutdown")
  t.equal(answer.headers.get("connection"), "close", "the answer closes its connection")
  await closing
  t.ok(performance.now() - began < 5_000, "closed once the request was answered, not at the end of the grace period")
})

t.test("metrics: buckets, escaping and number formats", async (t) => {
  const m = new Metrics.EndpointMeter("x", [0.1, 1])
  m.record("ok", 0.05)
  m.record("ok", 0.1)
  m.record("bad_request", 0.5)
  m.record("ok", 7)
  t.same([...m.buckets], [2, 1, 1], "le is inclusive; the last slot is +Inf")
  t.equal(m.count, 4)
  t.equal(m.sum, 7.65)
  t.same([...m.codes], [["ok", 3], ["bad_request", 1]])
  const family = new Metrics.RequestMetrics("t", "Things.", "Seconds.", ["a\"b\\c\nd"])
  const out: Array<string> = []
  family.render(out)
  t.ok(out.includes('t_request_duration_seconds_count{endpoint="a\\"b\\\\c\\nd"} 0'), "label values escaped")
  t.equal(Metrics.formatNumber(Infinity), "+Inf")
  t.equal(Metrics.formatNumber(-Infinity), "-Inf")
  t.equal(Metrics.formatNumber(Number.NaN), "NaN")
  t.equal(Metrics.formatNumber(0.25), "0.25")
  t.same(
    JSON.parse(Buffer.from(Http.queryJson(new URL("http://h/get?key=a&x=1&x=2&x=3&__proto__=p"))).toString()),
    JSON.parse('{"key":"a","x":["1","2","3"],"__proto__":"p"}'),
    "query to JSON: repeats become arrays, no prototype tricks"
  )
})
