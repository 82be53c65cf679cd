/**
 * Our own implementation of the NATS Services API (ADR-32, "micro"), so `nats micro ls`,
 * `nats micro info` and `nats micro stats` see every Archio node.
 *
 * Spec: nats-io/nats-architecture-and-design `adr/ADR-32.md` (Service API, revision 6) and the
 * JSON Schemas in nats-io/jsm.go `schemas/micro/v1/{ping,info,stats}_response.json`.
 *
 * Built for the hot path: one callback subscription per endpoint, `Uint8Array` payloads, one
 * small request object per message, no Promise or Deferred per message and never a `flush()`.
 * Replies are plain publishes to the request's reply subject, which also lets one node answer a
 * request another node received (see `respondOnSubject`).
 *
 * This is I/O shell code, not an actor: it reads the real clock (`process.hrtime.bigint()` for
 * processing times, `Date` for `started`). The instance id is an input, never random here.
 */
import { headers, type MsgHdrs } from "@nats-io/transport-node"
import { Data } from "effect"
import { archioError, statusOf, toEnvelope, type ArchioError } from "../../protocol/errors.ts"
import { encodeJson } from "../../protocol/json.ts"
import type { Bus, BusMessage as Msg, BusSubscription as Subscription } from "../../protocol/bus.ts"
import { errorCodeHeader, errorHeader } from "../../protocol/reply.ts"

// ---------------------------------------------------------------------------------------------
// Wire constants (ADR-32)

/** Root of the discovery and monitoring subjects. */
const apiPrefix = "$SRV"
/** The queue group every endpoint joins (ADR-32's default), so instances share the requests. */
const queueGroup = "q"
export { readError } from "../../protocol/reply.ts"

const responseTypes = {
  ping: "io.nats.micro.v1.ping_response",
  info: "io.nats.micro.v1.info_response",
  stats: "io.nats.micro.v1.stats_response"
} as const

export type Verb = "PING" | "INFO" | "STATS"
const verbs: ReadonlyArray<Verb> = ["PING", "INFO", "STATS"]

/** `$SRV.<verb>`, `$SRV.<verb>.<name>` or `$SRV.<verb>.<name>.<id>`. */
export const controlSubject = (verb: Verb, name?: string, id?: string): string =>
  name === undefined ? `${apiPrefix}.${verb}` : id === undefined ? `${apiPrefix}.${verb}.${name}` : `${apiPrefix}.${verb}.${name}.${id}`

// ---------------------------------------------------------------------------------------------
// Public types

/** One request delivered to an endpoint handler. Only requests with a reply subject get here. */
export interface ServiceRequest {
  readonly subject: string
  readonly data: Uint8Array
  readonly headers: MsgHdrs | undefined
  /** The requester's reply subject (its inbox). */
  readonly reply: string
  /** True once the request was answered (or handed off); later answers are no-ops. */
  readonly responded: boolean
  /** Sends `payload` as the reply and records a success. A second answer is a no-op. */
  respond(payload: Uint8Array): void
  /**
   * Sends an error reply: headers `Nats-Service-Error-Code` (the numeric `statusOf(code)`) and
   * `Nats-Service-Error` (the message), body `{"ok":false,"error":{code,message,detail?}}`.
   * Records an error. A second answer is a no-op.
   */
  respondError(err: ArchioError): void
  /**
   * Marks the request as answered elsewhere: the caller passed `reply` on to another node, which
   * will answer with `respondOnSubject`. Records the time so far as processing time and a success;
   * later answers from here are no-ops.
   */
  handOff(): void
}

/**
 * Handles one request. It may answer now or later. A synchronous throw (or a rejected promise
 * from an async handler) is answered with `internal` and counted as an error.
 */
export type Handler = (req: ServiceRequest) => void

export interface EndpointSpec {
  /** Letters, digits, `_` and `-` (ADR-32); several endpoints may share one. */
  readonly name: string
  /** Subject the endpoint listens on; wildcards allowed, `>` only last, never under `$SRV`. */
  readonly subject: string
  readonly handler: Handler
}

export interface ServiceSpec {
  /** The kind of service, shared by all instances: letters, digits, `_` and `-`. */
  readonly name: string
  /** A SemVer version string. */
  readonly version: string
  readonly description?: string
  /**
   * Unique per instance (for example the node id plus a suffix from the caller's seeded
   * generator). One subject token: letters, digits, `_` and `-`.
   */
  readonly id: string
  readonly metadata?: Readonly<Record<string, string>>
  readonly endpoints?: ReadonlyArray<EndpointSpec>
}

export interface PingResponse {
  readonly type: typeof responseTypes.ping
  readonly name: string
  readonly id: string
  readonly version: string
  readonly metadata: Readonly<Record<string, string>>
}

export interface EndpointInfo {
  readonly name: string
  readonly subject: string
  readonly queue_group: string
  readonly metadata: Readonly<Record<string, string>>
}

export interface InfoResponse {
  readonly type: typeof responseTypes.info
  readonly name: string
  readonly id: string
  readonly version: string
  readonly metadata: Readonly<Record<string, string>>
  readonly description: string
  readonly endpoints: ReadonlyArray<EndpointInfo>
}

export interface EndpointStats {
  readonly name: string
  readonly subject: string
  readonly queue_group: string
  readonly num_requests: number
  readonly num_errors: number
  /** `""` when there has been none. */
  readonly last_error: string
  /** Nanoseconds, from receipt to reply, summed over answered requests. */
  readonly processing_time: number
  /** `processing_time / num_requests` in nanoseconds, truncated; 0 without requests. */
  readonly average_processing_time: number
}

export interface StatsResponse {
  readonly type: typeof responseTypes.stats
  readonly name: string
  readonly id: string
  readonly version: string
  readonly metadata: Readonly<Record<string, string>>
  readonly endpoints: ReadonlyArray<EndpointStats>
  /** RFC 3339, UTC. */
  readonly started: string
}

export interface Service {
  readonly name: string
  readonly id: string
  readonly isStopped: boolean
  /**
   * Resolves once the service has stopped: `null` after `stop()`, an `Error` when a subscription
   * failed (for example a permissions violation) or the connection closed. Never rejects.
   */
  readonly stopped: Promise<Error | null>
  ping(): PingResponse
  info(): InfoResponse
  stats(): StatsResponse
  /**
   * Drains every subscription (endpoints and `$SRV`); resolves once the server has dropped the
   * interest. Requests already delivered can still be answered afterwards. Safe to call twice.
   */
  stop(): Promise<void>
  /**
   * Starts or stops taking the requests of the endpoints named (`kv-put`, ...) while the service
   * runs: stopping drains, so requests already routed here are still answered. They stay in
   * `$SRV.INFO` and `$SRV.STATS`. Unknown names are ignored.
   */
  listen(names: ReadonlySet<string>, on: boolean): void
}

/** A service or endpoint specification that cannot work; thrown by `start`. */
export class ServiceConfigError extends Data.TaggedError("ServiceConfigError")<{ readonly message: string }> {}

// ---------------------------------------------------------------------------------------------
// Validation

const namePattern = /^[A-Za-z0-9_-]+$/
// The suggested regular expression from https://semver.org (also what ADR-32 and nats.go use).
const semverPattern =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/
const whitespace = /\s/

const configError = (message: string): ServiceConfigError => new ServiceConfigError({ message })

const checkName = (what: string, value: string): void => {
  if (!namePattern.test(value))
    throw configError(`${what} ${JSON.stringify(value)} is invalid: use only letters, digits, "_" and "-" (at least one)`)
}

const checkSubject = (subject: string): void => {
  const bad = (why: string) => configError(`endpoint subject ${JSON.stringify(subject)} is invalid: ${why}`)
  if (subject === "" || whitespace.test(subject)) throw bad("it must be non-empty and contain no whitespace")
  const tokens = subject.split(".")
  tokens.forEach((token, i) => {
    if (token === "") throw bad("it has an empty token")
    if (token === ">" && i !== tokens.length - 1) throw bad('">" may only be the last token')
    if (token.length > 1 && (token.includes("*") || token.includes(">"))) throw bad('"*" and ">" must stand alone as tokens')
  })
  if (tokens[0] === apiPrefix) throw bad(`"${apiPrefix}" is reserved for discovery and monitoring`)
}

const emptyMetadata: Readonly<Record<string, string>> = Object.freeze({})

// ---------------------------------------------------------------------------------------------
// Replies


/** Header values cannot hold CR or LF. */
const headerSafe = (text: string): string => text.replace(/[\r\n]+/g, " ")

/** The ADR-32 error headers for `err`: numeric code and message. */
const errorHeaders = (err: ArchioError): MsgHdrs => {
  const h = headers()
  h.set(errorCodeHeader, String(statusOf(err.code)))
  h.set(errorHeader, headerSafe(err.message))
  return h
}

/** The JSON body of an error reply: `{"ok":false,"error":{code,message,detail?}}`. */
const encodeError = (err: ArchioError): Uint8Array => encodeJson(toEnvelope(err))

const describe = (err: ArchioError): string => `${err.code}: ${err.message}`

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/**
 * Publishes a reply or an error reply to `reply`. Never throws: returns undefined when the reply
 * went out as asked, otherwise what went wrong (a reply over the server's `max_payload` is
 * replaced by a `too_large` error reply; a closed connection sends nothing).
 */
const send = (nc: Bus, reply: string, body: Uint8Array | ArchioError): string | undefined => {
  try {
    if (body instanceof Uint8Array) {
      const max = nc.info?.max_payload
      if (max !== undefined && body.length > max) {
        const e = archioError("too_large", `the reply is ${body.length} bytes, more than the server's max_payload of ${max}`)
        nc.publish(reply, encodeError(e), { headers: errorHeaders(e) })
        return describe(e)
      }
      nc.publish(reply, body)
    } else {
      nc.publish(reply, encodeError(body), { headers: errorHeaders(body) })
    }
    return undefined
  } catch (e) {
    return `internal: the reply could not be sent: ${messageOf(e)}`
  }
}

/**
 * Answers a request on its reply subject from anywhere: one node answers a request another node
 * received and forwarded with the client's inbox. Returns false when nothing could be sent as
 * asked (a closed connection, or a payload over `max_payload`, which becomes a `too_large` reply).
 */
export const respondOnSubject = (nc: Bus, reply: string, body: Uint8Array | ArchioError): boolean =>
  send(nc, reply, body) === undefined

// ---------------------------------------------------------------------------------------------
// Implementation

class Request implements ServiceRequest {
  #done = false
  readonly #endpoint: Endpoint
  readonly #msg: Msg
  readonly #start: bigint
  readonly reply: string

  constructor(endpoint: Endpoint, msg: Msg, reply: string, start: bigint) {
    this.#endpoint = endpoint
    this.#msg = msg
    this.reply = reply
    this.#start = start
  }

  get subject(): string {
    return this.#msg.subject
  }
  get data(): Uint8Array {
    return this.#msg.data
  }
  get headers(): MsgHdrs | undefined {
    return this.#msg.headers
  }
  get responded(): boolean {
    return this.#done
  }

  respond(payload: Uint8Array): void {
    if (this.#done) return
    this.#done = true
    this.#endpoint.finish(this.#start, send(this.#endpoint.service.nc, this.reply, payload))
  }

  respondError(err: ArchioError): void {
    if (this.#done) return
    this.#done = true
    this.#endpoint.finish(this.#start, send(this.#endpoint.service.nc, this.reply, err) ?? describe(err))
  }

  handOff(): void {
    if (this.#done) return
    this.#done = true
    this.#endpoint.finish(this.#start, undefined)
  }
}

class Endpoint {
  readonly service: ServiceImpl
  readonly name: string
  readonly subject: string
  readonly handler: Handler
  sub: Subscription | undefined = undefined
  /** Not taking requests for now (`Service.listen`): its subscription was drained on purpose. */
  paused = false
  numRequests = 0
  numErrors = 0
  lastError = ""
  processingNs = 0n

  constructor(service: ServiceImpl, spec: EndpointSpec) {
    this.service = service
    this.name = spec.name
    this.subject = spec.subject
    this.handler = spec.handler
  }

  /** The subscription callback: the whole per-message path. */
  readonly onMessage = (err: Error | null, msg: Msg): void => {
    if (err !== null) {
      this.recordError(`internal: subscription failed: ${err.message}`)
      this.service.fail(err)
      return
    }
    const start = process.hrtime.bigint()
    this.numRequests++
    const reply = msg.reply
    if (reply === undefined || reply === "") {
      this.recordError(`bad_request: a message on ${msg.subject} had no reply subject and was ignored`)
      return
    }
    const req = new Request(this, msg, reply, start)
    try {
      const result: unknown = this.handler(req)
      if (result instanceof Promise) result.then(undefined, (e: unknown) => this.crashed(req, e))
    } catch (e) {
      this.crashed(req, e)
    }
  }

  finish(start: bigint, error: string | undefined): void {
    this.processingNs += process.hrtime.bigint() - start
    if (error !== undefined) this.recordError(error)
  }

  recordError(error: string): void {
    this.numErrors++
    this.lastError = error
  }

  crashed(req: Request, e: unknown): void {
    const why = `internal: the ${this.name} handler failed: ${messageOf(e)}`
    if (req.responded) this.recordError(why)
    else {
      req.respondError(archioError("internal", `internal error while handling ${this.name}`))
      this.lastError = why
    }
  }

  info(): EndpointInfo {
    return { name: this.name, subject: this.subject, queue_group: queueGroup, metadata: emptyMetadata }
  }

  stats(): EndpointStats {
    const processing = Number(this.processingNs)
    return {
      name: this.name,
      subject: this.subject,
      queue_group: queueGroup,
      num_requests: this.numRequests,
      num_errors: this.numErrors,
      last_error: this.lastError,
      processing_time: processing,
      average_processing_time: this.numRequests === 0 ? 0 : Number(this.processingNs / BigInt(this.numRequests))
    }
  }
}

class ServiceImpl implements Service {
  readonly nc: Bus
  readonly name: string
  readonly id: string
  readonly version: string
  readonly description: string
  readonly metadata: Readonly<Record<string, string>>
  readonly stopped: Promise<Error | null>
  readonly #endpoints: Array<Endpoint> = []
  readonly #control: Array<Subscription> = []
  readonly #pingBytes: Uint8Array
  #infoBytes: Uint8Array | undefined = undefined
  readonly #started = new Date().toISOString()
  #stopping = false
  #stopDone: Promise<void> | undefined = undefined
  #resolveStopped: (value: Error | null) => void = () => {}

  constructor(nc: Bus, spec: ServiceSpec) {
    checkName("service name", spec.name)
    checkName("service id", spec.id)
    if (!semverPattern.test(spec.version))
      throw configError(`service version ${JSON.stringify(spec.version)} is not a SemVer version such as 1.0.0`)
    this.nc = nc
    this.name = spec.name
    this.id = spec.id
    this.version = spec.version
    this.description = spec.description ?? ""
    this.metadata = spec.metadata ?? emptyMetadata
    this.stopped = new Promise((resolve) => {
      this.#resolveStopped = resolve
    })
    this.#pingBytes = encodeJson(this.ping())
  }

  get isStopped(): boolean {
    return this.#stopping
  }

  /** Subscribes the `$SRV` subjects and the given endpoints; on failure undoes what it did. */
  begin(endpoints: ReadonlyArray<EndpointSpec>): void {
    const endpointObjects = endpoints.map((e) => this.#makeEndpoint(e))
    try {
      for (const verb of verbs) {
        const answer = this.#answer(verb)
        for (const subject of [controlSubject(verb), controlSubject(verb, this.name), controlSubject(verb, this.name, this.id)])
          this.#control.push(this.#watch(this.nc.subscribe(subject, { callback: answer }), subject))
      }
      for (const e of endpointObjects) this.#subscribe(e)
    } catch (e) {
      for (const sub of this.#control) sub.unsubscribe()
      for (const ep of this.#endpoints) ep.sub?.unsubscribe()
      this.#stopping = true
      this.#resolveStopped(e instanceof Error ? e : new Error(String(e)))
      throw e
    }
  }

  #makeEndpoint(spec: EndpointSpec): Endpoint {
    checkName("endpoint name", spec.name)
    checkSubject(spec.subject)
    return new Endpoint(this, spec)
  }

  #subscribe(e: Endpoint): void {
    this.#endpoints.push(e)
    this.#listen(e)
  }

  #listen(e: Endpoint): void {
    const sub = this.nc.subscribe(e.subject, { queue: queueGroup, callback: e.onMessage })
    e.sub = this.#watch(sub, e.subject, () => e.sub !== sub)
  }

  listen(names: ReadonlySet<string>, on: boolean): void {
    if (this.#stopping) return
    for (const e of this.#endpoints) {
      if (!names.has(e.name) || e.paused !== on) continue
      if (on) {
        e.paused = false
        this.#listen(e)
      } else {
        e.paused = true
        const sub = e.sub
        e.sub = undefined
        if (sub !== undefined && !sub.isClosed() && !this.nc.isClosed()) void sub.drain().catch(() => {})
      }
    }
  }

  /**
   * A required subscription that ends while we are not stopping stops the whole service, unless
   * it was let go on purpose (`released`).
   */
  #watch(sub: Subscription, subject: string, released: () => boolean = () => false): Subscription {
    void sub.closed.then((err) => {
      if (!this.#stopping && !released()) this.fail(err instanceof Error ? err : new Error(`the subscription on ${subject} closed (connection closed?)`))
    })
    return sub
  }

  #answer(verb: Verb): (err: Error | null, msg: Msg) => void {
    return (err, msg) => {
      if (err !== null) {
        this.fail(err)
        return
      }
      const reply = msg.reply
      if (reply === undefined || reply === "") return
      const body =
        verb === "PING" ? this.#pingBytes : verb === "INFO" ? (this.#infoBytes ??= encodeJson(this.info())) : encodeJson(this.stats())
      send(this.nc, reply, body)
    }
  }

  ping(): PingResponse {
    return { type: responseTypes.ping, name: this.name, id: this.id, version: this.version, metadata: this.metadata }
  }

  info(): InfoResponse {
    return {
      type: responseTypes.info,
      name: this.name,
      id: this.id,
      version: this.version,
      metadata: this.metadata,
      description: this.description,
      endpoints: this.#endpoints.map((e) => e.info())
    }
  }

  stats(): StatsResponse {
    return {
      type: responseTypes.stats,
      name: this.name,
      id: this.id,
      version: this.version,
      metadata: this.metadata,
      endpoints: this.#endpoints.map((e) => e.stats()),
      started: this.#started
    }
  }

  stop(): Promise<void> {
    return this.#halt(null)
  }

  /** Stops the service because something broke; `stopped` resolves with `err`. */
  fail(err: Error): void {
    void this.#halt(err)
  }

  #halt(reason: Error | null): Promise<void> {
    if (this.#stopDone !== undefined) return this.#stopDone
    this.#stopping = true
    const subs = [...this.#endpoints.flatMap((e) => (e.sub === undefined ? [] : [e.sub])), ...this.#control]
    const drains = this.nc.isClosed() ? [] : subs.filter((s) => !s.isClosed()).map((s) => s.drain())
    this.#stopDone = Promise.allSettled(drains).then(() => this.#resolveStopped(reason))
    return this.#stopDone
  }
}

/**
 * Starts a service on `nc`: subscribes its endpoints (in their queue groups) and the nine
 * `$SRV.{PING,INFO,STATS}[.<name>[.<id>]]` subjects (not queued). Throws `ServiceConfigError`
 * for a bad name, id, version or subject. Interest reaches the server with the
 * connection's next flush; call `nc.flush()` once if you need it there before going on.
 */
export const start = (nc: Bus, spec: ServiceSpec): Service => {
  const service = new ServiceImpl(nc, spec)
  service.begin(spec.endpoints ?? [])
  return service
}
