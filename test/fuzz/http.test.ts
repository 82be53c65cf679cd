/**
 * Fuzzing the HTTP shim (actors/gateway/http.ts, httpDashboard.ts) of three nodes (in this
 * process, each with its own port and a bearer token): random methods, paths (every route, keys
 * under `/kv/`, dashboard files, `/api/<group>.<op>` of every endpoint and of none), query
 * strings, bodies (each endpoint's payloads from payloads.ts, raw values, bad JSON, invalid
 * UTF-8, bodies at and far over `maxRequestBytes`, plain and chunked), good, missing and broken
 * `Authorization` headers, `Content-Type`, `Sec-Fetch-Site` and `Origin` headers, and request
 * lines no HTTP client would send.
 *
 * The oracle is built from the contract (README's HTTP, Older clients and Dashboard sections),
 * not copied from the shim: the route table, the guarded routes, the dashboard's files as they
 * lie in its folder, and the decoders of protocol/ applied to the body, the query or the path's
 * key as JSON. Properties: every request is answered in time; the answer is the oracle's
 * (status, code, `Allow` and `WWW-Authenticate` headers, for a refused request the decoder's
 * message, a dashboard file byte for byte) or, for a valid one, ok (with the older shape's
 * fields) or a stable code; nothing is written by requests that write nothing; every node stays
 * up and serves a write and a read.
 *
 * Seeds: see seed.ts.
 */
import t, { type Test } from "tap"
import fc from "fast-check"
import { readdirSync, readFileSync } from "node:fs"
import { METHODS } from "node:http"
import { extname, join } from "node:path"
import { Effect, Either, Fiber, type Schema } from "effect"
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
// The contract's parts the oracle reads

const schemaOf = (op: string): Schema.Schema<unknown, unknown, never> => {
  const [group, name] = op.split(".") as [keyof typeof Client.endpoints, string]
  return (Client.endpoints[group] as Record<string, { request: Schema.Schema<unknown, unknown, never> }>)[name]!.request
}

/** Every endpoint `POST /api/<group>.<op>` runs: the contract's endpoint table. */
const ops: ReadonlyArray<string> = [...decoders.keys()]
/** Endpoints the API runs without the token (README: reads of data, as `/get`). */
const openOps: ReadonlySet<string> = new Set(["kv.get", "kv.scan", "jobs.get", "jobs.list", "jobs.stats"])
/**
 * Endpoints whose valid request changes nothing: neither the log nor the node (a snapshot or a
 * backup session is a change). The rest may write.
 */
const readOps: ReadonlySet<string> = new Set([...openOps, "admin.status", "admin.members", "admin.backupChunk"])
/** Requests whose valid form would change the cluster under the test (members, leader): only invalid ones are sent. */
const neverValid: ReadonlySet<string> = new Set(["admin.add", "admin.promote", "admin.remove", "admin.transfer"])

/** The dashboard's files as the README has them: each file of its folder at `/dashboard/<name>`, `index.html` at `/` too. */
interface DashboardFile {
  readonly bytes: Buffer
  readonly contentType: string
}
const dashboardDir = new URL("../../actors/gateway/dashboard/", import.meta.url)
const fileTypes: Readonly<Record<string, string>> = { ".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml" }
const dashboardFiles: ReadonlyMap<string, DashboardFile> = new Map(
  readdirSync(dashboardDir).flatMap((name): Array<[string, DashboardFile]> => {
    const contentType = fileTypes[extname(name)]
    if (contentType === undefined) return []
    const file = { bytes: readFileSync(new URL(name, dashboardDir)), contentType }
    return name === "index.html" ? [["/", file], [`/dashboard/${name}`, file]] : [[`/dashboard/${name}`, file]]
  })
)

/** The older service's `state`: a pre-candidate campaigns, so it is a candidate. */
const olderState = (role: unknown): string => (role === "leader" ? "leader" : role === "candidate" || role === "precandidate" ? "candidate" : "follower")

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

/** Headers beyond the ones every case has; names as written here (the oracle reads them by these names). */
interface Extra {
  readonly "Content-Type"?: string
  readonly "Sec-Fetch-Site"?: string
  readonly Origin?: string
}

class HttpCase {
  constructor(
    readonly node: number,
    readonly method: string,
    readonly target: string,
    readonly auth: Auth,
    readonly authorization: string | undefined,
    readonly body: Uint8Array,
    readonly chunked: boolean,
    readonly requestId: string | undefined,
    readonly extra: Extra = {}
  ) {}
  get head(): string {
    return [
      `${this.method} ${this.target} HTTP/1.1`,
      "Host: 127.0.0.1",
      ...(this.authorization === undefined ? [] : [`Authorization: ${this.authorization}`]),
      ...(this.requestId === undefined ? [] : [`X-Request-Id: ${this.requestId}`]),
      ...Object.entries(this.extra).map(([name, value]) => `${name}: ${String(value)}`),
      this.chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${this.body.length}`
    ].join("\r\n")
  }
  [fc.toStringMethod](): string {
    const body = Buffer.from(this.body.subarray(0, 100)).toString("latin1")
    const extra = Object.entries(this.extra).map(([name, value]) => ` ${name}=${JSON.stringify(value)}`).join("")
    return `n${this.node + 1}: ${this.method} ${this.target.slice(0, 200)} auth=${this.auth}${extra}${this.chunked ? " chunked" : ""} body=${JSON.stringify(body)}${this.body.length > 100 ? `... (${this.body.length} bytes)` : ""}`
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
/** Keys under `/kv/`: empty, nested, encoded, badly encoded, dot segments (which URL parsing removes), at and over the key cap. */
const kvPath = fc.oneof(
  fc.constantFrom("/kv/", "/kv/a", "/kv/k", "/kv/users/42", "/kv/users%2F42", "/kv/a//b", "/kv/%FF", "/kv/%E2%82", "/kv/%00", "/kv/%C3%A9", "/kv/a/../b",
    "/kv/%2e%2e", "/kv/.", "/kv/%", "/kv/a%2", "/kv/__proto__", "/kv", "/KV/a", `/kv/${"k".repeat(1024)}`, `/kv/${"k".repeat(1025)}`),
  fc.string({ unit: "binary", maxLength: 12 }).map((s) => `/kv/${pct(s)}`)
)
const apiPath = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ops.map((op) => `/api/${op}`)) },
  { weight: 1, arbitrary: fc.constantFrom("/api/", "/api", "/api/kv", "/api/kv.nope", "/api/readindex", "/api/__proto__", "/api/constructor", "/api/toString",
    "/api/kv.get/x", "/api/KV.GET", "/api/kv%2Eget", "/api/kv.get.x", "/api/admin.status%00") }
)
const dashboardPath = fc.constantFrom(...dashboardFiles.keys(), "/dashboard/", "/dashboard", "/dashboard/nope.js", "/dashboard/../index.html", "/dashboard/%2e%2e/x",
  "/dashboard/app.js/", "/Dashboard/app.js", "/dashboard/index.html%00", "/dashboard/APP.JS", "/index.html", "/%2e/")
const path = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...routePaths) },
  { weight: 4, arbitrary: kvPath },
  { weight: 5, arbitrary: apiPath },
  { weight: 2, arbitrary: dashboardPath },
  { weight: 2, arbitrary: fc.constantFrom("/set/", "/SET", "//set", "/get/../set", "/%2e%2e/get", "/metrics/x", "/health;x", "/%C3%A9", "/%00", "/get%3Fkey=a", "/.", "*",
    "/raft/leader/", "/raft/State", "/raft") },
  { weight: 1, arbitrary: fc.webPath().map((p) => (p.startsWith("/") ? p : `/${p}`)) }
)

const putSchema = Client.KvPutRequest as unknown as Parameters<typeof requestPayload>[0]

const overCap = fc.constantFrom(maxRequestBytes + 1, 2 * 1024 * 1024).map((n) => new Uint8Array(n).fill(0x78))

const body = (payload: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> =>
  fc.oneof({ weight: 10, arbitrary: payload }, { weight: 1, arbitrary: overCap }, { weight: 3, arbitrary: fc.constant(new Uint8Array(0)) })

/** Valid requests of each endpoint, drawn from the seed: the bases payloads.ts breaks. */
const samplesOf = (seed: number): ReadonlyMap<string, ReadonlyArray<unknown>> => new Map(ops.map((op) => [op, validSamples(schemaOf(op), seed)]))

/** Bodies by path: each endpoint's own payloads for `/api/<op>`, raw values and field objects for `/kv/<key>`, `kv.put`'s elsewhere. */
const bodies = (samples: ReadonlyMap<string, ReadonlyArray<unknown>>) => {
  const payload = (op: string, of = samples.get(op)!) => requestPayload(schemaOf(op), of, { maxPayload: 1024 * 1024 })
  const puts = payload("kv.put")
  const byOp = new Map(ops.map((op) => [op, body(payload(op))]))
  const withoutKey = samples.get("kv.put")!.map((s) => (typeof s === "object" && s !== null ? Object.fromEntries(Object.entries(s).filter(([k]) => k !== "key")) : s))
  const kv = body(fc.oneof(puts, payload("kv.put", withoutKey), fc.string({ unit: "binary", maxLength: 40 }).map(bytesOf), fc.string({ maxLength: 40 }).map(bytesOf)))
  const other = body(puts)
  return (p: string): fc.Arbitrary<Uint8Array> => (p.startsWith("/kv/") ? kv : byOp.get(p.slice("/api/".length)) ?? other)
}

/** The methods a path takes (the route table's, the dashboard's), picked more often than others. */
const methodFor = (p: string): fc.Arbitrary<string> => {
  const allowed: ReadonlyArray<string> =
    p === "/" || p.startsWith("/dashboard/") ? ["GET", "HEAD"] : p.startsWith("/api/") ? ["POST"] : p.startsWith("/kv/") ? routes["/kv/"] : ((routes as Record<string, ReadonlyArray<string>>)[p] ?? ["GET"])
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...allowed) },
    // CONNECT is left out: the shim closes the socket with a bare 405 (no route sees it).
    { weight: 1, arbitrary: fc.constantFrom("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW", "M-SEARCH") }
  )
}

const extraHeaders: fc.Arbitrary<Extra> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({}) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        "Content-Type": fc.constantFrom("application/json", "application/json; charset=utf-8", "APPLICATION/JSON", " application/json ;x=y", "text/plain", "application/jsonx", "application/x-www-form-urlencoded"),
        "Sec-Fetch-Site": fc.constantFrom("same-origin", "none", "same-site", "cross-site", "Same-Origin", ""),
        Origin: fc.constantFrom("http://127.0.0.1", "http://127.0.0.1:80", "https://127.0.0.1", "http://127.0.0.1:1", "http://localhost", "https://evil.example", "null", "not a url")
      },
      { requiredKeys: [] }
    )
  }
)

const keyOf = (sample: unknown): string =>
  typeof sample === "object" && sample !== null && typeof (sample as { key?: unknown }).key === "string" ? (sample as { key: string }).key : "k"

/** Requests that are probably valid, so the write and read paths of every route get their share. */
const likelyValid = (samples: ReadonlyMap<string, ReadonlyArray<unknown>>): fc.Arbitrary<HttpCase> => {
  const puts = samples.get("kv.put")!
  const auth = `Bearer ${token}`
  const none = new Uint8Array(0)
  const legacy = fc.tuple(fc.nat(ids.length - 1), fc.constantFrom(...puts), fc.constantFrom("set", "get", "delete", "kv-get", "kv-put", "kv-json", "kv-delete"), fc.boolean())
    .map(([node, sample, route, stale]) => {
      const key = keyOf(sample)
      const fields = typeof sample === "object" && sample !== null ? Object.fromEntries(Object.entries(sample).filter(([k]) => k !== "key")) : {}
      switch (route) {
        case "set":
          return new HttpCase(node, "PUT", "/set", "valid", auth, bytesOf(JSON.stringify(sample)), false, undefined)
        case "kv-put":
          return new HttpCase(node, "PUT", `/kv/${pct(key)}`, "valid", auth, bytesOf(String((fields as { value?: unknown }).value ?? "v")), false, undefined)
        case "kv-json":
          return new HttpCase(node, "PUT", `/kv/${pct(key)}`, "valid", auth, bytesOf(JSON.stringify(fields)), false, undefined, { "Content-Type": "application/json" })
        case "kv-get":
        case "kv-delete":
          return new HttpCase(node, route === "kv-get" ? "GET" : "DELETE", `/kv/${pct(key)}${route === "kv-get" && stale ? "?consistency=stale" : ""}`, "valid", auth, none, false, undefined)
        default:
          return new HttpCase(node, route === "get" ? "GET" : "DELETE", `/${route}?key=${pct(key)}${route === "get" && stale ? "&consistency=stale" : ""}`, "valid", auth, none, false, undefined)
      }
    })
  const likelyOps = ["kv.put", "kv.get", "kv.del", "kv.scan", "kv.cas", "jobs.enqueue", "jobs.stats", "jobs.list", "jobs.get", "admin.status", "admin.members"]
  const api = fc.tuple(fc.nat(ids.length - 1), fc.constantFrom(...likelyOps))
    .chain(([node, op]) => fc.constantFrom(...samples.get(op)!).map((sample) => new HttpCase(node, "POST", `/api/${op}`, "valid", auth, bytesOf(JSON.stringify(sample)), false, undefined)))
  return fc.oneof({ weight: 2, arbitrary: legacy }, { weight: 1, arbitrary: api })
}

const anyCase = (samples: ReadonlyMap<string, ReadonlyArray<unknown>>): fc.Arbitrary<HttpCase> => {
  const bodyFor = bodies(samples)
  return fc
    .tuple(fc.nat(ids.length - 1), path, query, fc.constantFrom<Auth>("valid", "valid", "valid", "valid", "lowercase", "none", "wrong", "malformed"))
    .chain(([node, p, q, auth]) =>
      fc.tuple(
        fc.constant(node),
        methodFor(p),
        fc.constant(`${p}${q}`),
        fc.constant(auth),
        authHeader[auth],
        bodyFor(p),
        fc.boolean(),
        fc.option(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:/-]{1,20}$/), fc.constantFrom("x".repeat(129), "a b", "é")), { nil: undefined }),
        extraHeaders
      )
    )
    .map(([node, method, target, auth, authorization, bytes, chunked, requestId, extra]) =>
      new HttpCase(node, method, target, auth, authorization, bytes, chunked && bytes.length > 0, requestId === undefined ? undefined : Buffer.from(requestId, "utf8").toString("latin1"), extra))
}

/** Every kind of request, bar valid ones that would reshape the cluster or park longer than an answer may take. */
const httpCase = (samples: ReadonlyMap<string, ReadonlyArray<unknown>>): fc.Arbitrary<HttpCase> =>
  fc.oneof({ weight: 5, arbitrary: anyCase(samples) }, { weight: 1, arbitrary: likelyValid(samples) }).filter((c) => sendable(expectOf(c)))

// ---------------------------------------------------------------------------------------------
// The oracle

type Expect =
  | {
      readonly kind: "error"
      readonly status: number
      readonly code: string
      /** The decoder's message, when the decoder refused it. */
      readonly message?: string
      /** The request reached the Gateway, which may answer `busy` first (answers.ts). */
      readonly gateway?: boolean
      /** The `Allow` header of a 405. */
      readonly allow?: string
    }
  /** Refused by Node's HTTP parser before the shim sees it (a 400 without a body). */
  | { readonly kind: "parser" }
  | { readonly kind: "health" | "status" | "metrics" | "leader" | "state" }
  | { readonly kind: "file"; readonly file: DashboardFile }
  /** A valid request of endpoint `op`; `written` is the older `message` a write on an older route answers. */
  | { readonly kind: "valid"; readonly op: string; readonly request: unknown; readonly written?: "stored" | "deleted" }

const refused = (status: number, code: string, more: { readonly allow?: string } = {}): Expect => ({ kind: "error", status, code, ...more })

const fromVerdict = (op: string, verdict: Verdict, written?: "stored" | "deleted"): Expect =>
  Either.isLeft(verdict)
    ? { kind: "error", status: statusOf(verdict.left.code), code: verdict.left.code, message: verdict.left.message, gateway: true }
    : { kind: "valid", op, request: verdict.right, ...(written === undefined ? {} : { written }) }

const decode = (op: string, request: unknown): Verdict => decoders.get(op)!(bytesOf(JSON.stringify(request)))

/** How far a request gets before the body matters: answered already, or judged once the body (up to the cap) is read. */
type Reach = { readonly expect: Expect } | { readonly judge: (body: Uint8Array) => Expect }

/** README: `Sec-Fetch-Site` must be `same-origin` or `none`; without it an `Origin` must name this host (the `Host` sent). */
const crossSite = (c: HttpCase): boolean => {
  const site = c.extra["Sec-Fetch-Site"]
  if (site !== undefined) return site !== "same-origin" && site !== "none"
  if (c.extra.Origin === undefined) return false
  try {
    return new URL(c.extra.Origin).host !== "127.0.0.1"
  } catch {
    return true
  }
}

const isJsonType = (contentType: string | undefined): boolean => contentType?.split(";")[0]?.trim().toLowerCase() === "application/json"

const dashboardReach = (p: string, method: string): Reach => {
  const file = dashboardFiles.get(p)
  if (file === undefined) return { expect: refused(404, "not_found") }
  if (method !== "GET" && method !== "HEAD") return { expect: refused(405, "method_not_allowed", { allow: "GET, HEAD" }) }
  return { expect: { kind: "file", file } }
}

const apiReach = (c: HttpCase, op: string): Reach => {
  if (c.method !== "POST") return { expect: refused(405, "method_not_allowed", { allow: "POST" }) }
  if (crossSite(c)) return { expect: refused(403, "forbidden") }
  if (!openOps.has(op) && !authorizes(c.auth)) return { expect: refused(401, "unauthorized") }
  return { judge: (b) => (decoders.has(op) ? fromVerdict(op, decoders.get(op)!(b)) : refused(404, "not_found")) }
}

/** The query as the JSON object `/get` and `/delete` send (a repeated name is an array). */
const queryObject = (url: URL): Record<string, unknown> => JSON.parse(Buffer.from(queryJson(url)).toString("utf8")) as Record<string, unknown>

/**
 * `/kv/<key>`: the percent-decoded rest of the path is the key, which the query or body must not
 * name. GET and DELETE take the query as `/get` and `/delete` do; PUT takes no query, and its
 * UTF-8 body is the value, or with `Content-Type: application/json` an object of the other
 * `kv.put` fields.
 */
const kvReach = (c: HttpCase, url: URL): Reach => {
  let key: string | undefined
  try {
    key = decodeURIComponent(url.pathname.slice("/kv/".length))
  } catch {
    key = undefined
  }
  if (c.method !== "PUT") {
    const query = queryObject(url)
    if (key === undefined || Object.hasOwn(query, "key")) return { expect: refused(400, "bad_request") }
    return c.method === "GET" ? { expect: fromVerdict("kv.get", decode("kv.get", { key, ...query })) } : { expect: fromVerdict("kv.del", decode("kv.del", { key, ...query }), "deleted") }
  }
  return {
    judge: (b) => {
      if (key === undefined || url.search !== "") return refused(400, "bad_request")
      let text: string
      try {
        // As the shim reads it: a leading byte order mark is dropped (see the report on U+FEFF).
        text = new TextDecoder("utf-8", { fatal: true }).decode(b)
      } catch {
        return refused(400, "bad_request")
      }
      if (!isJsonType(c.extra["Content-Type"])) return fromVerdict("kv.put", decode("kv.put", { key, value: text }), "stored")
      let fields: unknown
      try {
        fields = JSON.parse(text)
      } catch {
        return refused(400, "bad_request")
      }
      if (typeof fields !== "object" || fields === null || Array.isArray(fields) || Object.hasOwn(fields, "key")) return refused(400, "bad_request")
      let request: Uint8Array
      try {
        request = bytesOf(JSON.stringify({ key, ...fields }))
      } catch {
        // Nested past what JSON.stringify can walk (thousands deep): past maxJsonDepth, so bad input.
        return refused(400, "bad_request")
      }
      return fromVerdict("kv.put", decoders.get("kv.put")!(request), "stored")
    }
  }
}

const pathnameOf = (c: HttpCase): string | undefined => {
  try {
    return new URL(c.target, "http://localhost").pathname
  } catch {
    return undefined
  }
}

const reachOf = (c: HttpCase): Reach => {
  if (!METHODS.includes(c.method)) return { expect: { kind: "parser" } }
  let url: URL
  try {
    url = new URL(c.target, "http://localhost")
  } catch {
    return { expect: refused(400, "bad_request") }
  }
  const p = url.pathname
  if (p === "/" || p.startsWith("/dashboard/")) return dashboardReach(p, c.method)
  if (p.startsWith("/api/")) return apiReach(c, p.slice("/api/".length))
  const route = Object.hasOwn(routes, p) ? p : p.startsWith("/kv/") ? "/kv/" : undefined
  const allowed = route === undefined ? undefined : (routes as Record<string, ReadonlyArray<string> | undefined>)[route]
  if (route === undefined || allowed === undefined) return { expect: refused(404, "not_found") }
  if (!allowed.includes(c.method)) return { expect: refused(405, "method_not_allowed", { allow: allowed.join(", ") }) }
  // README: writes (`/set`, `/delete`, PUT and DELETE `/kv/<key>`) and `/raft/status` need the token.
  const writes = route === "/set" || route === "/delete" || (route === "/kv/" && c.method !== "GET")
  if (((guarded as ReadonlySet<string>).has(route) || writes) && !authorizes(c.auth)) return { expect: refused(401, "unauthorized") }
  switch (route) {
    case "/health":
      return { expect: { kind: "health" } }
    case "/raft/status":
      return { expect: { kind: "status" } }
    case "/raft/leader":
      return { expect: { kind: "leader" } }
    case "/raft/state":
      return { expect: { kind: "state" } }
    case "/metrics":
      return { expect: { kind: "metrics" } }
    case "/set":
      return { judge: (b) => fromVerdict("kv.put", decoders.get("kv.put")!(b), "stored") }
    case "/get":
      return { expect: fromVerdict("kv.get", decoders.get("kv.get")!(queryJson(url))) }
    case "/delete":
      return { expect: fromVerdict("kv.del", decoders.get("kv.del")!(queryJson(url)), "deleted") }
    case "/kv/":
      return kvReach(c, url)
    default:
      throw new Error(`the route table has ${route}, the oracle does not: add it here`)
  }
}

/** What the shim must answer `c`: a body over the cap is refused before it is judged. */
const expectOf = (c: HttpCase): Expect => {
  const reach = reachOf(c)
  if ("expect" in reach) return reach.expect
  return c.body.length > maxRequestBytes ? refused(413, "too_large") : reach.judge(c.body)
}

/**
 * Whether the shim reads the body of `c` before it answers (a chunked one up to the cap).
 * Otherwise the client waits for the answer before sending the body (rawHttp.ts says why).
 */
const readsBody = (c: HttpCase): boolean => "judge" in reachOf(c) && (c.chunked || c.body.length <= maxRequestBytes)

/** A write, or a request that may change a node: not part of the "nothing written" batches. */
const mayWrite = (e: Expect): boolean => e.kind === "valid" && !readOps.has(e.op)

/** Not a valid request that would reshape the cluster, nor a lease that waits longer than an answer may take. */
const sendable = (e: Expect): boolean =>
  !(e.kind === "valid" && (neverValid.has(e.op) || (e.op === "jobs.lease" && ((e.request as { waitMs?: number }).waitMs ?? 0) > 1_000)))

const json = (a: RawAnswer): Record<string, unknown> | string => {
  try {
    const v: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(a.body))
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : `not a JSON object: ${a.body.toString().slice(0, 200)}`
  } catch {
    return `not JSON: ${JSON.stringify(a.body.subarray(0, 200).toString("latin1"))}`
  }
}

const isTerm = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0
const isLeader = (v: unknown): boolean => (ids as ReadonlyArray<unknown>).includes(v)

/** What is wrong with the older fields `/raft/status` adds after `admin.status`'s; undefined when they agree. */
const olderStatusProblem = (s: Record<string, unknown>): string | undefined => {
  const n = (name: string): number => s[name] as number
  const leading = s["role"] === "leader"
  const peers = leading && Array.isArray(s["peers"]) ? (s["peers"] as ReadonlyArray<{ id: string; nextIndex: number; matchIndex: number }>) : []
  const want: Record<string, unknown> = {
    state: olderState(s["role"]),
    leaderId: s["leader"],
    lastApplied: s["appliedIndex"],
    logLen: Math.max(0, n("lastIndex") - n("logBaseIndex")),
    lastLogIndex: s["lastIndex"],
    lastLogTerm: s["lastTerm"],
    nextIndex: Object.fromEntries(peers.map((p) => [p.id, p.nextIndex])),
    matchIndex: Object.fromEntries(peers.map((p) => [p.id, p.matchIndex]))
  }
  const wrong = Object.keys(want).filter((k) => JSON.stringify(s[k]) !== JSON.stringify(want[k]))
  return wrong.length === 0 ? undefined : `older fields ${wrong.join(", ")} disagree with the status (want ${JSON.stringify(want).slice(0, 300)})`
}

/** Which part of the shim a request is for, to show the spread of a run. */
const familyOf = (c: HttpCase): string => {
  const p = pathnameOf(c) ?? ""
  return p.startsWith("/api/") ? "API" : p.startsWith("/kv/") ? "/kv/<key>" : p === "/" || p.startsWith("/dashboard/") ? "dashboard" : "other"
}

/** What is wrong with `answer` to `c`; undefined when it is what the oracle says. */
const problemWith = (c: HttpCase, answer: RawAnswer | string): string | undefined => {
  if (typeof answer === "string") return answer
  const expect = expectOf(c)
  if (expect.kind === "parser") return answer.status === 400 ? undefined : `a method Node does not parse answered ${answer.status}`
  const header = (name: string): string => answer.headers.get(name) ?? ""
  if (answer.headers.get("x-request-id") === undefined) return `an answer without X-Request-Id (status ${answer.status})`
  if (expect.kind === "error" && expect.allow !== undefined && answer.status === 405 && header("allow") !== expect.allow) return `a 405 with Allow ${JSON.stringify(header("allow"))}, not ${expect.allow}`
  if (expect.kind === "error" && expect.status === 401 && answer.status === 401 && header("www-authenticate") !== 'Bearer realm="archio"') return `a 401 with WWW-Authenticate ${JSON.stringify(header("www-authenticate"))}`
  if (pathnameOf(c)?.startsWith("/api/") === true && header("cache-control") !== "no-store") return `an API answer (${answer.status}) with Cache-Control ${JSON.stringify(header("cache-control"))}`
  if (expect.kind === "file") {
    const { file } = expect
    if (answer.status !== 200 || !header("content-type").startsWith(file.contentType) || header("content-length") !== String(file.bytes.length)) {
      return `a dashboard file answered ${answer.status}, ${header("content-type")}, ${header("content-length")} bytes (want 200, ${file.contentType}, ${file.bytes.length})`
    }
    if (!header("content-security-policy").startsWith("default-src 'none'")) return `a dashboard file without its Content-Security-Policy: ${JSON.stringify(header("content-security-policy"))}`
    return c.method === "HEAD" || answer.body.equals(file.bytes) ? undefined : "a dashboard file's body is not the file"
  }
  // Other HEAD answers carry no body; HEAD takes no route but the dashboard's, so only the status can be checked.
  if (c.method === "HEAD") return expect.kind === "error" && answer.status === expect.status ? undefined : `HEAD answered ${answer.status}`
  if (expect.kind === "metrics") return answer.status === 200 && header("content-type").startsWith("text/plain") ? undefined : `/metrics answered ${answer.status}`
  if (!header("content-type").startsWith("application/json")) return `status ${answer.status} with content type ${header("content-type")}`
  const body = json(answer)
  if (typeof body === "string") return body
  const shown = JSON.stringify(body).slice(0, 300)
  const errorOf = (): { code: unknown; message: unknown } | undefined => {
    const e = body["error"]
    return typeof e === "object" && e !== null ? (e as { code: unknown; message: unknown }) : undefined
  }
  const node = ids[c.node]
  switch (expect.kind) {
    case "health": {
      const fields = body["id"] === node && body["state"] === olderState(body["role"]) && isTerm(body["term"]) && body["leaderId"] === body["leader"]
      const up = answer.status === 200 && body["ok"] === true && isLeader(body["leader"])
      const down = answer.status === 503 && body["ok"] === false && body["leader"] === null && typeof body["message"] === "string"
      return fields && (up || down) ? undefined : `/health answered ${answer.status} ${shown}`
    }
    case "status":
      return answer.status === 200 && body["ok"] === true && body["id"] === node ? olderStatusProblem(body) : `/raft/status answered ${answer.status} ${shown}`
    case "leader": {
      const up = answer.status === 200 && body["ok"] === true && isLeader(body["leaderId"]) && body["leader"] === null
      const down = answer.status === 503 && body["ok"] === false && body["leaderId"] === null && body["leader"] === null && typeof body["message"] === "string"
      // `leader` is the leader's URL from HTTP_PEERS, which these nodes are not given.
      return (up || down) && isTerm(body["term"]) ? undefined : `/raft/leader answered ${answer.status} ${shown}`
    }
    case "state": {
      const ok = answer.status === 200 && body["ok"] === true && body["id"] === node && body["state"] === olderState(body["role"]) && typeof body["role"] === "string" &&
        isTerm(body["term"]) && (body["leaderId"] === null || isLeader(body["leaderId"]))
      return ok ? undefined : `/raft/state answered ${answer.status} ${shown}`
    }
    case "error": {
      const e = errorOf()
      if (expect.gateway === true && answer.status === statusOf("busy") && e?.code === "busy") {
        tally.busy++
        return undefined
      }
      if (answer.status !== expect.status || body["ok"] !== false || e?.code !== expect.code) return `expected ${expect.status} ${expect.code}${expect.message === undefined ? "" : `: ${expect.message.slice(0, 200)}`}; got ${answer.status} ${shown}`
      if (expect.message !== undefined && e.message !== expect.message) return `expected the decoder's message ${JSON.stringify(expect.message.slice(0, 200))}; got ${shown}`
      if (typeof e.message !== "string" || body["message"] !== e.message) return `an error body without the same message at the top and in error: ${shown}`
      return undefined
    }
    case "valid": {
      if (answer.status === 200) {
        if (body["ok"] !== true) return `200 without ok: ${shown}`
        const { key, token: retried } = expect.request as { key?: unknown; token?: unknown }
        // A write with an idempotency token answers the first write of that token, maybe of another key (README).
        if (expect.written !== undefined && (body["message"] !== expect.written || (retried === undefined && body["key"] !== key))) {
          return `a ${expect.op} on an older route without "message":"${expect.written}" and "key":${JSON.stringify(key)}: ${shown}`
        }
        return undefined
      }
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
      // Writes on a follower are passed to the leader (the default, said here because the oracle relies on it).
      HTTP_FOLLOWER_WRITES: "forward",
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
  const samples = samplesOf(fuzz.seed)
  const before: Marks = await settledMarks(running.nodes)
  const fixedWrites: Array<HttpCase> = []

  await t.test("the oracle knows every route and the dashboard's files", async (t) => {
    for (const [p, methods] of Object.entries(routes)) {
      for (const method of methods) {
        const target = p === "/kv/" ? "/kv/k?consistency=stale" : p
        t.doesNotThrow(() => expectOf(new HttpCase(0, method, target, "valid", `Bearer ${token}`, new Uint8Array(0), false, undefined)), `${method} ${target}`)
      }
    }
    t.ok(dashboardFiles.has("/") && dashboardFiles.has("/dashboard/index.html"), `the dashboard's files: ${[...dashboardFiles.keys()].join(", ")}`)
  })

  await t.test("fixed bad requests: the oracle's answer, nothing written", async (t) => {
    const auth = `Bearer ${token}`
    const none = new Uint8Array(0)
    const putBodies = corpus(putSchema, samples.get("kv.put")!, { maxPayload: 1024 * 1024 }).map((p) => p.bytes)
    const cases: Array<HttpCase> = []
    const put = (node: number, b: Uint8Array, chunked = false, method = "PUT") => new HttpCase(node, method, "/set", "valid", auth, b, chunked, undefined)
    putBodies.forEach((b, i) => cases.push(put(i % ids.length, b)))
    // The same bodies through the dashboard's API, and as the fields of PUT /kv/<key> (the key named again is refused there).
    putBodies.forEach((b, i) => cases.push(new HttpCase(i % ids.length, "POST", "/api/kv.put", "valid", auth, b, false, undefined)))
    putBodies.forEach((b, i) => cases.push(new HttpCase(i % ids.length, "PUT", "/kv/k", "valid", auth, b, false, undefined, { "Content-Type": "application/json" })))
    for (const size of [maxRequestBytes + 1, 2 * 1024 * 1024]) {
      const big = new Uint8Array(size).fill(0x20)
      cases.push(put(0, big), put(1, big, true, "POST"))
      cases.push(new HttpCase(2, "PUT", "/kv/k", "valid", auth, big, false, undefined), new HttpCase(0, "PUT", "/kv/k", "valid", auth, big, true, undefined))
      cases.push(new HttpCase(1, "POST", "/api/kv.put", "valid", auth, big, false, undefined), new HttpCase(2, "POST", "/api/jobs.stats", "none", undefined, big, true, undefined))
    }
    for (const target of ["/get", "/get?", "/get?key", "/get?key=", "/get?key=%FF", "/get?key=%ED%A0%80", "/get?key=%00", "/get?key=a&key=b", "/get?key=a&consistency=bogus",
      `/get?key=${"k".repeat(1025)}`, "/get?__proto__=x", "/get?key=a&token=1", "/delete?key=", "/delete?key=a&key=a", "/delete?key=%C0%80", "/delete?force=1",
      "/kv/", "/kv/?consistency=stale", "/kv/%FF", "/kv/%E2%82", "/kv/a?key=a", "/kv/a?consistency=bogus", "/kv/a?x=1", `/kv/${"k".repeat(1025)}`, "/kv/%ED%A0%80"]) {
      cases.push(new HttpCase(2, target.startsWith("/delete") ? "DELETE" : "GET", target, "valid", auth, none, false, undefined))
      if (target.startsWith("/kv/")) cases.push(new HttpCase(1, "DELETE", target, "valid", auth, none, false, undefined))
    }
    // PUT /kv/<key>: a query, a value that is not UTF-8, JSON that is not an object of fields, a key in the path that is not one.
    const kvPut = (target: string, b: string | Uint8Array, json = false) =>
      new HttpCase(0, "PUT", target, "valid", auth, typeof b === "string" ? bytesOf(b) : b, false, undefined, json ? { "Content-Type": "application/json; charset=utf-8" } : {})
    cases.push(kvPut("/kv/k?ttl=1", "v"), kvPut("/kv/k?", "v"), kvPut("/kv/k", new Uint8Array([0x76, 0xff])), kvPut("/kv/k", new Uint8Array([0xed, 0xa0, 0x80])), kvPut("/kv/", "v"),
      kvPut("/kv/%FF", "v"), kvPut(`/kv/${"k".repeat(1025)}`, "v"), kvPut("/kv/k", "v".repeat(maxRequestBytes)), kvPut("/kv/k", "{", true), kvPut("/kv/k", "[]", true), kvPut("/kv/k", '"v"', true),
      kvPut("/kv/k", "null", true), kvPut("/kv/k", '{"key":"k","value":"v"}', true), kvPut("/kv/k", '{"vaule":"v"}', true), kvPut("/kv/k", "{}", true), kvPut("/kv/k", '{"value":1}', true))
    for (const auth of ["none", "wrong", "malformed"] as const) {
      const header = auth === "none" ? undefined : auth === "wrong" ? "Bearer nope" : "Basic x"
      cases.push(new HttpCase(0, "PUT", "/set", auth, header, bytesOf('{"key":"k","value":"v"}'), false, undefined))
      cases.push(new HttpCase(1, "DELETE", "/delete?key=k", auth, auth === "none" ? undefined : "Bearer", none, false, undefined))
      cases.push(new HttpCase(2, "PUT", "/kv/k", auth, header, bytesOf("v"), false, undefined), new HttpCase(0, "DELETE", "/kv/k", auth, header, none, false, undefined))
      cases.push(new HttpCase(1, "GET", "/raft/status", auth, header, none, false, undefined))
      for (const op of ["kv.put", "kv.del", "jobs.enqueue", "jobs.purge", "jobs.lease", "admin.status", "admin.snapshot", "admin.transfer", "admin.remove", "nope.op", ""]) {
        cases.push(new HttpCase(2, "POST", `/api/${op}`, auth, header, bytesOf("{}"), false, undefined))
      }
    }
    // Read routes and the dashboard need no token; the older read routes answer as the oracle says.
    for (const [i, target] of ["/health", "/raft/leader", "/raft/state", "/metrics", "/kv/k", "/get?key=k", "/", "/dashboard/index.html", "/dashboard/app.js"].entries()) {
      cases.push(new HttpCase(i % ids.length, "GET", target, "none", undefined, none, false, undefined))
    }
    for (const file of dashboardFiles.keys()) cases.push(new HttpCase(1, "HEAD", file, "none", undefined, none, false, undefined))
    for (const [method, target] of [["PATCH", "/set"], ["POST", "/raft/leader"], ["PUT", "/raft/state"], ["HEAD", "/raft/leader"], ["POST", "/kv/k"], ["HEAD", "/kv/k"], ["PATCH", "/kv/k"],
      ["PUT", "/"], ["DELETE", "/dashboard/app.js"], ["POST", "/dashboard/nope.js"], ["GET", "/dashboard/nope.js"], ["GET", "/dashboard/"], ["GET", "/api/jobs.stats"],
      ["HEAD", "/api/kv.get"], ["PUT", "/api/kv.put"], ["GET", "/api/nope"], ["GET", "/nope?key=k"], ["GET", "/kv"], ["GET", "/api"]] as const) {
      cases.push(new HttpCase(0, method, target, "valid", auth, method === "PATCH" || method === "POST" ? bytesOf('{"key":"k","value":"v"}') : none, false, undefined))
    }
    // The API: unknown endpoints, another site's pages, open reads without the token, invalid requests of the endpoints that reshape the cluster.
    for (const op of ["", "kv", "kv.nope", "readindex", "__proto__", "constructor", "kv.get/x", "KV.GET", "kv%2Eget"]) {
      cases.push(new HttpCase(1, "POST", `/api/${op}`, "valid", auth, bytesOf("{}"), false, undefined))
    }
    for (const extra of [{ "Sec-Fetch-Site": "cross-site" }, { "Sec-Fetch-Site": "same-site" }, { Origin: "https://evil.example" }, { Origin: "null" }, { Origin: "http://127.0.0.1:1" },
      { "Sec-Fetch-Site": "cross-site", Origin: "http://127.0.0.1" }, { "Sec-Fetch-Site": "same-origin", Origin: "https://evil.example" }, { Origin: "http://127.0.0.1" }, { "Sec-Fetch-Site": "none" }]) {
      cases.push(new HttpCase(2, "POST", "/api/kv.get", "valid", auth, bytesOf('{"key":"k"}'), false, undefined, extra))
      cases.push(new HttpCase(0, "POST", "/api/jobs.purge", "valid", auth, bytesOf('{"queue":1}'), false, undefined, extra))
    }
    for (const op of ["kv.get", "kv.scan", "jobs.get", "jobs.list", "jobs.stats"]) {
      cases.push(new HttpCase(0, "POST", `/api/${op}`, "none", undefined, none, false, undefined), new HttpCase(1, "POST", `/api/${op}`, "none", undefined, bytesOf('{"x":1}'), false, undefined))
    }
    for (const b of ['{"id":1}', '{"id":"n2","x":1}', "[]", "{", '{"id":""}']) {
      for (const op of ["admin.add", "admin.promote", "admin.remove", "admin.transfer"]) cases.push(new HttpCase(2, "POST", `/api/${op}`, "valid", auth, bytesOf(b), false, undefined))
    }
    for (const op of ["admin.add", "admin.promote", "admin.remove"]) cases.push(new HttpCase(2, "POST", `/api/${op}`, "valid", auth, none, false, undefined))
    const unsendable = cases.filter((c) => !sendable(expectOf(c)))
    t.same(unsendable.map(String), [], "no fixed request would reshape the cluster")
    const harmless = cases.filter((c) => !mayWrite(expectOf(c)))
    t.ok(harmless.length > 50, `${harmless.length} of the ${cases.length} fixed requests write nothing (the rest are sent with the valid ones)`)
    const problems: Array<string> = []
    for (let i = 0; i < harmless.length; i += 32) problems.push(...(await sendAll(running, harmless.slice(i, i + 32))))
    t.same(problems, [], "each answered as the oracle says")
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
    const families = new Map<string, number>()
    await fc.assert(
      fc.asyncProperty(fc.array(harmless, { minLength: 1, maxLength: 8 }), async (batch) => {
        sent += batch.length
        for (const c of batch) families.set(familyOf(c), (families.get(familyOf(c)) ?? 0) + 1)
        const problems = await sendAll(running, batch)
        if (problems.length > 0) throw new Error(problems.join("\n"))
        const changes = moved(before, await marks(running.nodes))
        if (changes.length > 0) throw new Error(`refused requests moved the log: ${changes.join("; ")}`)
      }),
      fuzz.parameters(100)
    )
    t.ok(sent > 0, `${sent} requests (seed ${fuzz.seed}): ${[...families].map(([f, n]) => `${n} ${f}`).join(", ")}`)
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
