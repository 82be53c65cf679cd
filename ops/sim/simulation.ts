/**
 * Deterministic cluster simulation: the real consensus core, the real wire codec and the real
 * log storage code (on memory-level), driven by a seeded schedule of ticks, client writes,
 * message loss, duplication, delay (hence reordering), partitions and crashes. One seed replays
 * a run exactly: all time is simulated and every random choice comes from the seed.
 *
 * Each node applies two state machines: a register map (client writes `key id id`) and the
 * real job queue (`JobQueue`, JSON commands): simulated producers enqueue, simulated workers
 * lease, ack and fail, and the leader proposes ticks when a job timer is due, as the JobWorker
 * does, so leases expire and retries fire across crashes and leader changes.
 */
import { MemoryLevel } from "memory-level"
import { RaftCore, type Ready } from "../../actors/raft/core.ts"
import { InvariantViolation } from "../../actors/raft/invariant.ts"
import { nextRandom } from "../../actors/raft/random.ts"
import { defaultTuning } from "../../actors/raft/state.ts"
import { decodeJsonValue, encodeJsonValue, loadRestored, metaKeys, needsWrite, persistReadies, writeBatch, type BatchOp, type RaftStores, type Sublevel } from "../../actors/raft/storage.ts"
import { JobQueue, newJobChanges, type JobCommand, type JobCounters, type JobRecord, type JobResult } from "../../actors/applier/jobQueue.ts"
import { decodeRaftMessage, encodeRaftMessage } from "../../protocol/raftCodec.ts"
import { EntryKind, type Entry, type NodeId } from "../../protocol/raft.ts"
import { SafetyChecker, SafetyViolation } from "./checker.ts"

export interface SimOptions {
  readonly seed: number
  readonly nodes: number
  /** Simulated milliseconds of faults, then the same again healed. */
  readonly chaosMs: number
  readonly healMs: number
  readonly tickMs: number
  readonly verbose: boolean
}

export interface SimResult {
  readonly seed: number
  readonly ok: boolean
  readonly error?: string
  readonly events: number
  readonly acked: number
  /** Acknowledged enqueues, and jobs acknowledged complete to a worker. */
  readonly enqueued: number
  readonly completed: number
  readonly committed: number
  readonly elections: number
  readonly crashes: number
  readonly partitions: number
}

interface SimEvent {
  readonly at: number
  readonly seq: number
  readonly run: () => Promise<void> | void
}

/** A binary min-heap ordered by (time, insertion order). */
class EventQueue {
  private readonly heap: SimEvent[] = []
  get size(): number {
    return this.heap.length
  }
  push(e: SimEvent): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (before(h[p]!, h[i]!)) break
      ;[h[p], h[i]] = [h[i]!, h[p]!]
      i = p
    }
  }
  pop(): SimEvent | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last !== undefined) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l]!, h[m]!)) m = l
        if (r < h.length && before(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[m], h[i]] = [h[i]!, h[m]!]
        i = m
      }
    }
    return top
  }
}
const before = (a: SimEvent, b: SimEvent): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

interface SimNode {
  readonly id: NodeId
  readonly db: MemoryLevel<string, Uint8Array>
  readonly stores: RaftStores
  core: RaftCore | null
  life: number
  lastStored: number
  /** The register state machine: key -> value, rebuilt from applied entries. */
  state: Map<string, string>
  applied: number
  /** Readies waiting for the simulated disk. */
  writes: Ready[]
  /** A batch is on its way to the simulated disk. */
  writing: boolean
  /** Readies queued and written in this life (the shell's `whenStored` bookkeeping). */
  enqueued: number
  written: number
  /**
   * Applied state waiting until the log on disk holds its applied index, in order (the
   * Applier's writes wait for `whenStored`): entries apply once committed, maybe before this
   * node's own copy is durable.
   */
  stateWrites: Array<{ readonly ops: BatchOp[]; readonly index: number; readonly after: number }>
  /** Writes proposed through this node in this life: index -> write id and who waits. */
  pending: Map<number, { id: string; term: number; done?: (r: JobResult) => void }>
  /** The job queue state machine and the revision counter it bumps. */
  jobs: JobQueue
  jobRev: { revision: number }
  readonly jobStore: Sublevel<string, Uint8Array>
}

/** A lease a simulated worker holds, until it acks or fails it. */
interface HeldLease {
  readonly id: string
  readonly token: number
}

const text = new TextEncoder()
const untext = new TextDecoder()

export class Simulation {
  private readonly rng: { rng: number }
  private readonly queue = new EventQueue()
  private seq = 0
  now = 0
  private readonly nodes: SimNode[] = []
  readonly checker = new SafetyChecker()
  /** Partition: node -> group number; messages cross groups only when equal. */
  private groups = new Map<NodeId, number>()
  private dropRate = 0
  private dupRate = 0
  private maxDelay = 5
  private readonly acked = new Set<string>()
  /** Enqueues acknowledged to producers (job ids). */
  private readonly enqueued = new Set<string>()
  /** Acks accepted by the state machine and answered to workers: job id -> lease token. */
  private readonly completedBy = new Map<string, number>()
  private writeCounter = 0
  private events = 0
  private crashes = 0
  private partitions = 0
  private readonly log: string[] = []

  constructor(private readonly opts: SimOptions) {
    this.rng = { rng: opts.seed ^ 0x5eed }
  }

  private random(): number {
    return nextRandom(this.rng)
  }

  private schedule(delay: number, run: () => Promise<void> | void): void {
    this.queue.push({ at: this.now + delay, seq: this.seq++, run })
  }

  private trace(line: string): void {
    if (this.opts.verbose) this.log.push(`${this.now.toFixed(0).padStart(6)} ${line}`)
  }

  private ids(): NodeId[] {
    return this.nodes.map((n) => n.id)
  }

  private async boot(node: SimNode): Promise<void> {
    const restored = await loadRestored(node.stores)
    node.life++
    const core = new RaftCore(
      {
        id: node.id,
        members: this.ids(),
        ...defaultTuning,
        // Small batches and windows so flow control and multi-message catch-up are exercised.
        maxInflight: 4,
        maxAppendEntries: 16,
        seed: (this.opts.seed * 31 + node.id.charCodeAt(1) * 7919 + node.life * 104729) | 0
      },
      restored
    )
    node.core = core
    node.lastStored = restored.baseIndex + restored.entries.length
    node.pending = new Map()
    node.writes = []
    node.writing = false
    node.enqueued = 0
    node.written = 0
    node.stateWrites = []
    const saved = await node.stores.meta.get("sim.state")
    node.state = new Map(saved === undefined ? [] : (JSON.parse(untext.decode(saved)) as Array<[string, string]>))
    node.applied = restored.applied
    const jobMeta = await node.stores.meta.get("sim.jobs")
    const { revision, time, counters } =
      jobMeta === undefined ? { revision: 0, time: 0, counters: undefined } : decodeJsonValue<{ revision: number; time: number; counters: JobCounters }>(jobMeta)
    node.jobRev = { revision }
    node.jobs = new JobQueue(node.jobRev)
    const records: JobRecord[] = []
    for await (const v of node.jobStore.values()) records.push(decodeJsonValue<JobRecord>(v))
    node.jobs.restore(records, counters, time)
    this.checker.restarted(node.id, core)
    const life = node.life
    const tick = () => {
      if (node.core === null || node.life !== life) return
      node.core.tick(this.now)
      this.schedule(this.opts.tickMs, tick)
      return this.afterInput(node)
    }
    // Nodes' clocks are not in phase.
    this.schedule(1 + Math.floor(this.random() * this.opts.tickMs), tick)
  }

  private crash(node: SimNode): void {
    if (node.core === null) return
    this.trace(`${node.id} crashes`)
    node.core = null
    this.crashes++
  }

  /**
   * Hands out a node's Readies the way the real shell does: sends first, queues writes for a
   * simulated disk that finishes them later, in order, a batch at a time, and applies committed
   * entries at once. A crash loses whatever the disk had not finished.
   */
  private async afterInput(node: SimNode): Promise<void> {
    const life = node.life
    while (node.core !== null && node.life === life && node.core.hasReady()) {
      const core = node.core
      const rd: Ready = core.ready()
      for (const m of rd.sendFirst) this.send(m)
      this.checker.observeWritten(node.id, rd.entries)
      if (needsWrite(rd) || node.writes.length > 0 || node.writing) {
        node.writes.push(rd)
        node.enqueued++
        if (!node.writing) this.startDisk(node, life)
      } else {
        core.advance(rd)
        for (const m of rd.messages) this.send(m)
      }
      if (rd.committed.length > 0) await this.apply(node, rd.committed)
      this.checker.observe(node.id, core)
    }
  }

  /**
   * The simulated disk takes every write queued when it starts (one synced batch) and finishes
   * it a little later, as the shell's writer does; what is queued meanwhile waits for the
   * next batch. The core hears of each finished Ready through a separate event, like the
   * shell's `persisted` input, so other inputs can come between.
   */
  private startDisk(node: SimNode, life: number): void {
    const batch = node.writes
    node.writes = []
    node.writing = true
    this.schedule(Math.floor(this.random() * 4), async () => {
      if (node.core === null || node.life !== life) return
      node.lastStored = await persistReadies(node.stores, batch, node.lastStored, true)
      node.written += batch.length
      await this.writeState(node)
      for (const rd of batch) {
        for (const m of rd.messages) this.send(m)
        this.schedule(0, () => {
          if (node.core === null || node.life !== life) return
          node.core.advance(rd)
          this.checker.observe(node.id, node.core)
          return this.afterInput(node)
        })
      }
      node.writing = false
      if (node.writes.length > 0) this.startDisk(node, life)
    })
  }

  private async apply(node: SimNode, entries: ReadonlyArray<Entry>): Promise<void> {
    this.checker.observeApplied(node.id, entries)
    const changes = newJobChanges()
    const answers: Array<() => void> = []
    for (const e of entries) {
      if (e.index !== node.applied + 1) throw new InvariantViolation(`${node.id} applies ${e.index} after ${node.applied}`)
      node.applied = e.index
      node.jobs.advanceTime(e.time, changes)
      if (e.kind !== EntryKind.Command) continue
      const p = node.pending.get(e.index)
      if (p !== undefined) node.pending.delete(e.index)
      const mine = p !== undefined && p.term === e.term
      const text = untext.decode(e.data)
      if (text.startsWith("{")) {
        const { tag, cmd } = JSON.parse(text) as { tag: string; cmd: JobCommand }
        const r = node.jobs.apply(cmd, changes)
        if (mine && p.id === tag && p.done !== undefined) answers.push(() => p.done!(r))
        continue
      }
      const [key, value, id] = text.split(" ") as [string, string, string]
      node.state.set(key, value)
      if (mine && p.id === id) this.acked.add(id)
    }
    // State and applied index in one batch, as the Applier does; answers after the state moved.
    const ops: BatchOp[] = [
      { type: "put", key: "sim.state", value: text.encode(JSON.stringify([...node.state])), sublevel: node.stores.meta },
      { type: "put", key: "sim.jobs", value: encodeJsonValue({ revision: node.jobRev.revision, time: node.jobs.time, counters: node.jobs.counters() }), sublevel: node.stores.meta },
      { type: "put", key: metaKeys.applied, value: encodeJsonValue(node.applied), sublevel: node.stores.meta }
    ]
    for (const [id, j] of changes.jobs) ops.push(j === null ? { type: "del", key: id, sublevel: node.jobStore } : { type: "put", key: id, value: encodeJsonValue(j), sublevel: node.jobStore })
    for (const answer of answers) answer()
    node.stateWrites.push({ ops, index: node.applied, after: node.enqueued })
    await this.writeState(node)
  }

  /** Writes the applied state whose index the log on disk now holds, oldest first. */
  private async writeState(node: SimNode): Promise<void> {
    while (node.stateWrites.length > 0) {
      const w = node.stateWrites[0]!
      if (node.written < w.after || w.index > node.lastStored) return
      node.stateWrites.shift()
      await writeBatch(node.db, w.ops, true)
    }
  }

  private send(m: import("../../protocol/raft.ts").RaftMessage): void {
    const bytes = encodeRaftMessage(m)
    if (this.random() < this.dropRate) return
    const copies = this.random() < this.dupRate ? 2 : 1
    for (let c = 0; c < copies; c++) {
      const delay = 1 + Math.floor(this.random() * this.maxDelay)
      this.schedule(delay, () => {
        const to = this.nodes.find((n) => n.id === m.to)
        if (to === undefined || to.core === null) return
        if (this.groups.get(m.from) !== this.groups.get(m.to)) return
        to.core.step(decodeRaftMessage(bytes))
        return this.afterInput(to)
      })
    }
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined
    for (const n of this.nodes) {
      if (n.core?.s.role === "leader" && (best === undefined || n.core.s.term > best.core!.s.term)) best = n
    }
    return best
  }

  private clientWrite(): Promise<void> | undefined {
    const target = this.nodes[Math.floor(this.random() * this.nodes.length)]!
    const core = target.core
    if (core === null) return undefined
    const id = `w${this.writeCounter++}`
    const key = `k${Math.floor(this.random() * 5)}`
    const r = core.propose([{ kind: EntryKind.Command, data: text.encode(`${key} ${id} ${id}`) }])
    if (!r.ok) return undefined
    target.pending.set(r.firstIndex, { id, term: r.term })
    return this.afterInput(target)
  }

  /** Proposes a job command at `target`; `done` hears the result if this node applies it in the same term. */
  private proposeJob(target: SimNode, cmd: JobCommand, done?: (r: JobResult) => void): Promise<void> | undefined {
    const core = target.core
    if (core === null) return undefined
    const tag = `j${this.writeCounter++}`
    const r = core.propose([{ kind: EntryKind.Command, data: text.encode(JSON.stringify({ tag, cmd })) }])
    if (!r.ok) return undefined
    target.pending.set(r.firstIndex, done === undefined ? { id: tag, term: r.term } : { id: tag, term: r.term, done })
    return this.afterInput(target)
  }

  private randomNode(): SimNode {
    return this.nodes[Math.floor(this.random() * this.nodes.length)]!
  }

  /** A producer enqueues a job with a delay, retries and a short lease, at a random node. */
  private clientEnqueue(): Promise<void> | undefined {
    const delay = this.random() < 0.3 ? Math.floor(this.random() * 300) : 0
    const spec = { queue: this.random() < 0.5 ? "a" : "b", payload: this.writeCounter, priority: Math.floor(this.random() * 3), delay, maxAttempts: 3, leaseMs: 150, backoff: { type: "exponential" as const, delay: 20, jitter: 0.5 } }
    return this.proposeJob(this.randomNode(), { op: "jobs.enqueue", jobs: [spec], batch: false }, (r) => {
      if (r.ok) this.enqueued.add(String(r["id"]))
    })
  }

  /** A worker leases jobs; later it acks most, fails some, and forgets a few (its lease expires). */
  private clientLease(): Promise<void> | undefined {
    const worker = `w${Math.floor(this.random() * 3)}`
    return this.proposeJob(this.randomNode(), { op: "jobs.lease", queues: ["a", "b"], max: 2, workerId: worker }, (r) => {
      if (!r.ok) return
      for (const j of r["jobs"] as HeldLease[]) {
        const roll = this.random()
        if (roll < 0.1) continue
        const cmd: JobCommand =
          roll < 0.8 ? { op: "jobs.ack", id: j.id, fence: j.token } : { op: "jobs.fail", id: j.id, fence: j.token, error: "sim", retryable: true }
        this.schedule(1 + Math.floor(this.random() * 200), () =>
          this.proposeJob(this.randomNode(), cmd, (res) => {
            if (!res.ok || cmd.op !== "jobs.ack") return
            const prior = this.completedBy.get(j.id)
            if (prior !== undefined) throw new SafetyViolation(`job ${j.id} completed twice: tokens ${prior} and ${j.token}`)
            this.completedBy.set(j.id, j.token)
          })
        )
      }
    })
  }

  /** The leader's JobWorker: a tick entry when a job timer is due. */
  private jobTicks(): Promise<void> | undefined {
    const leader = this.leader()
    if (leader === undefined) return undefined
    const due = leader.jobs.nextDue()
    return due !== undefined && due + this.opts.tickMs <= this.now ? this.proposeJob(leader, { op: "jobs.tick" }) : undefined
  }

  private heal(): void {
    this.groups = new Map(this.ids().map((id) => [id, 0]))
    this.dropRate = 0
    this.dupRate = 0
  }

  private nemesis(): void {
    const r = this.random()
    const ids = this.ids()
    if (r < 0.25) {
      // Partition: a random split, sometimes isolating the leader alone.
      const leader = this.leader()
      const isolateLeader = leader !== undefined && this.random() < 0.4
      this.groups = new Map(ids.map((id) => [id, isolateLeader ? (id === leader.id ? 1 : 0) : this.random() < 0.5 ? 0 : 1]))
      this.partitions++
      this.trace(`partition ${JSON.stringify([...this.groups])}`)
    } else if (r < 0.45) {
      this.heal()
      this.trace("heal")
    } else if (r < 0.7) {
      const victim = this.random() < 0.5 ? this.leader() : this.nodes[Math.floor(this.random() * this.nodes.length)]
      if (victim?.core) {
        this.crash(victim)
        this.schedule(50 + Math.floor(this.random() * 400), () => (victim.core === null ? this.boot(victim) : undefined))
      }
    } else if (r < 0.85) {
      this.dropRate = this.random() * 0.3
      this.dupRate = this.random() * 0.2
      this.maxDelay = 1 + Math.floor(this.random() * 30)
      this.trace(`network drop=${this.dropRate.toFixed(2)} dup=${this.dupRate.toFixed(2)} delay<=${this.maxDelay}`)
    } else {
      this.maxDelay = 1 + Math.floor(this.random() * 5)
    }
  }

  async run(): Promise<SimResult> {
    const { nodes, chaosMs, healMs } = this.opts
    for (let i = 1; i <= nodes; i++) {
      const db = new MemoryLevel<string, Uint8Array>({ valueEncoding: "view" })
      const stores: RaftStores = {
        db,
        log: db.sublevel<Uint8Array, Uint8Array>("log", { keyEncoding: "view", valueEncoding: "view" }),
        meta: db.sublevel<string, Uint8Array>("meta", { valueEncoding: "view" })
      }
      const jobRev = { revision: 0 }
      this.nodes.push({
        id: `n${i}`,
        db,
        stores,
        core: null,
        life: 0,
        lastStored: 0,
        state: new Map(),
        applied: 0,
        pending: new Map(),
        writes: [],
        writing: false,
        enqueued: 0,
        written: 0,
        stateWrites: [],
        jobRev,
        jobs: new JobQueue(jobRev),
        jobStore: db.sublevel<string, Uint8Array>("jobs", { valueEncoding: "view" })
      })
    }
    this.heal()
    for (const n of this.nodes) await this.boot(n)
    const writeEvery = 3
    const writes = () => {
      if (this.now >= chaosMs + healMs / 2) return undefined
      this.schedule(1 + Math.floor(this.random() * writeEvery * 2), writes)
      const roll = this.random()
      return roll < 0.6 ? this.clientWrite() : roll < 0.8 ? this.clientEnqueue() : this.clientLease()
    }
    const ticks = () => {
      this.schedule(this.opts.tickMs, ticks)
      return this.jobTicks()
    }
    this.schedule(1, ticks)
    this.schedule(1, writes)
    const nemesis = () => {
      if (this.now < chaosMs) {
        this.nemesis()
        this.schedule(100 + Math.floor(this.random() * 400), nemesis)
      }
    }
    this.schedule(300, nemesis)
    this.schedule(chaosMs, () => {
      this.heal()
      this.maxDelay = 3
      this.trace("final heal")
      for (const n of this.nodes) if (n.core === null) this.schedule(1, () => this.boot(n))
    })
    const end = chaosMs + healMs
    try {
      while (this.queue.size > 0) {
        const e = this.queue.pop()!
        if (e.at > end) break
        this.now = e.at
        this.events++
        await e.run()
        if (this.events % 500 === 0) this.checker.checkLogsMatch(this.liveCores())
      }
      this.finalChecks()
      return this.result(true)
    } catch (err) {
      if (err instanceof SafetyViolation || err instanceof InvariantViolation) return this.result(false, err.message)
      throw err
    }
  }

  private liveCores(): Array<readonly [NodeId, RaftCore]> {
    return this.nodes.flatMap((n) => (n.core === null ? [] : [[n.id, n.core] as const]))
  }

  private finalChecks(): void {
    this.checker.checkLogsMatch(this.liveCores())
    const leader = this.leader()
    if (leader === undefined) throw new SafetyViolation("liveness: no leader after the network healed")
    const target = leader.core!.s.log.committed
    for (const n of this.nodes) {
      if (n.core === null) throw new SafetyViolation(`liveness: ${n.id} is still down after healing`)
      if (n.applied < target) throw new SafetyViolation(`liveness: ${n.id} applied ${n.applied} < leader commit ${target}`)
    }
    // Every acknowledged write is in every node's applied state machine (it wrote key=id).
    const written = new Map<string, string>()
    for (const id of this.acked) written.set(id, id)
    const leaderState = leader.state
    for (const n of this.nodes) {
      if (JSON.stringify([...n.state].sort()) !== JSON.stringify([...leaderState].sort())) {
        throw new SafetyViolation(`state machines differ: ${n.id} vs ${leader.id}`)
      }
    }
    this.verifyAckedApplied(leader)
    this.verifyJobs(leader)
  }

  /**
   * Every replica holds the same jobs; every acknowledged enqueue exists; a job acknowledged
   * complete to a worker is completed with that worker's lease token.
   */
  private verifyJobs(leader: SimNode): void {
    const dump = (n: SimNode) => JSON.stringify([...n.jobs.jobs.values()].sort((a, b) => a.seq - b.seq))
    const expected = dump(leader)
    for (const n of this.nodes) if (dump(n) !== expected) throw new SafetyViolation(`job state machines differ: ${n.id} vs ${leader.id}`)
    for (const id of this.enqueued) if (leader.jobs.get(id) === undefined) throw new SafetyViolation(`durability: acknowledged enqueue of job ${id} is lost`)
    for (const [id, token] of this.completedBy) {
      const j = leader.jobs.get(id)
      if (j?.state !== "completed" || j.token !== token) throw new SafetyViolation(`job ${id} was acked with token ${token} but is ${j?.state} with token ${j?.token}`)
    }
  }

  /** Replays the leader's committed log: each acknowledged write id must appear in it. */
  private verifyAckedApplied(leader: SimNode): void {
    const log = leader.core!.s.log
    const present = new Set<string>()
    for (let i = log.firstIndex; i <= log.committed; i++) {
      const e = log.entry(i)!
      if (e.kind === EntryKind.Command && e.data[0] !== 0x7b) present.add(untext.decode(e.data).split(" ")[2]!)
    }
    for (const id of this.acked) if (!present.has(id)) throw new SafetyViolation(`durability: acknowledged write ${id} is lost`)
  }

  private result(ok: boolean, error?: string): SimResult {
    const elections = Math.max(0, ...this.nodes.map((n) => n.core?.s.term ?? 0))
    const base = {
      seed: this.opts.seed,
      ok,
      events: this.events,
      acked: this.acked.size,
      enqueued: this.enqueued.size,
      completed: this.completedBy.size,
      committed: this.checker.commitIndex,
      elections,
      crashes: this.crashes,
      partitions: this.partitions
    }
    return error === undefined ? base : { ...base, error }
  }

  traceLines(): ReadonlyArray<string> {
    return this.log
  }
}

export const simulate = (opts: SimOptions): Promise<SimResult> => new Simulation(opts).run()
