import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { connect, createInbox, headers, RequestError, type Msg, type NatsConnection } from "@nats-io/transport-node"
import t, { type Test } from "tap"
import {
  controlSubject,
  readError,
  respondOnSubject,
  start,
  type EndpointSpec,
  type Service,
  type ServiceSpec
} from "../../actors/gateway/service.ts"
import { archioError } from "../../protocol/errors.ts"
import { errorCodeHeader, errorHeader } from "../../protocol/reply.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { tempDir } from "../support/tmp.ts"
import { sleep, until } from "../support/wait.ts"

const enc = new TextEncoder()
const dec = new TextDecoder()
const bytes = (s: string): Uint8Array => enc.encode(s)
const text = (m: Pick<Msg, "data">): string => dec.decode(m.data)
const json = (m: Pick<Msg, "data">): Record<string, unknown> => JSON.parse(text(m)) as Record<string, unknown>

/** A server, a client connection and `n` service connections, all torn down with the test. */
const setup = async (t: Test, n = 1): Promise<{ client: NatsConnection; conns: NatsConnection[] }> => {
  const server = await natsServer(t)
  const client = await natsClient(t, server.url)
  const conns: NatsConnection[] = []
  for (let i = 0; i < n; i++) conns.push(await natsClient(t, server.url))
  return { client, conns }
}

/** Starts a service and makes sure the server knows its interest before returning. */
const startService = async (t: Test, nc: NatsConnection, spec: ServiceSpec): Promise<Service> => {
  const service = start(nc, spec)
  t.teardown(() => service.stop())
  await nc.flush()
  return service
}

const echo = (id: string): EndpointSpec => ({
  name: "echo",
  subject: "t.echo",
  handler: (req) => req.respond(bytes(`${id}:${dec.decode(req.data)}`))
})

/** Every reply to one request within `ms`. */
const gather = async (nc: NatsConnection, subject: string, ms = 400): Promise<Msg[]> => {
  const out: Msg[] = []
  for await (const m of await nc.requestMany(subject, undefined, { strategy: "timer", maxWait: ms })) out.push(m)
  return out
}

const isNoResponders = (e: unknown): boolean => e instanceof RequestError && e.isNoResponders()

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

t.test("two instances in one queue group share the requests", async (t) => {
  const { client, conns } = await setup(t, 2)
  const a = await startService(t, conns[0]!, { name: "kv", version: "1.0.0", id: "node-a", endpoints: [echo("node-a")] })
  const b = await startService(t, conns[1]!, { name: "kv", version: "1.0.0", id: "node-b", endpoints: [echo("node-b")] })
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => client.request("t.echo", bytes(String(i)), { timeout: 2000 })))
  const byNode = new Map<string, number>()
  const mismatched = replies.filter((m, i) => {
    const [node, body] = text(m).split(":")
    byNode.set(node!, (byNode.get(node!) ?? 0) + 1)
    return body !== String(i)
  })
  t.equal(mismatched.length, 0, "each reply answers its own request")
  t.ok((byNode.get("node-a") ?? 0) > 0, "node-a answered some")
  t.ok((byNode.get("node-b") ?? 0) > 0, "node-b answered some")
  t.equal((byNode.get("node-a") ?? 0) + (byNode.get("node-b") ?? 0), 200, "every request answered exactly once")
  t.equal(a.stats().endpoints[0]!.num_requests, byNode.get("node-a"), "node-a's stats count what it answered")
  t.equal(b.stats().endpoints[0]!.num_requests, byNode.get("node-b"), "node-b's stats count what it answered")
  t.equal(a.info().endpoints[0]!.queue_group, "q", "default queue group is q")
})

t.test("PING, INFO and STATS answer on all three subject forms with ADR-32's fields", async (t) => {
  const { client, conns } = await setup(t, 2)
  const metadata = { node: "a", cluster: "c1" }
  await startService(t, conns[0]!, {
    name: "kv",
    version: "1.2.3-rc.1",
    id: "node-a",
    description: "Archio client API",
    metadata,
    endpoints: [echo("node-a"), { name: "other", subject: "t.other.*", handler: (r) => r.respond(bytes("")) }]
  })
  await startService(t, conns[1]!, { name: "kv", version: "1.2.3-rc.1", id: "node-b", endpoints: [echo("node-b")] })
  await startService(t, conns[1]!, { name: "unrelated", version: "0.0.1", id: "x1", endpoints: [] })
  await client.request("t.echo", bytes("warm-up"), { timeout: 2000 })

  const identity = ["id", "metadata", "name", "type", "version"]
  const keys: Record<string, string[]> = {
    PING: identity,
    INFO: [...identity, "description", "endpoints"].sort(),
    STATS: [...identity, "endpoints", "started"].sort()
  }
  const endpointKeys: Record<string, string[]> = {
    INFO: ["metadata", "name", "queue_group", "subject"],
    STATS: ["average_processing_time", "last_error", "name", "num_errors", "num_requests", "processing_time", "queue_group", "subject"]
  }
  const type = { PING: "io.nats.micro.v1.ping_response", INFO: "io.nats.micro.v1.info_response", STATS: "io.nats.micro.v1.stats_response" }

  for (const verb of ["PING", "INFO", "STATS"] as const) {
    const all = (await gather(client, controlSubject(verb))).map(json)
    t.same(all.map((r) => `${String(r["name"])}/${String(r["id"])}`).sort(), ["kv/node-a", "kv/node-b", "unrelated/x1"], `$SRV.${verb} reaches every service`)
    const kind = (await gather(client, controlSubject(verb, "kv"))).map(json)
    t.same(kind.map((r) => r["id"]).sort(), ["node-a", "node-b"], `$SRV.${verb}.kv reaches both kv instances only`)
    const one = (await gather(client, controlSubject(verb, "kv", "node-a"))).map(json)
    t.equal(one.length, 1, `$SRV.${verb}.kv.node-a reaches one instance`)

    for (const r of [...all, ...kind, ...one]) {
      t.same(Object.keys(r).sort(), keys[verb], `${verb} has exactly the ADR-32 fields`)
      t.equal(r["type"], type[verb])
      for (const f of ["name", "id", "version"]) t.type(r[f], "string", `${verb}.${f} is a string`)
      t.type(r["metadata"], "object")
      for (const v of Object.values(r["metadata"] as object)) t.type(v, "string", "metadata values are strings")
    }
    const r = one[0]!
    t.same(r["metadata"], metadata, "service metadata as given")
    t.equal(r["version"], "1.2.3-rc.1")
    if (verb === "INFO") {
      t.equal(r["description"], "Archio client API")
      t.same(r["endpoints"], [
        { name: "echo", subject: "t.echo", queue_group: "q", metadata: {} },
        { name: "other", subject: "t.other.*", queue_group: "q", metadata: {} }
      ])
      const b = kind.find((x) => x["id"] === "node-b")!
      t.equal(b["description"], "", "description is an empty string when not given")
      t.same(b["metadata"], {}, "metadata is an empty object when not given")
    }
    if (verb === "STATS") {
      t.match(r["started"], rfc3339, "started is RFC 3339")
      t.ok(Number.isFinite(Date.parse(r["started"] as string)))
      const eps = r["endpoints"] as Array<Record<string, unknown>>
      t.equal(eps.length, 2)
      for (const e of eps) {
        t.same(Object.keys(e).sort(), endpointKeys["STATS"], "endpoint stats have exactly the ADR-32 fields")
        for (const f of ["num_requests", "num_errors", "processing_time", "average_processing_time"])
          t.ok(Number.isInteger(e[f]) && (e[f] as number) >= 0, `${f} is a non-negative integer`)
        t.type(e["last_error"], "string")
      }
    }
    if (verb === "INFO") for (const e of r["endpoints"] as Array<Record<string, unknown>>) t.same(Object.keys(e).sort(), endpointKeys["INFO"])
  }
})

t.test("stats count requests, errors, last_error and processing time; error replies carry headers and the envelope", async (t) => {
  const { client, conns } = await setup(t)
  const service = await startService(t, conns[0]!, {
    name: "kv",
    version: "1.0.0",
    id: "n1",
    endpoints: [
      {
        name: "get",
        subject: "t.get",
        handler: (req) => {
          const key = dec.decode(req.data)
          if (key === "missing") req.respondError(archioError("not_found", "no key\r\nmissing", { key }))
          else if (key === "slow") setTimeout(() => req.respond(bytes("late")), 30)
          else req.respond(bytes(`value of ${key}`))
        }
      }
    ]
  })
  t.equal(text(await client.request("t.get", bytes("a"), { timeout: 2000 })), "value of a")
  t.equal(text(await client.request("t.get", bytes("slow"), { timeout: 2000 })), "late")
  const err = await client.request("t.get", bytes("missing"), { timeout: 2000 })
  t.equal(err.headers?.get(errorCodeHeader), "404", "numeric error code header")
  t.equal(err.headers?.get(errorHeader), "no key missing", "error text header, CR/LF flattened")
  t.same(json(err), { ok: false, error: { code: "not_found", message: "no key\r\nmissing", detail: { key: "missing" } } }, "JSON envelope")
  const read = readError(err)
  t.equal(read?.code, "not_found")
  t.same(read?.detail, { key: "missing" })
  t.equal(readError(await client.request("t.get", bytes("b"), { timeout: 2000 })), undefined, "success is not an error")

  const local = service.stats().endpoints[0]!
  t.equal(local.num_requests, 4)
  t.equal(local.num_errors, 1)
  t.equal(local.last_error, "not_found: no key\r\nmissing")
  t.ok(local.processing_time >= 30_000_000, `processing time covers the slow reply (${local.processing_time} ns)`)
  t.equal(local.average_processing_time, Math.floor(local.processing_time / 4), "average is total / requests, truncated")

  const wire = json(await client.request(controlSubject("STATS", "kv", "n1"), undefined, { timeout: 2000 }))
  const e = (wire["endpoints"] as Array<Record<string, unknown>>)[0]!
  t.equal(e["num_requests"], 4)
  t.equal(e["num_errors"], 1)
  t.equal(e["last_error"], "not_found: no key\r\nmissing")
  t.equal(e["processing_time"], local.processing_time)
})

t.test("a throwing handler answers internal and the service keeps answering", async (t) => {
  const { client, conns } = await setup(t)
  const service = await startService(t, conns[0]!, {
    name: "kv",
    version: "1.0.0",
    id: "n1",
    endpoints: [
      {
        name: "boom",
        subject: "t.boom",
        handler: (req) => {
          const what = dec.decode(req.data)
          if (what === "throw") throw new Error("kaput")
          req.respond(bytes("fine"))
        }
      },
      {
        name: "async",
        subject: "t.async",
        handler: async (req) => {
          await sleep(1)
          if (dec.decode(req.data) === "reject") throw new Error("async kaput")
          req.respond(bytes("fine"))
        }
      },
      {
        name: "late-throw",
        subject: "t.late",
        handler: (req) => {
          req.respond(bytes("answered"))
          throw new Error("after the answer")
        }
      }
    ]
  })
  const thrown = await client.request("t.boom", bytes("throw"), { timeout: 2000 })
  t.equal(thrown.headers?.get(errorCodeHeader), "500")
  t.equal(readError(thrown)?.code, "internal")
  t.notMatch(text(thrown), /kaput/, "the exception text stays on the server")
  t.equal(text(await client.request("t.boom", bytes("ok"), { timeout: 2000 })), "fine", "still answering")

  const rejected = await client.request("t.async", bytes("reject"), { timeout: 2000 })
  t.equal(readError(rejected)?.code, "internal", "an async handler's rejection answers internal")
  t.equal(text(await client.request("t.async", bytes("ok"), { timeout: 2000 })), "fine")

  t.equal(text(await client.request("t.late", bytes(""), { timeout: 2000 })), "answered", "an answer sent before the throw stands")

  const [boom, asyncEp, late] = service.stats().endpoints
  t.equal(boom!.num_errors, 1)
  t.match(boom!.last_error, /^internal: .*kaput/, "last_error keeps the exception text")
  t.equal(asyncEp!.num_errors, 1)
  t.match(asyncEp!.last_error, /async kaput/)
  t.equal(late!.num_errors, 1, "a throw after answering is still counted")
  t.match(late!.last_error, /after the answer/)
})

t.test("messages without a reply subject are ignored and counted; a second answer is a no-op", async (t) => {
  const { client, conns } = await setup(t)
  let calls = 0
  const service = await startService(t, conns[0]!, {
    name: "kv",
    version: "1.0.0",
    id: "n1",
    endpoints: [
      {
        name: "twice",
        subject: "t.twice",
        handler: (req) => {
          calls++
          req.respond(bytes("one"))
          req.respond(bytes("two"))
          req.respondError(archioError("conflict", "three"))
          req.handOff()
          t.ok(req.responded)
        }
      }
    ]
  })
  client.publish("t.twice", bytes("fire and forget"))
  client.publish("t.twice", bytes("again"))
  await client.flush()

  const inbox = createInbox()
  const got: string[] = []
  const sub = client.subscribe(inbox, { callback: (_e, m) => void got.push(text(m)) })
  client.publish("t.twice", bytes("x"), { reply: inbox })
  await sleep(300) // room for a second reply, if one were sent
  sub.unsubscribe()
  t.same(got, ["one"], "exactly one reply")
  t.equal(calls, 1, "the handler never saw the messages without reply")
  const s = service.stats().endpoints[0]!
  t.equal(s.num_requests, 3, "all three messages counted")
  t.equal(s.num_errors, 2, "the two without reply counted as errors")
  t.match(s.last_error, /no reply subject/)
})

t.test("stop() removes interest, lets in-flight requests finish, and resolves stopped", async (t) => {
  const { client, conns } = await setup(t)
  const service = await startService(t, conns[0]!, {
    name: "kv",
    version: "1.0.0",
    id: "n1",
    endpoints: [
      echo("n1"),
      { name: "slow", subject: "t.slow", handler: (req) => void setTimeout(() => req.respond(bytes("done anyway")), 150) }
    ]
  })
  t.equal(text(await client.request("t.echo", bytes("hi"), { timeout: 2000 })), "n1:hi")
  const inFlight = client.request("t.slow", undefined, { timeout: 2000 })
  await until("the slow request to arrive", () => service.stats().endpoints.find((e) => e.name === "slow")?.num_requests === 1)
  await service.stop()
  t.ok(service.isStopped)
  t.equal(await service.stopped, null, "stopped resolves null after stop()")
  await service.stop() // twice is fine
  t.equal(text(await inFlight), "done anyway", "a request received before stop is still answered")

  for (const subject of ["t.echo", controlSubject("PING"), controlSubject("INFO", "kv"), controlSubject("STATS", "kv", "n1")]) {
    const e = await client.request(subject, undefined, { timeout: 2000 }).then(
      () => undefined,
      (err: unknown) => err
    )
    t.ok(isNoResponders(e), `${subject}: no responders after stop`)
  }
})

t.test("one node hands a request off and another answers it with respondOnSubject", async (t) => {
  const { client, conns } = await setup(t, 2)
  const [ncA, ncB] = [conns[0]!, conns[1]!]
  const a = await startService(t, ncA, {
    name: "kv",
    version: "1.0.0",
    id: "a",
    endpoints: [
      {
        name: "put",
        subject: "t.put",
        handler: (req) => {
          ncA.publish("t.node.b.put", req.data, { reply: req.reply })
          req.handOff()
        }
      }
    ]
  })
  ncB.subscribe("t.node.b.put", {
    callback: (_e, m) => {
      const key = text(m)
      if (key === "bad") respondOnSubject(ncB, m.reply!, archioError("unavailable", "leader moved", { leader: "c" }))
      else respondOnSubject(ncB, m.reply!, bytes(`stored ${key}`))
    }
  })
  await ncB.flush()
  t.equal(text(await client.request("t.put", bytes("k"), { timeout: 2000 })), "stored k")
  const err = await client.request("t.put", bytes("bad"), { timeout: 2000 })
  t.equal(err.headers?.get(errorCodeHeader), "503")
  t.same(readError(err)?.detail, { leader: "c" })
  const s = a.stats().endpoints[0]!
  t.equal(s.num_requests, 2)
  t.equal(s.num_errors, 0, "a hand-off counts as handled on the forwarding node")
  await ncB.close()
  t.notOk(respondOnSubject(ncB, "_INBOX.x", bytes("x")), "returns false instead of throwing on a closed connection")
})

t.test("a reply over max_payload becomes a too_large error", async (t) => {
  const { client, conns } = await setup(t)
  const max = conns[0]!.info!.max_payload
  const service = await startService(t, conns[0]!, {
    name: "kv",
    version: "1.0.0",
    id: "n1",
    endpoints: [{ name: "big", subject: "t.big", handler: (r) => r.respond(new Uint8Array(max + 1)) }]
  })
  const reply = await client.request("t.big", undefined, { timeout: 2000 })
  t.equal(reply.headers?.get(errorCodeHeader), "413")
  t.equal(readError(reply)?.code, "too_large")
  t.equal(service.stats().endpoints[0]!.num_errors, 1)
})

t.test("a closed connection stops the service with an error", async (t) => {
  const { conns } = await setup(t)
  const service = await startService(t, conns[0]!, { name: "kv", version: "1.0.0", id: "n1", endpoints: [echo("n1")] })
  await conns[0]!.close()
  const reason = await service.stopped
  t.type(reason, Error)
  t.ok(service.isStopped)
})

t.test("bad configuration is refused with a clear ServiceConfigError", async (t) => {
  const { conns } = await setup(t)
  const nc = conns[0]!
  const ok: ServiceSpec = { name: "kv", version: "1.0.0", id: "n1" }
  const bad: Array<[string, ServiceSpec, RegExp]> = [
    ["name with a dot", { ...ok, name: "kv.v1" }, /service name "kv\.v1" is invalid/],
    ["empty name", { ...ok, name: "" }, /service name/],
    ["id with a dot", { ...ok, id: "n.1" }, /service id/],
    ["version not semver", { ...ok, version: "1.0" }, /SemVer/],
    ["endpoint name with a dot", { ...ok, endpoints: [{ ...echo("x"), name: "kv.get" }] }, /endpoint name/],
    ["empty token", { ...ok, endpoints: [{ ...echo("x"), subject: "a..b" }] }, /empty token/],
    ["> not last", { ...ok, endpoints: [{ ...echo("x"), subject: "a.>.b" }] }, /last token/],
    ["wildcard inside a token", { ...ok, endpoints: [{ ...echo("x"), subject: "a.b*" }] }, /stand alone/],
    ["$SRV subject", { ...ok, endpoints: [{ ...echo("x"), subject: "$SRV.PING" }] }, /reserved/],
    ["spaces in subject", { ...ok, endpoints: [{ ...echo("x"), subject: "a b" }] }, /whitespace/]
  ]
  for (const [what, spec, message] of bad) {
    t.throws(() => start(nc, spec), { _tag: "ServiceConfigError", message }, what)
  }
})

t.test("handlers see the request's subject, headers and data", async (t) => {
  const { client, conns } = await setup(t)
  await startService(t, conns[0]!, {
    name: "kv",
    version: "1.0.0",
    id: "n1",
    endpoints: [
      {
        name: "any",
        subject: "t.any.>",
        handler: (req) =>
          req.respond(bytes(JSON.stringify({ subject: req.subject, key: req.headers?.get("Archio-Key") ?? null, data: dec.decode(req.data) })))
      }
    ]
  })
  const h = headers()
  h.set("Archio-Key", "k1")
  t.same(json(await client.request("t.any.a.b", bytes("body"), { timeout: 2000, headers: h })), { subject: "t.any.a.b", key: "k1", data: "body" })
  t.same(json(await client.request("t.any.c", undefined, { timeout: 2000 })), { subject: "t.any.c", key: null, data: "" })
})

t.test("readError also reads a headers-only error from another ADR-32 service", async (t) => {
  const h = headers()
  h.set(errorCodeHeader, "409")
  h.set(errorHeader, "revision moved on")
  const conflict = readError({ headers: h, data: bytes("not json") })
  t.equal(conflict?.code, "conflict", "409 reads back as conflict")
  t.equal(conflict?.message, "revision moved on")
  const odd = headers()
  odd.set(errorCodeHeader, "418")
  const teapot = readError({ headers: odd, data: new Uint8Array(0) })
  t.equal(teapot?.code, "internal", "an unknown status maps to internal")
  t.equal(teapot?.message, "service error 418")
  t.equal(readError({ headers: undefined, data: bytes("{}") }), undefined)
})

t.test("a subscription refused by the server stops the service with that error", async (t) => {
  const dir = await tempDir(t)
  const conf = join(dir, "auth.conf")
  await writeFile(
    conf,
    `authorization { users = [ { user: svc, password: pw, permissions: { subscribe: { allow: [">"], deny: ["t.forbidden", "$SRV.INFO.kv2"] } } } ] }\n`
  )
  const server = await natsServer(t, { args: ["-c", conf] })
  const nc = await connect({ servers: server.url, user: "svc", pass: "pw", noAsyncTraces: true })
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close()
  })
  const service = start(nc, { name: "kv", version: "1.0.0", id: "n1", endpoints: [echo("n1"), { ...echo("n1"), name: "no", subject: "t.forbidden" }] })
  const reason = await service.stopped
  t.type(reason, Error)
  t.match(String(reason), /permission/i, "the permissions violation is the reason")
  t.ok(service.isStopped)
  t.match(service.stats().endpoints[1]!.last_error, /subscription failed/, "the refused endpoint records it")
  const monitored = start(nc, { name: "kv2", version: "1.0.0", id: "n2" })
  t.match(String(await monitored.stopped), /permission/i, "a refused $SRV subscription stops the service too")
})

t.test("start on a closed connection throws and leaves nothing behind", async (t) => {
  const { conns } = await setup(t)
  await conns[0]!.close()
  t.throws(() => start(conns[0]!, { name: "kv", version: "1.0.0", id: "n1", endpoints: [echo("n1")] }))
})
