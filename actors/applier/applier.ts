/**
 * The Applier actor: applies committed entries strictly in order to the state machines (the
 * key-value store and the job queue, sharing one revision and one session table), answers
 * the requests waiting for those entries, wakes reads waiting for that applied index, and
 * writes the changes together with the applied index in one LevelDB batch.
 *
 * Committed entries are applied in a plain loop, in a microtask after they arrive (entries
 * handed over in one turn make one batch); no fiber or mailbox per batch. The applied state is
 * written lazily: changes from many drains pile up in one set of maps (a key
 * written a hundred times is written to LevelDB once) and reach the disk every
 * `flushEveryMs` or `flushEntries` entries, and when the node stops. Entries are applied once
 * committed (durable on a majority), which may be before this node's own copy is on its disk;
 * so a write of the applied state waits until the local log holds the applied index
 * (`whenStored`), and a node that crashes re-applies its log from the applied index it last
 * wrote, never from beyond its log.
 */
import { Deferred, Effect } from "effect"
import type { JobEvent, Token } from "../../protocol/client.ts"
import { archioError, type ArchioError } from "../../protocol/errors.ts"
import { EntryKind, type Entry } from "../../protocol/raft.ts"
import { decodeJsonValue, encodeJsonValue, metaKeys, writeBatch, type AnyLevel, type BatchOp, type Sublevel } from "../raft/storage.ts"
import { invariant } from "../raft/invariant.ts"
import { JobQueue, newJobChanges, type JobChanges, type JobCommand, type JobCounters, type JobRecord } from "./jobQueue.ts"
import { KvState, newChanges, type KeyRecord, type KvChanges, type KvCommand, type KvEvent, type SessionRecord, type CommandResult } from "./kvState.ts"

export interface ApplierStores {
  readonly db: AnyLevel
  readonly meta: Sublevel<string, Uint8Array>
  readonly kv: Sublevel<string, Uint8Array>
  readonly sessions: Sublevel<string, Uint8Array>
  readonly jobs: Sublevel<string, Uint8Array>
}

/** A job command as logged: enqueues may carry an idempotency token like key-value writes. */
export type LoggedJobCommand = JobCommand & { readonly token?: Token }

/** Every command the replicated log carries. */
export type Command = KvCommand | LoggedJobCommand

type Changes = KvChanges & JobChanges

/** How often, and after how many applied entries, the Applier writes its state. */
export const flushEveryMs = 100
export const flushEntries = 10_000

const isJobCommand = (cmd: Command): cmd is LoggedJobCommand => cmd.op.startsWith("jobs.")

/** The answer to one applied command, or why the waiting write did not take effect. */
export type ApplyOutcome = CommandResult | ArchioError

type Waiter = { readonly term: number; readonly done: (outcome: ApplyOutcome) => void }
type ReadWaiter = { readonly index: number; readonly done: () => void }

const metaRevision = "kv.revision"
const metaTime = "kv.time"
const metaJobCounters = "jobs.counters"

const untext = new TextDecoder()

export const encodeCommand = (cmd: Command): Uint8Array => encodeJsonValue(cmd)

export class Applier {
  readonly state = new KvState()
  readonly jobs = new JobQueue(this.state)
  applied = 0
  private readonly waiters = new Map<number, Waiter>()
  private readReady: ReadWaiter[] = []
  /** Committed entries handed over and not applied yet. */
  private inbox: Array<ReadonlyArray<Entry>> = []
  private drainQueued = false
  /** Applied changes not written yet, and how many entries they cover. */
  private unsaved: Changes = { ...newChanges(), ...newJobChanges() }
  private unsavedEntries = 0
  /** The write in progress; writes never overlap, so they land in order. */
  private flushing: Promise<void> | undefined
  private flushAgain = false
  private stopped = false
  /** Set by a failure: what the failed drain half-applied must never reach the disk. */
  private failed = false
  /** Completed with the first failure (a broken invariant, a failed write); `run` reports it. */
  private readonly failure = Effect.runSync(Deferred.make<never>())
  /**
   * Calls `done(true)` once the local log holds every entry up to `index` on disk, or
   * `done(false)` if it never will (the consensus actor stopped). The node wires this to its
   * consensus actor; alone (in tests) an Applier writes at once.
   */
  whenStored: (index: number, done: (stored: boolean) => void) => void = (_index, done) => done(true)
  /** Called with each applied batch's change events (the Gateway publishes them). */
  onEvents: (events: ReadonlyArray<KvEvent>) => void = () => {}
  /** Called with each applied batch's job transitions (the Gateway publishes, the JobWorker wakes). */
  onJobEvents: (events: ReadonlyArray<JobEvent>) => void = () => {}

  constructor(private readonly stores: ApplierStores) {}

  /** Loads the applied state written by earlier runs. */
  load = Effect.promise(async () => {
    const records: Array<[string, KeyRecord]> = []
    for await (const [k, v] of this.stores.kv.iterator()) records.push([k, decodeJsonValue<KeyRecord>(v)])
    const sessions: Array<[string, SessionRecord]> = []
    for await (const [k, v] of this.stores.sessions.iterator()) sessions.push([k, decodeJsonValue<SessionRecord>(v)])
    const read = async (key: string): Promise<number> => {
      const raw = await this.stores.meta.get(key)
      return raw === undefined ? 0 : decodeJsonValue<number>(raw)
    }
    const time = await read(metaTime)
    this.state.restore(records, sessions, await read(metaRevision), time)
    const jobs: JobRecord[] = []
    for await (const v of this.stores.jobs.values()) jobs.push(decodeJsonValue<JobRecord>(v))
    const counters = await this.stores.meta.get(metaJobCounters)
    this.jobs.restore(jobs, counters === undefined ? undefined : decodeJsonValue<JobCounters>(counters), time)
    this.applied = await read(metaKeys.applied)
  })

  /** Hands committed entries over (from the consensus actor); they are applied this turn. */
  offer(entries: ReadonlyArray<Entry>): void {
    this.inbox.push(entries)
    if (this.drainQueued) return
    this.drainQueued = true
    queueMicrotask(this.drain)
  }

  /** Calls `done` with the outcome once the entry at (index, term) is applied, or overwritten. */
  waitFor(index: number, term: number, done: (outcome: ApplyOutcome) => void): void {
    invariant(index > this.applied, "a write is awaited before it is applied")
    this.waiters.set(index, { term, done })
  }

  /** Calls `done` once everything up to `index` is applied (ReadIndex reads). */
  whenApplied(index: number, done: () => void): void {
    if (this.applied >= index) done()
    else this.readReady.push({ index, done })
  }

  /**
   * Runs until interrupted (then writes what is still unsaved) or until the Applier fails: a
   * timer writes the applied state every `flushEveryMs`.
   */
  run: Effect.Effect<never> = Effect.acquireUseRelease(
    Effect.sync(() => setInterval(() => this.flush(), flushEveryMs)),
    () => Deferred.await(this.failure),
    (timer) =>
      Effect.promise(async () => {
        clearInterval(timer)
        this.stopped = true
        while (this.flushing !== undefined) await this.flushing
        if (!this.failed && this.unsavedEntries > 0) await this.write(this.takeUnsaved())
      })
  )

  private readonly drain = (): void => {
    this.drainQueued = false
    if (this.stopped) return
    const batches = this.inbox
    this.inbox = []
    try {
      // Each drain's events are its own; the maps of records to write keep piling up.
      const u = this.unsaved
      const changes: Changes = { puts: u.puts, dels: u.dels, sessions: u.sessions, jobs: u.jobs, events: [], jobEvents: [] }
      const outcomes: Array<[Waiter, ApplyOutcome]> = []
      for (const entries of batches) for (const e of entries) this.applyEntry(e, changes, outcomes)
      // Answer before the write: the entries are committed (durable on a majority).
      for (const [w, outcome] of outcomes) w.done(outcome)
      this.wakeReads()
      if (changes.events.length > 0) this.onEvents(changes.events)
      if (changes.jobEvents.length > 0) this.onJobEvents(changes.jobEvents)
    } catch (cause) {
      this.die(cause)
      return
    }
    if (this.unsavedEntries >= flushEntries) this.flush()
  }

  private die(cause: unknown): void {
    if (this.stopped) return
    this.stopped = true
    this.failed = true
    Deferred.unsafeDone(this.failure, Effect.die(cause))
  }

  /** The batch that writes what was applied so far, with the applied index; starts afresh. */
  private takeUnsaved(): { readonly ops: BatchOp[]; readonly index: number } {
    const changes = this.unsaved
    this.unsaved = { ...newChanges(), ...newJobChanges() }
    this.unsavedEntries = 0
    return { ops: this.opsFor(changes), index: this.applied }
  }

  /** Writes a batch once the log holds its applied index; skipped if it never will. */
  private write(batch: { readonly ops: BatchOp[]; readonly index: number }): Promise<void> {
    return new Promise<boolean>((resolve) => this.whenStored(batch.index, resolve)).then((stored) =>
      // No fsync: the log is durable, and a lost tail of applied state is re-applied from it.
      stored ? writeBatch(this.stores.db, batch.ops, false) : undefined
    )
  }

  /** Starts writing the unsaved changes, or asks for another write after the one in progress. */
  private flush(): void {
    if (this.stopped || this.unsavedEntries === 0) return
    if (this.flushing !== undefined) {
      this.flushAgain = true
      return
    }
    this.flushing = this.write(this.takeUnsaved()).then(
      () => {
        this.flushing = undefined
        if (this.flushAgain) {
          this.flushAgain = false
          this.flush()
        }
      },
      (cause: unknown) => {
        this.flushing = undefined
        this.die(cause)
      }
    )
  }

  private applyEntry(e: Entry, changes: Changes, outcomes: Array<[Waiter, ApplyOutcome]>): void {
    invariant(e.index === this.applied + 1, `entries apply in order (${e.index} after ${this.applied})`)
    this.applied = e.index
    this.unsavedEntries++
    // Leader time drives expiry identically on every node, whatever the batching.
    this.state.advanceTime(e.time, changes)
    this.jobs.advanceTime(e.time, changes)
    let result: CommandResult | undefined
    if (e.kind === EntryKind.Command) {
      const cmd = decodeCommand(e.data)
      result = isJobCommand(cmd) ? this.state.withSession(cmd.token, changes, () => this.jobs.apply(cmd, changes)) : this.state.apply(cmd, changes)
    }
    const w = this.waiters.get(e.index)
    if (w === undefined) return
    this.waiters.delete(e.index)
    if (w.term !== e.term) {
      outcomes.push([w, archioError("unavailable", "leadership changed before the write committed; it was not applied, retry it")])
    } else {
      outcomes.push([w, result ?? archioError("internal", "the awaited entry held no command")])
    }
  }

  private opsFor(changes: Changes): BatchOp[] {
    const ops: BatchOp[] = []
    const { kv, sessions, meta, jobs } = this.stores
    for (const [k, r] of changes.puts) ops.push({ type: "put", sublevel: kv, key: k, value: encodeJsonValue(r) })
    for (const k of changes.dels) ops.push({ type: "del", sublevel: kv, key: k })
    for (const [c, s] of changes.sessions) {
      ops.push(s === null ? { type: "del", sublevel: sessions, key: c } : { type: "put", sublevel: sessions, key: c, value: encodeJsonValue(s) })
    }
    for (const [id, j] of changes.jobs) {
      ops.push(j === null ? { type: "del", sublevel: jobs, key: id } : { type: "put", sublevel: jobs, key: id, value: encodeJsonValue(j) })
    }
    if (changes.jobs.size > 0) ops.push({ type: "put", sublevel: meta, key: metaJobCounters, value: encodeJsonValue(this.jobs.counters()) })
    ops.push({ type: "put", sublevel: meta, key: metaKeys.applied, value: encodeJsonValue(this.applied) })
    ops.push({ type: "put", sublevel: meta, key: metaRevision, value: encodeJsonValue(this.state.revision) })
    ops.push({ type: "put", sublevel: meta, key: metaTime, value: encodeJsonValue(this.state.time) })
    return ops
  }

  private wakeReads(): void {
    if (this.readReady.length === 0) return
    const still: ReadWaiter[] = []
    for (const r of this.readReady) {
      if (r.index <= this.applied) r.done()
      else still.push(r)
    }
    this.readReady = still
  }
}

const decodeCommand = (data: Uint8Array): Command => JSON.parse(untext.decode(data)) as Command
