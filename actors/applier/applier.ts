/**
 * The Applier actor: applies committed entries strictly in order to the state machines (the
 * key-value store and the job queue, sharing one revision and one session table), answers
 * the requests waiting for those entries, wakes reads waiting for that applied index, tells its
 * listeners what each batch applied, and writes the changes together with the applied index in
 * one LevelDB batch.
 *
 * Committed entries are applied in a plain loop, in a microtask after they arrive (entries
 * handed over in one turn make one batch); no fiber or mailbox per batch. The applied state is
 * written lazily: changes from many drains pile up in one set of maps (a key written a hundred
 * times is written to LevelDB once) and reach the disk every `flushEveryMs` or `flushEntries`
 * entries, and when the node stops. Entries are applied once committed (durable on a
 * majority), which may be before this node's own copy is on its disk; so a write of the
 * applied state waits until the consensus actor says the local log holds the applied index
 * (`logStored`), and a node that crashes re-applies its log from the applied index it last
 * wrote, never from beyond its log.
 */
import { Effect, type Scope } from "effect"
import { archioError, type ArchioError } from "../../protocol/errors.ts"
import { decodeMembership, encodeMembership, type Membership } from "../../protocol/membership.ts"
import { EntryKind, type Entry } from "../../protocol/raft.ts"
import { decodeJsonValue, encodeJsonValue, metaKeys } from "../raft/storage.ts"
import { invariant } from "../raft/invariant.ts"
import { Storage, type DbSnapshot, type StateLevels, type StorageShape, type StoredOp } from "../services/storage.ts"
import { Supervisor } from "../services/supervisor.ts"
import { Timers } from "../services/timers.ts"
import type { JobEvent, Token } from "../../protocol/client.ts"
import { JobQueue, newJobChanges, type JobChanges, type JobCommand, type JobCounters, type JobRecord } from "./jobQueue.ts"
import { KvState, newChanges, type CommandResult, type KeyRecord, type KvChanges, type KvCommand, type KvEvent, type SessionRecord } from "./kvState.ts"

/** A job command as logged: enqueues may carry an idempotency token like key-value writes. */
export type LoggedJobCommand = JobCommand & { readonly token?: Token }

/** Every command the replicated log carries. */
export type Command = KvCommand | LoggedJobCommand

export type Changes = KvChanges & JobChanges

/** How often, and after how many applied entries, the Applier writes its state. */
export const flushEveryMs = 100
export const flushEntries = 10_000

const isJobCommand = (cmd: Command): cmd is LoggedJobCommand => cmd.op.startsWith("jobs.")

/** The answer to one applied command, or why the waiting write did not take effect. */
/** What a configuration entry's waiter gets once it is applied: the configuration now in effect. */
export interface MembershipApplied {
  readonly ok: true
  readonly membership: Membership
}

export type ApplyOutcome = CommandResult | MembershipApplied | ArchioError

/** What one drain applied, for the Applier's listeners (events, the JobWorker, the simulator). */
export interface AppliedBatch {
  /** The entries applied, in order, as they were handed over. */
  readonly entries: ReadonlyArray<ReadonlyArray<Entry>>
  readonly kvEvents: ReadonlyArray<KvEvent>
  readonly jobEvents: ReadonlyArray<JobEvent>
}

export interface Applier {
  /** Highest index applied. */
  readonly applied: number
  readonly kv: KvState
  readonly jobs: JobQueue
  /** Committed entries from the consensus actor; they are applied this turn. */
  offer(entries: ReadonlyArray<Entry>): void
  /** The consensus actor's word on how far the local log is on disk (see ConsensusOutputs.stored). */
  logStored(index: number): void
  /** Calls `done` with the outcome once the entry at (index, term) is applied, or overwritten. */
  waitFor(index: number, term: number, done: (outcome: ApplyOutcome) => void): void
  /** Calls `done` once everything up to `index` is applied (ReadIndex reads). */
  whenApplied(index: number, done: () => void): void
  /** Calls `listener` after every applied batch, for as long as the node runs. */
  onApplied(listener: (batch: AppliedBatch) => void): void
  /**
   * Writes what was applied and takes a LevelDB snapshot of the state as written: a
   * point-in-time view of the state sublevels and meta at `index`, read while applying goes on.
   */
  stateView(): Promise<StateView>
  /**
   * An install is about to replace the state: stops applying and writing, drops what was not
   * written (the snapshot supersedes it), fails awaited writes, and resolves once no write of
   * the old state is in flight.
   */
  beginInstall(): Promise<void>
  /** The installed state (now the storage's generation) at `index` is loaded; applying resumes. */
  finishInstall(index: number): Promise<void>
  /** Calls `listener` each time an installed snapshot became the state (before anything is applied on it). */
  onInstalled(listener: (index: number) => void): void
}

/** A consistent view of the applied state on disk, for snapshots and backups. */
export interface StateView {
  readonly index: number
  readonly levels: StateLevels
  readonly meta: StorageShape["meta"]
  /** The LevelDB snapshot every read of the view must use; `close` it when done. */
  readonly snapshot: DbSnapshot
}

type Waiter = { readonly term: number; readonly done: (outcome: ApplyOutcome) => void }
type ReadWaiter = { readonly index: number; readonly done: () => void }

const metaRevision = "kv.revision"
const metaTime = "kv.time"
const metaJobCounters = "jobs.counters"

const untext = new TextDecoder()

export const encodeCommand = (cmd: Command): Uint8Array => encodeJsonValue(cmd)
const decodeCommand = (data: Uint8Array): Command => JSON.parse(untext.decode(data)) as Command

const actor = "applier"

/**
 * One committed entry applied to the state machines: the step every replica takes, and the
 * simulator's reference replica too.
 */
export const applyToState = (kv: KvState, jobs: JobQueue, e: Entry, changes: Changes): CommandResult | undefined => {
  // Leader time drives expiry identically on every node, whatever the batching.
  kv.advanceTime(e.time, changes)
  jobs.advanceTime(e.time, changes)
  if (e.kind !== EntryKind.Command) return undefined
  const cmd = decodeCommand(e.data)
  return isJobCommand(cmd) ? kv.withSession(cmd.token, changes, () => jobs.apply(cmd, changes)) : kv.apply(cmd, changes)
}

/** Fresh change maps for `applyToState`. */
export const newStateChanges = (): Changes => ({ ...newChanges(), ...newJobChanges() })

/** Meta keys that belong to the applied state (they travel in snapshots with the sublevels). */
export const stateMetaKeys = [metaKeys.applied, metaRevision, metaTime, metaJobCounters, metaKeys.membership] as const

/** Records read per step while loading: big enough to be quick, small enough not to stall. */
const loadBatch = 1000

/** Every entry of a sublevel, read in batches (a million keys load without one long block). */
const readAll = async (level: StorageShape["kv"], each: (key: string, value: Uint8Array) => void): Promise<void> => {
  const it = level.iterator()
  try {
    for (;;) {
      const batch = await it.nextv(loadBatch)
      if (batch.length === 0) return
      for (const [k, v] of batch) each(k, v)
    }
  } finally {
    await it.close()
  }
}

/** The applied state written by earlier runs (also what tools and the simulator read back). */
export const loadState = async (storage: Pick<StorageShape, "kv" | "sessions" | "jobs" | "meta">): Promise<{ kv: KvState; jobs: JobQueue; applied: number }> => {
  const kv = new KvState()
  const jobs = new JobQueue(kv)
  const read = async (key: string): Promise<number> => {
    const raw = await storage.meta.get(key)
    return raw === undefined ? 0 : decodeJsonValue<number>(raw)
  }
  const time = await read(metaTime)
  const revision = await read(metaRevision)
  // Restored batch by batch: a million keys never block the event loop in one go.
  let records: Array<[string, KeyRecord]> = []
  await readAll(storage.kv, (k, v) => {
    records.push([k, decodeJsonValue<KeyRecord>(v)])
    if (records.length < loadBatch) return
    kv.restore(records, [], revision, time)
    records = []
  })
  const sessions: Array<[string, SessionRecord]> = []
  await readAll(storage.sessions, (k, v) => sessions.push([k, decodeJsonValue<SessionRecord>(v)]))
  kv.restore(records, sessions, revision, time)
  const jobRecords: JobRecord[] = []
  await readAll(storage.jobs, (_k, v) => jobRecords.push(decodeJsonValue<JobRecord>(v)))
  const counters = await storage.meta.get(metaJobCounters)
  jobs.restore(jobRecords, counters === undefined ? undefined : decodeJsonValue<JobCounters>(counters), time)
  return { kv, jobs, applied: await read(metaKeys.applied) }
}

/**
 * Loads the applied state and starts applying; when the scope closes, writes what is unsaved
 * (as far as the local log holds it).
 */
export const make: Effect.Effect<Applier, never, Storage | Timers | Supervisor | Scope.Scope> = Effect.gen(function* () {
  const storage = yield* Storage
  const timers = yield* Timers
  const supervisor = yield* Supervisor
  const loaded = yield* Effect.promise(() => loadState(storage))
  let { kv, jobs } = loaded
  let applied = loaded.applied
  /** The applied index of the state on disk (as of the last write that finished). */
  let savedIndex = applied
  /** Between beginInstall and finishInstall: nothing is applied or written. */
  let installing = false
  /** Installs begun: a load finished after a newer install began is dropped. */
  let installs = 0
  /** Called after every write of the state finishes (stateView waits on them). */
  let afterWrite: Array<() => void> = []

  const waiters = new Map<number, Waiter>()
  let readReady: ReadWaiter[] = []
  const listeners: Array<(batch: AppliedBatch) => void> = []
  const installListeners: Array<(index: number) => void> = []
  /** Committed entries handed over and not applied yet. */
  let inbox: Array<ReadonlyArray<Entry>> = []
  let drainQueued = false
  /** Applied changes not written yet, and how many entries they cover. */
  let unsaved: Changes = newStateChanges()
  let unsavedEntries = 0
  /** A configuration applied since the last write took the unsaved changes. */
  let unsavedMembership: Membership | undefined
  /** How far the local log is on disk (the consensus actor says). */
  let logStoredUpTo = 0
  /** Taken from `unsaved`, waiting until the local log holds its applied index. */
  let waitingWrite: { readonly ops: StoredOp[]; readonly index: number } | undefined
  /** The write in progress; writes never overlap, so they land in order. */
  let writing: Promise<void> | undefined
  let flushAgain = false
  let stopped = false

  const die = (cause: unknown): void => {
    if (stopped) return
    // What the failed drain half-applied must never reach the disk.
    stopped = true
    supervisor.fail(actor, cause)
  }

  const opsFor = (changes: Changes): StoredOp[] => {
    const ops: StoredOp[] = []
    for (const [k, r] of changes.puts) ops.push({ type: "put", sublevel: storage.kv, key: k, value: encodeJsonValue(r) })
    for (const k of changes.dels) ops.push({ type: "del", sublevel: storage.kv, key: k })
    for (const [c, s] of changes.sessions) {
      ops.push(s === null ? { type: "del", sublevel: storage.sessions, key: c } : { type: "put", sublevel: storage.sessions, key: c, value: encodeJsonValue(s) })
    }
    for (const [id, j] of changes.jobs) {
      ops.push(j === null ? { type: "del", sublevel: storage.jobs, key: id } : { type: "put", sublevel: storage.jobs, key: id, value: encodeJsonValue(j) })
    }
    if (changes.jobs.size > 0) ops.push({ type: "put", sublevel: storage.meta, key: metaJobCounters, value: encodeJsonValue(jobs.counters()) })
    ops.push({ type: "put", sublevel: storage.meta, key: metaKeys.applied, value: encodeJsonValue(applied) })
    ops.push({ type: "put", sublevel: storage.meta, key: metaRevision, value: encodeJsonValue(kv.revision) })
    ops.push({ type: "put", sublevel: storage.meta, key: metaTime, value: encodeJsonValue(kv.time) })
    if (unsavedMembership !== undefined) {
      ops.push({ type: "put", sublevel: storage.meta, key: metaKeys.membership, value: encodeMembership(unsavedMembership) })
      unsavedMembership = undefined
    }
    return ops
  }

  /** The batch that writes what was applied so far, with the applied index; starts afresh. */
  const takeUnsaved = (): { readonly ops: StoredOp[]; readonly index: number } => {
    const changes = unsaved
    unsaved = newStateChanges()
    unsavedEntries = 0
    return { ops: opsFor(changes), index: applied }
  }

  /** Writes the waiting batch once the log holds its applied index. */
  const writeWhenStored = (): void => {
    const w = waitingWrite
    if (w === undefined || writing !== undefined || w.index > logStoredUpTo || stopped || installing) return
    waitingWrite = undefined
    // No fsync: the log is durable, and a lost tail of applied state is re-applied from it.
    writing = storage.write(w.ops, false).then(
      () => {
        writing = undefined
        savedIndex = w.index
        const waiting = afterWrite
        afterWrite = []
        for (const f of waiting) f()
        if (flushAgain) {
          flushAgain = false
          flush()
        }
      },
      (cause: unknown) => {
        writing = undefined
        const waiting = afterWrite
        afterWrite = []
        for (const f of waiting) f()
        die(cause)
      }
    )
  }

  /** Takes the unsaved changes for writing, or asks for another write after the one pending. */
  const flush = (): void => {
    if (stopped || installing || unsavedEntries === 0) return
    if (writing !== undefined || waitingWrite !== undefined) {
      flushAgain = true
      return
    }
    waitingWrite = takeUnsaved()
    writeWhenStored()
  }

  const applyEntry = (e: Entry, changes: Changes, outcomes: Array<[Waiter, ApplyOutcome]>): void => {
    invariant(e.index === applied + 1, `entries apply in order (${e.index} after ${applied})`)
    applied = e.index
    unsavedEntries++
    const result = applyToState(kv, jobs, e, changes)
    const membership = e.kind === EntryKind.Config ? decodeMembership(e.data) : undefined
    if (membership !== undefined) unsavedMembership = membership
    const w = waiters.get(e.index)
    if (w === undefined) return
    waiters.delete(e.index)
    if (w.term !== e.term) {
      outcomes.push([w, archioError("unavailable", "leadership changed before the write committed; it was not applied, retry it")])
    } else {
      outcomes.push([w, result ?? (membership !== undefined ? { ok: true, membership } : archioError("internal", "the awaited entry held no command"))])
    }
  }

  const wakeReads = (): void => {
    if (readReady.length === 0) return
    const still: ReadWaiter[] = []
    for (const r of readReady) {
      if (r.index <= applied) r.done()
      else still.push(r)
    }
    readReady = still
  }

  const drain = (): void => {
    drainQueued = false
    if (stopped || supervisor.failed || installing) return
    // Entries an installed snapshot already holds are skipped.
    const batches: Array<ReadonlyArray<Entry>> = []
    for (const entries of inbox) {
      const last = entries[entries.length - 1]
      if (last === undefined || last.index <= applied) continue
      batches.push(entries[0]!.index > applied ? entries : entries.filter((e) => e.index > applied))
    }
    inbox = []
    try {
      // Each drain's events are its own; the maps of records to write keep piling up.
      const u = unsaved
      const changes: Changes = { puts: u.puts, dels: u.dels, sessions: u.sessions, jobs: u.jobs, events: [], jobEvents: [] }
      const outcomes: Array<[Waiter, ApplyOutcome]> = []
      for (const entries of batches) for (const e of entries) applyEntry(e, changes, outcomes)
      // Answer before the write: the entries are committed (durable on a majority).
      for (const [w, outcome] of outcomes) w.done(outcome)
      wakeReads()
      const batch: AppliedBatch = { entries: batches, kvEvents: changes.events, jobEvents: changes.jobEvents }
      for (const listener of listeners) listener(batch)
    } catch (cause) {
      die(cause)
      return
    }
    if (unsavedEntries >= flushEntries) flush()
  }

  const stopFlushing = timers.every(flushEveryMs, supervisor.guard(actor, flush))
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      stopFlushing()
      if (stopped) return
      stopped = true
      while (writing !== undefined) await writing
      // Written only as far as the local log holds it; the rest is re-applied from the log.
      const pending = waitingWrite
      waitingWrite = undefined
      if (pending !== undefined && pending.index <= logStoredUpTo) await storage.write(pending.ops, false)
      if (pending === undefined || pending.index <= logStoredUpTo) {
        if (unsavedEntries > 0 && applied <= logStoredUpTo) await storage.write(takeUnsaved().ops, false)
      }
    })
  )

  const queueDrain = (): void => {
    if (drainQueued) return
    drainQueued = true
    queueMicrotask(drain)
  }

  /** Resolves after the write in flight (or the waiting one, once written) finishes. */
  const nextWrite = (): Promise<void> => new Promise((resolve) => afterWrite.push(resolve))

  const stateView = async (): Promise<StateView> => {
    for (;;) {
      if (stopped) throw new Error("the Applier stopped")
      if (!installing) flush()
      if (writing === undefined && waitingWrite === undefined && !installing) {
        // Nothing in flight: the state on disk is exactly what was applied up to savedIndex.
        const snapshot = storage.db.snapshot()
        return { index: savedIndex, levels: storage.levelsOf(storage.generation), meta: storage.meta, snapshot }
      }
      await nextWrite()
    }
  }

  const applier: Applier = {
    get applied() {
      return applied
    },
    get kv() {
      return kv
    },
    get jobs() {
      return jobs
    },
    stateView,
    beginInstall: async () => {
      installing = true
      installs++
      unsaved = newStateChanges()
      unsavedEntries = 0
      waitingWrite = undefined
      flushAgain = false
      const failed = [...waiters.values()]
      waiters.clear()
      for (const w of failed) w.done(archioError("unavailable", "this node is installing a snapshot from the leader; retry the write"))
      while (writing !== undefined) await writing.catch(() => undefined)
    },
    finishInstall: async (index) => {
      const install = installs
      const state = await loadState(storage)
      // A newer install began while this one loaded (its generation may be gone already): that one's load counts.
      if (install !== installs) return
      invariant(state.applied === index, `the installed state is at the snapshot's index (${state.applied}, ${index})`)
      kv = state.kv
      jobs = state.jobs
      applied = index
      savedIndex = index
      installing = false
      const waiting = afterWrite
      afterWrite = []
      for (const f of waiting) f()
      for (const listener of installListeners) listener(index)
      wakeReads()
      queueDrain()
    },
    offer: (entries) => {
      inbox.push(entries)
      queueDrain()
    },
    logStored: (index) => {
      logStoredUpTo = index
      writeWhenStored()
    },
    waitFor: (index, term, done) => {
      invariant(index > applied, "a write is awaited before it is applied")
      waiters.set(index, { term, done })
    },
    whenApplied: (index, done) => {
      if (applied >= index) done()
      else readReady.push({ index, done })
    },
    onApplied: (listener) => {
      listeners.push(listener)
    },
    onInstalled: (listener) => {
      installListeners.push(listener)
    }
  }
  return applier
})
