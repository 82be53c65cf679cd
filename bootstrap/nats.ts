/**
 * The node's NATS connection as a scoped Layer: connects (waiting for the first server as long
 * as it takes), reconnects forever, logs every status change, and drains on release so
 * in-flight replies go out before the socket closes. A node has two (`busLayer` for clients,
 * `raftBusLayer` for Raft); each of their log lines carries `connection=client` or `raft`.
 */
import {
  connect,
  createInbox,
  credsAuthenticator,
  errors,
  nkeyAuthenticator,
  nkeys,
  type ConnectionOptions,
  type NatsConnection,
  type Status
} from "@nats-io/transport-node"
import { Cause, Context, Data, Effect, Layer, Runtime } from "effect"
import type { Scope } from "effect"
import { readFile } from "node:fs/promises"
import { Bus, RaftBus } from "../actors/services/bus.ts"
import { redactUrl, type NatsSettings } from "./config.ts"
import { tlsRefusal } from "./tlsProbe.ts"

export class Nats extends Context.Tag("archio/Nats")<Nats, NatsConnection>() {}

export class NatsError extends Data.TaggedError("NatsError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** What the layer needs from the configuration. */
export interface NatsLayerConfig {
  readonly id: string
  readonly cluster: string
  readonly nats: NatsSettings
}

/** The connection name servers show in `/connz` and `nats server report connections`. */
export const connectionName = (config: Pick<NatsLayerConfig, "id" | "cluster">, purpose?: "raft"): string =>
  `archio-${config.cluster}-${config.id}${purpose === undefined ? "" : `-${purpose}`}`

/** How long `drain()` may take on release before we close the connection outright. */
const drainTimeoutMs = 5000

/** Client options for `settings` (without the creds authenticator, which needs the file). */
export const connectOptions = (settings: NatsSettings, name: string): ConnectionOptions => {
  const options: ConnectionOptions = {
    servers: [...settings.servers],
    name,
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectTimeWait: 1000,
    pingInterval: 10_000,
    maxPingOut: 3
  }
  if (settings.user !== undefined) options.user = settings.user
  if (settings.pass !== undefined) options.pass = settings.pass
  if (settings.token !== undefined) options.token = settings.token
  if (settings.inboxPrefix !== undefined) options.inboxPrefix = settings.inboxPrefix
  if (settings.tls !== undefined) {
    const tls: NonNullable<ConnectionOptions["tls"]> = {}
    if (settings.tls.caFile !== undefined) tls.caFile = settings.tls.caFile
    if (settings.tls.certFile !== undefined) tls.certFile = settings.tls.certFile
    if (settings.tls.keyFile !== undefined) tls.keyFile = settings.tls.keyFile
    options.tls = tls
  }
  return options
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** A user nkey seed read from `file`; the message never shows the file's contents. */
const readSeed = (file: string): Effect.Effect<Uint8Array, NatsError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (cause) => new NatsError({ cause, message: `cannot read the NATS nkey file ${file} (NATS_NKEY): ${message(cause)}` })
  }).pipe(
    Effect.flatMap((text) => {
      const seed = new TextEncoder().encode(text.trim())
      try {
        nkeys.fromSeed(seed)
      } catch (cause) {
        return Effect.fail(new NatsError({ cause, message: `the NATS nkey file ${file} (NATS_NKEY) does not hold a user nkey seed (a line starting with SU)` }))
      }
      return Effect.succeed(seed)
    })
  )

/** `connectOptions` plus the authenticator of a creds or nkey file, read when one is set. */
export const clientOptions = (settings: NatsSettings, name: string): Effect.Effect<ConnectionOptions, NatsError> => {
  const options = connectOptions(settings, name)
  const creds = settings.credsFile
  const nkey = settings.nkeyFile
  if (creds !== undefined) {
    return Effect.tryPromise({
      try: () => readFile(creds),
      catch: (cause) => new NatsError({ cause, message: `cannot read the NATS creds file ${creds} (NATS_CREDS): ${message(cause)}` })
    }).pipe(Effect.map((bytes) => ({ ...options, authenticator: credsAuthenticator(new Uint8Array(bytes)) })))
  }
  if (nkey !== undefined) return readSeed(nkey).pipe(Effect.map((seed) => ({ ...options, authenticator: nkeyAuthenticator(seed) })))
  return Effect.succeed(options)
}

/** Who we said we were, for messages: the user, the kind of credential, never a secret. */
export const identity = (settings: NatsSettings): string =>
  settings.user !== undefined
    ? `user ${JSON.stringify(settings.user)} (NATS_USER, NATS_PASS)`
    : settings.token !== undefined
      ? "the token (NATS_TOKEN)"
      : settings.credsFile !== undefined
        ? `the creds file ${settings.credsFile} (NATS_CREDS)`
        : settings.nkeyFile !== undefined
          ? `the nkey in ${settings.nkeyFile} (NATS_NKEY)`
          : "an anonymous connection (set NATS_USER and NATS_PASS, or another NATS_* credential)"

/** Why connecting failed, as one sentence that names what to check; no secret in it. */
export const connectFailure = (settings: NatsSettings, where: string, cause: unknown): string =>
  cause instanceof errors.AuthorizationError
    ? `NATS at ${where} refused ${identity(settings)}: ${cause.message}`
    : `cannot connect to NATS at ${where}: ${message(cause)}`

/**
 * Why the server will not deliver replies to this connection's inbox, or undefined when it
 * will. A NATS user allowed to read only its own inbox prefix gets a permissions violation
 * for any other; without this check every request would just time out.
 */
export const inboxRefusal = async (nc: NatsConnection, settings: NatsSettings): Promise<string | undefined> => {
  const prefix = settings.inboxPrefix ?? "_INBOX"
  const probe = nc.subscribe(createInbox(prefix), { callback: () => undefined })
  // The server answers the SUB (-ERR when refused) before the PONG that ends the flush.
  await nc.flush()
  const closed = await Promise.race([probe.closed, Promise.resolve("open" as const)])
  if (closed === "open") {
    probe.unsubscribe()
    return undefined
  }
  const why = closed instanceof Error ? closed.message : "the subscription was closed"
  return `the inbox prefix ${prefix} is not readable by ${identity(settings)} (${why}): set NATS_INBOX_PREFIX (--nats-inbox-prefix) to the prefix this user may read (_INBOX_<user> with ops/nats)`
}

/**
 * One connection for a command (CLI, worker, launcher): `clientOptions` with `overrides`, and an
 * inbox the server delivers replies to. Rejects with an Error whose message is one sentence.
 */
export const connectClient = async (settings: NatsSettings, name: string, overrides: Partial<ConnectionOptions> = {}): Promise<NatsConnection> => {
  const where = settings.servers.map(redactUrl).join(",")
  const base = await Effect.runPromise(Effect.either(clientOptions(settings, name)))
  if (base._tag === "Left") throw new Error(base.left.message)
  // A refused TLS connection would only be a timeout from nats.js (tlsProbe.ts says why).
  const tlsRefused = await tlsRefusal(settings)
  if (tlsRefused !== undefined) throw new Error(tlsRefused)
  let nc: NatsConnection
  try {
    nc = await connect({ ...base.right, ...overrides })
  } catch (e) {
    throw new Error(connectFailure(settings, where, e))
  }
  const refused = await inboxRefusal(nc, settings)
  if (refused !== undefined) {
    await nc.close().catch(() => undefined)
    throw new Error(refused)
  }
  return nc
}

/**
 * Connects, interruptibly: with `waitOnFirstConnect` the client keeps trying until a server
 * answers, and a shutdown during that wait must neither hang nor leave the retry loop running.
 * The client asks `reconnectToServer` before every dial and gives up when it throws, so that is
 * our cancel switch; a connection that arrives after we gave up is closed at once.
 */
const connectInterruptibly = (options: ConnectionOptions, settings: NatsSettings, where: string): Effect.Effect<NatsConnection, NatsError> =>
  Effect.async<NatsConnection, NatsError>((resume) => {
    let cancelled = false
    const chosen = options.reconnectToServer
    const reconnectToServer: NonNullable<ConnectionOptions["reconnectToServer"]> = (pool, info) => {
      if (cancelled) throw new Error("shutting down")
      return chosen === undefined ? null : chosen(pool, info)
    }
    connect({ ...options, reconnectToServer }).then(
      (nc) => {
        if (cancelled) void nc.close()
        else resume(Effect.succeed(nc))
      },
      (cause: unknown) => {
        if (!cancelled) resume(Effect.fail(new NatsError({ cause, message: connectFailure(settings, where, cause) })))
      }
    )
    return Effect.sync(() => {
      cancelled = true
    })
  })

const logStatus = (status: Status): Effect.Effect<void> => {
  switch (status.type) {
    case "disconnect":
      return Effect.logWarning(`NATS disconnected from ${redactUrl(status.server)}; reconnecting`)
    case "reconnect":
      return Effect.logInfo(`NATS reconnected to ${redactUrl(status.server)}`)
    case "reconnecting":
      return Effect.logDebug("NATS trying to reconnect")
    case "ldm":
      return Effect.logWarning(`NATS server ${status.server} is entering lame duck mode; will move to another server`)
    case "error":
      return Effect.logError(`NATS error: ${status.error.message}`)
    case "staleConnection":
      return Effect.logWarning("NATS connection went stale (no PONGs); reconnecting")
    case "slowConsumer":
      return Effect.logWarning(`NATS slow consumer on ${status.sub.getSubject()}: ${status.pending} messages pending`)
    case "forceReconnect":
      return Effect.logInfo("NATS reconnect forced")
    case "close":
      return Effect.logDebug("NATS connection closed")
    case "update":
      return Effect.logDebug(`NATS cluster update: added ${status.added?.join(",") ?? "-"} deleted ${status.deleted?.join(",") ?? "-"}`)
    case "ping":
      return Effect.void
  }
}

const drain = (nc: NatsConnection): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (nc.isClosed()) return
    const drained = yield* Effect.tryPromise({ try: () => nc.drain(), catch: (e) => e }).pipe(
      Effect.timeout(drainTimeoutMs),
      Effect.as(true),
      Effect.catchAll((e) => {
        const why = e instanceof Cause.TimeoutException ? `no end after ${drainTimeoutMs} ms` : message(e)
        return Effect.logWarning(`NATS drain did not finish (${why}); closing`).pipe(Effect.as(false))
      })
    )
    if (!drained && !nc.isClosed()) yield* Effect.promise(() => nc.close().catch(() => undefined))
    yield* Effect.logDebug("NATS connection drained and closed")
  })

/**
 * A connection that lives as long as the scope: status changes are logged, release drains.
 * Every line it logs, the status changes too, says which of the node's connections it is.
 */
export const make = (config: NatsLayerConfig, purpose?: "raft"): Effect.Effect<NatsConnection, NatsError, Scope.Scope> =>
  connectionLogged(config, purpose).pipe(Effect.annotateLogs("connection", purpose ?? "client"))

const connectionLogged = (config: NatsLayerConfig, purpose?: "raft"): Effect.Effect<NatsConnection, NatsError, Scope.Scope> =>
  Effect.gen(function* () {
    const where = config.nats.servers.map(redactUrl).join(",")
    const name = connectionName(config, purpose)
    const options = yield* clientOptions(config.nats, name)
    yield* Effect.logInfo(`connecting to NATS at ${where} as ${name}`)
    // While nats.js keeps trying: say so every 5 s, and stop if the server refuses our TLS
    // connection, which nats.js would retry for ever without a word (tlsProbe.ts).
    const stillWaiting: Effect.Effect<never, NatsError> = Effect.gen(function* () {
      for (;;) {
        const refused = yield* Effect.promise(() => tlsRefusal(config.nats).catch(() => undefined))
        if (refused !== undefined) return yield* Effect.fail(new NatsError({ message: refused }))
        yield* Effect.sleep("5 seconds")
        yield* Effect.logWarning(`still waiting for a NATS server at ${where}`)
      }
    })
    const nc = yield* Effect.uninterruptibleMask((restore) =>
      restore(Effect.raceFirst(connectInterruptibly(options, config.nats, where), stillWaiting)).pipe(
        Effect.tap((nc) => Effect.addFinalizer(() => drain(nc)))
      )
    )
    // Forwarded requests and ReadIndex need replies: a node that cannot get them must not start.
    const refused = yield* Effect.promise(() => inboxRefusal(nc, config.nats))
    if (refused !== undefined) return yield* Effect.fail(new NatsError({ message: refused }))
    yield* Effect.logInfo(`connected to NATS at ${nc.getServer()} as ${name}`)
    // A plain loop rather than a Stream: interrupting a pending `next()` on this iterator waits
    // for the next status event (up to a ping interval). The loop ends when the connection closes.
    const runtime = yield* Effect.runtime<never>()
    const log = Runtime.runFork(runtime)
    void (async () => {
      for await (const status of nc.status()) log(logStatus(status))
    })().catch(() => undefined)
    return nc
  })

/** The NATS connection for one node, drained when the layer is released. */
export const layer = (config: NatsLayerConfig): Layer.Layer<Nats, NatsError> => Layer.scoped(Nats, make(config))

/** The node's message bus: its NATS connection (a `NatsConnection` is a `Bus` as it is). */
export const busLayer = (config: NatsLayerConfig): Layer.Layer<Bus, NatsError> => Layer.scoped(Bus, make(config))

/** Raft's own connection (see `RaftBus`): same server, user and settings, another socket. */
export const raftBusLayer = (config: NatsLayerConfig): Layer.Layer<RaftBus, NatsError> => Layer.scoped(RaftBus, make(config, "raft"))
