/**
 * One Archio node: storage and NATS as scoped layers, then the actors wired together —
 * consensus (Election + Replicator), Applier, Gateway. Interrupting `runNode` stops the
 * HTTP shim (when `httpPort` is set) and the Gateway first (no new requests), then the actors,
 * then drains NATS and closes LevelDB.
 */
import { createRequire } from "node:module"
import { Cause, Data, Deferred, Effect, Random } from "effect"
import { Applier } from "../actors/applier/applier.ts"
import { publishJobEvents, publishKvEvents } from "../actors/gateway/events.ts"
import * as Gateway from "../actors/gateway/gateway.ts"
import * as Http from "../actors/gateway/http.ts"
import * as Metrics from "../actors/gateway/metrics.ts"
import * as JobWorker from "../actors/jobs/jobWorker.ts"
import * as Consensus from "../actors/raft/shell.ts"
import type { Config } from "./config.ts"
import * as Nats from "./nats.ts"
import * as Storage from "./storage.ts"

export const version: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version

/** How long a client request may wait inside a node before it is answered `timeout`. */
export const requestTimeoutMs = 5_000

/** An actor fiber died: the node stops rather than run on without it. */
export class ActorFailure extends Data.TaggedError("ActorFailure")<{ readonly actor: string; readonly cause: string }> {
  override get message(): string {
    return `actor ${this.actor} failed: ${this.cause}`
  }
}

/**
 * Runs the node until interrupted; fails when it cannot start (storage or NATS) or when one of
 * its actors dies.
 */
export const runNode = (config: Config): Effect.Effect<never, Nats.NatsError | Storage.StorageError | ActorFailure | Http.HttpError> =>
  Effect.gen(function* () {
    const nc = yield* Nats.Nats
    const storage = yield* Storage.Storage
    const failed = yield* Deferred.make<never, ActorFailure>()
    const supervise: Consensus.Supervise = (name, effect) =>
      effect.pipe(
        Effect.tapErrorCause((cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.void : Deferred.fail(failed, new ActorFailure({ actor: name, cause: Cause.pretty(cause) }))
        )
      )
    const applier = new Applier(storage)
    yield* applier.load
    const consensus = yield* Consensus.make(
      {
        cluster: config.cluster,
        id: config.id,
        members: config.peers,
        tickMs: config.tickMs,
        electionTicks: config.electionTicks,
        heartbeatTicks: config.heartbeatTicks
      },
      nc,
      storage,
      (entries) => applier.offer(entries),
      supervise
    )
    applier.whenStored = (index, done) => consensus.whenStored(index, done)
    // One publisher per change: the node that leads when it applies the batch.
    const jobWorker = yield* JobWorker.make({ id: config.id, tickMs: config.tickMs, requestTimeoutMs }, consensus, applier)
    applier.onEvents = (events) => {
      if (consensus.status().role === "leader") publishKvEvents(nc, config.cluster, events)
      jobWorker.wake()
    }
    applier.onJobEvents = (events) => {
      if (consensus.status().role === "leader") publishJobEvents(nc, config.cluster, events)
      jobWorker.onJobEvents(events)
    }
    yield* Effect.forkScoped(supervise("applier", applier.run))
    const suffix = yield* Random.nextIntBetween(0, 2 ** 31 - 1)
    const instanceId = `${config.id}-${suffix.toString(36)}`
    const metrics = Metrics.make(version)
    const gateway = yield* Gateway.make(
      { cluster: config.cluster, id: config.id, members: config.peers, instanceId, version, requestTimeoutMs, metrics: metrics.nats },
      nc,
      consensus,
      applier,
      jobWorker
    )
    // Added after the Gateway, so closed before it: in-flight HTTP requests still get answers.
    if (config.httpPort !== undefined) {
      yield* Http.make({ port: config.httpPort, instanceId, metrics, closeGraceMs: requestTimeoutMs }, gateway)
    }
    const s = consensus.status()
    yield* Effect.logInfo(
      `node ${config.id} ready in cluster ${config.cluster} with members ${config.peers.join(",")}: ` +
        `term ${s.term}, log ${s.firstIndex}..${s.lastIndex}, applied ${applier.applied}`
    )
    return yield* Deferred.await(failed)
  }).pipe(
    Effect.scoped,
    Effect.provide(Nats.layer(config)),
    Effect.provide(Storage.layer(config.dataDir)),
    Effect.annotateLogs("node", config.id)
  )
