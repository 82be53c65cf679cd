/**
 * A small synchronous in-memory cluster for golden-style tests of the consensus core (in the
 * spirit of etcd-io/raft's `network` in raft_test.go). No LevelDB, no timers, no Math.random:
 * every node gets a fixed seed, time is a counter, and messages sit in one FIFO queue that a
 * test delivers whole, one by one, filtered, duplicated or reordered.
 *
 * Each node's Ready is handled exactly as core.ts demands: `sendFirst` is queued, the durable
 * part is "persisted" into an in-memory disk (kept across crashes), `advance` is called, then
 * `messages` are queued and `committed` entries are recorded as applied. Every Ready also runs
 * two safety checks (one leader per term; every node applies the same entry at each index), so
 * each story is a safety test as well.
 */
import { RaftCore, type ProposeResult, type Ready, type Status } from "../../../actors/raft/core.ts"
import type { HardState, RaftConfig, ReadState } from "../../../actors/raft/state.ts"
import { EntryKind, type Entry, type NodeId, type RaftMessage } from "../../../protocol/raft.ts"

export interface Tuning {
  readonly electionTicks: number
  readonly heartbeatTicks: number
  readonly maxInflight: number
  readonly maxAppendEntries: number
  readonly maxAppendBytes: number
}

export const testTuning: Tuning = {
  electionTicks: 10,
  heartbeatTicks: 2,
  maxInflight: 4,
  maxAppendEntries: 8,
  maxAppendBytes: 1024 * 1024
}

/** Milliseconds of "wall time" per tick; the leader stamps entries with it. */
export const tickMs = 10

/** What a node has made durable: exactly what its Readies asked to persist. */
export interface Disk {
  hardState: HardState
  entries: Entry[]
  /** The applied index, written with the state machine (as the Applier does). */
  applied: number
}

export interface SimNode {
  readonly id: NodeId
  core: RaftCore
  up: boolean
  life: number
  readonly disk: Disk
  /** Committed entries handed to this node's state machine, in order, across restarts. */
  readonly applied: Entry[]
  readonly readStates: ReadState[]
  readonly droppedReads: number[]
  readies: number
}

export interface ClusterOptions {
  readonly size: number
  /** The seeded voters (`--peers`); default every node. The others start empty and wait to be added. */
  readonly voters?: ReadonlyArray<NodeId>
  readonly seed?: number
  readonly tuning?: Partial<Tuning>
}

export type MessagePredicate = (m: RaftMessage) => boolean

/** An error from the harness's own safety checks (not from the core). */
export class HarnessSafetyError extends Error {
  override readonly name = "HarnessSafetyError"
}

const enc = new TextEncoder()
const dec = new TextDecoder()

export const command = (text: string): { kind: EntryKind; data: Uint8Array } => ({ kind: EntryKind.Command, data: enc.encode(text) })
export const entryText = (e: Entry): string => (e.kind === EntryKind.Command ? dec.decode(e.data) : e.kind === EntryKind.Noop ? "<noop>" : "<config>")

/** Message predicates for filters and counts. */
export const is = {
  from: (id: NodeId): MessagePredicate => (m) => m.from === id,
  to: (id: NodeId): MessagePredicate => (m) => m.to === id,
  between: (a: NodeId, b: NodeId): MessagePredicate => (m) => (m.from === a && m.to === b) || (m.from === b && m.to === a),
  type: (...types: ReadonlyArray<RaftMessage["type"]>): MessagePredicate => (m) => types.includes(m.type),
  /** AppendEntries that carry at least one entry (not a bare heartbeat). */
  appendWithEntries: (m: RaftMessage): boolean => m.type === "append" && m.entries.length > 0,
  appendReject: (m: RaftMessage): boolean => m.type === "append_resp" && !m.success,
  all:
    (...ps: ReadonlyArray<MessagePredicate>): MessagePredicate =>
    (m) =>
      ps.every((p) => p(m))
}

export class Cluster {
  readonly ids: ReadonlyArray<NodeId>
  readonly nodes = new Map<NodeId, SimNode>()
  readonly tuning: Tuning
  private readonly seed: number
  /** Messages in flight, oldest first. */
  queue: RaftMessage[] = []
  /** Every message any node emitted, in order. */
  readonly sent: RaftMessage[] = []
  /** Every message stepped into a live core, in order. */
  readonly delivered: RaftMessage[] = []
  /** Messages lost to a filter or a crashed receiver. */
  readonly dropped: RaftMessage[] = []
  private filters: MessagePredicate[] = []
  /** When set and true for a Ready, the node crashes after sending `sendFirst`, before persisting. */
  crashBeforePersist: ((id: NodeId, rd: Ready) => boolean) | null = null
  /** Simulated wall time in ms. */
  now = 0
  private readonly leaderOfTerm = new Map<number, NodeId>()
  private readonly appliedAt = new Map<number, { term: number; node: NodeId; text: string }>()

  constructor(options: ClusterOptions) {
    this.ids = Array.from({ length: options.size }, (_, i) => `n${i + 1}`)
    this.voters = options.voters ?? this.ids
    this.tuning = { ...testTuning, ...options.tuning }
    this.seed = options.seed ?? 1
    for (const id of this.ids) {
      const disk: Disk = { hardState: { term: 0, vote: null }, entries: [], applied: 0 }
      const node: SimNode = { id, core: this.build(id, 0, disk), up: true, life: 0, disk, applied: [], readStates: [], droppedReads: [], readies: 0 }
      this.nodes.set(id, node)
    }
  }

  private readonly voters: ReadonlyArray<NodeId>

  private build(id: NodeId, life: number, disk: Disk): RaftCore {
    const config: RaftConfig = {
      id,
      members: this.voters.includes(id) ? this.voters : [],
      ...this.tuning,
      seed: (this.seed * 7919 + Number(id.slice(1)) * 104729 + life * 15485863) | 0
    }
    return new RaftCore(config, {
      hardState: disk.hardState,
      baseIndex: 0,
      baseTerm: 0,
      entries: disk.entries.slice(),
      applied: disk.applied,
      membership: null
    })
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id)
    if (n === undefined) throw new Error(`no node ${id}`)
    return n
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core
  }

  status(id: NodeId): Status {
    return this.core(id).status()
  }

  // ---- Ready handling -------------------------------------------------------------------

  /** Performs every pending Ready of a node, in the order core.ts prescribes. */
  process(id: NodeId): void {
    const node = this.node(id)
    if (!node.up) return
    const core = node.core
    for (let guard = 0; core.hasReady(); guard++) {
      if (guard > 1000) throw new HarnessSafetyError(`${id}: hasReady() stays true after 1000 Readies`)
      const rd = core.ready()
      node.readies++
      for (const m of rd.sendFirst) this.send(m)
      if (this.crashBeforePersist?.(id, rd) === true) {
        // Power lost before the write was durable: the Ready's writes and replies are gone.
        node.up = false
        return
      }
      this.persist(node, rd)
      core.advance(rd)
      for (const m of rd.messages) this.send(m)
      for (const e of rd.committed) this.apply(node, e)
      node.readStates.push(...rd.readStates)
      node.droppedReads.push(...rd.droppedReads)
      this.checkLeader(node)
    }
    this.checkLeader(node)
  }

  private persist(node: SimNode, rd: Ready): void {
    const disk = node.disk
    if (rd.hardState !== null) disk.hardState = rd.hardState
    if (rd.truncateFrom !== null) {
      const from = rd.truncateFrom
      disk.entries = disk.entries.filter((e) => e.index < from)
    }
    const first = rd.entries[0]
    if (first !== undefined) {
      disk.entries = disk.entries.filter((e) => e.index < first.index)
      if (first.index !== disk.entries.length + 1) {
        throw new HarnessSafetyError(`${node.id}: Ready writes entry ${first.index} after ${disk.entries.length}: a hole in the log`)
      }
      disk.entries.push(...rd.entries)
    }
  }

  private apply(node: SimNode, e: Entry): void {
    if (e.index !== node.disk.applied + 1) {
      throw new HarnessSafetyError(`${node.id}: applies entry ${e.index} after ${node.disk.applied}`)
    }
    const text = entryText(e)
    const prior = this.appliedAt.get(e.index)
    if (prior === undefined) this.appliedAt.set(e.index, { term: e.term, node: node.id, text })
    else if (prior.term !== e.term || prior.text !== text) {
      throw new HarnessSafetyError(
        `state machine safety: ${node.id} applies ${e.index}@${e.term} "${text}" but ${prior.node} applied ${e.index}@${prior.term} "${prior.text}"`
      )
    }
    node.applied.push(e)
    node.disk.applied = e.index
  }

  private checkLeader(node: SimNode): void {
    const s = node.core.s
    if (s.role !== "leader") return
    const other = this.leaderOfTerm.get(s.term)
    if (other !== undefined && other !== node.id) throw new HarnessSafetyError(`election safety: ${other} and ${node.id} both lead term ${s.term}`)
    this.leaderOfTerm.set(s.term, node.id)
  }

  // ---- the network ----------------------------------------------------------------------

  private send(m: RaftMessage): void {
    this.sent.push(m)
    this.queue.push(m)
  }

  /** Drops every message matching `pred` at delivery until the returned function is called. */
  drop(pred: MessagePredicate): () => void {
    this.filters.push(pred)
    return () => {
      this.filters = this.filters.filter((p) => p !== pred)
    }
  }

  /** Cuts a node off from everyone (both directions). */
  isolate(id: NodeId): () => void {
    return this.drop((m) => m.from === id || m.to === id)
  }

  /** Splits the cluster: messages between the groups are dropped. */
  partition(...groups: ReadonlyArray<ReadonlyArray<NodeId>>): () => void {
    const groupOf = new Map<NodeId, number>()
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)))
    return this.drop((m) => groupOf.get(m.from) !== groupOf.get(m.to))
  }

  /** Removes every filter. */
  heal(): void {
    this.filters = []
  }

  /**
   * Steps one message into its receiver (unless a filter or a crash loses it) and performs the
   * receiver's Readies. The message need not come from the queue: tests may hand-craft one.
   */
  deliver(m: RaftMessage): boolean {
    const target = this.nodes.get(m.to)
    if (target === undefined || !target.up || this.filters.some((p) => p(m))) {
      this.dropped.push(m)
      return false
    }
    this.delivered.push(m)
    target.core.step(m)
    this.process(m.to)
    return true
  }

  /** Takes every queued message out of the network (for reordering or duplicating by hand). */
  take(pred: MessagePredicate = () => true): RaftMessage[] {
    const taken = this.queue.filter(pred)
    this.queue = this.queue.filter((m) => !pred(m))
    return taken
  }

  /** Delivers the oldest queued message matching `pred`; undefined when there is none. */
  deliverOne(pred: MessagePredicate = () => true): RaftMessage | undefined {
    const i = this.queue.findIndex(pred)
    if (i < 0) return undefined
    const [m] = this.queue.splice(i, 1)
    this.deliver(m!)
    return m
  }

  /**
   * Delivers queued messages (and the ones they cause) until none is left, except those matching
   * `hold`, which stay queued in order. Returns how many were taken from the queue.
   */
  deliverAll(hold?: MessagePredicate, limit = 100_000): number {
    let n = 0
    const ready = hold === undefined ? () => true : (m: RaftMessage) => !hold(m)
    while (this.deliverOne(ready) !== undefined) {
      if (++n > limit) throw new HarnessSafetyError(`messages still flowing after ${limit} deliveries`)
    }
    return n
  }

  /** Queued messages matching `pred`. */
  pending(pred: MessagePredicate = () => true): RaftMessage[] {
    return this.queue.filter(pred)
  }

  // ---- time ----------------------------------------------------------------------------

  /** `n` ticks of one node (its Readies performed, messages left queued). */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.now += tickMs
      const node = this.node(id)
      if (!node.up) continue
      node.core.tick(this.now)
      this.process(id)
    }
  }

  /** `n` ticks of every live node; messages stay queued. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      this.now += tickMs
      for (const id of this.ids) {
        const node = this.node(id)
        if (!node.up) continue
        node.core.tick(this.now)
        this.process(id)
      }
    }
  }

  /**
   * Delivers everything; then each leader ticks to its next heartbeat, which tells followers a
   * commit index they lack (a leader does not send it on its own at once), and everything is
   * delivered again.
   */
  settle(): void {
    this.deliverAll()
    for (const id of this.leaders()) this.tick(id, this.tuning.heartbeatTicks)
    this.deliverAll()
  }

  /** `n` rounds of: tick every live node once, then deliver everything. */
  run(n = 1): void {
    for (let i = 0; i < n; i++) {
      this.tickAll(1)
      this.deliverAll()
    }
  }

  // ---- crashes -------------------------------------------------------------------------

  /** The node stops; messages to it are lost; its disk survives. */
  crash(id: NodeId): void {
    this.node(id).up = false
  }

  /** Builds a fresh core from what the node's Readies persisted (hard state, log, applied index). */
  restart(id: NodeId): void {
    const node = this.node(id)
    node.life++
    node.core = this.build(id, node.life, node.disk)
    node.up = true
  }

  // ---- observations --------------------------------------------------------------------

  /** Live leaders, highest term first. */
  leaders(): NodeId[] {
    return this.ids
      .filter((id) => this.node(id).up && this.core(id).s.role === "leader")
      .sort((a, b) => this.core(b).s.term - this.core(a).s.term)
  }

  /** The live leader of the highest term, if any. */
  leader(): NodeId | undefined {
    return this.leaders()[0]
  }

  /** Runs ticks until there is a leader and every live node follows it; throws after `maxTicks`. */
  stabilize(maxTicks = 300): NodeId {
    for (let i = 0; i < maxTicks; i++) {
      this.run(1)
      const leader = this.leader()
      if (leader === undefined) continue
      const term = this.core(leader).s.term
      const live = this.ids.filter((id) => this.node(id).up)
      if (live.every((id) => this.core(id).s.term === term && this.core(id).s.leader === leader)) {
        this.deliverAll()
        return leader
      }
    }
    throw new Error(`no stable leader after ${maxTicks} ticks`)
  }

  /** Runs rounds (tick everyone, deliver everything) until `done()`; returns how many it took. */
  runUntil(done: () => boolean, maxTicks = 500): number {
    for (let i = 0; i <= maxTicks; i++) {
      if (done()) return i
      this.run(1)
    }
    throw new Error(`condition not reached after ${maxTicks} ticks`)
  }

  /**
   * Makes `id` campaign: ticks it alone until it starts a (pre-)vote, then delivers everything;
   * repeats (a lost pre-vote teaches it the newer term) until it leads or `attempts` run out.
   */
  campaign(id: NodeId, attempts = 4): void {
    for (let a = 0; a < attempts; a++) {
      const mark = this.sent.length
      for (let i = 0; i < 3 * this.tuning.electionTicks; i++) {
        this.tick(id)
        if (this.core(id).s.role === "leader" || this.sent.slice(mark).some((m) => m.from === id && (m.type === "prevote" || m.type === "vote"))) break
      }
      this.deliverAll()
      if (this.core(id).s.role === "leader") return
    }
    throw new Error(`${id} did not win an election in ${attempts} campaigns`)
  }

  /** Proposes one string command on a node and performs its Ready. */
  propose(id: NodeId, text: string): ProposeResult {
    const r = this.core(id).propose([command(text)])
    this.process(id)
    return r
  }

  /** The commands a node's state machine applied, in order (no-ops left out). */
  applied(id: NodeId): string[] {
    return this.node(id).applied.filter((e) => e.kind === EntryKind.Command).map(entryText)
  }

  /** Everything a node applied, as "index@term:text". */
  appliedLog(id: NodeId): string[] {
    return this.node(id).applied.map((e) => `${e.index}@${e.term}:${entryText(e)}`)
  }

  /** A node's whole log (persisted or not), as "index@term:text". */
  log(id: NodeId): string[] {
    return this.core(id).s.log.entries.map((e) => `${e.index}@${e.term}:${entryText(e)}`)
  }
}

// ---- single cores and hand-made messages (etcd's newTestRaft + pb.Message literals) --------

/** Log entries with the given terms, from index `from` on; commands read "e<index>". */
export const entriesOf = (terms: ReadonlyArray<number>, from = 1): Entry[] =>
  terms.map((term, i) => ({ index: from + i, term, kind: EntryKind.Command, time: 0, data: enc.encode(`e${from + i}`) }))

export interface LoneOptions {
  readonly id?: NodeId
  readonly members?: ReadonlyArray<NodeId>
  readonly term?: number
  readonly vote?: NodeId | null
  /** Terms of the entries in the log, index 1 first. */
  readonly log?: ReadonlyArray<number>
  readonly applied?: number
  readonly baseIndex?: number
  readonly baseTerm?: number
  readonly tuning?: Partial<Tuning>
  readonly seed?: number
}

/** One core outside any cluster, restored from the given durable state. */
export const lone = (o: LoneOptions = {}): RaftCore => {
  const baseIndex = o.baseIndex ?? 0
  return new RaftCore(
    { id: o.id ?? "n1", members: o.members ?? ["n1", "n2", "n3"], ...testTuning, ...o.tuning, seed: o.seed ?? 7 },
    {
      hardState: { term: o.term ?? 0, vote: o.vote ?? null },
      baseIndex,
      baseTerm: o.baseTerm ?? 0,
      entries: entriesOf(o.log ?? [], baseIndex + 1),
      applied: o.applied ?? baseIndex,
      membership: null
    }
  )
}

export interface Drained {
  /** The last hard state handed out, if any. */
  readonly hardState: HardState | null
  readonly sendFirst: RaftMessage[]
  readonly messages: RaftMessage[]
  readonly entries: Entry[]
  readonly committed: Entry[]
  readonly readStates: ReadState[]
  readonly droppedReads: number[]
}

/** Performs every pending Ready of a lone core (persist = advance) and collects what it emitted. */
export const drain = (core: RaftCore): Drained => {
  const out: Drained = { hardState: null, sendFirst: [], messages: [], entries: [], committed: [], readStates: [], droppedReads: [] }
  let hardState: HardState | null = null
  for (let guard = 0; core.hasReady(); guard++) {
    if (guard > 1000) throw new HarnessSafetyError("hasReady() stays true after 1000 Readies")
    const rd = core.ready()
    if (rd.hardState !== null) hardState = rd.hardState
    out.sendFirst.push(...rd.sendFirst)
    out.entries.push(...rd.entries)
    core.advance(rd)
    out.messages.push(...rd.messages)
    out.committed.push(...rd.committed)
    out.readStates.push(...rd.readStates)
    out.droppedReads.push(...rd.droppedReads)
  }
  return { ...out, hardState }
}

/** Hand-made messages with sensible defaults. */
export const msg = {
  vote: (from: NodeId, to: NodeId, term: number, lastLogIndex: number, lastLogTerm: number, transfer = false): RaftMessage => ({
    type: "vote",
    from,
    to,
    term,
    lastLogIndex,
    lastLogTerm,
    transfer
  }),
  prevote: (from: NodeId, to: NodeId, term: number, lastLogIndex: number, lastLogTerm: number): RaftMessage => ({
    type: "prevote",
    from,
    to,
    term,
    lastLogIndex,
    lastLogTerm
  }),
  voteResp: (from: NodeId, to: NodeId, term: number, granted: boolean): RaftMessage => ({ type: "vote_resp", from, to, term, granted }),
  prevoteResp: (from: NodeId, to: NodeId, term: number, granted: boolean): RaftMessage => ({ type: "prevote_resp", from, to, term, granted }),
  append: (
    from: NodeId,
    to: NodeId,
    term: number,
    prevLogIndex: number,
    prevLogTerm: number,
    entries: ReadonlyArray<Entry> = [],
    leaderCommit = 0,
    round = 0
  ): RaftMessage => ({ type: "append", from, to, term, prevLogIndex, prevLogTerm, leaderCommit, round, entries }),
  appendResp: (from: NodeId, to: NodeId, term: number, success: boolean, matchIndex = 0, round = 0): RaftMessage => ({
    type: "append_resp",
    from,
    to,
    term,
    success,
    matchIndex,
    conflictIndex: 0,
    conflictTerm: 0,
    lastLogIndex: matchIndex,
    round
  }),
  timeoutNow: (from: NodeId, to: NodeId, term: number): RaftMessage => ({ type: "timeout_now", from, to, term }),
  snapshot: (from: NodeId, to: NodeId, term: number): RaftMessage => ({
    type: "snapshot",
    from,
    to,
    term,
    lastIncludedIndex: 0,
    lastIncludedTerm: 0,
    offset: 0,
    done: true,
    data: new Uint8Array(0)
  }),
  snapshotResp: (from: NodeId, to: NodeId, term: number): RaftMessage => ({
    type: "snapshot_resp",
    from,
    to,
    term,
    lastIncludedIndex: 0,
    offset: 0,
    success: true
  })
}
