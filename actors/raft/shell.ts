/**
 * The consensus actor's shell. The core is a plain object owned by this module alone, and
 * JavaScript runs one callback at a time, so inputs (bus messages, clock ticks, proposals,
 * reads) step it directly, with no mailbox fiber in between; the Ready they leave is handed out
 * once per turn, in a microtask, so one socket read full of messages makes one Ready. The
 * writer syncs queued Readies in order, sends what had to wait for the disk, and tells the core
 * what became durable. Every Ready queued while the previous fsync ran shares the next one
 * (group commit), and inputs keep being stepped while the disk works.
 *
 * Committed entries go to the Applier at once (`committed`), even when this node's own copy is
 * still being written: committed means durable on a majority, so a crash here loses nothing
 * (Raft thesis §10.2.1); a leader then answers after the fastest follower's fsync, not after its
 * own. The Applier writes its state only up to the index the local log holds (`stored`).
 *
 * All I/O goes through services (RaftBus, Timers, Storage), so the simulator runs this very code;
 * every callback is guarded by the node's Supervisor, so a broken invariant or a failed write
 * stops the node.
 */
import { errors } from "@nats-io/transport-node"
import { Effect, Random, Runtime, type Scope } from "effect"
import { isMember, type Membership, type MembershipOp } from "../../protocol/membership.ts"
import { decodeRaftMessage, encodeRaftMessage } from "../../protocol/raftCodec.ts"
import type { Entry, InstallSnapshot, InstallSnapshotReply, NodeId, RaftMessage } from "../../protocol/raft.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { RaftBus } from "../services/bus.ts"
import { Storage, type StoredOp } from "../services/storage.ts"
import { Supervisor } from "../services/supervisor.ts"
import { Timers } from "../services/timers.ts"
import { RaftCore, type ChangeResult, type ProposeResult, type Proposal, type Ready, type Status } from "./core.ts"
import { defaultTuning, type RaftConfig, type RaftState, type Tuning } from "./state.ts"
import { isInstall, loadRestored, needsWrite, persistReadies, type DiskWrite, type InstallWrite } from "./storage.ts"

export interface ConsensusOptions {
  readonly cluster: string
  readonly id: NodeId
  readonly members: ReadonlyArray<NodeId>
  readonly tickMs: number
  readonly electionTicks: number
  readonly heartbeatTicks: number
  /** Replication windows and batch caps; `defaultTuning` where unset (the simulator uses small ones). */
  readonly tuning?: Partial<Tuning>
}

/** Where the consensus actor's results go: the Applier's inputs. */
export interface ConsensusOutputs {
  /** Committed entries, in log order, each exactly once per run. */
  committed(entries: ReadonlyArray<Entry>): void
  /**
   * The log on this node's disk now holds, up to `index`, exactly the entries handed out so far
   * (it may move back when a leader's append cuts an uncommitted tail that was on disk).
   */
  stored(index: number): void
  /** A snapshot will replace the state: stop applying; resolves once no state write is in flight. */
  installing(): Promise<void>
  /** The snapshot's state at `index` is durable and current: load it and apply on from there. */
  installed(index: number): Promise<void>
}

/** Snapshot traffic the core routes to the Snapshotter. */
export interface SnapshotTraffic {
  /** We lead, and `peer` needs entries we compacted away: send it a snapshot. */
  wanted(peer: NodeId): void
  /** A chunk from our leader (its term is ours: checked). */
  chunk(m: InstallSnapshot): void
  /** A follower's answer to a chunk we sent. */
  reply(m: InstallSnapshotReply): void
}

/** A verified snapshot the Snapshotter asks to install. */
export interface InstallRequest {
  readonly index: number
  readonly term: number
  /** The term of the leader that sent it: refused if ours moved on meanwhile. */
  readonly leaderTerm: number
  /** The state generation it was written to. */
  readonly generation: number
  /** Meta writes that make it the state (generation, applied index, compaction base, ...). */
  readonly ops: ReadonlyArray<StoredOp>
  /** The configuration as of the snapshot: in effect from the install on. */
  readonly membership: Membership
}

export type ReadResult = { readonly ok: true; readonly index: number } | { readonly ok: false; readonly leader: NodeId | null }

/**
 * How a leadership transfer ended: `to` leads (this node heard from it as leader), or why not.
 * `not_leader`: this node does not lead (`leader`: who does, if known); `no_target`: `to` is
 * not a voter here, or is this node, or (no target named) there is no other voter; `busy`:
 * another transfer is under way; `timeout`: `to` did not take over in time (the core gave up
 * after an election timeout, or no leader showed up within two); `stopped`: the node stops.
 */
export type TransferResult =
  | { readonly ok: true; readonly leader: NodeId; readonly term: number }
  | {
      readonly ok: false
      readonly reason: "not_leader" | "no_target" | "busy" | "timeout" | "stopped"
      /** The transfer's target, when one was named or chosen. */
      readonly to: NodeId | null
      readonly leader: NodeId | null
    }

export interface Consensus {
  /** Appends commands if this node leads; `done` runs with the index to wait for (no Deferred). */
  propose(proposals: ReadonlyArray<Proposal>, done: (r: ProposeResult) => void): void
  /** ReadIndex: `done` gets the index to wait for, once leadership is confirmed. */
  read(done: (r: ReadResult) => void): void
  /**
   * Hands leadership to `to` (null: the most caught-up follower) and calls `done` once this node
   * hears from it as leader, or when the transfer fails (at most two election timeouts). Writes
   * proposed here meanwhile wait, and get their answer once a leader is known again.
   */
  transferLeadership(to: NodeId | null, done: (r: TransferResult) => void): void
  /** The node is shutting down: it never campaigns again (core.ts `retire`). */
  retire(): void
  /** Calls `listener` with every configuration that takes effect here from now on. */
  onMembership(listener: (m: Membership) => void): void
  /** One configuration change (core.ts `changeMembership`); `done` gets where it was appended. */
  changeMembership(op: MembershipOp, id: NodeId, done: (r: ChangeResult) => void): void
  /** Sends a Raft message (the Snapshotter's chunks and answers). */
  send(m: RaftMessage): void
  /** Where snapshot traffic goes; one listener, the Snapshotter. */
  onSnapshotTraffic(listener: SnapshotTraffic): void
  /** A snapshot up to `index` is durable: drop log entries up to there from memory. */
  compact(index: number): void
  /** The Snapshotter gave up sending to `peer`. */
  snapshotAbandoned(peer: NodeId): void
  /**
   * Replaces the log and state with a verified snapshot; `done(true)` once that is durable,
   * `done(false)` when it may not (any more) replace them.
   */
  install(request: InstallRequest, done: (installed: boolean) => void): void
  /** Term of the entry at `index`, while the log holds it (or its base). */
  termAt(index: number): number | undefined
  /** Bytes of the entry at `index`'s data, while the log holds it in memory. */
  entryBytes(index: number): number | undefined
  status(): Status
  /** The consensus state, for reading only (the simulator's safety checks). */
  inspect(): Readonly<RaftState>
}

const actor = "consensus"

/** What changed between two configurations, for the log: `added n4 as a learner`, `promoted n4 to voter`, `removed n2`. */
export const membershipChange = (was: Membership, now: Membership): string => {
  const said: Array<string> = []
  for (const id of now.voters) {
    if (was.learners.includes(id)) said.push(`promoted ${id} to voter`)
    else if (!was.voters.includes(id)) said.push(`added ${id} as a voter`)
  }
  for (const id of now.learners) {
    if (was.voters.includes(id)) said.push(`made ${id} a learner`)
    else if (!was.learners.includes(id)) said.push(`added ${id} as a learner`)
  }
  for (const id of [...was.voters, ...was.learners]) if (!isMember(now, id)) said.push(`removed ${id}`)
  if (said.length > 0) return said.join(", ")
  return was.cluster === "" && now.cluster !== "" ? "the first leader recorded the seed configuration" : "configuration in effect again"
}

/** Proposals held while leadership is handed over; past this many, more are refused at once. */
const maxParked = 10_000

/** Builds the consensus actor; it stops (finishing queued writes) when the scope closes. */
export const make = (
  options: ConsensusOptions,
  outputs: ConsensusOutputs
): Effect.Effect<Consensus, never, RaftBus | Timers | Storage | Supervisor | Scope.Scope> =>
  Effect.gen(function* () {
    const bus = yield* RaftBus
    const timers = yield* Timers
    const storage = yield* Storage
    const supervisor = yield* Supervisor
    const restored = yield* Effect.promise(() => loadRestored(storage))
    const seed = yield* Random.nextIntBetween(1, 2 ** 31 - 1)
    const config: RaftConfig = {
      ...defaultTuning,
      ...options.tuning,
      id: options.id,
      members: options.members,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      seed
    }
    const core = new RaftCore(config, restored)
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    // `fields` become annotations: JSON logs (LOG_FORMAT=json) carry them as fields to filter on.
    const logInfo = (line: string, fields: Record<string, unknown> = {}): void => void runFork(Effect.logInfo(line).pipe(Effect.annotateLogs(fields)))
    const logWarning = (line: string, fields: Record<string, unknown> = {}): void => void runFork(Effect.logWarning(line).pipe(Effect.annotateLogs(fields)))
    const describe = (m: Membership): string =>
      `voters ${m.voters.join(",") || "none"}${m.learners.length > 0 ? `, learners ${m.learners.join(",")}` : ""}${m.cluster === "" ? "" : ` (cluster id ${m.cluster})`}`
    const peersFlag = [...new Set(options.members)].sort().join(",")
    if (core.s.membership.cluster !== "" && [...core.s.membership.voters].sort().join(",") !== peersFlag && options.members.length > 0) {
      logWarning(`--peers ${options.members.join(",")} differs from the configuration in the log (${describe(core.s.membership)}); following the log`)
    }
    /** The configuration last reported in the log, to say when it changes and what it means here. */
    let reported = core.s.membership
    const membershipListeners: Array<(m: Membership) => void> = []
    const reportMembership = (): void => {
      const m = core.s.membership
      if (m === reported) return
      const was = reported
      reported = m
      const role = m.voters.includes(options.id) ? "a voter" : m.learners.includes(options.id) ? "a learner" : undefined
      const wasMember = isMember(was, options.id)
      // Where it comes from: its entry in the log, or the snapshot the log now starts from.
      const entry = core.s.configs[core.s.configs.length - 1]
      const at = entry !== undefined && entry.membership === m ? `at index ${entry.index} (term ${entry.term})` : `from the snapshot at index ${core.s.log.baseIndex}`
      const change = `${membershipChange(was, m)} ${at}; now ${describe(m)}`
      if (role === undefined && wasMember) logWarning(`this node was removed from the cluster: ${change}; it will not campaign, and can be stopped`)
      else logInfo(`configuration: ${change}${role === undefined ? "; this node is not a member (it waits to be added)" : `; this node is ${role}`}`)
      for (const listener of membershipListeners) listener(m)
    }
    /** Role, term and leader as last told in the log: elections and leader changes are the cluster's story. */
    let told = { role: core.s.role, term: core.s.term, leader: core.s.leader }
    const reportRole = (): void => {
      const s = core.s
      if (s.role === told.role && s.term === told.term && s.leader === told.leader) return
      const was = told
      told = { role: s.role, term: s.term, leader: s.leader }
      const at = `term ${s.term}, last index ${s.log.lastIndex}, commit ${s.log.committed}`
      const fields = { term: s.term, lastIndex: s.log.lastIndex, commit: s.log.committed, leader: s.leader }
      if (s.role === "leader") {
        if (was.role !== "leader") logInfo(`elected leader (${at})`, fields)
      } else if (was.role === "leader") {
        logWarning(`stepped down as leader (${at}); ${s.leader === null ? "no leader known yet" : `${s.leader} leads`}`, fields)
      } else if (s.role === "candidate") {
        if (was.role !== "candidate" || was.term !== s.term) logInfo(`campaigning for term ${s.term} (last index ${s.log.lastIndex})`, fields)
      } else if (s.leader !== null && s.leader !== was.leader) {
        logInfo(`${was.role === "candidate" ? `lost the election for term ${was.term}; ` : ""}following ${s.leader} (${at})`, fields)
      } else if (s.leader === null && was.leader !== null) {
        logWarning(`lost touch with leader ${was.leader} (${at})`, fields)
      } else if (was.role === "candidate" && s.leader === null) {
        logInfo(`lost the election for term ${was.term} (now ${at})`, fields)
      }
    }
    let lastStored = restored.baseIndex + restored.entries.length
    /** Up to here the disk log is the log handed out (what `stored` last said). */
    let storedUpTo = lastStored
    outputs.stored(storedUpTo)
    const reads = new Map<number, (r: ReadResult) => void>()
    let readCtx = 0
    let traffic: SnapshotTraffic | undefined
    /** Installs queued in the writer: their `done`, and the Applier's word that it stopped writing. */
    const installs = new Map<InstallWrite, { readonly done: (installed: boolean) => void; readonly quiet: Promise<void>; readonly generation: number }>()

    /** The transfer under way, started here: its target, ticks since it began, who waits for it. */
    let transfer: { readonly to: NodeId; ticks: number; readonly waiters: Array<(r: TransferResult) => void> } | undefined
    /** Proposals that met the transfer: proposed again once it ends (forwarded to the new leader). */
    let parked: Array<{ readonly proposals: ReadonlyArray<Proposal>; readonly done: (r: ProposeResult) => void }> = []
    const transferTicks = 2 * options.electionTicks

    let stopped = false
    const die = (cause: unknown): void => {
      if (stopped) return
      stopped = true
      supervisor.fail(actor, cause)
    }

    const publish = (m: RaftMessage): void => {
      const bytes = encodeRaftMessage(m)
      try {
        bus.publish(Subjects.raft(options.cluster, m.to, m.type), bytes)
      } catch (e) {
        // A closing connection loses it, and Raft retries as for any lost message; anything
        // else is a bug.
        if (!(e instanceof errors.ClosedConnectionError || e instanceof errors.DrainingConnectionError)) throw e
      }
    }

    let readyQueued = false
    const handOut = (): void => {
      readyQueued = false
      if (stopped || supervisor.failed) return
      try {
        performReady()
      } catch (cause) {
        die(cause)
      }
    }
    /** Steps the core with one input; its Ready goes out at the end of this turn. */
    const input = (step: () => void): void => {
      if (stopped || supervisor.failed) return
      try {
        step()
        if (transfer !== undefined) settleTransfer()
        reportRole()
        if (core.s.membership !== reported) reportMembership()
      } catch (cause) {
        die(cause)
        return
      }
      if (!readyQueued) {
        readyQueued = true
        queueMicrotask(handOut)
      }
    }

    const subscription = bus.subscribe(Subjects.raftInbox(options.cluster, options.id), {
      callback: supervisor.guard(actor, (err, msg) => {
        if (err !== null) return
        let m: RaftMessage
        try {
          m = decodeRaftMessage(msg.data)
        } catch {
          return // garbage on our subject is dropped; a peer's real message will be retried
        }
        input(() => core.step(m))
      })
    })

    // Readies (and installs) whose writes are not yet durable, oldest first.
    let writes: DiskWrite[] = []
    let writing: Promise<void> | undefined
    let queuedWrites = 0

    const moveStored = (index: number): void => {
      if (index === storedUpTo) return
      storedUpTo = index
      outputs.stored(index)
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
          writes.push(rd)
          // The disk's copy from here on is about to be replaced: the Applier must not count on it.
          if (rd.truncateFrom !== null) moveStored(Math.min(storedUpTo, rd.truncateFrom - 1))
          // The writer starts in a microtask: after the one that flushes the appends just sent
          // (followers need not wait while we build our batch), before the Applier's drain.
          writing ??= Promise.resolve().then(writeAll)
        } else {
          core.advance(rd)
          for (const m of rd.messages) publish(m)
        }
        if (rd.committed.length > 0) outputs.committed(rd.committed)
        answerReads(rd)
        if (traffic !== undefined) {
          // Replies first: one that ends a transfer frees the follower for the next it needs.
          for (const m of rd.snapshotReplies) traffic.reply(m)
          for (const peer of rd.snapshotsWanted) traffic.wanted(peer)
          for (const m of rd.snapshotChunks) traffic.chunk(m)
        }
      }
    }

    /**
     * Ends the transfer once its outcome is known: `to` leads (we follow it), or the core gave
     * it up (we lead on), or another node leads, or two election timeouts passed. Parked
     * proposals are proposed again: here if we still lead, else the caller forwards them.
     */
    const settleTransfer = (): void => {
      const x = transfer!
      const s = core.s
      let result: TransferResult | undefined
      if (s.role === "leader") {
        if (s.transferee !== x.to) result = { ok: false, reason: "timeout", to: x.to, leader: s.id }
      } else if (s.leader === x.to) {
        result = { ok: true, leader: x.to, term: s.term }
      } else if (s.leader !== null || x.ticks >= transferTicks) {
        result = { ok: false, reason: "timeout", to: x.to, leader: s.leader }
      }
      if (result === undefined) return
      transfer = undefined
      for (const done of x.waiters) done(result)
      const waiting = parked
      parked = []
      for (const p of waiting) p.done(core.propose(p.proposals))
    }

    const startTransfer = (to: NodeId | null, done: (r: TransferResult) => void): void => {
      const s = core.s
      if (transfer !== undefined) {
        if (to === null || to === transfer.to) transfer.waiters.push(done)
        else done({ ok: false, reason: "busy", to: transfer.to, leader: s.leader })
        return
      }
      if (s.role !== "leader") return done({ ok: false, reason: "not_leader", to, leader: s.leader })
      const target = to ?? core.transferTarget()
      if (target === null || !core.transferLeadership(target)) return done({ ok: false, reason: "no_target", to: target, leader: s.id })
      transfer = { to: target, ticks: 0, waiters: [done] }
    }

    /** Queues an install behind the Readies already waiting (see InstallWrite). */
    const queueInstall = (request: InstallRequest, done: (installed: boolean) => void): void => {
      if (!core.canInstall(request.index, request.term, request.leaderTerm)) {
        done(false)
        return
      }
      // From here the old log and state are gone for this process: the Applier stops at once.
      const quiet = outputs.installing()
      core.installSnapshot(request.index, request.term, request.membership)
      const write: InstallWrite = { install: true, index: request.index, ops: request.ops }
      installs.set(write, { done, quiet, generation: request.generation })
      queuedWrites++
      writes.push(write)
      moveStored(Math.min(storedUpTo, request.index))
      writing ??= Promise.resolve().then(writeAll)
    }

    /** One writer, in order: every Ready queued while the last fsync ran shares the next one. */
    const writeAll = async (): Promise<void> => {
      try {
        while (writes.length > 0 && !stopped) {
          const batch = writes
          writes = []
          // An install's switch waits until the old state is no longer being written.
          for (const w of batch) if (isInstall(w)) await installs.get(w)!.quiet
          lastStored = await persistReadies(storage, batch, lastStored, true)
          if (stopped) return
          // Votes and acknowledgements leave only now that what they promise is durable.
          queuedWrites -= batch.length
          for (const rd of batch) {
            if (isInstall(rd)) {
              const install = installs.get(rd)!
              installs.delete(rd)
              storage.useGeneration(install.generation)
              // Durable now: the leader may go on from here while the Applier loads the state
              // (seconds for a million keys; entries committed meanwhile wait in its inbox).
              outputs.installed(rd.index).catch(die)
              install.done(true)
              continue
            }
            for (const m of rd.messages) publish(m)
            input(() => core.advance(rd))
          }
          let upTo = lastStored
          for (const rd of writes) {
            if (isInstall(rd)) upTo = Math.min(upTo, rd.index)
            else if (rd.truncateFrom !== null) upTo = Math.min(upTo, rd.truncateFrom - 1)
          }
          moveStored(upTo)
        }
      } catch (cause) {
        die(cause)
      } finally {
        writing = undefined
      }
    }

    const stopTicking = timers.every(
      options.tickMs,
      supervisor.guard(actor, () =>
        input(() => {
          core.tick(timers.now())
          if (transfer !== undefined) transfer.ticks++
        })
      )
    )
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        stopTicking()
        subscription.unsubscribe()
        // Let queued writes land before the database closes: what was appended is kept.
        while (writing !== undefined) await writing
        stopped = true
        for (const install of installs.values()) install.done(false)
        installs.clear()
        const unfinished = transfer
        transfer = undefined
        for (const done of unfinished?.waiters ?? []) done({ ok: false, reason: "stopped", to: unfinished!.to, leader: core.s.leader })
        for (const p of parked.splice(0)) p.done({ ok: false, leader: core.s.leader })
      })
    )

    const consensus: Consensus = {
      propose: (proposals, done) =>
        input(() => {
          const r = core.propose(proposals)
          // Refused for the transfer under way: answered when it ends, with the leader it leaves.
          if (!r.ok && r.leader === null && transfer !== undefined && parked.length < maxParked) parked.push({ proposals, done })
          else done(r)
        }),
      read: (done) =>
        input(() => {
          const ctx = ++readCtx
          if (core.requestRead(ctx)) reads.set(ctx, done)
          else done({ ok: false, leader: core.s.leader })
        }),
      transferLeadership: (to, done) => {
        if (stopped || supervisor.failed) return done({ ok: false, reason: "stopped", to, leader: core.s.leader })
        input(() => startTransfer(to, done))
      },
      retire: () => input(() => core.retire()),
      onMembership: (listener) => {
        membershipListeners.push(listener)
      },
      changeMembership: (op, id, done) => {
        if (stopped || supervisor.failed) return done({ ok: false, reason: "not_leader", message: `node ${options.id} is stopping`, leader: null })
        input(() => done(core.changeMembership(op, id)))
      },
      send: (m) => {
        if (!stopped && !supervisor.failed) publish(m)
      },
      onSnapshotTraffic: (listener) => {
        traffic = listener
      },
      compact: (index) => input(() => core.compact(index)),
      snapshotAbandoned: (peer) => input(() => core.snapshotAbandoned(peer)),
      install: (request, done) => input(() => queueInstall(request, done)),
      termAt: (index) => core.s.log.term(index),
      entryBytes: (index) => (index > core.s.log.baseIndex ? core.s.log.entry(index)?.data.length : undefined),
      status: () => core.status(),
      inspect: () => core.s
    }
    return consensus
  })
