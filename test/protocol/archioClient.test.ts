/**
 * The typed client against hand-written responders on a private nats-server: retries, tokens,
 * and how each failure surfaces.
 */
import t from "tap"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { archioError, ArchioError } from "../../protocol/errors.ts"
import { respondOnSubject } from "../../actors/gateway/service.ts"
import { natsClient, natsServer } from "../support/nats.ts"

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
