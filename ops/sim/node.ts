/**
 * One simulated Archio node: the shipped `assemble` (bootstrap/node.ts) run over the simulated
 * services — its connection to the simulated network, timers and Effect's Clock on the virtual
 * clock (with this node's clock skew), a seeded Random, and its simulated disk — with Effect's
 * fibers scheduled in microtasks.
 *
 * A node can crash (everything it had not synced may be lost; nothing of the dead process acts
 * again, not even its finalizers, as after SIGKILL) or stop cleanly (as on SIGTERM: its
 * finalizers run in virtual time, so the rest of the cluster goes on meanwhile), and boot again
 * from what its disk kept.
 */
import { Cause, Effect, Exit, Fiber, Layer, Logger, LogLevel, Random } from "effect"
import type { AppliedBatch, Applier } from "../../actors/applier/applier.ts"
import type { Tuning } from "../../actors/raft/state.ts"
import { Bus, RaftBus } from "../../actors/services/bus.ts"
import { Storage, withIo } from "../../actors/services/storage.ts"
import { Timers } from "../../actors/services/timers.ts"
import { assemble, type AssembledNode, type NodeSettings } from "../../bootstrap/node.ts"
import { decodeEntryValue, decodeUint64Key } from "../../protocol/raftCodec.ts"
import type { Entry } from "../../protocol/raft.ts"
import { Disk } from "./disk.ts"
import { Life } from "./life.ts"
import type { Connection, Network } from "./network.ts"
import { microtaskScheduler, type World } from "./world.ts"

export interface SimNodeOptions {
  readonly id: string
  readonly cluster: string
  readonly members: ReadonlyArray<string>
  readonly tickMs: number
  readonly electionTicks: number
  readonly heartbeatTicks: number
  readonly tuning: Partial<Tuning>
  readonly snapshotThreshold: number
  readonly snapshotTuning: NonNullable<NodeSettings["snapshotTuning"]>
  readonly bounds: NonNullable<NodeSettings["bounds"]>
  /** This node's clock runs this far ahead of (or behind) the virtual clock. */
  readonly skewMs: number
  /** How late this node's timers fire (1: on time; 1.2: 20% late, as on a busy machine). */
  readonly timerLateness: number
}

/** What the simulation watches while a node runs. */
export interface NodeObserver {
  /** Entries this node wrote to its log. */
  written(node: string, entries: ReadonlyArray<Entry>): void
  /** A batch this node applied. */
  applied(node: string, batch: AppliedBatch): void
  /** The node installed a snapshot at `index`; `applier` holds exactly that state now. */
  installed(node: string, index: number, applier: Applier): void
  /** The node took a snapshot (and compacted its log). */
  snapshotTaken(node: string): void
  /** The node failed on its own (an actor failure): always a bug. */
  failed(node: string, cause: string): void
  /** A line the node logged. */
  log(node: string, line: string): void
  /** The node is about to write to its disk (the simulation may crash it meanwhile). */
  writing(node: string): void
}

/**
 * Effect holds every fiber started by `runFork` in its global scope until the fiber ends. A
 * crashed process's fiber never ends: nothing of it runs again, so it waits forever (interrupting
 * it instead would run its finalizers, which is not what SIGKILL does, and those wait forever on
 * the dead life's timers). Taken out of that set, it goes to the garbage collector with the rest of
 * the dead process; left in, every crash of every seed stayed in a worker's memory until it ran out.
 */
const abandon = (fiber: Fiber.RuntimeFiber<never, unknown>): void => {
  const store = (globalThis as Record<string, unknown>)["effect/GlobalValue"]
  const globalScope = store instanceof Map ? (store.get(Symbol.for("effect/FiberScope/Global")) as { roots?: unknown } | undefined) : undefined
  const roots = globalScope?.roots
  // Effect's internals moved: fail loudly rather than leak quietly again.
  if (!(roots instanceof Set)) throw new Error("simulated crash: Effect's global fiber scope is not where it was (effect/FiberScope/Global roots)")
  roots.delete(fiber)
}

/** The process of one life: what a crash must cut off, once it exists. */
interface Process {
  readonly life: Life
  conn: Connection | undefined
  fiber: Fiber.RuntimeFiber<never, unknown> | undefined
  node: AssembledNode | undefined
}

type State =
  | { readonly kind: "down" }
  | { readonly kind: "booting"; readonly process: Process }
  | { readonly kind: "up"; readonly process: Process; readonly node: AssembledNode }
  | { readonly kind: "stopping" }

export class SimNode {
  readonly disk: Disk
  private state: State = { kind: "down" }
  boots = 0

  constructor(
    private readonly world: World,
    private readonly network: Network,
    readonly options: SimNodeOptions,
    private readonly observer: NodeObserver,
    private readonly verbose: boolean,
    disk: Disk = new Disk(world)
  ) {
    this.disk = disk
  }

  get id(): string {
    return this.options.id
  }

  /** The running node, when it is up. */
  get running(): AssembledNode | undefined {
    return this.state.kind === "up" ? this.state.node : undefined
  }

  get isDown(): boolean {
    return this.state.kind === "down"
  }

  /** Boots the node from its disk; it is up once its actors are wired (a few microtasks later). */
  boot(): void {
    if (this.state.kind !== "down") return
    const life = new Life()
    const process: Process = { life, conn: undefined, fiber: undefined, node: undefined }
    this.state = { kind: "booting", process }
    this.boots++
    const id = this.options.id
    const alive = (): boolean => life.alive
    void this.disk.open(life).then((storage) => {
      if (!alive()) return
      const observed = withIo(storage, {
        write: (ops, sync) => {
          const entries: Entry[] = []
          for (const op of ops) {
            if (op.type === "put" && op.sublevel === storage.log) entries.push(decodeEntryValue(decodeUint64Key(op.key as Uint8Array), op.value))
          }
          if (entries.length > 0 && alive()) this.observer.written(id, entries)
          const written = storage.write(ops, sync)
          if (alive()) this.observer.writing(id)
          return written
        }
      })
      const conn = this.network.connect(id, life)
      process.conn = conn
      const timers = this.world.timers(this.options.skewMs, life, this.options.timerLateness)
      const services = Layer.mergeAll(Layer.succeed(Bus, conn), Layer.succeed(RaftBus, conn), Layer.succeed(Timers, timers), Layer.succeed(Storage, observed))
      const logger = Logger.make(({ logLevel, message }) => {
        if (alive()) this.observer.log(id, `${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      })
      const program = Effect.gen(this, function* () {
        const node = yield* assemble({
          cluster: this.options.cluster,
          id,
          members: this.options.members,
          tickMs: this.options.tickMs,
          electionTicks: this.options.electionTicks,
          heartbeatTicks: this.options.heartbeatTicks,
          tuning: this.options.tuning,
          snapshotThreshold: this.options.snapshotThreshold,
          snapshotTuning: this.options.snapshotTuning,
          bounds: this.options.bounds
        })
        node.applier.onApplied((batch) => {
          if (alive()) this.observer.applied(id, batch)
        })
        node.snapshotter.onEvent((e) => {
          if (alive() && e.phase === "persist" && e.status === "succeeded") this.observer.snapshotTaken(id)
        })
        node.applier.onInstalled((index) => {
          if (alive()) this.observer.installed(id, index, node.applier)
        })
        process.node = node
        if (alive()) this.state = { kind: "up", process, node }
        return yield* node.failure
      }).pipe(
        Effect.scoped,
        Effect.provide(services),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(this.verbose ? LogLevel.Debug : LogLevel.Error),
        Effect.withClock(this.world.clock(this.options.skewMs)),
        Effect.withRandom(Random.make(this.world.seed())),
        Effect.withScheduler(microtaskScheduler)
      )
      const fiber: Fiber.RuntimeFiber<never, unknown> = Effect.runFork(program)
      process.fiber = fiber
      fiber.addObserver((exit) => {
        if (!alive() || Exit.isInterrupted(exit)) return
        if (Exit.isFailure(exit)) this.observer.failed(id, Cause.pretty(exit.cause))
      })
    })
  }

  /**
   * The process dies: no finalizer runs for it (the dead code is left to fail against a gone
   * disk and connection, then dropped); unsynced writes may be lost.
   */
  crash(): void {
    const state = this.state
    // A stopping node finishes its stop (the nemesis waits for it).
    if (state.kind === "down" || state.kind === "stopping") return
    state.process.life.kill()
    this.state = { kind: "down" }
    this.disk.crash()
    state.process.conn?.kill()
    if (state.process.fiber !== undefined) abandon(state.process.fiber)
  }

  /** The process dies and its disk is wiped: it boots empty and must catch up by InstallSnapshot. */
  wipe(): void {
    this.crash()
    this.disk.wipe()
  }

  /** The process freezes (SIGSTOP, a long GC pause): nothing of it runs until `resume`. */
  pause(): boolean {
    const state = this.state
    if (state.kind !== "up" && state.kind !== "booting") return false
    state.process.life.pause()
    return true
  }

  /** It wakes and handles, in order, what came while it was frozen. */
  resume(): void {
    const state = this.state
    if (state.kind === "up" || state.kind === "booting") state.process.life.resume()
  }

  /** A clean stop (SIGTERM): finalizers run in virtual time; `then` runs once it is down. */
  stop(then?: () => void): void {
    const state = this.state
    if (state.kind !== "up") return
    this.state = { kind: "stopping" }
    state.process.life.resume()
    void Effect.runPromise(Fiber.interrupt(state.process.fiber!)).then(async () => {
      await state.process.conn!.drain()
      state.process.life.kill()
      this.disk.close()
      this.state = { kind: "down" }
      then?.()
    })
  }
}
