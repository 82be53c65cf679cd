/**
 * Supervision: a throw in any actor's callback stops the node cleanly, in that actor's name.
 * Each test runs a one-node cluster over real NATS and LevelDB, with one service wrapped to
 * throw — only when called from inside the named actor's own code, and only once the node
 * serves — then checks that the node failed with that actor's name and stack, logged it, and
 * released everything (the database reopens, nothing answers on its subjects).
 */
import t from "tap"
import { Effect, Exit, Fiber, Layer, List, Logger, LogLevel, Cause } from "effect"
import { join } from "node:path"
import { Bus } from "../../actors/services/bus.ts"
import { Storage } from "../../actors/services/storage.ts"
import { ActorFailure } from "../../actors/services/supervisor.ts"
import { Timers, live as liveTimers } from "../../actors/services/timers.ts"
import * as Nats from "../../bootstrap/nats.ts"
import { serve } from "../../bootstrap/node.ts"
import * as StorageLayer from "../../bootstrap/storage.ts"
import type { Bus as BusShape } from "../../protocol/bus.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { config, send } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

/** The source file of each actor: a call whose stack passes through it comes from that actor. */
const files = {
  consensus: "actors/raft/shell.ts",
  applier: "actors/applier/applier.ts",
  jobWorker: "actors/jobs/jobWorker.ts",
  gateway: "actors/gateway/gateway.ts",
  events: "actors/gateway/events.ts"
} as const
type Actor = keyof typeof files

const calledFrom = (actor: Actor): boolean => (new Error().stack ?? "").includes(files[actor])

for (const actor of Object.keys(files) as Actor[]) {
  t.test(`a throw in the ${actor} stops the node cleanly, in its name`, async (t) => {
    const server = await natsServer(t)
    const dir = await tempDir(t)
    const nc = await natsClient(t, server.url)
    const c = config({ NODE_ID: "n1", PEERS: "n1", NATS_URL: server.url, DATA_DIR: join(dir, "n1"), CLUSTER: "c" })
    let armed = false
    const injected = `injected into the ${actor}`
    // Made where it is thrown, so its stack runs through the actor's code.
    const fault = (): void => {
      if (armed && calledFrom(actor)) throw new Error(injected)
    }

    // The consensus actor, the JobWorker and the Gateway read the clock in their timers; the
    // Applier writes from its flush timer; the event publisher publishes.
    const timers = Layer.effect(
      Timers,
      Effect.map(Timers, (real) => ({ ...real, now: () => (fault(), real.now()) }))
    ).pipe(Layer.provide(liveTimers))
    const storage = Layer.effect(
      Storage,
      Effect.map(Storage, (real) => ({ ...real, write: (ops: Parameters<typeof real.write>[0], sync: boolean) => (actor === "applier" && fault(), real.write(ops, sync)) }))
    ).pipe(Layer.provide(StorageLayer.layer(c.dataDir)))
    const bus = Layer.effect(
      Bus,
      Effect.map(Bus, (real): BusShape => ({
        publish: (subject, payload, options) => {
          if (actor === "events" && subject.startsWith("archio.c.events.")) fault()
          real.publish(subject, payload, options)
        },
        subscribe: (subject, options) => real.subscribe(subject, options),
        request: (subject, payload, options) => real.request(subject, payload, options),
        isClosed: () => real.isClosed(),
        drain: () => real.drain(),
        info: real.info
      }))
    ).pipe(Layer.provide(Nats.busLayer(c)))

    const logged: string[] = []
    const logger = Logger.make(({ message, logLevel }) => {
      logged.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    const fiber = Effect.runFork(
      serve(c).pipe(
        Effect.scoped,
        Effect.provide(Layer.mergeAll(timers, storage, bus, Nats.raftBusLayer(c))),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.Info)
      )
    )
    t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
    await until("the node to take writes", async () => (await send(nc, "put", '{"key":"boot","value":"1"}')).body.ok, { timeoutMs: 15_000, everyMs: 100 })

    armed = true
    // A write makes the Applier flush and the event publisher publish; timers fire anyway.
    await send(nc, "put", '{"key":"after","value":"2"}').catch(() => undefined)
    const exit = await Effect.runPromise(Fiber.await(fiber))

    t.ok(Exit.isFailure(exit), "the node stopped with a failure")
    const failure = Exit.isFailure(exit) ? List.head(List.fromIterable(Cause.failures(exit.cause))) : undefined
    const error = failure?._tag === "Some" ? failure.value : undefined
    t.ok(error instanceof ActorFailure, "an actor failure")
    if (error instanceof ActorFailure) {
      t.equal(error.actor, actor, "named after the actor that threw")
      t.equal(error.reason, injected, "with what it threw")
      t.match(error.detail, /\n\s+at /, "and its stack")
      t.match(error.message, `actor ${actor} failed: injected into the ${actor}`)
    }
    t.ok(
      logged.some((l) => l.startsWith("ERROR") && l.includes(`actor ${actor} failed, stopping the node`) && l.includes(files[actor])),
      "logged at error level with its actor and a stack through its code"
    )
    // Released: nothing answers on the node's subjects, and its database opens again.
    const answered = await nc.request("archio.c.node.n1.admin.status", "", { timeout: 500 }).then(
      () => true,
      () => false
    )
    t.notOk(answered, "its subjects are gone (NATS drained and closed)")
    const reopened = await Effect.runPromise(Effect.scoped(Effect.map(StorageLayer.make(c.dataDir), (s) => s.db.status)))
    t.equal(reopened, "open", "the database was closed and reopens")
  })
}
