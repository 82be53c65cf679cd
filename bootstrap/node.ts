/**
 * One Archio node. `assemble` wires the actors — Applier, consensus (Election + Replicator),
 * JobWorker, event publishing, Gateway — over the services they need (Bus, Timers, Storage);
 * `runNode` provides the real ones (NATS, classic-level, Node's timers) and adds the HTTP shim.
 * The simulator (ops/sim) runs the same `assemble` over simulated services.
 *
 * Construction order follows the data: the Applier first (it only consumes), then consensus
 * (its outputs go to the Applier), then those that use both. Closing the scope undoes it in
 * reverse: the HTTP shim stops taking requests, a leader hands leadership over (`handOver`),
 * the Gateway stops taking requests, the JobWorker stops, consensus finishes its queued writes,
 * the Applier writes what it applied, then NATS drains and the database closes.
 */
import { createRequire } from "node:module"
import { Cause, Effect, Exit, Layer, Random, type Scope } from "effect"
import * as Applier from "../actors/applier/applier.ts"
import * as Admission from "../actors/gateway/admission.ts"
import * as Events from "../actors/gateway/events.ts"
import * as Gateway from "../actors/gateway/gateway.ts"
import * as Http from "../actors/gateway/http.ts"
import * as Metrics from "../actors/gateway/metrics.ts"
import * as JobWorker from "../actors/jobs/jobWorker.ts"
import * as Consensus from "../actors/raft/shell.ts"
import * as Snapshotter from "../actors/snapshotter/snapshotter.ts"
import type { Tuning } from "../actors/raft/state.ts"
import type { Bus, RaftBus } from "../actors/services/bus.ts"
import { Storage } from "../actors/services/storage.ts"
import * as Supervisor from "../actors/services/supervisor.ts"
import * as Timers from "../actors/services/timers.ts"
import type { Config } from "./config.ts"
import * as Nats from "./nats.ts"
import * as StorageLayer from "./storage.ts"

export const version: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version

/** How long a client request may wait inside a node before it is answered `timeout`. */
export const requestTimeoutMs = 5_000

export { ActorFailure } from "../actors/services/supervisor.ts"

export interface NodeSettings {
  readonly cluster: string
  readonly id: string
  readonly members: ReadonlyArray<string>
  readonly tickMs: number
  readonly electionTicks: number
  readonly heartbeatTicks: number
  readonly tuning?: Partial<Tuning>
  /** Applied entries between snapshots. */
  readonly snapshotThreshold: number
  /** Chunk size, window and patience of snapshot transfers; the defaults where unset. */
  readonly snapshotTuning?: Partial<typeof Snapshotter.defaultSnapshotTuning>
  /** How many waiting client requests the node may hold before answering `busy`; the defaults where unset. */
  readonly bounds?: Admission.Bounds
}

/** A running node's actors, and the effect that fails when one of them does. */
export interface AssembledNode {
  readonly consensus: Consensus.Consensus
  readonly applier: Applier.Applier
  readonly snapshotter: Snapshotter.Snapshotter
  readonly jobWorker: JobWorker.JobWorker
  readonly gateway: Gateway.Gateway
  readonly metrics: Metrics.Registry
  readonly instanceId: string
  /** Fails with the first actor failure; never succeeds. */
  readonly failure: Effect.Effect<never, Supervisor.ActorFailure>
}

/** How often `archio_raft_log_disk_bytes` may ask LevelDB for the log's size. */
const logDiskSampleMs = 5_000

/**
 * The log's size on disk, read at most every few seconds when /metrics is scraped, where the
 * store can tell: classic-level's `approximateSize` over the log sublevel's key range (the
 * compacted table files; what is still only in the write-ahead log is not counted).
 * memory-level has no such method, so the simulator and in-memory tests go without it.
 */
const logDiskBytes: Effect.Effect<Metrics.SampledGauge | undefined, never, Storage | Timers.Timers> = Effect.gen(function* () {
  const { db, log } = yield* Storage
  const timers = yield* Timers.Timers
  const sized = db as typeof db & { approximateSize?: (start: string, end: string) => Promise<number> }
  if (db.supports.additionalMethods["approximateSize"] !== true || typeof sized.approximateSize !== "function") return undefined
  // Every key of the sublevel starts with its prefix ("!log!"); the range ends where the next
  // prefix byte begins.
  const start = log.prefix
  const end = start.slice(0, -1) + String.fromCharCode(start.charCodeAt(start.length - 1) + 1)
  const gauge = new Metrics.SampledGauge(() => sized.approximateSize!(start, end), () => timers.now(), logDiskSampleMs)
  gauge.sample() // a first reading, so the first scrape has one
  return gauge
})

/**
 * A clean stop of the leader (SIGTERM, SIGINT) first hands leadership to the most caught-up
 * follower, so the others need not wait an election timeout to notice it is gone. It runs
 * before the Gateway stops: writes that reach this node meanwhile wait for the new leader and
 * are passed to it. The shell gives up after two election timeouts; `backstopMs` only bounds
 * the wait if the consensus actor itself has stopped answering.
 */
const handOver = (consensus: Consensus.Consensus, backstopMs: number): Effect.Effect<void, never, Timers.Timers> =>
  Effect.gen(function* () {
    // A stopping follower must not take over meanwhile: a leader handing over would pick it.
    consensus.retire()
    if (consensus.status().role !== "leader") return
    const timers = yield* Timers.Timers
    const started = timers.now()
    const result = yield* Effect.async<Consensus.TransferResult | undefined>((resume) => {
      let resumed = false
      const finish = (r: Consensus.TransferResult | undefined): void => {
        if (resumed) return
        resumed = true
        cancel()
        resume(Effect.succeed(r))
      }
      const cancel = timers.after(backstopMs, () => finish(undefined))
      consensus.transferLeadership(null, finish)
    })
    const ms = timers.now() - started
    if (result?.ok === true) {
      yield* Effect.logInfo(`stopping: handed leadership to ${result.leader} (term ${result.term}) in ${ms} ms`)
    } else if (result === undefined || result.reason !== "no_target") {
      const why = result === undefined ? "no answer" : result.reason === "timeout" ? `${result.to ?? "the follower"} did not take over` : result.reason
      yield* Effect.logWarning(`stopping: could not hand leadership over (${why}, ${ms} ms); the others elect a leader after an election timeout`)
    }
  })

/** Wires one node's actors into the current scope. */
export const assemble = (settings: NodeSettings): Effect.Effect<AssembledNode, never, Bus | RaftBus | Timers.Timers | Storage | Scope.Scope> =>
  Effect.gen(function* () {
    const { supervisor, failure } = yield* Supervisor.make
    const node = Effect.gen(function* () {
      const applier = yield* Applier.make
      const consensus = yield* Consensus.make(
        {
          cluster: settings.cluster,
          id: settings.id,
          members: settings.members,
          tickMs: settings.tickMs,
          electionTicks: settings.electionTicks,
          heartbeatTicks: settings.heartbeatTicks,
          ...(settings.tuning === undefined ? {} : { tuning: settings.tuning })
        },
        { committed: applier.offer, stored: applier.logStored, installing: applier.beginInstall, installed: applier.finishInstall }
      )
      const snapshotter = yield* Snapshotter.make(
        {
          ...Snapshotter.defaultSnapshotTuning,
          ...settings.snapshotTuning,
          cluster: settings.cluster,
          id: settings.id,
          members: settings.members,
          threshold: settings.snapshotThreshold
        },
        consensus,
        applier
      )
      const jobWorker = yield* JobWorker.make({ id: settings.id, tickMs: settings.tickMs, requestTimeoutMs }, consensus, applier)
      yield* Events.make(settings.cluster, consensus, applier)
      const suffix = yield* Random.nextIntBetween(0, 2 ** 31 - 1)
      const instanceId = `${settings.id}-${suffix.toString(36)}`
      const metrics = Metrics.make(version, yield* logDiskBytes, applier)
      snapshotter.onEvent((e) => metrics.snapshots.record(e))
      const gateway = yield* Gateway.make(
        { cluster: settings.cluster, id: settings.id, instanceId, version, requestTimeoutMs, metrics: metrics.nats, ...(settings.bounds === undefined ? {} : { bounds: settings.bounds }) },
        consensus,
        applier,
        jobWorker,
        snapshotter
      )
      // Added after the Gateway, so run before it stops (finalizers run in reverse).
      const electionMs = settings.electionTicks * settings.tickMs
      yield* Effect.addFinalizer((exit) => (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? Effect.void : handOver(consensus, 3 * electionMs)))
      return { consensus, applier, snapshotter, jobWorker, gateway, metrics, instanceId, failure }
    })
    return yield* Effect.provideService(node, Supervisor.Supervisor, supervisor)
  })

/**
 * The node of `config` over the services in its context, with the HTTP shim when configured:
 * runs until interrupted, or fails when one of its actors does.
 */
export const serve = (config: Config): Effect.Effect<never, Supervisor.ActorFailure | Http.HttpError, Bus | RaftBus | Timers.Timers | Storage | Scope.Scope> =>
  Effect.gen(function* () {
    const node = yield* assemble({
      cluster: config.cluster,
      id: config.id,
      members: config.peers,
      tickMs: config.tickMs,
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      snapshotThreshold: config.snapshotThreshold,
      bounds: Admission.boundsOf(config.maxHeld)
    })
    // Added after the Gateway, so closed before it: in-flight HTTP requests still get answers.
    if (config.httpPort !== undefined) {
      yield* Http.make(
        {
          port: config.httpPort,
          host: config.httpHost,
          token: config.httpToken,
          instanceId: node.instanceId,
          metrics: node.metrics,
          closeGraceMs: requestTimeoutMs,
          followerWrites: config.httpFollowerWrites,
          peerUrls: config.httpPeers
        },
        node.gateway
      )
    }
    const s = node.consensus.status()
    const { voters, learners } = s.membership
    const members = voters.length + learners.length === 0 ? "no members yet (waiting to be added)" : `members ${[...voters, ...learners.map((l) => `${l} (learner)`)].join(",")}`
    yield* Effect.logInfo(
      `node ${config.id} ready in cluster ${config.cluster} with ${members}: ` +
        `term ${s.term}, log ${s.firstIndex}..${s.lastIndex}, applied ${node.applier.applied}`
    )
    return yield* node.failure
  })

/**
 * Runs the node with its real services (NATS, classic-level, Node's timers) until interrupted;
 * fails when it cannot start (storage or NATS) or when one of its actors fails. Either way the
 * Gateway stops first, then the actors, then NATS drains and the database closes.
 */
export const runNode = (config: Config): Effect.Effect<never, Nats.NatsError | StorageLayer.StorageError | Supervisor.ActorFailure | Http.HttpError> =>
  serve(config).pipe(
    Effect.scoped,
    Effect.provide(Timers.live),
    Effect.provide(Layer.merge(Nats.busLayer(config), Nats.raftBusLayer(config))),
    Effect.provide(StorageLayer.layer(config.dataDir)),
    Effect.annotateLogs("node", config.id)
  )
