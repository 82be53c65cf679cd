import t from "tap"
import { errors, nkeys, type NatsConnection } from "@nats-io/transport-node"
import { Effect, Exit, Layer, Logger, LogLevel } from "effect"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { NatsSettings } from "../../bootstrap/config.ts"
import * as Nats from "../../bootstrap/nats.ts"
import { freePort, startNatsServer } from "../../bootstrap/natsServer.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

const settings = (servers: string, extra: Partial<NatsSettings> = {}): NatsSettings => ({
  servers: [servers],
  user: undefined,
  pass: undefined,
  token: undefined,
  credsFile: undefined,
  nkeyFile: undefined,
  inboxPrefix: undefined,
  tls: undefined,
  ...extra
})

/** A logger that keeps the messages, so tests can see what the layer said. */
const capture = () => {
  const lines: Array<string> = []
  const layer = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ message }) => {
      lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
  )
  return { lines, layer }
}

const quiet = Logger.minimumLogLevel(LogLevel.None)

/** Runs `use` with a connection from the Nats layer; the layer is released afterwards. */
const withNats = <A>(
  config: Nats.NatsLayerConfig,
  use: (nc: NatsConnection) => Promise<A>,
  logger: Layer.Layer<never> = quiet
): Promise<A> =>
  Effect.runPromise(Effect.flatMap(Nats.Nats, (nc) => Effect.promise(() => use(nc))).pipe(Effect.provide(Nats.layer(config)), Effect.provide(logger)))

t.test("connectOptions: named, reconnects forever, waits for the first server", async (t) => {
  const o = Nats.connectOptions(settings("nats://h:1"), Nats.connectionName({ id: "n1", cluster: "dev" }))
  t.match(o, { name: "archio-dev-n1", noAsyncTraces: true, maxReconnectAttempts: -1, waitOnFirstConnect: true, servers: ["nats://h:1"] })
  t.equal(o.user, undefined)
  t.equal(o.tls, undefined)
  const auth = Nats.connectOptions(settings("h", { user: "u", pass: "p" }), "x")
  t.match(auth, { user: "u", pass: "p" })
  t.equal(Nats.connectOptions(settings("h", { token: "tok" }), "x").token, "tok")
  const tls = Nats.connectOptions(settings("tls://h", { tls: { caFile: "ca", certFile: "c", keyFile: "k" } }), "x")
  t.same(tls.tls, { caFile: "ca", certFile: "c", keyFile: "k" })
  t.same(Nats.connectOptions(settings("tls://h", { tls: { caFile: undefined, certFile: undefined, keyFile: undefined } }), "x").tls, {})
})

t.test("creds: the file is read into an authenticator; a missing file is a clear error", async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, "user.creds")
  await writeFile(file, "-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n")
  const o = await Effect.runPromise(Nats.clientOptions(settings("h", { credsFile: file }), "x"))
  t.type(o.authenticator, "function")
  const missing = join(dir, "nope.creds")
  const exit = await Effect.runPromiseExit(Nats.clientOptions(settings("h", { credsFile: missing }), "x"))
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
    t.equal(exit.cause.error._tag, "NatsError")
    t.match(exit.cause.error.message, `cannot read the NATS creds file ${missing} (NATS_CREDS)`)
  } else t.fail("expected a NatsError")
})

t.test("nkey: the seed file is read into an authenticator; a file without a seed is a clear error that hides it", async (t) => {
  const dir = await tempDir(t)
  const seed = new TextDecoder().decode(nkeys.createUser().getSeed())
  const file = join(dir, "user.nk")
  await writeFile(file, `${seed}\n`)
  const o = await Effect.runPromise(Nats.clientOptions(settings("h", { nkeyFile: file }), "x"))
  t.type(o.authenticator, "function")
  const notSeed = join(dir, "public.nk")
  await writeFile(notSeed, "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\n")
  const exit = await Effect.runPromiseExit(Nats.clientOptions(settings("h", { nkeyFile: notSeed }), "x"))
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
    t.equal(exit.cause.error.message, `the NATS nkey file ${notSeed} (NATS_NKEY) does not hold a user nkey seed (a line starting with SU)`)
  } else t.fail("expected a NatsError")
  const missing = await Effect.runPromiseExit(Nats.clientOptions(settings("h", { nkeyFile: join(dir, "nope.nk") }), "x"))
  t.ok(Exit.isFailure(missing))
})

t.test("inbox prefix, and who we are in messages (never a secret)", async (t) => {
  t.equal(Nats.connectOptions(settings("h", { inboxPrefix: "_INBOX_client" }), "x").inboxPrefix, "_INBOX_client")
  t.equal(Nats.connectOptions(settings("h"), "x").inboxPrefix, undefined)
  t.equal(Nats.identity(settings("h", { user: "node", pass: "s3cret" })), 'user "node" (NATS_USER, NATS_PASS)')
  t.equal(Nats.identity(settings("h", { token: "s3cret" })), "the token (NATS_TOKEN)")
  t.equal(Nats.identity(settings("h", { nkeyFile: "/k/n.nk" })), "the nkey in /k/n.nk (NATS_NKEY)")
  t.match(Nats.identity(settings("h")), "an anonymous connection")
  const refused = Nats.connectFailure(settings("h", { user: "node", pass: "s3cret" }), "nats://h:1", new errors.AuthorizationError("Authorization Violation"))
  t.equal(refused, 'NATS at nats://h:1 refused user "node" (NATS_USER, NATS_PASS): Authorization Violation')
  t.equal(Nats.connectFailure(settings("h"), "nats://h:1", new Error("connection refused")), "cannot connect to NATS at nats://h:1: connection refused")
})

t.test("a user that may not read the inbox prefix in use fails at start, saying which prefix", async (t) => {
  const conf = join(await tempDir(t), "inbox.conf")
  await writeFile(conf, 'authorization { users: [ { user: u, password: p, permissions: { subscribe: ["_INBOX_u.>"] } } ] }\n')
  const fenced = await natsServer(t, { args: ["-c", conf] })
  const exit = await Effect.runPromiseExit(
    Effect.scoped(Nats.make({ id: "n1", cluster: "dev", nats: settings(fenced.url, { user: "u", pass: "p" }) })).pipe(Effect.provide(quiet))
  )
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
    t.match(exit.cause.error.message, /^the inbox prefix _INBOX is not readable by user "u" \(NATS_USER, NATS_PASS\) \(Permissions Violation for Subscription to "_INBOX\.\w+"\): set NATS_INBOX_PREFIX/)
  } else t.fail("expected a NatsError")
  const ok = await Effect.runPromise(
    Effect.scoped(Effect.map(Nats.make({ id: "n1", cluster: "dev", nats: settings(fenced.url, { user: "u", pass: "p", inboxPrefix: "_INBOX_u" }) }), () => "connected")).pipe(Effect.provide(quiet))
  )
  t.equal(ok, "connected", "with its prefix it starts")
})

t.test("connects to a private server with its name and drains on release", async (t) => {
  const server = await natsServer(t)
  t.not(server.port, 4222)
  const peer = await natsClient(t, server.url)
  const log = capture()
  const nc = await withNats(
    { id: "n1", cluster: "dev", nats: settings(server.url) },
    async (nc) => {
      nc.subscribe("test.echo", { callback: (_e, m) => void m.respond(m.data) })
      await nc.flush()
      t.equal((await peer.request("test.echo", "hi", { timeout: 2000 })).string(), "hi")
      return nc
    },
    log.layer
  )
  t.ok(nc.isClosed(), "closed after the scope")
  t.ok(log.lines.some((l) => l.includes(`connected to NATS at 127.0.0.1:${server.port}`)), "connection logged")
  t.ok(log.lines.some((l) => l.includes("as archio-dev-n1")), "connection name logged")
})

t.test("user/password and token authentication", async (t) => {
  const withUser = await natsServer(t, { args: ["--user", "archio", "--pass", "s3cret"] })
  t.equal(
    await withNats({ id: "n1", cluster: "dev", nats: settings(withUser.url, { user: "archio", pass: "s3cret" }) }, async (nc) => {
      await nc.flush()
      return "ok"
    }),
    "ok"
  )
  const withToken = await natsServer(t, { args: ["--auth", "tok3n"] })
  t.equal(
    await withNats({ id: "n1", cluster: "dev", nats: settings(withToken.url, { token: "tok3n" }) }, async (nc) => {
      await nc.flush()
      return "ok"
    }),
    "ok"
  )
})

t.test("reconnects after the server restarts on the same port, and says so", async (t) => {
  const port = await freePort()
  let server = await startNatsServer({ port })
  t.teardown(() => server.stop())
  const log = capture()
  await withNats(
    { id: "n1", cluster: "dev", nats: settings(server.url) },
    async (nc) => {
      nc.subscribe("test.echo", { callback: (_e, m) => void m.respond(m.data) })
      await nc.flush()
      await server.stop()
      await until("the disconnect to be logged", () => log.lines.some((l) => l.startsWith("NATS disconnected")))
      server = await startNatsServer({ port })
      await until("the reconnect to be logged", () => log.lines.some((l) => l.startsWith("NATS reconnected")))
      const peer = await natsClient(t, server.url)
      // The subscription is re-sent on reconnect; give the server a moment to register it.
      // A request that fails (no responders yet, or its timeout) counts as not yet.
      await until("the echo to answer again", async () => (await peer.request("test.echo", "again", { timeout: 500 })).string() === "again", { everyMs: 50 })
      t.pass("request answered after the restart")
    },
    log.layer
  )
  t.ok(log.lines.some((l) => l === `NATS disconnected from 127.0.0.1:${port}; reconnecting`))
  t.ok(log.lines.some((l) => l === `NATS reconnected to 127.0.0.1:${port}`))
})

t.test("shutting down while still waiting for the first server does not hang", async (t) => {
  const port = await freePort()
  const started = Date.now()
  const exit = await Effect.runPromiseExit(
    Effect.scoped(Nats.make({ id: "n1", cluster: "dev", nats: settings(`nats://127.0.0.1:${port}`) })).pipe(Effect.timeout("300 millis"), Effect.provide(quiet))
  )
  t.ok(Exit.isFailure(exit), "timed out rather than connected")
  t.ok(Date.now() - started < 3000, "returned promptly")
})

t.test("release survives a server that is already gone", async (t) => {
  const server = await startNatsServer()
  t.teardown(() => server.stop())
  const log = capture()
  const started = Date.now()
  const nc = await withNats(
    { id: "n1", cluster: "dev", nats: settings(server.url) },
    async (nc) => {
      await nc.flush()
      await server.stop()
      return nc
    },
    log.layer
  )
  t.ok(nc.isClosed())
  t.ok(Date.now() - started < 10_000, "no hang")
})
