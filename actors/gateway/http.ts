/**
 * The HTTP shim of one node (on when `HTTP_PORT` is set): health, Raft status and Prometheus
 * metrics for operators, and the older REST shape (`/set`, `/get`, `/delete`, `/kv/<key>`,
 * `/raft/leader`, `/raft/state`) for curl users and the older service's clients. The older
 * service's fields (`message`, `state`, `leaderId`, `lastApplied`, `logLen`, ...) are added
 * next to ours, never in place of them, so clients of either shape keep working.
 *
 * Key-value routes are thin: they turn the HTTP request into the same JSON bytes a NATS client
 * would send and hand them to the Gateway's own handlers through an in-process responder
 * (`Responders.inProcess`), so decoding, validation, forwarding to the leader, commit-then-apply
 * acknowledgement and ReadIndex reads are the Gateway's, not copied here.
 *
 * The dashboard's page (`/`, `/dashboard/<file>`) and its API (`POST /api/<group>.<op>`: any
 * service endpoint, through `Backend.call`) follow httpDashboard.ts's rules; this file sends them.
 *
 * I/O shell, not an actor: it reads the real clock (`performance.now()`) for latencies. Every
 * request gets one log line (method, path, status, milliseconds, request id); a handler that
 * throws is answered with a JSON 500 and the server goes on.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Cause, Data, Effect, Runtime, type Scope } from "effect"
import { archioError, ArchioError, statusOf, toEnvelope } from "../../protocol/errors.ts"
import { maxRequestBytes } from "../../protocol/limits.ts"
import * as Dashboard from "./httpDashboard.ts"
import * as Metrics from "./metrics.ts"
import { inProcess, type Responder } from "./responder.ts"

/** The node could not listen on its HTTP port. */
export class HttpError extends Data.TaggedError("HttpError")<{ readonly port: number; readonly cause: unknown; readonly message: string }> {}

/**
 * `admin.status` fields the older status shape is derived from. The Gateway's status always has
 * them; they are optional so a stub backend may leave them out.
 */
export interface StatusDetail {
  readonly lastTerm?: number
  readonly logBaseTerm?: number
  /** Replication progress of each follower, on the leader. */
  readonly peers?: ReadonlyArray<{ readonly id: string; readonly nextIndex: number; readonly matchIndex: number }>
}

/** What the routes need from the node: its status and the Gateway's handlers. */
export interface Backend {
  /** The `admin.status` reply. */
  readonly status: () => Metrics.RaftSample & StatusDetail & { readonly ok: boolean }
  /** The Gateway's write path; `op` is `kv.put` or `kv.del` here. */
  readonly write: (op: string, r: Responder) => void
  /** The Gateway's `kv.get` (linearizable unless the request says `"consistency":"stale"`). */
  readonly get: (r: Responder) => void
  /**
   * Any service endpoint by `<group>.<op>` (`Gateway.call`), for `POST /api/<group>.<op>`. The
   * Gateway always has it; a stub backend without it answers that route 404.
   */
  readonly call?: (op: string, r: Responder) => void
}

export interface HttpOptions {
  /** Port to listen on; 0 picks a free one (see `HttpServer.port`). */
  readonly port: number
  /** Interface to listen on (`archio node` says 127.0.0.1 unless told otherwise); all when absent. */
  readonly host?: string
  /** When set, writes and admin routes need `Authorization: Bearer <token>`. */
  readonly token?: string | undefined
  /** Prefix of generated request ids (`<instanceId>-<n>`), unique per process start. */
  readonly instanceId: string
  readonly metrics: Metrics.Registry
  /** On shutdown, requests still running get this long before their connections are cut. */
  readonly closeGraceMs?: number
  /** What a write reaching a node that does not lead gets (`--http-follower-writes`); `forward` when absent. */
  readonly followerWrites?: FollowerWrites | undefined
  /** Other nodes' HTTP base URLs by node id (`HTTP_PEERS`), to name the leader's in answers. */
  readonly peerUrls?: Readonly<Record<string, string>> | undefined
}

/**
 * `forward`: a write on a follower is passed to the leader and answered from there (the
 * default). `reject`: answered at once with 409 `not_leader` and the leader's id and URL, as the
 * older service did, for clients that follow the hint themselves.
 */
export type FollowerWrites = "forward" | "reject"

export interface HttpServer {
  /** The port actually listened on. */
  readonly port: number
  readonly server: Server
}

/** Request ids from clients are used when they look like ids. */
const requestIdPattern = /^[A-Za-z0-9._:/-]{1,128}$/

/** Routes by path; the shim answers nothing else. */
export const routes = {
  "/health": ["GET"],
  "/raft/status": ["GET"],
  "/metrics": ["GET"],
  "/set": ["PUT", "POST"],
  "/get": ["GET"],
  "/delete": ["DELETE"],
  "/raft/leader": ["GET"],
  "/raft/state": ["GET"],
  // Every path under it: the rest of the path is the key (`kvPrefix`).
  "/kv/": ["GET", "PUT", "DELETE"]
} as const satisfies Record<string, ReadonlyArray<string>>

type Path = keyof typeof routes

/** Routes that change data or show the cluster's inside: behind the token when one is set. */
export const guarded: ReadonlySet<Path> = new Set<Path>(["/set", "/delete", "/raft/status"])

/** The route whose rest of the path is a key: `/kv/users/42` is key `users/42`. */
export const kvPrefix = "/kv/"

/** Whether a request changes data: behind the token, and refused on a follower in `reject` mode. */
const isWrite = (path: Path, method: string): boolean => path === "/set" || path === "/delete" || (path === kvPrefix && method !== "GET")

/** Compares the request's bearer token with ours in constant time (digests of equal length). */
const bearerMatches = (header: string | undefined, token: string): boolean => {
  const given = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1]
  if (given === undefined) return false
  const digest = (s: string): Buffer => createHash("sha256").update(s).digest()
  return timingSafeEqual(digest(given), digest(token))
}

/** Metric endpoint of requests to unknown paths (one series, whatever the path). */
const otherEndpoint = "other"

const isPath = (p: string): p is Path => Object.hasOwn(routes, p)

/** The route serving a request path: the path itself, or `/kv/` for any path under it. */
const routeOf = (pathname: string): Path | undefined => (isPath(pathname) ? pathname : pathname.startsWith(kvPrefix) ? kvPrefix : undefined)

/** One request's answer, sent once. */
interface Exchange {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly id: string
  readonly start: number
  meter: Metrics.EndpointMeter
  answered: boolean
}

const jsonType = "application/json; charset=utf-8"

/** `{"ok":false,"message":...,"error":{code,message,detail?}}`: the older shape plus our envelope. */
const errorBody = (err: ArchioError): unknown => ({ ok: false, message: err.message, error: toEnvelope(err).error })

/** HTTP-only refusals (no such code in the NATS API). */
const refusal = (code: "not_found" | "method_not_allowed" | "bad_request" | "unauthorized", message: string): unknown => ({
  ok: false,
  message,
  error: { code, message }
})

/** The Raft role as the older service named its state; a pre-candidate campaigns, so it counts as a candidate. */
export const legacyState = (role: string): "leader" | "follower" | "candidate" =>
  role === "leader" ? "leader" : role === "candidate" || role === "precandidate" ? "candidate" : "follower"

type NodeStatus = ReturnType<Backend["status"]>

/** `/raft/status`: `admin.status` and, after it, the older service's names for the same values. */
export const legacyStatus = (s: NodeStatus): Record<string, unknown> => {
  // The older service listed per-peer progress on the leader only; elsewhere the maps are empty.
  const peers = s.role === "leader" ? (s.peers ?? []) : []
  return {
    ...s,
    state: legacyState(s.role),
    leaderId: s.leader,
    lastApplied: s.appliedIndex,
    // The older service's len(log): the entries held after the compaction base.
    logLen: Math.max(0, s.lastIndex - s.logBaseIndex),
    lastLogIndex: s.lastIndex,
    lastLogTerm: s.lastTerm,
    nextIndex: Object.fromEntries(peers.map((p) => [p.id, p.nextIndex])),
    matchIndex: Object.fromEntries(peers.map((p) => [p.id, p.matchIndex]))
  }
}

/** A write's answer with the older service's `message` and `key` in front of the Gateway's fields. */
const withMessage =
  (message: "stored" | "deleted") =>
  (body: unknown): unknown => {
    const fields = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {}
    return { ok: true, message, key: fields["key"], ...fields }
  }

// ignoreBOM: a value that starts with U+FEFF keeps it (the default decoder drops it).
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

export const make = (options: HttpOptions, backend: Backend): Effect.Effect<HttpServer, HttpError, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const log = Runtime.runSync(runtime)
    const httpMetrics = options.metrics.http
    const meters = new Map<string, Metrics.EndpointMeter>()
    for (const p of Object.keys(routes)) meters.set(p, httpMetrics.endpoint(p))
    const other = httpMetrics.endpoint(otherEndpoint)
    let seq = 0
    // Once shutting down, every answer closes its connection, so keep-alive clients let go.
    let closing = false

    const record = (x: Exchange, status: number, failure?: unknown): void => {
      const ms = performance.now() - x.start
      x.meter.record(status, ms / 1000)
      const line = `http ${x.req.method ?? "?"} ${shown(x.req.url ?? "")} ${status} ${ms.toFixed(1)}ms`
      const entry =
        failure !== undefined
          ? Effect.logError(line, Cause.die(failure))
          : status >= 500
            ? Effect.logWarning(line)
            : Effect.logInfo(line)
      try {
        log(entry.pipe(Effect.annotateLogs("requestId", x.id)))
      } catch {
        // a logger that throws must not take the request down with it
      }
    }

    /** Writes the answer unless one went out already. Never throws. */
    const send = (x: Exchange, status: number, body: string, contentType: string, failure?: unknown): void => {
      if (x.answered) return
      x.answered = true
      try {
        if (!x.res.headersSent) {
          x.res.statusCode = status
          x.res.setHeader("Content-Type", contentType)
          x.res.setHeader("Content-Length", Buffer.byteLength(body))
          x.res.setHeader("X-Request-Id", x.id)
          if (status === 413 || closing) x.res.setHeader("Connection", "close")
        }
        x.res.end(body)
      } catch {
        // the socket is gone: nothing more to say
      }
      record(x, status, failure)
    }

    const sendJson = (x: Exchange, status: number, body: unknown): void => {
      let text: string
      try {
        text = JSON.stringify(body)
      } catch (e) {
        return crash(x, e)
      }
      send(x, status, text, jsonType)
    }

    const crash = (x: Exchange, e: unknown): void => {
      if (x.answered) return
      const err = archioError("internal", "internal error while handling the request")
      send(x, 500, JSON.stringify(errorBody(err)), jsonType, e)
    }

    const fail = (x: Exchange, err: ArchioError): void => sendJson(x, statusOf(err.code), errorBody(err))

    /**
     * A responder whose answers go to this exchange, successes reshaped by `shape` when given;
     * the Gateway may call it from any callback.
     */
    const responder = (x: Exchange, data: Uint8Array, shape?: (body: unknown) => unknown): Responder =>
      inProcess(data, {
        ok: (body) => sendJson(x, 200, shape === undefined ? body : shape(body)),
        fail: (err) => fail(x, err)
      })

    /** The leader's HTTP base URL when `HTTP_PEERS` names it, else null. */
    const leaderUrl = (leader: string | null): string | null =>
      leader !== null && options.peerUrls !== undefined && Object.hasOwn(options.peerUrls, leader) ? options.peerUrls[leader]! : null

    const noLeaderMessage = "no leader is known right now: writes and linearizable reads fail until one is elected"

    /** `/kv/<key>`: the key from the path, the rest of the request as `/get`, `/set` and `/delete` take it. */
    const handleKv = (x: Exchange, method: string, url: URL, body: Uint8Array): void => {
      let key: string
      try {
        key = decodeURIComponent(url.pathname.slice(kvPrefix.length))
      } catch {
        return fail(x, archioError("bad_request", "the key in the path is not valid percent-encoding (write / as itself or %2F, other bytes as %XX)"))
      }
      const request = kvRequest(key, method, url, body, x.req.headers["content-type"])
      if (request instanceof ArchioError) return fail(x, request)
      if (method === "GET") return backend.get(responder(x, request))
      if (method === "PUT") return backend.write("kv.put", responder(x, request, withMessage("stored")))
      return backend.write("kv.del", responder(x, request, withMessage("deleted")))
    }

    const handle = (x: Exchange, path: Path, method: string, url: URL, body: Uint8Array): void => {
      switch (path) {
        case "/health": {
          const s = backend.status()
          const ready = s.leader !== null
          return sendJson(x, ready ? 200 : 503, {
            ok: ready,
            id: s.id,
            role: s.role,
            state: legacyState(s.role),
            term: s.term,
            leader: s.leader,
            leaderId: s.leader,
            ...(ready ? {} : { message: noLeaderMessage })
          })
        }
        case "/raft/status":
          return sendJson(x, 200, legacyStatus(backend.status()))
        case "/raft/state": {
          const s = backend.status()
          return sendJson(x, 200, { ok: true, id: s.id, state: legacyState(s.role), role: s.role, term: s.term, leaderId: s.leader })
        }
        case "/raft/leader": {
          const s = backend.status()
          if (s.leader === null) return sendJson(x, 503, { ok: false, leaderId: null, leader: null, term: s.term, message: noLeaderMessage })
          return sendJson(x, 200, { ok: true, leaderId: s.leader, leader: leaderUrl(s.leader), term: s.term })
        }
        case "/metrics":
          return send(x, 200, Metrics.render(options.metrics, backend.status()), Metrics.contentType)
        case "/set":
          return backend.write("kv.put", responder(x, body, withMessage("stored")))
        case "/get":
          return backend.get(responder(x, queryJson(url)))
        case "/delete":
          return backend.write("kv.del", responder(x, queryJson(url), withMessage("deleted")))
        case "/kv/":
          return handleKv(x, method, url, body)
      }
    }

    /**
     * With a token set, answers a request that lacks it 401 with a `WWW-Authenticate` header (the
     * older routes and the API refuse alike); true when it did. The caller decides what needs it.
     */
    const refusedWithoutToken = (x: Exchange, path: string): boolean => {
      if (options.token === undefined || bearerMatches(x.req.headers.authorization, options.token)) return false
      x.req.resume()
      x.res.setHeader("WWW-Authenticate", 'Bearer realm="archio"')
      sendJson(x, 401, refusal("unauthorized", `${path} needs the node's HTTP token: send "Authorization: Bearer <token>" (HTTP_TOKEN)`))
      return true
    }

    /**
     * In `reject` mode a write on a node that does not lead is answered 409 with the leader's id
     * and URL (the older service's shape); true when it was.
     */
    const rejectedAsFollower = (x: Exchange, path: Path, method: string): boolean => {
      if (options.followerWrites !== "reject" || !isWrite(path, method)) return false
      const s = backend.status()
      if (s.role === "leader") return false
      sendJson(x, 409, { ok: false, error: "not_leader", message: "not leader", leaderId: s.leader, leader: leaderUrl(s.leader) })
      return true
    }

    // The dashboard (httpDashboard.ts): its files, read once here, and the API the page calls.
    const assets = Dashboard.loadAssets()
    if (assets.missing !== undefined) yield* Effect.logWarning(`http: ${assets.missing}; the dashboard answers 404`)
    const pageMeter = httpMetrics.endpoint(Dashboard.pagePath)
    const apiMeter = httpMetrics.endpoint("/api")

    const serveAsset = (x: Exchange, path: string, method: string): void => {
      x.meter = pageMeter
      x.req.resume()
      const asset = assets.files.get(path)
      if (asset === undefined) return sendJson(x, 404, refusal("not_found", assets.missing ?? `no dashboard file ${path}`))
      if (method !== "GET" && method !== "HEAD") {
        x.res.setHeader("Allow", "GET, HEAD")
        return sendJson(x, 405, refusal("method_not_allowed", `${path} takes GET or HEAD, not ${method}`))
      }
      for (const [name, value] of Object.entries(Dashboard.assetHeaders)) x.res.setHeader(name, value)
      x.res.setHeader("ETag", asset.etag)
      // Node sends no body with a 304 (nor for HEAD); Content-Length stays the file's, as it should.
      send(x, Dashboard.fresh(x.req.headers, asset) ? 304 : 200, asset.body, asset.contentType)
    }

    /** `POST /api/<group>.<op>`: the body is the NATS request, the answer the NATS answer. */
    const serveApi = (x: Exchange, op: string, method: string): void => {
      const { req, res } = x
      x.meter = apiMeter
      for (const [name, value] of Object.entries(Dashboard.apiHeaders)) res.setHeader(name, value)
      const path = `${Dashboard.apiPrefix}${op}`
      const refuse = (status: number, body: unknown): void => {
        req.resume()
        sendJson(x, status, body)
      }
      if (method !== "POST") {
        res.setHeader("Allow", "POST")
        return refuse(405, refusal("method_not_allowed", `${path} takes POST with the request as its JSON body, not ${method}`))
      }
      if (Dashboard.crossSite(req.headers)) return refuse(403, errorBody(archioError("forbidden", `${path}: a page of another site may not call this node's API`)))
      if (!Dashboard.openOps.has(op) && refusedWithoutToken(x, path)) return
      const call = backend.call
      if (call === undefined) return refuse(404, refusal("not_found", `no endpoint ${op}: this node serves no API`))
      readBody(
        req,
        (bytes) => {
          try {
            call(op, responder(x, bytes))
          } catch (e) {
            crash(x, e)
          }
        },
        () => fail(x, archioError("too_large", `the request body is over ${maxRequestBytes} bytes`))
      )
    }

    const serveDashboard = (x: Exchange, path: string): void => {
      const method = x.req.method ?? ""
      const op = Dashboard.apiOp(path)
      return op === undefined ? serveAsset(x, path, method) : serveApi(x, op, method)
    }

    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      const given = req.headers["x-request-id"]
      const id = typeof given === "string" && requestIdPattern.test(given) ? given : `${options.instanceId}-${(++seq).toString(36)}`
      const x: Exchange = { req, res, id, start: performance.now(), meter: other, answered: false }
      try {
        let url: URL
        try {
          url = new URL(req.url ?? "/", "http://localhost")
        } catch {
          req.resume()
          return sendJson(x, 400, refusal("bad_request", "the request target is not a valid URL"))
        }
        if (Dashboard.serves(url.pathname)) return serveDashboard(x, url.pathname)
        const path = routeOf(url.pathname)
        if (path === undefined) {
          req.resume()
          const shownRoutes = [...Object.keys(routes).map((r) => (r === kvPrefix ? `${kvPrefix}<key>` : r)), "/ (dashboard)", `${Dashboard.apiPrefix}<group>.<op>`]
          return sendJson(x, 404, refusal("not_found", `no route ${url.pathname}; routes: ${shownRoutes.join(", ")}`))
        }
        x.meter = meters.get(path) ?? other
        const allowed: ReadonlyArray<string> = routes[path]
        const method = req.method ?? ""
        if (!allowed.includes(method)) {
          req.resume()
          res.setHeader("Allow", allowed.join(", "))
          return sendJson(x, 405, refusal("method_not_allowed", `${path} takes ${allowed.join(" or ")}, not ${method}`))
        }
        if ((guarded.has(path) || isWrite(path, method)) && refusedWithoutToken(x, path)) return
        if (rejectedAsFollower(x, path, method)) {
          req.resume()
          return
        }
        if (path !== "/set" && !(path === kvPrefix && method === "PUT")) {
          req.resume()
          return handle(x, path, method, url, empty)
        }
        readBody(
          req,
          (bytes) => {
            try {
              handle(x, path, method, url, bytes)
            } catch (e) {
              crash(x, e)
            }
          },
          () => fail(x, archioError("too_large", `the request body is over ${maxRequestBytes} bytes`))
        )
      } catch (e) {
        crash(x, e)
      }
    }

    // Bounded like the NATS side: open connections, and how long one request may take to arrive
    // (a client trickling a body would otherwise hold its socket and buffer for five minutes).
    const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, onRequest)
    server.maxConnections = maxHttpConnections
    // Node hands CONNECT to a "connect" listener or drops the socket without a word; say no.
    server.on("connect", (_req, socket) => socket.end("HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
    const port = yield* Effect.acquireRelease(
      Effect.async<number, HttpError>((resume) => {
        const onError = (cause: Error) =>
          resume(
            Effect.fail(new HttpError({ port: options.port, cause, message: `cannot serve HTTP on port ${options.port}: ${cause.message}` }))
          )
        server.once("error", onError)
        server.listen(options.port, options.host, () => {
          server.off("error", onError)
          // Errors after listening (rare: e.g. EMFILE on accept) are logged, never fatal.
          server.on("error", (e) => log(Effect.logWarning(`http server error: ${e.message}`)))
          resume(Effect.succeed((server.address() as AddressInfo).port))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          closing = true
          const grace = setTimeout(() => server.closeAllConnections(), options.closeGraceMs ?? 5_000)
          server.close(() => {
            clearTimeout(grace)
            resume(Effect.void)
          })
          server.closeIdleConnections()
        })
    )
    yield* Effect.logInfo(`http listening on ${options.host ?? "every interface"} port ${port}${options.token === undefined ? "" : " (a token guards writes and /raft/status)"}`)
    return { port, server }
  })

const empty = new Uint8Array(0)

/** A query string's parameters; a name given twice becomes an array (which the schema refuses). */
const queryObject = (url: URL): Record<string, string | Array<string>> => {
  const query: Record<string, string | Array<string>> = Object.create(null) as Record<string, string | Array<string>>
  for (const [name, value] of url.searchParams) {
    const seen = query[name]
    query[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value]
  }
  return query
}

const jsonBytes = (request: unknown): Uint8Array => Buffer.from(JSON.stringify(request), "utf8")

/**
 * A query string as the JSON request a NATS client would send: `?key=a&consistency=stale` ->
 * `{"key":"a","consistency":"stale"}`. A name given twice becomes an array (which the schema
 * refuses); unknown names reach the schema too, which names them.
 */
export const queryJson = (url: URL): Uint8Array => jsonBytes(queryObject(url))

/** `application/json`, whatever its parameters (`; charset=utf-8`). */
const isJsonType = (contentType: string | undefined): boolean => contentType?.split(";")[0]?.trim().toLowerCase() === "application/json"

/**
 * The JSON request of `/kv/<key>` (key already decoded from the path). GET and DELETE take query
 * parameters as `/get` and `/delete` do (`?consistency=stale`). PUT takes the raw body as the
 * value; sent as `application/json`, the body is instead an object of `kv.put` fields without
 * the key (`{"value":"x","ttl":60000}`), the shape older clients sent. Either way the Gateway's
 * schema checks the result.
 */
export const kvRequest = (key: string, method: string, url: URL, body: Uint8Array, contentType: string | undefined): Uint8Array | ArchioError => {
  const keyGiven = archioError("bad_request", 'key: /kv/<key> takes the key from the path; leave "key" out of the request')
  if (method !== "PUT") {
    const query = queryObject(url)
    return Object.hasOwn(query, "key") ? keyGiven : jsonBytes({ key, ...query })
  }
  if (url.search !== "") {
    return archioError("bad_request", 'PUT /kv/<key> takes no query parameters: send the value as the body, or {"value":...,"ttl":...} as application/json')
  }
  let text: string
  try {
    text = utf8Strict.decode(body)
  } catch {
    return archioError("bad_request", "the body is not valid UTF-8: values are text")
  }
  if (!isJsonType(contentType)) return jsonBytes({ key, value: text })
  // A JSON parser may ignore a byte order mark (RFC 8259); a raw value keeps it.
  if (text.startsWith("\ufeff")) text = text.slice(1)
  let fields: unknown
  try {
    fields = JSON.parse(text)
  } catch (e) {
    return archioError("bad_request", `invalid JSON: ${(e as SyntaxError).message}`)
  }
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
    return archioError("bad_request", 'an application/json body must be a JSON object such as {"value":"..."}; send other content types for a raw value')
  }
  if (Object.hasOwn(fields, "key")) return keyGiven
  // The key goes in by splicing the text, not by re-serializing what was parsed: a value nested
  // too deep for JSON.stringify must reach the Gateway's decoder, which refuses it with a 400.
  const inner = text.trimStart().slice(1)
  const rest = inner.trimStart().startsWith("}") ? "}" : `,${inner}`
  return Buffer.from(`{"key":${JSON.stringify(key)}${rest}`, "utf8")
}

/** Open HTTP connections past which new ones are refused (closed at once by Node). */
export const maxHttpConnections = 1024

/** Collects the body up to `maxRequestBytes`; past that calls `tooLarge` once and drops the rest. */
const readBody = (req: IncomingMessage, done: (bytes: Uint8Array) => void, tooLarge: () => void): void => {
  const declared = Number(req.headers["content-length"] ?? "0")
  if (declared > maxRequestBytes) {
    req.resume()
    return tooLarge()
  }
  const chunks: Array<Buffer> = []
  let size = 0
  let over = false
  req.on("data", (chunk: Buffer) => {
    if (over) return
    size += chunk.length
    if (size > maxRequestBytes) {
      over = true
      chunks.length = 0
      return tooLarge()
    }
    chunks.push(chunk)
  })
  req.on("end", () => {
    if (!over) done(Buffer.concat(chunks, size))
  })
  req.on("error", () => {
    // the client went away; its answer has nowhere to go
  })
}

/** The request target for a log line: control characters escaped, at most 200 characters. */
const shown = (target: string): string => {
  // eslint-disable-next-line no-control-regex -- escaping control characters is the point
  const clean = target.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean
}
