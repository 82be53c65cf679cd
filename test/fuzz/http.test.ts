/**
 * Fuzzing the HTTP shim (actors/gateway/http.ts) of three nodes (in this process, each with its
 * own port and a bearer token): random methods, paths, query strings, bodies (the kv.put
 * payloads of payloads.ts, bad JSON, invalid UTF-8, bodies at and far over `maxRequestBytes`,
 * plain and chunked), good, missing and broken `Authorization` headers, and request lines no
 * HTTP client would send.
 *
 * The oracle is built from the contract, not copied from the shim: the route table, the
 * guarded routes, and the kv decoders of protocol/ applied to the body or the query as JSON.
 * Properties: every request is answered in time; the answer is the oracle's (status, code and,
 * for a refused request, the decoder's message) or, for a valid one, ok or a stable code;
 * nothing is written by refused requests; every node stays up and serves a write and a read.
 *
 * Seeds: see seed.ts.
 */
import t, { type Test } from "tap"
import fc from "fast-check"
import { METHODS } from "node:http"
import { join } from "node:path"
import { Effect, Either, Fiber } from "effect"
import type { NatsConnection } from "@nats-io/transport-node"
import { guarded, queryJson, routes } from "../../actors/gateway/http.ts"
import { freePort } from "../../bootstrap/natsServer.ts"
import { runNode } from "../../bootstrap/node.ts"
import * as Client from "../../protocol/client.ts"
import { isErrorCode, statusOf } from "../../protocol/errors.ts"
import { maxRequestBytes } from "../../protocol/limits.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { config, quiet } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { sleep, until } from "../support/wait.ts"
import { decoders, tally, type Verdict } from "./answers.ts"
import { marks, moved, settledMarks, type Marks, type Nodes } from "./clusterChecks.ts"
import { bytesOf, corpus, requestPayload, validSamples } from "./payloads.ts"
import { rawHttp, type RawAnswer } from "./rawHttp.ts"
import { fuzzSetup } from "./seed.ts"

t.setTimeout(240_000)

const fuzz = fuzzSetup(t, "test/fuzz/http.test.ts")

const cluster = "c"
const ids = ["n1", "n2", "n3"] as const
const token = "fuzz-token-0123456789"
const answerMs = 10_000

// ---------------------------------------------------------------------------------------------
// Requests

type Auth = "valid" | "lowercase" | "none" | "wrong" | "malformed"

/** Authorization headers by kind; which kinds authorize is known by construction, not by the shim's parser. */
const authHeader: Record<Auth, fc.Arbitrary<string | undefined>> = {
  valid: fc.constant(`Bearer ${token}`),
  lowercase: fc.constantFrom(`bearer ${token}`, `BEARER ${token}`, `Bearer  ${token} `),
  none: fc.constant(undefined),
  wrong: fc.oneof(fc.constantFrom(`Bearer ${token}x`, `Bearer ${token.slice(1)}`, "Bearer x"), fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/).map((s) => `Bearer ${s}`)),
  malformed: fc.constantFrom("Bearer", "Bearer ", `Basic ${token}`, `Bearer ${token} ${token}`, token, `Token ${token}`, "")
}
const authorizes = (auth: Auth): boolean => auth === "valid" || auth === "lowercase"

class HttpCase {
  constructor(
    readonly node: number,
    readonly method: string,
    readonly target: string,
    readonly auth: Auth,
    readonly authorization: string | undefined,
    readonly body: Uint8Array,
    readonly chunked: boolean,
    readonly requestId: string | undefined
  ) {}
  get head(): string {
    return [
      `${this.method} ${this.target} HTTP/1.1`,
      "Host: 127.0.0.1",
      ...(this.authorization === undefined ? [] : [`Authorization: ${this.authorization}`]),
      ...(this.requestId === undefined ? [] : [`X-Request-Id: ${this.requestId}`]),
      this.chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${this.body.length}`
    ].join("\r\n")
  }
  [fc.toStringMethod](): string {
    const body = Buffer.from(this.body.subarray(0, 100)).toString("latin1")
    return `n${this.node + 1}: ${this.method} ${this.target.slice(0, 200)} auth=${this.auth}${this.chunked ? " chunked" : ""} body=${JSON.stringify(body)}${this.body.length > 100 ? `... (${this.body.length} bytes)` : ""}`
  }
  toString(): string {
    return this[fc.toStringMethod]()
  }
}

/** Percent-encodes everything but RFC 3986's unreserved characters (a lone surrogate becomes U+FFFD's bytes). */
const pct = (s: string): string =>
  [...Buffer.from(s, "utf8")].map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("")

const queryName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("key", "consistency") },
  { weight: 1, arbitrary: fc.constantFrom("token", "value", "ttl", "__proto__", "constructor", "key[]", "") },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }
)
const queryValue = fc.oneof(
  fc.constantFrom("a", "k", "users/42", "stale", "linearizable", "bogus", "", " ", "\u0000", "\ud800", "é", "a.b", "1", "true", "{}", "[]"),
  fc.constantFrom("k".repeat(1024), "k".repeat(1025), "é".repeat(512), "é".repeat(513)),
  fc.string({ unit: "binary", maxLength: 20 })
)
const queryItem = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(queryName, queryValue).map(([n, v]) => `${pct(n)}=${pct(v)}`) },
  { weight: 1, arbitrary: queryName.map(pct) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("=", "&", "%", "%Z", "%ZZ", "%FF", "key=%FF", "key=%ED%A0%80", "key=%C0%80", "key=%00", "key=a%2Fb", "key=+", "key=%2B",
      "key=a=b", "key=a;b", "consistency=stale", "consistency=STALE", "key=a&key=b", "token=%7B%7D", "key=%E2%82")
  }
)
const query = fc.array(queryItem, { maxLength: 5 }).map((items) => (items.length === 0 ? "" : `?${items.join("&")}`))

const routePaths = Object.keys(routes)
const path = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...routePaths) },
  { weight: 2, arbitrary: fc.constantFrom("/", "/set/", "/SET", "//set", "/get/../set", "/%2e%2e/get", "/metrics/x", "/health;x", "/%C3%A9", "/%00", "/get%3Fkey=a", "/.", "*") },
  { weight: 1, arbitrary: fc.webPath().map((p) => (p.startsWith("/") ? p : `/${p}`)) }
)

const putSchema = Client.KvPutRequest as unknown as Parameters<typeof requestPayload>[0]

const body = (samples: ReadonlyArray<unknown>): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    { weight: 10, arbitrary: requestPayload(putSchema, samples, { maxPayload: 1024 * 1024 }) },
    { weight: 1, arbitrary: fc.constantFrom(maxRequestBytes + 1, 2 * 1024 * 1024).map((n) => new Uint8Array(n).fill(0x78)) },
    { weight: 3, arbitrary: fc.constant(new Uint8Array(0)) }
  )

const methodFor = (p: string): fc.Arbitrary<string> => {
  const allowed: ReadonlyArray<string> = (routes as Record<string, ReadonlyArray<string>>)[p] ?? ["GET"]
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...allowed) },
    // CONNECT is left out: Node hands it to a "connect" listener the shim does not have, and closes the socket.
    { weight: 1, arbitrary: fc.constantFrom("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW", "M-SEARCH") }
  )
}

/** Requests that are probably valid, so the write and read paths get their share. */
const likelyValid = (samples: ReadonlyArray<unknown>): fc.Arbitrary<HttpCase> =>
  fc.tuple(fc.nat(ids.length - 1), fc.constantFrom(...samples), fc.constantFrom("set", "get", "delete"), fc.boolean()).map(([node, sample, route, stale]) => {
    const key = typeof sample === "object" && sample !== null && typeof (sample as { key?: unknown }).key === "string" ? (sample as { key: string }).key : "k"
    if (route === "set") return new HttpCase(node, "PUT", "/set", "valid", `Bearer ${token}`, bytesOf(JSON.stringify(sample)), false, undefined)
    const target = `/${route}?key=${pct(key)}${route === "get" && stale ? "&consistency=stale" : ""}`
    return new HttpCase(node, route === "get" ? "GET" : "DELETE", target, "valid", `Bearer ${token}`, new Uint8Array(0), false, undefined)
  })

const anyCase = (samples: ReadonlyArray<unknown>): fc.Arbitrary<HttpCase> =>
  fc
    .tuple(fc.nat(ids.length - 1), path, query, fc.constantFrom<Auth>("valid", "valid", "valid", "valid", "lowercase", "none", "wrong", "malformed"))
    .chain(([node, p, q, auth]) =>
      fc.tuple(
        fc.constant(node),
        methodFor(p),
        fc.constant(`${p}${q}`),
        fc.constant(auth),
        authHeader[auth],
        body(samples),
        fc.boolean(),
        fc.option(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:/-]{1,20}$/), fc.constantFrom("x".repeat(129), "a b", "é")), { nil: undefined })
      )
    )
    .map(([node, method, target, auth, authorization, bytes, chunked, requestId]) =>
      new HttpCase(node, method, target, auth, authorization, bytes, chunked && bytes.length > 0, requestId === undefined ? undefined : Buffer.from(requestId, "utf8").toString("latin1")))

const httpCase = (samples: ReadonlyArray<unknown>): fc.Arbitrary<HttpCase> => fc.oneof({ weight: 5, arbitrary: anyCase(samples) }, { weight: 1, arbitrary: likelyValid(samples) })

// ---------------------------------------------------------------------------------------------
// The oracle

type Expect =
  | { readonly kind: "error"; readonly status: number; readonly code: string; readonly message?: string }
  /** Refused by Node's HTTP parser before the shim sees it (a 400 without a body). */
  | { readonly kind: "parser" }
  | { readonly kind: "health" | "status" | "metrics" }
  | { readonly kind: "valid"; readonly op: "kv.put" | "kv.get" | "kv.del" }

const refused = (status: number, code: string, message?: string): Expect => ({ kind: "error", status, code, ...(message === undefined ? {} : { message }) })

const fromVerdict = (op: "kv.put" | "kv.get" | "kv.del", verdict: Verdict): Expect =>
  Either.isLeft(verdict) ? refused(statusOf(verdict.left.code), verdict.left.code, verdict.left.message) : { kind: "valid", op }

/** What the shim must answer `c`, from the route table, the guarded routes and the kv decoders. */
const expectOf = (c: HttpCase): Expect => {
  if (!METHODS.includes(c.method)) return { kind: "parser" }
  let url: URL
  try {
    url = new URL(c.target, "http://localhost")
  } catch {
    return refused(400, "bad_request")
  }
  const p = url.pathname
  const allowed = (routes as Record<string, ReadonlyArray<string> | undefined>)[p]
  if (!Object.hasOwn(routes, p) || allowed === undefined) return refused(404, "not_found")
  if (!allowed.includes(c.method)) return refused(405, "method_not_allowed")
  if ((guarded as ReadonlySet<string>).has(p) && !authorizes(c.auth)) return refused(401, "unauthorized")
  switch (p) {
    case "/health":
      return { kind: "health" }
    case "/raft/status":
      return { kind: "status" }
    case "/metrics":
      return { kind: "metrics" }
    case "/set":
      return c.body.length > maxRequestBytes ? refused(413, "too_large") : fromVerdict("kv.put", decoders.get("kv.put")!(c.body))
    case "/get":
      return fromVerdict("kv.get", decoders.get("kv.get")!(queryJson(url)))
    case "/delete":
      return fromVerdict("kv.del", decoders.get("kv.del")!(queryJson(url)))
    default:
      throw new Error(`the route table has ${p}, the oracle does not: add it here`)
  }
}

/** A write, or a read, that may change the store: not part of the "nothing written" batches. */
const mayWrite = (e: Expect): boolean => e.kind === "valid" && e.op !== "kv.get"

const json = (a: RawAnswer): Record<string, unknown> | string => {
  try {
    const v: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(a.body))
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : `not a JSON object: ${a.body.toString().slice(0, 200)}`
  } catch {
    return `not JSON: ${JSON.stringify(a.body.subarray(0, 200).toString("latin1"))}`
  }
}

/** What is wrong with `answer` to `c`; undefined when it is what the oracle says. */
const problemWith = (c: HttpCase, answer: RawAnswer | string): string | undefined => {
  if (typeof answer === "string") return answer
  const expect = expectOf(c)
  if (expect.kind === "parser") return answer.status === 400 ? undefined : `a method Node does not parse answered ${answer.status}`
  if (answer.headers.get("x-request-id") === undefined) return `an answer without X-Request-Id (status ${answer.status})`
  // HEAD answers carry no body; no route takes HEAD, so only the status can be checked.
  if (c.method === "HEAD") return expect.kind === "error" && answer.status === expect.status ? undefined : `HEAD answered ${answer.status}`
  if (expect.kind === "metrics") return answer.status === 200 && (answer.headers.get("content-type") ?? "").startsWith("text/plain") ? undefined : `/metrics answered ${answer.status}`
  if (!(answer.headers.get("content-type") ?? "").startsWith("application/json")) return `status ${answer.status} with content type ${answer.headers.get("content-type")}`
  const body = json(answer)
  if (typeof body === "string") return body
  const shown = JSON.stringify(body).slice(0, 300)
  const errorOf = (): { code: unknown; message: unknown } | undefined => {
    const e = body["error"]
    return typeof e === "object" && e !== null ? (e as { code: unknown; message: unknown }) : undefined
  }
  switch (expect.kind) {
    case "health":
      return (answer.status === 200 && body["ok"] === true) || (answer.status === 503 && body["ok"] === false) ? undefined : `/health answered ${answer.status} ${shown}`
    case "status":
      return answer.status === 200 && body["ok"] === true ? undefined : `/raft/status answered ${answer.status} ${shown}`
    case "error": {
      const e = errorOf()
      // A request that reaches the Gateway (its decoder judged it) may meet `busy` first (answers.ts).
      if (expect.message !== undefined && answer.status === statusOf("busy") && e?.code === "busy") {
        tally.busy++
        return undefined
      }
      if (answer.status !== expect.status || body["ok"] !== false || e?.code !== expect.code) return `expected ${expect.status} ${expect.code}${expect.message === undefined ? "" : `: ${expect.message.slice(0, 200)}`}; got ${answer.status} ${shown}`
      if (expect.message !== undefined && e.message !== expect.message) return `expected the decoder's message ${JSON.stringify(expect.message.slice(0, 200))}; got ${shown}`
      if (typeof e.message !== "string" || body["message"] !== e.message) return `an error body without the same message at the top and in error: ${shown}`
      return undefined
    }
    case "valid": {
      if (answer.status === 200) return body["ok"] === true ? undefined : `200 without ok: ${shown}`
      const e = errorOf()
      if (!isErrorCode(e?.code) || e.code === "internal" || answer.status !== statusOf(e.code)) return `a valid ${expect.op} answered ${answer.status} ${shown}`
      return undefined
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The nodes

interface Running {
  readonly ports: Readonly<Record<string, number>>
  readonly nodes: Nodes
  readonly nc: NatsConnection
}

const startNodes = async (t: Test): Promise<Running> => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const nc = await natsClient(t, server.url)
  const ports: Record<string, number> = {}
  const fibers = new Map<string, Fiber.RuntimeFiber<unknown, unknown>>()
  for (const id of ids) {
    ports[id] = await freePort()
    const c = config({
      NODE_ID: id,
      PEERS: ids.join(","),
      NATS_URL: server.url,
      DATA_DIR: join(dir, id),
      CLUSTER: cluster,
      HTTP_PORT: String(ports[id]),
      HTTP_TOKEN: token,
      // Elections only when a leader is really gone: a changed term counts as a write below.
      ELECTION_TICKS: "100"
    })
    const fiber = Effect.runFork(runNode(c).pipe(Effect.provide(quiet)))
    fibers.set(id, fiber)
    t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  }
  const nodes: Nodes = {
    ids,
    isRunning: (id) => fibers.get(id)?.unsafePoll() === null,
    status: async (id, timeoutMs) => {
      try {
        return (await nc.request(Subjects.node(cluster, id, "admin.status"), "", { timeout: timeoutMs })).json()
      } catch {
        return undefined
      }
    }
  }
  await until("a leader every node knows", async () => {
    const all = await Promise.all(ids.map((id) => nodes.status(id, 1_000) as Promise<{ leader?: string | null } | undefined>))
    return all.every((s) => typeof s?.leader === "string")
  }, { timeoutMs: 30_000, everyMs: 100 })
  return { ports, nodes, nc }
}

/**
 * Whether the shim reads the body of `c` before it answers: only a PUT or POST to /set that is
 * authorized and not declared over the cap. Otherwise the client waits for the answer before
 * sending the body (rawHttp.ts says why).
 */
const readsBody = (c: HttpCase): boolean => {
  const e = expectOf(c)
  return (e.kind === "valid" && e.op === "kv.put") || (e.kind === "error" && e.message !== undefined && new URL(c.target, "http://localhost").pathname === "/set") ||
    (c.chunked && e.kind === "error" && e.code === "too_large" && e.message === undefined)
}

const send = (running: Running, c: HttpCase): Promise<RawAnswer | string> =>
  rawHttp(running.ports[ids[c.node]!]!, { head: c.head, body: c.body, chunked: c.chunked, answerFirst: !readsBody(c), capBytes: maxRequestBytes }, answerMs)

const sendAll = async (running: Running, batch: ReadonlyArray<HttpCase>): Promise<ReadonlyArray<string>> => {
  const problems = await Promise.all(batch.map(async (c) => {
    const p = problemWith(c, await send(running, c))
    return p === undefined ? undefined : `${String(c)}: ${p}`
  }))
  return problems.filter((p): p is string => p !== undefined)
}

/** Every node up, and a write through a follower's shim then a linearizable read on another. */
const stillServes = async (t: Test, running: Running, key: string): Promise<void> => {
  for (const id of ids) t.ok(running.nodes.isRunning(id), `${id} is still running`)
  const value = `alive-${Date.now()}`
  const put = new HttpCase(1, "PUT", "/set", "valid", `Bearer ${token}`, bytesOf(JSON.stringify({ key, value })), false, undefined)
  const written = await send(running, put)
  t.equal(typeof written === "string" ? written : written.status, 200, "a put through the shim")
  const read = await send(running, new HttpCase(2, "GET", `/get?key=${pct(key)}`, "none", undefined, new Uint8Array(0), false, undefined))
  t.match(typeof read === "string" ? read : json(read), { ok: true, value }, "a read through another node's shim sees it")
}

t.test("the HTTP shim of three nodes, fuzzed", async (t) => {
  const running = await startNodes(t)
  const samples = validSamples(putSchema, fuzz.seed)
  const before: Marks = await settledMarks(running.nodes)
  const fixedWrites: Array<HttpCase> = []

  await t.test("fixed bad requests: the oracle's answer, nothing written", async (t) => {
    const bodies = corpus(putSchema, samples, { maxPayload: 1024 * 1024 }).map((p) => p.bytes)
    const cases: Array<HttpCase> = []
    const put = (node: number, b: Uint8Array, chunked = false, method = "PUT") => new HttpCase(node, method, "/set", "valid", `Bearer ${token}`, b, chunked, undefined)
    bodies.forEach((b, i) => cases.push(put(i % ids.length, b)))
    for (const size of [maxRequestBytes + 1, 2 * 1024 * 1024]) {
      cases.push(put(0, new Uint8Array(size).fill(0x20)), put(1, new Uint8Array(size).fill(0x20), true, "POST"))
    }
    for (const target of ["/get", "/get?", "/get?key", "/get?key=", "/get?key=%FF", "/get?key=%ED%A0%80", "/get?key=%00", "/get?key=a&key=b", "/get?key=a&consistency=bogus",
      `/get?key=${"k".repeat(1025)}`, "/get?__proto__=x", "/get?key=a&token=1", "/delete?key=", "/delete?key=a&key=a", "/delete?key=%C0%80", "/delete?force=1"]) {
      cases.push(new HttpCase(2, target.startsWith("/delete") ? "DELETE" : "GET", target, "valid", `Bearer ${token}`, new Uint8Array(0), false, undefined))
    }
    for (const auth of ["none", "wrong", "malformed"] as const) {
      cases.push(new HttpCase(0, "PUT", "/set", auth, auth === "none" ? undefined : auth === "wrong" ? "Bearer nope" : "Basic x", bytesOf('{"key":"k","value":"v"}'), false, undefined))
      cases.push(new HttpCase(1, "DELETE", "/delete?key=k", auth, auth === "none" ? undefined : "Bearer", new Uint8Array(0), false, undefined))
    }
    cases.push(new HttpCase(0, "PATCH", "/set", "valid", `Bearer ${token}`, bytesOf('{"key":"k","value":"v"}'), false, undefined))
    cases.push(new HttpCase(0, "GET", "/nope?key=k", "valid", undefined, new Uint8Array(0), false, undefined))
    const harmless = cases.filter((c) => !mayWrite(expectOf(c)))
    t.ok(harmless.length > 50, `${harmless.length} of the ${cases.length} fixed requests write nothing (the rest are sent with the valid ones)`)
    t.same(await sendAll(running, harmless), [], "each answered as the oracle says")
    t.ok(tally.busy * 10 < harmless.length, `few answered busy instead (${tally.busy})`)
    fixedWrites.push(...cases.filter((c) => mayWrite(expectOf(c))))

    // What no client library sends: Node's parser refuses it before the shim, and says so.
    const junk = [
      "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1",
      "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2",
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3",
      `GET /get?key=${"k".repeat(20_000)} HTTP/1.1\r\nHost: x`,
      "GET /he alth HTTP/1.1\r\nHost: x",
      "GET /health HTTP/9.9\r\nHost: x",
      "\u0000\u0001\u0002",
      "GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y",
      "PUT /set HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer " + token
    ]
    for (const head of junk) {
      const a = await rawHttp(running.ports["n1"]!, { head, body: head.includes("chunked") ? bytesOf("zz\r\n{}\r\n0\r\n\r\n") : new Uint8Array(0) }, answerMs)
      t.ok(typeof a !== "string" && a.status >= 400 && a.status < 500, `${JSON.stringify(head.slice(0, 60))}: ${typeof a === "string" ? a : a.status}`)
    }
    t.same(moved(before, await marks(running.nodes)), [], "no node's log moved")
  })

  await t.test("random requests that write nothing, in concurrent batches", async (t) => {
    const harmless = httpCase(samples).filter((c) => !mayWrite(expectOf(c)))
    let sent = 0
    await fc.assert(
      fc.asyncProperty(fc.array(harmless, { minLength: 1, maxLength: 8 }), async (batch) => {
        sent += batch.length
        const problems = await sendAll(running, batch)
        if (problems.length > 0) throw new Error(problems.join("\n"))
        const changes = moved(before, await marks(running.nodes))
        if (changes.length > 0) throw new Error(`refused requests moved the log: ${changes.join("; ")}`)
      }),
      fuzz.parameters(100)
    )
    t.ok(sent > 0, `${sent} requests (seed ${fuzz.seed})`)
    await sleep(300)
    t.same(moved(before, await marks(running.nodes)), [], "still nothing written a moment later")
  })

  await t.test("then the shim still serves, and the write check sees a write", async (t) => {
    await stillServes(t, running, "fuzz/http-1")
    t.not(moved(before, await settledMarks(running.nodes)).length, 0, "the put moved every log")
  })

  await t.test("random requests, valid writes included: ok or a stable code", async (t) => {
    t.same(await sendAll(running, fixedWrites), [], `the ${fixedWrites.length} valid writes of the fixed requests: ok or a stable code`)
    let valid = 0
    await fc.assert(
      fc.asyncProperty(fc.array(httpCase(samples), { minLength: 1, maxLength: 8 }), async (batch) => {
        valid += batch.filter((c) => expectOf(c).kind === "valid").length
        const problems = await sendAll(running, batch)
        if (problems.length > 0) throw new Error(problems.join("\n"))
      }),
      fuzz.parameters(60)
    )
    t.comment(`${valid} valid requests`)
    await stillServes(t, running, "fuzz/http-2")
  })
})
