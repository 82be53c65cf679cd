/**
 * The consensus actor's shell. The core is a plain object owned by this module alone, and
 * JavaScript runs one callback at a time, so inputs (NATS messages, clock ticks, proposals,
 * reads) step it directly, with no mailbox fiber in between; the Ready they leave is handed out
 * once per turn, in a microtask, so one socket read full of messages makes one Ready. The
 * writer syncs queued Readies in order, sends what had to wait for the disk, and tells the core
 * what became durable. Every Ready queued while the previous fsync ran shares the next one
 * (group commit), and inputs keep being stepped while the disk works.
 *
 * Committed entries go to the Applier at once, even when this node's own copy is still being
 * written: committed means durable on a majority, so a crash here loses nothing (Raft thesis
 * §10.2.1); a leader then answers after the fastest follower's fsync, not after its own. The
 * Applier only writes its state once the log holds what it applied (`whenStored`).
 *
 * Effect stays at the edges: loading, the scope that stops the timer and the subscription, and
 * one supervised fiber that fails when the actor does (a broken invariant, a failed write).
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node"
import { Deferred, Effect, Random } from "effect"
import { decodeRaftMessage, encodeRaftMessage } from "../../protocol/raftCodec.ts"
import type { NodeId, RaftMessage } from "../../protocol/raft.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { RaftCore, type ProposeResult, type Proposal, type Ready, type Status } from "./core.ts"
import { defaultTuning, type RaftConfig } from "./state.ts"
import { loadRestored, needsWrite, persistReadies, type RaftStores } from "./storage.ts"

export interface ConsensusOptions {
  readonly cluster: string
  readonly id: NodeId
  readonly members: ReadonlyArray<NodeId>
  readonly tickMs: number
  readonly electionTicks: number
  readonly heartbeatTicks: number
}

export type ReadResult = { readonly ok: true; readonly index: number } | { readonly ok: false; readonly leader: NodeId | null }

/**
 * Wraps an actor's fiber so that its death (a broken invariant, a failed write) stops the node
 * loudly instead of leaving a process that answers but no longer decides.
 */
export type Supervise = <A, E>(name: string, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>

export interface Consensus {
  /** Appends commands if this node leads; `done` runs with the index to wait for (no Deferred). */
  propose(proposals: ReadonlyArray<Proposal>, done: (r: ProposeResult) => void): void
  /** ReadIndex: `done` gets the index to wait for, once leadership is confirmed. */
  read(done: (r: ReadResult) => void): void
  transferLeadership(to: NodeId): void
  status(): Status
  /**
   * Calls `done(true)` once the log on this node's disk holds every entry up to `index` (a
   * committed index: never cut), or `done(false)` when the actor stops first.
   */
  whenStored(index: number, done: (stored: boolean) => void): void
}

/**
 * Builds the consensus actor and forks its fibers into the current scope.
 * `onCommitted` receives committed entries (the Applier's `offer`).
 */
export const make = (
  options: ConsensusOptions,
  nc: NatsConnection,
  stores: RaftStores,
  onCommitted: (entries: Ready["committed"]) => void,
  supervise: Supervise = (_name, effect) => effect
) =>
  Effect.gen(function* () {
    const restored = yield* Effect.promise(() => loadRestored(stores))
    const seed = yield* Random.nextIntBetween(1, 2 ** 31 - 1)
    const clock = yield* Effect.clock
    const config: RaftConfig = {
      ...defaultTuning,
      id: options.id,
      members: options.members,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      seed
    }
    const core = new RaftCore(config, restored)
    let lastStored = restored.baseIndex + restored.entries.length
    const reads = new Map<number, (r: ReadResult) => void>()
    let readCtx = 0

    // Who waits for an index to be on disk (the Applier's writes, `whenStored`).
    let storedWaiters: Array<{ readonly index: number; readonly after: number; readonly done: (stored: boolean) => void }> = []

    // The first failure stops the actor; the supervised fiber below reports it.
    const failure = yield* Deferred.make<never>()
    let stopped = false
    const die = (cause: unknown): void => {
      if (stopped) return
      stopped = true
      Deferred.unsafeDone(failure, Effect.die(cause))
      for (const w of storedWaiters) w.done(false)
      storedWaiters = []
    }

    const publish = (m: RaftMessage): void => {
      try {
        nc.publish(Subjects.raft(options.cluster, m.to, m.type), encodeRaftMessage(m))
      } catch {
        // A closed or reconnecting connection: Raft retries on its own, like any lost message.
      }
    }

    let readyQueued = false
    const handOut = (): void => {
      readyQueued = false
      if (stopped) return
      try {
        performReady()
      } catch (cause) {
        die(cause)
      }
    }
    /** Steps the core with one input; its Ready goes out at the end of this turn. */
    const input = (step: () => void): void => {
      if (stopped) return
      try {
        step()
      } catch (cause) {
        die(cause)
        return
      }
      if (!readyQueued) {
        readyQueued = true
        queueMicrotask(handOut)
      }
    }

    const subscription: Subscription = nc.subscribe(Subjects.raftInbox(options.cluster, options.id), {
      callback: (err, msg) => {
        if (err !== null) return
        let m: RaftMessage
        try {
          m = decodeRaftMessage(msg.data)
        } catch {
          return // garbage on our subject is dropped; a peer's real message will be retried
        }
        input(() => core.step(m))
      }
    })

    // Readies whose writes are not yet durable.
    let writes: Ready[] = []
    let writing: Promise<void> | undefined
    let queuedWrites = 0
    // Readies queued and written so far: a waiter's entry is on disk once every Ready queued
    // before it asked has been written (an earlier write may still cut and replace the tail).
    let enqueued = 0
    let written = 0
    const wakeStored = (): void => {
      if (storedWaiters.length === 0) return
      const still: typeof storedWaiters = []
      for (const w of storedWaiters) {
        if (written >= w.after && w.index <= lastStored) w.done(true)
        else still.push(w)
      }
      storedWaiters = still
    }

    const answerReads = (rd: Ready): void => {
      for (const r of rd.readStates) {
        const done = reads.get(r.ctx)
        reads.delete(r.ctx)
        done?.({ ok: true, index: r.index })
      }
      for (const ctx of rd.droppedReads) {
        const done = reads.get(ctx)
        reads.delete(ctx)
        done?.({ ok: false, leader: core.s.leader })
      }
    }

    /** Hands out every Ready; what must wait for the disk goes to the writer. */
    const performReady = (): void => {
      while (core.hasReady()) {
        const rd = core.ready()
        for (const m of rd.sendFirst) publish(m)
        // A Ready with nothing to write still queues behind one that has: its acknowledgements
        // may cover entries the earlier write is still making durable.
        if (needsWrite(rd) || queuedWrites > 0) {
          queuedWrites++
          enqueued++
          writes.push(rd)
          // The writer starts in a microtask: after the one that flushes the appends just sent
          // (followers need not wait while we build our batch), before the Applier's drain.
          writing ??= Promise.resolve().then(writeAll)
        } else {
          core.advance(rd)
          for (const m of rd.messages) publish(m)
        }
        if (rd.committed.length > 0) onCommitted(rd.committed)
        answerReads(rd)
      }
    }

    /** One writer, in order: every Ready queued while the last fsync ran shares the next one. */
    const writeAll = async (): Promise<void> => {
      try {
        while (writes.length > 0 && !stopped) {
          const batch = writes
          writes = []
          lastStored = await persistReadies(stores, batch, lastStored, true)
          if (stopped) return
          // Votes and acknowledgements leave only now that what they promise is durable.
          queuedWrites -= batch.length
          written += batch.length
          for (const rd of batch) {
            for (const m of rd.messages) publish(m)
            input(() => core.advance(rd))
          }
          wakeStored()
        }
      } catch (cause) {
        die(cause)
      } finally {
        writing = undefined
      }
    }

    const ticker = setInterval(() => input(() => core.tick(clock.unsafeCurrentTimeMillis())), options.tickMs)
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        clearInterval(ticker)
        subscription.unsubscribe()
        // Let queued writes land before the database closes: what was appended is kept.
        while (writing !== undefined) await writing
        stopped = true
        for (const w of storedWaiters) w.done(lastStored >= w.index)
        storedWaiters = []
      })
    )
    yield* Effect.forkScoped(supervise("consensus", Deferred.await(failure)))

    const consensus: Consensus = {
      propose: (proposals, done) => input(() => done(core.propose(proposals))),
      read: (done) =>
        input(() => {
          const ctx = ++readCtx
          if (core.requestRead(ctx)) reads.set(ctx, done)
          else done({ ok: false, leader: core.s.leader })
        }),
      transferLeadership: (to) => input(() => core.transferLeadership(to)),
      status: () => core.status(),
      whenStored: (index, done) => {
        if (written >= enqueued && index <= lastStored) done(true)
        else if (stopped) done(false)
        else storedWaiters.push({ index, after: enqueued, done })
      }
    }
    return consensus
  })
