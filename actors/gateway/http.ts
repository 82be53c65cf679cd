/**
 * The HTTP shim of one node (on when `HTTP_PORT` is set): health, Raft status and Prometheus
 * metrics for operators, and the older REST shape (`/set`, `/get`, `/delete`) for curl users.
 *
 * Key-value routes are thin: they turn the HTTP request into the same JSON bytes a NATS client
 * would send and hand them to the Gateway's own handlers through an in-process responder
 * (`Responders.inProcess`), so decoding, validation, forwarding to the leader, commit-then-apply
 * acknowledgement and ReadIndex reads are the Gateway's, not copied here.
 *
 * I/O shell, not an actor: it reads the real clock (`performance.now()`) for latencies. Every
 * request gets one log line (method, path, status, milliseconds, request id); a handler that
 * throws is answered with a JSON 500 and the server goes on.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Cause, Data, Effect, Runtime, type Scope } from "effect"
import { archioError, statusOf, toEnvelope, type ArchioError } from "../../protocol/errors.ts"
import { maxRequestBytes } from "../../protocol/limits.ts"
import * as Metrics from "./metrics.ts"
import { inProcess, type Responder } from "./responder.ts"

/** The node could not listen on its HTTP port. */
export class HttpError extends Data.TaggedError("HttpError")<{ readonly port: number; readonly cause: unknown; readonly message: string }> {}

/** What the routes need from the node: its status and the Gateway's handlers. */
export interface Backend {
  /** The `admin.status` reply. */
  readonly status: () => Metrics.RaftSample & { readonly ok: boolean }
  /** The Gateway's write path; `op` is `kv.put` or `kv.del` here. */
  readonly write: (op: string, r: Responder) => void
  /** The Gateway's `kv.get` (linearizable unless the request says `"consistency":"stale"`). */
  readonly get: (r: Responder) => void
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
}

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
  "/delete": ["DELETE"]
} as const satisfies Record<string, ReadonlyArray<string>>

type Path = keyof typeof routes

/** Routes that change data or show the cluster's inside: behind the token when one is set. */
export const guarded: ReadonlySet<Path> = new Set<Path>(["/set", "/delete", "/raft/status"])

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

    /** A responder whose answers go to this exchange; the Gateway may call it from any callback. */
    const responder = (x: Exchange, data: Uint8Array): Responder =>
      inProcess(data, {
        ok: (body) => sendJson(x, 200, body),
        fail: (err) => fail(x, err)
      })

    const handle = (x: Exchange, path: Path, url: URL, body: Uint8Array): void => {
      switch (path) {
        case "/health": {
          const s = backend.status()
          const ready = s.leader !== null
          return sendJson(x, ready ? 200 : 503, {
            ok: ready,
            id: s.id,
            role: s.role,
            term: s.term,
            leader: s.leader,
            ...(ready ? {} : { message: "no leader is known right now: writes and linearizable reads fail until one is elected" })
          })
        }
        case "/raft/status":
          return sendJson(x, 200, backend.status())
        case "/metrics":
          return send(x, 200, Metrics.render(options.metrics, backend.status()), Metrics.contentType)
        case "/set":
          return backend.write("kv.put", responder(x, body))
        case "/get":
          return backend.get(responder(x, queryJson(url)))
        case "/delete":
          return backend.write("kv.del", responder(x, queryJson(url)))
      }
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
        const path = url.pathname
        if (!isPath(path)) {
          req.resume()
          return sendJson(x, 404, refusal("not_found", `no route ${path}; routes: ${Object.keys(routes).join(", ")}`))
        }
        x.meter = meters.get(path) ?? other
        const allowed: ReadonlyArray<string> = routes[path]
        const method = req.method ?? ""
        if (!allowed.includes(method)) {
          req.resume()
          res.setHeader("Allow", allowed.join(", "))
          return sendJson(x, 405, refusal("method_not_allowed", `${path} takes ${allowed.join(" or ")}, not ${method}`))
        }
        if (options.token !== undefined && guarded.has(path) && !bearerMatches(req.headers.authorization, options.token)) {
          req.resume()
          res.setHeader("WWW-Authenticate", 'Bearer realm="archio"')
          return sendJson(x, 401, refusal("unauthorized", `${path} needs the node's HTTP token: send "Authorization: Bearer <token>" (HTTP_TOKEN)`))
        }
        if (path !== "/set") {
          req.resume()
          return handle(x, path, url, empty)
        }
        readBody(
          req,
          (bytes) => {
            try {
              handle(x, path, url, bytes)
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

/**
 * A query string as the JSON request a NATS client would send: `?key=a&consistency=stale` ->
 * `{"key":"a","consistency":"stale"}`. A name given twice becomes an array (which the schema
 * refuses); unknown names reach the schema too, which names them.
 */
export const queryJson = (url: URL): Uint8Array => {
  const query: Record<string, string | Array<string>> = Object.create(null) as Record<string, string | Array<string>>
  for (const [name, value] of url.searchParams) {
    const seen = query[name]
    query[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value]
  }
  return Buffer.from(JSON.stringify(query), "utf8")
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
