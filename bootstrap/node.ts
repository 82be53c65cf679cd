/**
 * One Archio node: storage and NATS as scoped layers, then the actors wired together —
 * consensus (Election + Replicator), Applier, Gateway. Interrupting `runNode` stops the
 * Gateway first (no new requests), then the actors, then drains NATS and closes LevelDB.
 */
import { createRequire } from "node:module"
import { Effect, Random } from "effect"
import { Applier } from "../actors/applier/applier.ts"
import * as Gateway from "../actors/gateway/gateway.ts"
import * as Consensus from "../actors/raft/shell.ts"
import type { Config } from "./config.ts"
import * as Nats from "./nats.ts"
import * as Storage from "./storage.ts"

export const version: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version

/** How long a client request may wait inside a node before it is answered `timeout`. */
export const requestTimeoutMs = 5_000

/** Runs the node until interrupted; fails only when it cannot start (storage or NATS). */
export const runNode = (config: Config): Effect.Effect<never, Nats.NatsError | Storage.StorageError> =>
  Effect.gen(function* () {
    const nc = yield* Nats.Nats
    const storage = yield* Storage.Storage
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
      (entries) => applier.offer(entries)
    )
    yield* Effect.forkScoped(applier.run)
    const suffix = yield* Random.nextIntBetween(0, 2 ** 31 - 1)
    yield* Gateway.make(
      { cluster: config.cluster, id: config.id, members: config.peers, instanceId: `${config.id}-${suffix.toString(36)}`, version, requestTimeoutMs },
      nc,
      consensus,
      applier
    )
    const s = consensus.status()
    yield* Effect.logInfo(
      `node ${config.id} ready in cluster ${config.cluster} with members ${config.peers.join(",")}: ` +
        `term ${s.term}, log ${s.firstIndex}..${s.lastIndex}, applied ${applier.applied}`
    )
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.provide(Nats.layer(config)),
    Effect.provide(Storage.layer(config.dataDir)),
    Effect.annotateLogs("node", config.id)
  )
