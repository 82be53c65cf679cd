/**
 * The Snapshotter actor. It keeps a node's disk, memory and restart time bounded by its state:
 *
 * - every `threshold` applied entries (or on `admin.snapshot`) it takes a snapshot: a LevelDB
 *   view of the applied state at the applied index, streamed once through the snapshot format
 *   for its checksum and size (never copied into memory); then it records the snapshot's meta
 *   and the new compaction base in one synced write and drops the log below it, keeping a
 *   trailing window (decisions.ts);
 * - as leader, it sends a snapshot of the state in chunks to a follower that needs compacted
 *   entries, a few chunks in flight, sending again what a follower does not confirm;
 * - as follower, it writes the chunks it receives into the next state generation and, once the
 *   whole snapshot is there and its checksum holds, has the consensus actor switch to it in one
 *   atomic write (a crash leaves the old state or the whole new one);
 * - it streams the state for backups (`archio snapshot save`).
 *
 * Decisions are in decisions.ts; this shell does the I/O through the Storage and Timers
 * services, so the simulator runs it as shipped.
 */
import { decodeMembership, seedMembership } from "../../protocol/membership.ts"
import { Effect, Runtime, type Scope } from "effect"
import { encodeUint64Key } from "../../protocol/raftCodec.ts"
import type { InstallSnapshot, InstallSnapshotReply, NodeId } from "../../protocol/raft.ts"
import { SnapshotDecoder, SnapshotFormatError, snapshotFormatVersion, type SnapshotHeader } from "../../protocol/snapshotFormat.ts"
import { stateMetaKeys, type Applier } from "../applier/applier.ts"
import type { Consensus } from "../raft/shell.ts"
import { decodeJsonValue, encodeJsonValue, metaKeys } from "../raft/storage.ts"
import { generationKey, Storage, type StateLevels, type StoredOp } from "../services/storage.ts"
import { Supervisor } from "../services/supervisor.ts"
import { Timers, type Cancel } from "../services/timers.ts"
import { compactionBase, expectedOffset, judgeChunk, SendWindow, snapshotDue, type InstallSession, type SentChunk, type SnapshotMeta } from "./decisions.ts"
import { SnapshotStream } from "./stream.ts"

export type { SnapshotMeta } from "./decisions.ts"

export interface SnapshotterOptions {
  readonly cluster: string
  readonly id: NodeId
  readonly members: ReadonlyArray<NodeId>
  /** Applied entries between snapshots (SNAPSHOT_THRESHOLD). */
  readonly threshold: number
  /** Bytes of snapshot per InstallSnapshot message (below NATS's max_payload). */
  readonly chunkBytes: number
  /** Chunks a leader has unconfirmed per follower. */
  readonly maxInflight: number
  /** A transfer with no progress for this long sends its unconfirmed chunks again. */
  readonly resendMs: number
  /** ... and gives up after this many silences in a row (the follower is probed again). */
  readonly maxSilences: number
  /** A snapshot is also due once this many bytes of entries were applied since the last one. */
  readonly maxLogBytes: number
  /** The log kept behind a snapshot holds at most this many bytes of entries. */
  readonly maxTrailingBytes: number
}

export const defaultSnapshotTuning: Pick<SnapshotterOptions, "chunkBytes" | "maxInflight" | "resendMs" | "maxSilences" | "maxLogBytes" | "maxTrailingBytes"> = {
  chunkBytes: 256 * 1024,
  maxInflight: 4,
  resendMs: 1000,
  maxSilences: 5,
  maxLogBytes: 64 * 1024 * 1024,
  maxTrailingBytes: 32 * 1024 * 1024
}

/** A step of the snapshot lifecycle, named as the older Go service's metrics name them. */
export interface SnapshotEvent {
  /** snapshot: taking one; persist: recording it and compacting; restore: installing one. */
  readonly phase: "snapshot" | "persist" | "restore"
  readonly status: "started" | "succeeded" | "failed"
  readonly seconds?: number
  readonly bytes?: number
}

export interface SnapshotStatus {
  /** The last snapshot taken or installed here. */
  readonly last: SnapshotMeta | null
  /** Followers this leader is sending a snapshot to. */
  readonly sending: ReadonlyArray<NodeId>
  /** The snapshot this follower is receiving, and how many of its bytes it has. */
  readonly receiving: { readonly index: number; readonly received: number } | null
}

export interface Snapshotter {
  /** Takes a snapshot now (after any in progress), and compacts the log behind it. */
  takeNow(): Promise<SnapshotMeta>
  /** The applied state as a snapshot stream, for a backup; close it when done. */
  openStream(): Promise<SnapshotStream>
  status(): SnapshotStatus
  onEvent(listener: (e: SnapshotEvent) => void): void
}

const actor = "snapshotter"

/** Table bytes beyond 1.5 times the state before the database is compacted (room for the log window). */
const reclaimSlackBytes = 1024 * 1024

/** A session of the follower's install, with what it parsed so far. */
interface Receiving extends InstallSession {
  readonly generation: number
  readonly decoder: SnapshotDecoder
  /** The state's meta keys, written in the switch itself. */
  readonly meta: Map<string, Uint8Array>
  readonly started: number
}

export const make = (
  options: SnapshotterOptions,
  consensus: Consensus,
  applier: Applier
): Effect.Effect<Snapshotter, never, Storage | Timers | Supervisor | Scope.Scope> =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const timers = yield* Timers
    const supervisor = yield* Supervisor
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const log = (level: "info" | "warn", line: string): void => {
      runFork(level === "info" ? Effect.logInfo(line) : Effect.logWarning(line))
    }

    const stored = yield* Effect.promise(() => storage.meta.get(metaKeys.snapshot))
    let last: SnapshotMeta | null = stored === undefined ? null : decodeJsonValue<SnapshotMeta>(stored)
    /** Bytes of entries applied since the last snapshot began or was installed (`snapshotDue`). */
    let bytesSince = 0
    const listeners: Array<(e: SnapshotEvent) => void> = []
    const emit = (e: SnapshotEvent): void => {
      for (const l of listeners) l(e)
    }
    let stopped = false
    const die = (cause: unknown): void => {
      if (stopped) return
      supervisor.fail(actor, cause)
    }

    const dropLevels = (levels: StateLevels): Promise<void> =>
      Promise.all([storage.drop(levels.kv, {}), storage.drop(levels.jobs, {}), storage.drop(levels.sessions, {})]).then(() => undefined)
    /** Drops nothing reads any more run in the background; the finalizer waits for them. */
    let dropping: Promise<void> = Promise.resolve()
    const dropLater = (f: () => Promise<void>): void => {
      dropping = dropping.then(f).catch(die)
    }

    // What a crash may have left: a half-written install, the generation before the last
    // install, the log below the compaction base.
    yield* Effect.promise(async () => {
      const generation = storage.generation
      await dropLevels(storage.levelsOf(generation + 1))
      if (generation > 0) await dropLevels(storage.levelsOf(generation - 1))
      const base = consensus.status().baseIndex
      if (base > 0) await storage.drop(storage.log, { lte: encodeUint64Key(base) })
    })

    /** Snapshots, compactions and installs run one at a time. */
    let exclusive: Promise<unknown> = Promise.resolve()
    const oneAtATime = <A>(f: () => Promise<A>): Promise<A> => {
      const run = exclusive.then(f, f)
      exclusive = run.catch(() => undefined)
      return run
    }

    /** The header of a snapshot of `view`: its time is the state's own clock, so the same state gives the same bytes. */
    const headerFor = async (index: number, term: number, view: Awaited<ReturnType<Applier["stateView"]>>): Promise<SnapshotHeader> => {
      const time = await view.meta.get("kv.time", { snapshot: view.snapshot })
      const membership = await view.meta.get(metaKeys.membership, { snapshot: view.snapshot })
      // The voters as of the snapshot's index (the seed's until the first configuration applies).
      const members = membership === undefined ? options.members : decodeMembership(membership).voters
      return { index, term, members, cluster: options.cluster, createdAt: time === undefined ? 0 : decodeJsonValue<number>(time) }
    }

    const openStream = async (): Promise<SnapshotStream> => {
      const view = await applier.stateView()
      const term = consensus.termAt(view.index)
      if (term === undefined) {
        await view.snapshot.close()
        throw new Error(`the log no longer holds the term of index ${view.index}`)
      }
      return new SnapshotStream(view, await headerFor(view.index, term, view))
    }

    const take = async (): Promise<SnapshotMeta> => {
      bytesSince = 0
      const started = timers.now()
      emit({ phase: "snapshot", status: "started" })
      let meta: SnapshotMeta
      try {
        const stream = await openStream()
        try {
          while (!stream.finished) await stream.next(options.chunkBytes)
        } finally {
          await stream.close()
        }
        const { index, term } = stream.header
        meta = { index, term, members: stream.header.members, format: snapshotFormatVersion, checksum: stream.digest, size: stream.produced, time: timers.now() }
        emit({ phase: "snapshot", status: "succeeded", seconds: (timers.now() - started) / 1000, bytes: meta.size })
      } catch (e) {
        emit({ phase: "snapshot", status: "failed" })
        throw e
      }
      const persisting = timers.now()
      emit({ phase: "persist", status: "started" })
      const currentBase = consensus.status().baseIndex
      // Never past a snapshot still on its way to a follower: it goes on from the log after it,
      // and a long transfer under heavy writes would otherwise need another one, forever.
      let base = compactionBase(meta.index, options.threshold, currentBase, consensus.entryBytes, options.maxTrailingBytes)
      for (const sender of senders.values()) {
        if (sender.stream !== undefined) base = Math.max(currentBase, Math.min(base, sender.stream.header.index))
      }
      const baseTerm = consensus.termAt(base)
      const ops: StoredOp[] = [{ type: "put", sublevel: storage.meta, key: metaKeys.snapshot, value: encodeJsonValue(meta) }]
      const compacts = base > currentBase && baseTerm !== undefined
      if (compacts) ops.push({ type: "put", sublevel: storage.meta, key: metaKeys.base, value: encodeJsonValue({ index: base, term: baseTerm }) })
      try {
        // Synced: the state it covers (written before, unsynced) becomes durable with it.
        await storage.write(ops, true)
      } catch (e) {
        emit({ phase: "persist", status: "failed" })
        throw e
      }
      last = meta
      if (compacts) {
        consensus.compact(base)
        // Dropped before the tables are looked at, so a compaction below takes them too.
        await storage.drop(storage.log, { lte: encodeUint64Key(base) })
      }
      emit({ phase: "persist", status: "succeeded", seconds: (timers.now() - persisting) / 1000, bytes: meta.size })
      await reclaimDisk(meta.size)
      log("info", `snapshot at index ${meta.index} term ${meta.term}: ${meta.size} bytes; log compacted to ${compacts ? base : currentBase}`)
      return meta
    }

    /**
     * LevelDB keeps overwritten state and dropped log entries in its tables until a compaction
     * reaches them, which for a small, busy state can be many times the state. Once the tables
     * hold half as much again as the snapshot (plus room for the log window), they are compacted,
     * in LevelDB's own thread: rewriting the live data once per half of it written again costs
     * about twice the writes, off the event loop.
     */
    const reclaimDisk = async (stateBytes: number): Promise<void> => {
      const upkeep = storage.upkeep
      if (upkeep === undefined) return
      const onDisk = await upkeep.sizeOnDisk()
      if (onDisk <= 1.5 * stateBytes + reclaimSlackBytes) return
      await upkeep.compactAll()
      log("info", `compacted the database: ${onDisk} bytes of tables for a ${stateBytes}-byte state`)
    }

    let due = false
    const takeNow = (): Promise<SnapshotMeta> => oneAtATime(take)
    /**
     * Takes a snapshot when one is due and none is under way. Also asked again when one ends: a
     * snapshot of a big state takes seconds, and what was applied meanwhile may already make the
     * next one due, with no further write to notice it.
     */
    const snapshotIfDue = (): void => {
      if (due || stopped || !snapshotDue(applier.applied, last?.index ?? 0, options.threshold, bytesSince, options.maxLogBytes)) return
      due = true
      takeNow().then(
        () => {
          due = false
          snapshotIfDue()
        },
        (cause: unknown) => {
          due = false
          if (!stopped) log("warn", `snapshot failed: ${cause instanceof Error ? cause.message : String(cause)}`)
        }
      )
    }
    applier.onApplied((batch) => {
      for (const entries of batch.entries) for (const e of entries) bytesSince += e.data.length
      snapshotIfDue()
    })

    // ---- leader: sending snapshots to followers that need them ----

    interface Sender {
      readonly peer: NodeId
      readonly term: number
      stream: SnapshotStream | undefined
      readonly window: SendWindow
      pumping: boolean
      progressAt: number
      stopTimer: Cancel
      ended: boolean
    }
    const senders = new Map<NodeId, Sender>()

    const leading = (term: number): boolean => {
      const s = consensus.status()
      return !stopped && s.role === "leader" && s.term === term
    }

    const sendChunk = (sender: Sender, chunk: SentChunk): void => {
      const stream = sender.stream!
      consensus.send({
        type: "snapshot",
        from: options.id,
        to: sender.peer,
        term: sender.term,
        lastIncludedIndex: stream.header.index,
        lastIncludedTerm: stream.header.term,
        offset: chunk.offset,
        done: chunk.done,
        data: chunk.data
      })
    }

    const endSender = (sender: Sender): void => {
      if (sender.ended) return
      sender.ended = true
      sender.stopTimer()
      if (senders.get(sender.peer) === sender) senders.delete(sender.peer)
      const stream = sender.stream
      if (stream !== undefined) void stream.close().catch(die)
    }

    /** Reads and sends chunks while the window has room. */
    const pump = async (sender: Sender): Promise<void> => {
      if (sender.pumping) return
      sender.pumping = true
      try {
        while (!sender.ended && !sender.window.full && !sender.window.ended) {
          if (!leading(sender.term)) return endSender(sender)
          const stream = sender.stream!
          const offset = sender.window.sent
          const skip = sender.window.toSkip
          let data: Uint8Array
          try {
            data = await stream.next(skip > 0 ? Math.min(skip, options.chunkBytes) : options.chunkBytes)
          } catch (e) {
            if (sender.ended) return // closed under us: the transfer ended meanwhile
            throw e
          }
          if (sender.ended) return
          if (skip > 0) {
            sender.window.skipped(data.length)
            if (stream.finished && sender.window.toSkip > 0) {
              // It claims more bytes than the whole snapshot: not ours after all. Probe again.
              log("warn", `${sender.peer} confirmed ${sender.window.acked} bytes of a ${sender.window.sent}-byte snapshot; starting over`)
              endSender(sender)
              consensus.snapshotAbandoned(sender.peer)
              return
            }
            continue
          }
          const chunk: SentChunk = { offset, data, done: stream.finished }
          sender.window.sentChunk(chunk)
          sendChunk(sender, chunk)
        }
      } finally {
        sender.pumping = false
      }
    }

    const startSender = (peer: NodeId): void => {
      const status = consensus.status()
      // A sender left from an earlier term of ours is stale (its timer would end it without telling the core).
      const stale = senders.get(peer)
      if (stale !== undefined && stale.term !== status.term) endSender(stale)
      if (stopped || status.role !== "leader" || senders.has(peer)) return
      const sender: Sender = {
        peer,
        term: status.term,
        stream: undefined,
        window: new SendWindow(options.maxInflight),
        pumping: false,
        progressAt: 0,
        stopTimer: () => undefined,
        ended: false
      }
      senders.set(peer, sender)
      let lastAcked = -1
      sender.stopTimer = timers.every(
        options.resendMs,
        supervisor.guard(actor, () => {
          if (sender.ended || sender.stream === undefined) return
          if (!leading(sender.term)) return endSender(sender)
          if (sender.window.acked !== lastAcked) {
            lastAcked = sender.window.acked
            return
          }
          const again = sender.window.silence(options.maxSilences)
          if (again === "give_up") {
            log("warn", `snapshot to ${peer} gave up: no answer`)
            endSender(sender)
            consensus.snapshotAbandoned(peer)
            return
          }
          for (const c of again) sendChunk(sender, c)
        })
      )
      applier
        .stateView()
        .then(async (view) => {
          const term = consensus.termAt(view.index)
          if (sender.ended || term === undefined) {
            await view.snapshot.close()
            if (!sender.ended) {
              endSender(sender)
              consensus.snapshotAbandoned(peer)
            }
            return
          }
          sender.stream = new SnapshotStream(view, await headerFor(view.index, term, view))
          if (sender.ended) return void (await sender.stream.close())
          log("info", `sending a snapshot at index ${view.index} term ${term} to ${peer}`)
          await pump(sender)
        })
        .catch(die)
    }

    const onReply = (m: InstallSnapshotReply): void => {
      const sender = senders.get(m.from)
      if (sender === undefined || sender.stream === undefined || m.lastIncludedIndex !== sender.stream.header.index) return
      if (m.success) {
        log("info", `${m.from} installed the snapshot at index ${m.lastIncludedIndex}`)
        return endSender(sender)
      }
      const verdict = sender.window.reply(m.offset)
      if (verdict === "restart") {
        endSender(sender)
        startSender(m.from)
        return
      }
      for (const c of verdict.resend) sendChunk(sender, c)
      pump(sender).catch(die)
    }

    // ---- follower: receiving and installing ----

    let session: Receiving | undefined
    let receiving: Promise<void> = Promise.resolve()

    const answer = (m: InstallSnapshot, offset: number, success: boolean): void => {
      consensus.send({ type: "snapshot_resp", from: options.id, to: m.from, term: m.term, lastIncludedIndex: m.lastIncludedIndex, offset, success })
    }

    const abandon = async (): Promise<void> => {
      const s = session
      session = undefined
      if (s !== undefined) await dropLevels(storage.levelsOf(s.generation))
    }

    const install = async (s: Receiving, m: InstallSnapshot): Promise<void> => {
      const header = s.decoder.header!
      if (header.index !== m.lastIncludedIndex || header.term !== m.lastIncludedTerm) {
        throw new SnapshotFormatError("corrupt", `the snapshot's header says index ${header.index} term ${header.term}, its chunks ${m.lastIncludedIndex}/${m.lastIncludedTerm}`)
      }
      emit({ phase: "restore", status: "started" })
      const meta: SnapshotMeta = {
        index: header.index,
        term: header.term,
        members: header.members,
        format: snapshotFormatVersion,
        checksum: s.decoder.digest,
        size: s.received,
        time: timers.now()
      }
      const ops: StoredOp[] = [
        { type: "put", sublevel: storage.meta, key: generationKey, value: encodeJsonValue(s.generation) },
        { type: "put", sublevel: storage.meta, key: metaKeys.base, value: encodeJsonValue({ index: header.index, term: header.term }) },
        { type: "put", sublevel: storage.meta, key: metaKeys.snapshot, value: encodeJsonValue(meta) }
      ]
      for (const key of stateMetaKeys) {
        const value = s.meta.get(key)
        ops.push(value === undefined ? { type: "del", sublevel: storage.meta, key } : { type: "put", sublevel: storage.meta, key, value })
      }
      const carried = s.meta.get(metaKeys.membership)
      const membership = carried === undefined ? seedMembership(header.members) : decodeMembership(carried)
      const previous = storage.generation
      const installed = await oneAtATime(
        () => new Promise<boolean>((resolve) => consensus.install({ index: header.index, term: header.term, leaderTerm: m.term, generation: s.generation, ops, membership }, resolve))
      )
      session = undefined
      if (!installed) {
        emit({ phase: "restore", status: "failed" })
        await dropLevels(storage.levelsOf(s.generation))
        return
      }
      last = meta
      bytesSince = 0
      emit({ phase: "restore", status: "succeeded", seconds: (timers.now() - s.started) / 1000, bytes: s.received })
      log("info", `installed a snapshot from ${m.from} at index ${header.index} term ${header.term} (${s.received} bytes)`)
      answer(m, s.received, true)
      dropLater(() => dropLevels(storage.levelsOf(previous)))
      dropLater(() => storage.drop(storage.log, { lte: encodeUint64Key(header.index) }))
    }

    const receive = async (m: InstallSnapshot): Promise<void> => {
      if (stopped) return
      const verdict = judgeChunk(session, m)
      if (verdict === "resync") return answer(m, expectedOffset(session, m), false)
      if (verdict === "start") {
        await abandon()
        const generation = storage.generation + 1
        await dropLevels(storage.levelsOf(generation))
        session = { index: m.lastIncludedIndex, lastTerm: m.lastIncludedTerm, received: 0, generation, decoder: new SnapshotDecoder(), meta: new Map(), started: timers.now() }
        log("info", `receiving a snapshot at index ${m.lastIncludedIndex} term ${m.lastIncludedTerm} from ${m.from}`)
      }
      const s = session!
      try {
        s.decoder.push(m.data)
        if (m.done) s.decoder.end()
      } catch (e) {
        if (!(e instanceof SnapshotFormatError)) throw e
        log("warn", `snapshot from ${m.from} refused (${e.code}): ${e.message}; starting over`)
        await abandon()
        return answer(m, 0, false)
      }
      const levels = storage.levelsOf(s.generation)
      const ops: StoredOp[] = []
      for (const r of s.decoder.takeRecords()) {
        if (r.section === "meta") s.meta.set(r.key, r.value)
        else ops.push({ type: "put", sublevel: levels[r.section], key: r.key, value: r.value })
      }
      if (ops.length > 0) await storage.write(ops, false)
      if (session !== s) return
      s.received += m.data.length
      if (!m.done) return answer(m, s.received, false)
      try {
        await install(s, m)
      } catch (e) {
        if (!(e instanceof SnapshotFormatError)) throw e
        log("warn", `snapshot from ${m.from} refused (${e.code}): ${e.message}; starting over`)
        await abandon()
        answer(m, 0, false)
      }
    }

    consensus.onSnapshotTraffic({
      wanted: startSender,
      reply: onReply,
      chunk: (m) => {
        receiving = receiving.then(() => receive(m)).catch(die)
      }
    })

    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        stopped = true
        for (const sender of [...senders.values()]) endSender(sender)
        await receiving
        await exclusive
        await dropping
      })
    )

    return {
      takeNow,
      openStream,
      status: () => ({
        last,
        sending: [...senders.keys()],
        receiving: session === undefined ? null : { index: session.index, received: session.received }
      }),
      onEvent: (listener) => {
        listeners.push(listener)
      }
    }
  })
