/**
 * The typed client against hand-written responders on a private nats-server: retries, tokens,
 * and how each failure surfaces.
 */
import t from "tap"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { archioError, ArchioError } from "../../protocol/errors.ts"
import { respondOnSubject } from "../../actors/gateway/service.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { singleNode } from "../support/node.ts"

const rejection = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e)

t.test("no responders and silence become unavailable and timeout once the deadline passes", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const client = new ArchioClient(nc, { deadlineMs: 300, attemptTimeoutMs: 100 })
  const none = await rejection(client.put("k", "v"))
  t.ok(none instanceof ArchioError && none.code === "unavailable", `nobody listens: ${String(none)}`)
  nc.subscribe("archio.dev.kv.get", { callback: () => {} })
  await nc.flush()
  const silent = await rejection(client.get("k"))
  t.ok(silent instanceof ArchioError && silent.code === "timeout", `nobody answers: ${String(silent)}`)
})

t.test("unavailable is retried with the same token until a node succeeds; then writes go to that node", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const tokens: Array<unknown> = []
  let calls = 0
  nc.subscribe("archio.dev.kv.put", {
    callback: (_e, m) => {
      const body = m.json<{ token: unknown }>()
      tokens.push(body.token)
      if (++calls < 3) respondOnSubject(nc, m.reply!, archioError("unavailable", "electing"))
      else m.respond(JSON.stringify({ ok: true, key: "k", revision: 7, node: "n2" }))
    }
  })
  let direct = 0
  nc.subscribe("archio.dev.node.n2.kv.put", {
    callback: (_e, m) => {
      direct++
      m.respond(JSON.stringify({ ok: true, key: "k", revision: 8, node: "n2" }))
    }
  })
  await nc.flush()
  const client = new ArchioClient(nc, { clientId: "c" })
  t.match(await client.put("k", "v"), { ok: true, revision: 7 })
  t.equal(tokens.length, 3)
  t.same(tokens, [tokens[0], tokens[0], tokens[0]], "every attempt carries the same token")
  t.match(tokens[0], { client: "c-0", seq: 1 })
  t.match(await client.put("k", "w"), { revision: 8 }, "the next write went straight to n2")
  t.equal(direct, 1)
})

t.test("other errors are not retried; a missing key reads as undefined", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  let calls = 0
  nc.subscribe("archio.dev.kv.cas", {
    callback: (_e, m) => {
      calls++
      respondOnSubject(nc, m.reply!, archioError("conflict", "key \"k\" is at revision 3, not 2", { revision: 3 }))
    }
  })
  nc.subscribe("archio.dev.kv.get", { callback: (_e, m) => void respondOnSubject(nc, m.reply!, archioError("not_found", "no such key")) })
  await nc.flush()
  const client = new ArchioClient(nc)
  const err = await rejection(client.cas("k", "v", 2))
  t.ok(err instanceof ArchioError && err.code === "conflict")
  t.match(err, { detail: { revision: 3 } })
  t.equal(calls, 1, "a conflict is final")
  t.equal(await client.get("k"), undefined)
})

t.test("scan asks kv.scan with the query as given; scanAll follows cursors over the same range", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const asked: Array<Record<string, unknown>> = []
  const item = (key: string) => ({ key, value: key.toUpperCase(), createRevision: 1, modRevision: 1, version: 1 })
  nc.subscribe("archio.x.kv.scan", {
    callback: (_e, m) => {
      const q = m.json<Record<string, unknown>>()
      asked.push(q)
      if (q["prefix"] === "unavailable" && asked.length === 1) return void respondOnSubject(nc, m.reply!, archioError("unavailable", "electing"))
      const pages: Record<string, unknown> = {
        none: { ok: true, items: [item("a"), item("b")], cursor: "Yg", revision: 5, consistency: "linearizable" },
        Yg: { ok: true, items: [item("c")], cursor: "Yw", revision: 6, consistency: "linearizable" },
        Yw: { ok: true, items: [], revision: 6, consistency: "linearizable" }
      }
      m.respond(JSON.stringify(pages[typeof q["cursor"] === "string" ? q["cursor"] : "none"]))
    }
  })
  await nc.flush()
  const client = new ArchioClient(nc, { cluster: "x" })
  const page = await client.scan({ prefix: "p/", limit: 2, keysOnly: true, consistency: "stale" })
  t.same(asked, [{ prefix: "p/", limit: 2, keysOnly: true, consistency: "stale" }], "no token on a read")
  t.match(page, { ok: true, items: [{ key: "a" }, { key: "b" }], cursor: "Yg", revision: 5 })

  asked.length = 0
  const pages = []
  for await (const p of client.scanAll({ start: "a", end: "z", limit: 2 })) pages.push(p)
  t.same(pages.map((p) => p.items.map((i) => i.key)), [["a", "b"], ["c"], []])
  t.same(asked, [
    { start: "a", end: "z", limit: 2 },
    { start: "a", end: "z", limit: 2, cursor: "Yg" },
    { start: "a", end: "z", limit: 2, cursor: "Yw" }
  ])

  asked.length = 0
  const fromCursor = []
  for await (const p of client.scanAll({ prefix: "p/", cursor: "Yw" })) fromCursor.push(p)
  t.equal(fromCursor.length, 1, "scanAll starts at the given cursor")

  asked.length = 0
  t.match(await client.scan({ prefix: "unavailable" }), { ok: true }, "a read is retried while the cluster elects")
  t.equal(asked.length, 2)

  nc.subscribe("archio.y.kv.scan", { callback: (_e, m) => void respondOnSubject(nc, m.reply!, archioError("bad_request", "cursor: not a cursor")) })
  await nc.flush()
  const bad = await rejection(new ArchioClient(nc, { cluster: "y" }).scan({ cursor: "!" }))
  t.ok(bad instanceof ArchioError && bad.code === "bad_request", "a refusal is not retried")
})

t.test("txn is a write: lists default to empty, one token across retries, then straight to the leader", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const bodies: Array<Record<string, unknown>> = []
  let calls = 0
  nc.subscribe("archio.dev.kv.txn", {
    callback: (_e, m) => {
      bodies.push(m.json<Record<string, unknown>>())
      if (++calls === 1) respondOnSubject(nc, m.reply!, archioError("unavailable", "electing"))
      else m.respond(JSON.stringify({ ok: true, succeeded: true, revision: 4, node: "n3" }))
    }
  })
  nc.subscribe("archio.dev.node.n3.kv.txn", {
    callback: (_e, m) => {
      bodies.push(m.json<Record<string, unknown>>())
      m.respond(JSON.stringify({ ok: true, succeeded: false, revision: 4, node: "n3" }))
    }
  })
  await nc.flush()
  const client = new ArchioClient(nc, { clientId: "tx" })
  const success = [{ op: "put" as const, key: "k", value: "v" }]
  t.same(await client.txn({ success }), { ok: true, succeeded: true, revision: 4, node: "n3" })
  t.same(bodies[0], { compare: [], success, failure: [], token: { client: "tx-0", seq: 1 } })
  t.same(bodies[1], bodies[0], "the retry carries the same token")
  const compare = [{ key: "k", target: "mod" as const, op: "==" as const, value: 3 }]
  const failed = await client.txn({ compare, success, failure: [{ op: "del", key: "k" }] })
  t.match(failed, { ok: true, succeeded: false }, "a failed compare resolves, it does not reject")
  t.same(bodies[2], { compare, success, failure: [{ op: "del", key: "k" }], token: { client: "tx-0", seq: 2 } }, "sent to n3 directly")
  t.equal(bodies.length, 3)
})

t.test("scan and txn against a real node", async (t) => {
  const nc = await singleNode(t)
  const client = new ArchioClient(nc, { cluster: "c" })
  for (const k of ["r/a", "r/b", "r/c"]) await client.put(k, k)
  const tx = await client.txn({
    compare: [{ key: "r/a", target: "value", op: "==", value: "r/a" }],
    success: [{ op: "put", key: "r/d", value: "d" }, { op: "del", key: "r/b" }]
  })
  t.match(tx, { ok: true, succeeded: true })
  const keys: Array<string> = []
  let revisions: Array<number> = []
  for await (const page of client.scanAll({ prefix: "r/", limit: 2 })) {
    keys.push(...page.items.map((i) => i.key))
    revisions = [...revisions, page.revision]
  }
  t.same(keys, ["r/a", "r/c", "r/d"])
  t.ok(revisions.every((r) => r === tx.revision), "nothing was written after the txn")
  const d = await client.get("r/d")
  t.equal(d?.modRevision, tx.revision)
  const again = await client.txn({ compare: [{ key: "r/b", target: "create", op: "!=", value: 0 }], failure: [{ op: "put", key: "r/e", value: "e" }] })
  t.match(again, { succeeded: false, revision: tx.revision + 1 })
  t.match(await client.get("r/e"), { value: "e" })
})
