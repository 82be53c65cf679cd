/**
 * The consensus actor's Effect shell: one mailbox and one fiber own the core; a second fiber
 * owns the disk. The loop turns NATS messages, clock ticks, proposals and reads into core
 * inputs and hands out each Ready in the order the core demands (see core.ts); the writer syncs
 * queued Readies in order, sends what had to wait for the disk, and tells the core with a
 * `persisted` input. Every Ready queued while the previous fsync ran shares the next one (group
 * commit), and the loop keeps stepping acknowledgements while the disk works.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node"
import { Clock, Effect, Queue, Random, Schedule } from "effect"
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

type Input =
  | { readonly type: "message"; readonly message: RaftMessage }
  | { readonly type: "tick"; readonly now: number }
  | { readonly type: "propose"; readonly proposals: ReadonlyArray<Proposal>; readonly done: (r: ProposeResult) => void }
  | { readonly type: "read"; readonly done: (r: ReadResult) => void }
  | { readonly type: "transfer"; readonly to: NodeId }
  | { readonly type: "persisted"; readonly rd: Ready }

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
}

/**
 * Builds the consensus actor and forks its fibers into the current scope.
 * `onCommitted` receives committed entries (the Applier's mailbox).
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
    const mailbox = yield* Queue.unbounded<Input>()
    const reads = new Map<number, (r: ReadResult) => void>()
    let readCtx = 0

    const publish = (m: RaftMessage): void => {
      try {
        nc.publish(Subjects.raft(options.cluster, m.to, m.type), encodeRaftMessage(m))
      } catch {
        // A closed or reconnecting connection: Raft retries on its own, like any lost message.
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
        Queue.unsafeOffer(mailbox, { type: "message", message: m })
      }
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => subscription.unsubscribe()))

    const handle = (input: Input): void => {
      switch (input.type) {
        case "message":
          core.step(input.message)
          return
        case "tick":
          core.tick(input.now)
          return
        case "propose":
          input.done(core.propose(input.proposals))
          return
        case "read": {
          const ctx = ++readCtx
          if (core.requestRead(ctx)) reads.set(ctx, input.done)
          else input.done({ ok: false, leader: core.s.leader })
          return
        }
        case "transfer":
          core.transferLeadership(input.to)
          return
        case "persisted":
          core.advance(input.rd)
          return
      }
    }

    // Readies whose writes are not yet durable, with the committed entries that wait for them.
    const writes = yield* Queue.unbounded<{ readonly rd: Ready; readonly late: Ready["committed"] }>()

    let queuedWrites = 0
    let lateInWriter = 0

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

    /** Hands out every Ready; what must wait for the disk goes to the writer fiber. */
    const performReady = (): void => {
      while (core.hasReady()) {
        const rd = core.ready()
        for (const m of rd.sendFirst) publish(m)
        // Committed entries already on our disk go to the Applier now, not after this write:
        // on a leader that is all of them (it counts its own copy only once durable).
        // Never ahead of committed entries still waiting in the writer, so the Applier gets
        // every index in order.
        const durable = lateInWriter > 0 ? 0 : core.s.log.persistedIndex
        let split = 0
        while (split < rd.committed.length && rd.committed[split]!.index <= durable) split++
        if (split > 0) onCommitted(split === rd.committed.length ? rd.committed : rd.committed.slice(0, split))
        const late = split === 0 ? rd.committed : rd.committed.slice(split)
        answerReads(rd)
        // A Ready with nothing to write still queues behind one that has: its acknowledgements
        // may cover entries the earlier write is still making durable.
        if (needsWrite(rd) || queuedWrites > 0) {
          queuedWrites++
          lateInWriter += late.length
          Queue.unsafeOffer(writes, { rd, late })
        } else {
          core.advance(rd)
          for (const m of rd.messages) publish(m)
          if (late.length > 0) onCommitted(late)
        }
      }
    }

    // The loop never waits for the disk: while one batch is being synced it keeps stepping
    // acknowledgements and proposals (etcd's asynchronous storage writes).
    const loop = Effect.gen(function* () {
      for (;;) {
        const first = yield* Queue.take(mailbox)
        const rest = yield* Queue.takeAll(mailbox)
        handle(first)
        for (const input of rest) handle(input)
        performReady()
      }
    })

    // One writer, in order: every Ready queued while the last fsync ran shares the next one.
    const writer = Effect.gen(function* () {
      for (;;) {
        const first = yield* Queue.take(writes)
        const rest = yield* Queue.takeAll(writes)
        const batch = [first, ...rest]
        const before = lastStored
        lastStored = yield* Effect.promise(() =>
          persistReadies(
            stores,
            batch.map((w) => w.rd),
            before,
            true
          )
        )
        // Votes and acknowledgements leave only now that what they promise is durable.
        queuedWrites -= batch.length
        for (const { rd, late } of batch) {
          for (const m of rd.messages) publish(m)
          if (late.length > 0) onCommitted(late)
          lateInWriter -= late.length
          Queue.unsafeOffer(mailbox, { type: "persisted", rd })
        }
      }
    })

    const ticker = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      Queue.unsafeOffer(mailbox, { type: "tick", now })
    }).pipe(Effect.repeat(Schedule.spaced(options.tickMs)))

    yield* Effect.forkScoped(supervise("consensus loop", loop))
    yield* Effect.forkScoped(supervise("log writer", writer))
    yield* Effect.forkScoped(supervise("ticker", ticker))

    const consensus: Consensus = {
      propose: (proposals, done) => Queue.unsafeOffer(mailbox, { type: "propose", proposals, done }),
      read: (done) => Queue.unsafeOffer(mailbox, { type: "read", done }),
      transferLeadership: (to) => Queue.unsafeOffer(mailbox, { type: "transfer", to }),
      status: () => core.status()
    }
    return consensus
  })
