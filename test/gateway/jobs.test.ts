/**
 * The job endpoints over the wire, on a single node, with hand-written JSON as a worker in
 * another language would send it: enqueue, lease (including long polls), ack, fail, extend,
 * get, list, stats, cancel, retry, purge, events, and the errors of each.
 */
import t from "tap"
import type { NatsConnection } from "@nats-io/transport-node"
import { singleNode, type Body, type Reply } from "../support/node.ts"
import { sleep, until } from "../support/wait.ts"

const jobs = async (nc: NatsConnection, op: string, payload: unknown, timeout = 5000): Promise<Reply> => {
  const msg = await nc.request(`archio.c.jobs.${op}`, typeof payload === "string" ? payload : JSON.stringify(payload), { timeout })
  return { body: msg.json<Body>(), code: msg.headers?.get("Nats-Service-Error-Code") || undefined }
}

const ok = async (nc: NatsConnection, op: string, payload: unknown, timeout?: number): Promise<Body> => {
  const r = await jobs(nc, op, payload, timeout)
  if (!r.body.ok) throw new Error(`${op} ${JSON.stringify(payload)} failed: ${JSON.stringify(r.body)}`)
  return r.body
}

type Leased = { id: string; token: number; attempt: number; payload: unknown; leaseUntil: number; queue: string }
const leased = (b: Body): Leased[] => b["jobs"] as Leased[]

t.test("jobs over NATS on one node", async (t) => {
  const nc = await singleNode(t)

  t.test("enqueue, lease by priority, ack; get shows each state", async (t) => {
    const a = await ok(nc, "enqueue", { queue: "mail", payload: { to: "a" } })
    t.match(a, { ok: true, existing: false, id: /^\d+$/ })
    const b = await ok(nc, "enqueue", { queue: "mail", payload: { to: "b" }, priority: 10 })
    t.match((await ok(nc, "get", { id: a["id"] }))["job"], { id: a["id"], state: "ready", queue: "mail", payload: { to: "a" }, attempts: 0, maxAttempts: 3 })
    const got = leased(await ok(nc, "lease", { queues: ["mail"], workerId: "w1", max: 5 }))
    t.same(got.map((j) => j.id), [b["id"], a["id"]], "higher priority first")
    t.match((await ok(nc, "get", { id: b["id"] }))["job"], { state: "leased", workerId: "w1", token: got[0]!.token, attempts: 1 })
    t.match(await ok(nc, "ack", { id: got[0]!.id, token: got[0]!.token, result: "sent" }), { ok: true, revision: Number })
    t.match((await ok(nc, "get", { id: b["id"] }))["job"], { state: "completed", result: "sent" })
    const again = await jobs(nc, "ack", { id: got[0]!.id, token: got[0]!.token })
    t.equal(again.code, "409")
    t.match(again.body, { ok: false, error: { code: "lease_lost" } })
    await ok(nc, "ack", { id: got[1]!.id, token: got[1]!.token })
  })

  t.test("a parked lease is answered as soon as a job is enqueued", async (t) => {
    const started = Date.now()
    const pending = ok(nc, "lease", { queues: ["park"], workerId: "w2", waitMs: 5000 }, 10_000)
    await sleep(200) // a parked lease shows nowhere: give the request time to park
    const e = await ok(nc, "enqueue", { queue: "park", payload: 1 })
    const r = await pending
    t.same(leased(r).map((j) => j.id), [e["id"]])
    t.ok(Date.now() - started < 3000, "long before the wait ended")
    const [j] = leased(r)
    await ok(nc, "ack", { id: j!.id, token: j!.token })
  })

  t.test("a lease with nothing ready answers empty at once, or after waitMs", async (t) => {
    t.same(leased(await ok(nc, "lease", { queues: ["empty"], workerId: "w" })), [])
    const started = Date.now()
    t.same(leased(await ok(nc, "lease", { queues: ["empty"], workerId: "w", waitMs: 300 })), [])
    t.ok(Date.now() - started >= 290, "waited")
  })

  t.test("delay: never early; fail with backoff then dead; retry", async (t) => {
    // The delay counts from the enqueue entry's time, which the leader stamps after this (same host clock).
    const beforeEnqueue = Date.now()
    const e = await ok(nc, "enqueue", { queue: "later", payload: 1, delay: 400, maxAttempts: 2, backoff: { type: "fixed", delay: 300 } })
    t.match((await ok(nc, "get", { id: e["id"] }))["job"], { state: "scheduled" })
    t.same(leased(await ok(nc, "lease", { queues: ["later"], workerId: "w" })), [], "not before its time")
    const [j] = leased(await ok(nc, "lease", { queues: ["later"], workerId: "w", waitMs: 3000 }, 8000))
    t.ok(j, "leased once due")
    t.ok(Date.now() - beforeEnqueue >= 400, "not early")
    t.match(await ok(nc, "fail", { id: j!.id, token: j!.token, error: "smtp down" }), { willRetry: true, runAt: Number })
    t.match((await ok(nc, "get", { id: e["id"] }))["job"], { state: "failed", error: "smtp down" })
    const [j2] = leased(await ok(nc, "lease", { queues: ["later"], workerId: "w", waitMs: 3000 }, 8000))
    t.equal(j2!.attempt, 2)
    t.match(await ok(nc, "fail", { id: j2!.id, token: j2!.token, error: "still down" }), { willRetry: false })
    t.match((await ok(nc, "get", { id: e["id"] }))["job"], { state: "dead", attempts: 2 })
    await ok(nc, "retry", { id: e["id"] })
    t.match((await ok(nc, "get", { id: e["id"] }))["job"], { state: "ready", attempts: 0 })
    await ok(nc, "cancel", { id: e["id"] })
    t.match((await ok(nc, "get", { id: e["id"] }))["job"], { state: "cancelled" })
    t.match((await jobs(nc, "cancel", { id: e["id"] })).body, { ok: false, error: { code: "conflict" } })
  })

  t.test("a lease that runs out returns the job; extend keeps it", async (t) => {
    const e = await ok(nc, "enqueue", { queue: "lease", payload: 1, leaseMs: 300 })
    const [j] = leased(await ok(nc, "lease", { queues: ["lease"], workerId: "w" }))
    t.match(await ok(nc, "extend", { id: j!.id, token: j!.token, leaseMs: 600, progress: { step: 1 } }), { leaseUntil: Number })
    await sleep(400) // past the first lease's end (300 ms)
    t.match((await ok(nc, "get", { id: e["id"] }))["job"], { state: "leased", progress: { step: 1 } }, "the extension holds past the first end")
    const [j2] = leased(await ok(nc, "lease", { queues: ["lease"], workerId: "w2", waitMs: 3000 }, 8000))
    t.equal(j2!.id, e["id"], "re-leased after the lease ran out")
    t.ok(j2!.token > j!.token)
    t.match((await jobs(nc, "ack", { id: j!.id, token: j!.token })).body, { error: { code: "lease_lost" } }, "the first worker's ack is refused")
    await ok(nc, "ack", { id: j2!.id, token: j2!.token })
  })

  t.test("ackBatch answers each ack on its own", async (t) => {
    await ok(nc, "enqueueBatch", { jobs: [{ queue: "ab", payload: 1 }, { queue: "ab", payload: 2 }] })
    const [x, y] = leased(await ok(nc, "lease", { queues: ["ab"], workerId: "w", max: 2 }))
    const r = await ok(nc, "ackBatch", { acks: [{ id: x!.id, token: x!.token, result: "fine" }, { id: y!.id, token: y!.token + 1 }] })
    t.match(r, { ok: true, results: [{ ok: true, revision: Number }, { ok: false, code: "lease_lost" }] })
    t.match((await ok(nc, "get", { id: x!.id }))["job"], { state: "completed", result: "fine" })
    t.match((await jobs(nc, "ackBatch", { acks: [] })).body, { ok: false, error: { code: "bad_request", message: /acks/ } })
    await ok(nc, "ack", { id: y!.id, token: y!.token })
  })

  t.test("release hands a job back without using up its attempt", async (t) => {
    const e = await ok(nc, "enqueue", { queue: "rel", payload: 1, maxAttempts: 1 })
    const [j] = leased(await ok(nc, "lease", { queues: ["rel"], workerId: "w" }))
    await ok(nc, "release", { id: j!.id, token: j!.token })
    t.match((await ok(nc, "get", { id: e["id"] }))["job"], { state: "ready", attempts: 0 })
    const [j2] = leased(await ok(nc, "lease", { queues: ["rel"], workerId: "w2" }))
    t.equal(j2!.attempt, 1)
    await ok(nc, "ack", { id: j2!.id, token: j2!.token })
  })

  t.test("unique keys, batches, idempotency tokens", async (t) => {
    const first = await ok(nc, "enqueue", { queue: "u", payload: 1, uniqueKey: "order-7" })
    t.match(await ok(nc, "enqueue", { queue: "u", payload: 2, uniqueKey: "order-7" }), { id: first["id"], existing: true })
    const batch = await ok(nc, "enqueueBatch", { jobs: [{ queue: "u", payload: 3 }, { queue: "u", payload: 4, uniqueKey: "order-7" }] })
    t.match(batch, { existing: [false, true] })
    t.equal((batch["ids"] as string[])[1], first["id"])
    const tok = { client: "producer-1", seq: 1 }
    const once = await ok(nc, "enqueue", { queue: "u", payload: 5, token: tok })
    t.same(await ok(nc, "enqueue", { queue: "u", payload: 5, token: tok }), once, "a retried enqueue returns the first answer")
    t.match(await ok(nc, "stats", { queue: "u" }), { queues: [{ queue: "u", enqueuedLastMinute: 3 }] }, "three new jobs enqueued: existing ones and a retry are not counted again")
  })

  t.test("list pages and stats", async (t) => {
    for (let i = 0; i < 5; i++) await ok(nc, "enqueue", { queue: "listed", payload: i })
    const p1 = await ok(nc, "list", { queue: "listed", limit: 3 })
    t.equal((p1["jobs"] as unknown[]).length, 3)
    t.type(p1["cursor"], "string")
    const p2 = await ok(nc, "list", { queue: "listed", limit: 3, cursor: p1["cursor"] })
    t.same((p2["jobs"] as Array<{ payload: number }>).map((j) => j.payload), [3, 4])
    t.notOk("cursor" in p2)
    t.match(await ok(nc, "list", { queue: "listed", state: "completed" }), { jobs: [] })
    t.match(await ok(nc, "stats", { queue: "listed" }), { queues: [{ queue: "listed", ready: 5, leased: 0, oldestReadyMs: Number, enqueuedLastMinute: 5, completedLastMinute: 0 }] })
    const all = await ok(nc, "stats", {})
    t.ok((all["queues"] as Array<{ queue: string }>).some((q) => q.queue === "mail"))
    t.match(await ok(nc, "purge", { queue: "mail" }), { purged: 2 })
  })

  t.test("events: every transition of a job on its own subject", async (t) => {
    const seen: Array<{ subject: string; state: string }> = []
    nc.subscribe("archio.c.events.jobs.ev.>", { callback: (_e, m) => void seen.push({ subject: m.subject, state: m.json<{ state: string }>().state }) })
    await nc.flush()
    const e = await ok(nc, "enqueue", { queue: "ev", payload: 1 })
    const [j] = leased(await ok(nc, "lease", { queues: ["ev"], workerId: "w" }))
    await ok(nc, "ack", { id: j!.id, token: j!.token, result: 1 })
    await until("three events", () => seen.length >= 3, { timeoutMs: 3_000 })
    t.same(seen, ["ready", "leased", "completed"].map((state) => ({ subject: `archio.c.events.jobs.ev.${e["id"]}.${state}`, state })))
  })

  t.test("bad input gets a clear error and changes nothing", async (t) => {
    const before = await ok(nc, "stats", { queue: "bad" })
    const cases: Array<[string, unknown, string, RegExp]> = [
      ["enqueue", { queue: "a.b", payload: 1 }, "bad_request", /queue/],
      ["enqueue", { queue: "q", payload: 1, delay: -1 }, "bad_request", /delay/],
      ["enqueue", { queue: "q", payload: 1, delay: 5, runAt: 5 }, "bad_request", /runAt/],
      ["enqueue", { queue: "q" }, "bad_request", /payload/],
      ["enqueue", { queue: "q", payload: "x".repeat(600 * 1024) }, "too_large", /limit/],
      ["enqueue", "{not json", "bad_request", /JSON/],
      ["lease", { queues: [], workerId: "w" }, "bad_request", /queues/],
      ["lease", { queues: ["q"] }, "bad_request", /workerId/],
      ["ack", { id: "999999", token: 1 }, "not_found", /999999/],
      ["fail", { id: "999999", token: 1, error: "x" }, "not_found", /999999/],
      ["ack", { id: "1", token: -1 }, "bad_request", /token/],
      ["list", { queue: "q", cursor: "zz" }, "bad_request", /cursor/],
      ["get", { id: "999999" }, "not_found", /999999/],
      ["retry", { id: "999999" }, "not_found", /999999/],
      ["purge", { queue: "q", states: ["ready"] }, "bad_request", /states/]
    ]
    for (const [op, payload, code, message] of cases) {
      const r = await jobs(nc, op, payload)
      t.match(r.body, { ok: false, error: { code, message } }, `${op} ${JSON.stringify(payload).slice(0, 60)}`)
    }
    t.same((await ok(nc, "stats", { queue: "bad" }))["queues"], before["queues"], "no queue changed")
    t.same((await ok(nc, "list", { queue: "q" }))["jobs"], [], "nothing was enqueued")
  })
})
