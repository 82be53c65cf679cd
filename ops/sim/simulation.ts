/**
 * Deterministic simulation of a whole cluster: the shipped node (bootstrap/node.ts `assemble`:
 * consensus shell, Applier with the real key-value and job state machines, JobWorker, Gateway)
 * on a simulated network, virtual clock and simulated disks (world.ts, network.ts, disk.ts),
 * driven by the shipped typed client (clients.ts), under a seeded schedule of faults: message
 * loss, duplication and delay, partitions, crashes that lose unsynced writes, clean restarts,
 * skewed clocks, leadership transfers (asked of the leader, and on every clean stop of one),
 * membership changes (in a third of the seeds a spare node starts empty; learners are added,
 * promoted, members removed, the leader too, among all the other faults). One seed replays one run exactly.
 *
 * Checked while it runs: Raft's safety properties on every node after every step (checker.ts),
 * Log Matching on every entry any node writes, State Machine Safety on every applied entry, and
 * that no actor ever fails (a broken invariant stops a node; here that is a failed seed).
 * Checked at the end, after the network heals: a leader, every node up and caught up, the same
 * state on every node (keys, revisions, sessions, jobs), each node's state on disk equal to its
 * state in memory after a clean stop, the clients' history linearizable
 * (ops/chaos/linearizability.ts), every acknowledged enqueue present, every acknowledged ack
 * completed with its lease's token, no job acked twice and no fencing token handed out twice.
 */
import { isMember } from "../../protocol/membership.ts"
import type { RaftState } from "../../actors/raft/state.ts"
import { InvariantViolation } from "../../actors/raft/invariant.ts"
import { applyToState, loadState, newStateChanges, type Applier } from "../../actors/applier/applier.ts"
import { JobQueue } from "../../actors/applier/jobQueue.ts"
import { KvState } from "../../actors/applier/kvState.ts"
import type { HistoryEntry } from "../chaos/history.ts"
import { checkRegisterHistory } from "../chaos/linearizability.ts"
import { stateDigest } from "../stateDigest.ts"
import { SafetyChecker, SafetyViolation } from "./checker.ts"
import { ClientBug, Clients } from "./clients.ts"
import { Network } from "./network.ts"
import { Disk } from "./disk.ts"
import { Flood } from "./flood.ts"
import { SimNode } from "./node.ts"
import { World } from "./world.ts"

export interface SimOptions {
  readonly seed: number
  readonly nodes: number
  /** Virtual milliseconds of faults, then of healed network. */
  readonly chaosMs: number
  readonly healMs: number
  readonly tickMs: number
  /** Keep every node's log lines and the nemesis' actions (for `--verbose`). */
  readonly verbose: boolean
  /** Self-test: disks that acknowledge `sync` without syncing; some seed must fail. */
  readonly lyingDisks?: boolean
}

export interface SimResult {
  readonly seed: number
  readonly ok: boolean
  readonly error?: string
  /** Virtual milliseconds into the run when a check failed. */
  readonly failedAtMs?: number
  readonly events: number
  readonly messages: number
  /** Register operations by outcome. */
  readonly ok_: number
  readonly fail: number
  readonly info: number
  readonly enqueued: number
  readonly completed: number
  readonly committed: number
  readonly elections: number
  readonly crashes: number
  readonly restarts: number
  readonly partitions: number
  readonly pauses: number
  readonly wipes: number
  readonly installs: number
  readonly snapshots: number
  /** Floods of requests, and requests answered `busy` (the flood's and the clients'). */
  readonly floods: number
  readonly busy: number
  /** Leadership transfers asked of a leader, and those that ended with the target leading. */
  readonly transfers: number
  readonly transfersDone: number
  /** Membership changes asked of a leader, and those it took (appended). */
  readonly memberChanges: number
  readonly memberChangesTaken: number
}

const cluster = "sim"

/**
 * Chance that a node crashes during any one of its disk writes, while faults run; higher while
 * its disk is slow, when more writes wait in line behind each other.
 */
const crashWhileWriting = 1 / 200
const crashWhileWritingSlowly = 1 / 25

const digest = stateDigest

export class Simulation {
  readonly world: World
  private readonly network: Network
  private readonly nodes: SimNode[] = []
  readonly checker = new SafetyChecker()
  private readonly clients: Clients
  private readonly trace: string[] = []
  private crashes = 0
  private restarts = 0
  private partitions = 0
  private pauses = 0
  private wipes = 0
  private installs = 0
  private snapshots = 0
  private transfers = 0
  private transfersDone = 0
  /** Whether this seed changes membership (and has a spare node to add). */
  private readonly reconfigures: boolean
  private memberChanges = 0
  private memberChangesTaken = 0
  /** Installs whose index the reference replica had passed already (not compared). */
  private installsUnchecked = 0
  private elections = 0
  private floods = 0
  private readonly flood: Flood
  /** A replica of no node: every committed entry applied in order, to check installed snapshots against. */
  private readonly reference = (() => {
    const kv = new KvState()
    return { kv, jobs: new JobQueue(kv), applied: 0 }
  })()
  /** When (in events run) to compare whole logs again. */
  private nextLogsMatch = 0

  constructor(private readonly opts: SimOptions) {
    this.world = new World(opts.seed)
    this.network = new Network(this.world)
    this.flood = new Flood(this.world, this.network, cluster)
    this.clients = new Clients(this.world, this.network, { cluster, keys: 3, opsPerKey: 30, thinkMs: 20 }, (line) => this.note(line))
    const members = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`)
    // A third of the seeds change membership: one more node starts empty and waits to be added
    // (`archio node --join`). Not all of them: a node more costs a seed a third more CPU.
    this.reconfigures = this.world.chance(1 / 3)
    const spares = this.reconfigures ? [`n${opts.nodes + 1}`] : []
    const observer = {
      written: (node: string, entries: Parameters<SafetyChecker["observeWritten"]>[1]) => this.guard(() => this.checker.observeWritten(node, entries)),
      applied: (node: string, batch: { readonly entries: ReadonlyArray<Parameters<SafetyChecker["observeApplied"]>[1]> }) =>
        this.guard(() => {
          for (const entries of batch.entries) this.checker.observeApplied(node, entries)
        }),
      installed: (node: string, index: number, applier: Applier) => this.guard(() => this.checkInstall(node, index, applier)),
      snapshotTaken: () => {
        this.snapshots++
      },
      failed: (node: string, cause: string) => this.world.fail(new SafetyViolation(`${node} failed on its own (an actor failure):\n${cause}`)),
      log: (node: string, line: string) => this.note(`${node} ${line}`),
      // Now and then a crash lands while a write is on its way to the disk.
      writing: (node: string) => {
        const victim = this.nodes.find((n) => n.id === node)!
        if (this.world.now < this.opts.chaosMs && this.world.chance(victim.disk.slowMs > 0 ? crashWhileWritingSlowly : crashWhileWriting)) {
          // Somewhere while this write, and those queued behind it on a slow disk, are in flight.
          this.world.schedule(this.world.int(0, 4 + 2 * victim.disk.slowMs), () => this.crash(victim, "while writing"))
        }
      }
    }
    // Small snapshots often: most seeds compact several times, and a lagging or wiped node
    // catches up by InstallSnapshot in several small chunks, some of them lost or repeated.
    const snapshotThreshold = this.world.int(8, 60)
    const snapshotTuning = {
      chunkBytes: this.world.int(64, 2048),
      maxInflight: this.world.int(1, 4),
      resendMs: 200,
      maxSilences: 3,
      // Half the seeds bound the log by bytes far below the entry threshold: snapshots come by
      // size, and the window kept behind them may hold only a few entries, or none.
      ...(this.world.chance(0.5) ? { maxLogBytes: this.world.int(300, 8_000), maxTrailingBytes: this.world.int(0, 3_000) } : {})
    }
    // A third of the seeds hold very few waiting requests per node, so the clients meet `busy`
    // all along, not only in a flood.
    const bounds = this.world.chance(1 / 3)
      ? { writes: this.world.int(1, 4), reads: this.world.int(1, 4), leases: this.world.int(1, 3), forwards: this.world.int(1, 4), bytes: this.world.int(200, 4_000) }
      : { writes: 64, reads: 64, leases: 32, forwards: 64, bytes: 64 * 1024 }
    for (const id of [...members, ...spares]) {
      const skewMs = this.world.int(-30, 31)
      const timerLateness = this.world.chance(0.5) ? 1 : 1 + this.world.random() * 0.3
      this.nodes.push(
        new SimNode(
          this.world,
          this.network,
          // Small windows and batches, so flow control and multi-message catch-up are exercised.
          { id, cluster, members: members.includes(id) ? members : [], tickMs: opts.tickMs, electionTicks: 15, heartbeatTicks: 3, tuning: { maxInflight: 4, maxAppendEntries: 16 }, snapshotThreshold, snapshotTuning, bounds, skewMs, timerLateness },
          observer,
          opts.verbose,
          new Disk(this.world, 2, opts.lyingDisks === true)
        )
      )
    }
  }

  private note(line: string): void {
    if (this.opts.verbose) this.trace.push(`${String(this.world.now).padStart(6)} ${line}`)
  }

  private guard(check: () => void): void {
    try {
      check()
    } catch (e) {
      this.world.fail(e)
    }
  }

  traceLines(): ReadonlyArray<string> {
    return this.trace
  }

  /** Every client call and its answer, as the linearizability checker reads them. */
  history(): ReadonlyArray<HistoryEntry> {
    return this.clients.history.entries
  }

  private states(): Array<readonly [string, Readonly<RaftState>]> {
    const out: Array<readonly [string, Readonly<RaftState>]> = []
    for (const n of this.nodes) {
      const r = n.running
      if (r !== undefined) out.push([n.id, r.consensus.inspect()])
    }
    return out
  }

  /** The members of the configuration the leader of the highest term has (every node while none leads). */
  private members(): SimNode[] {
    const m = this.leader()?.running?.consensus.status().membership
    return m === undefined ? this.nodes : this.nodes.filter((n) => isMember(m, n.id))
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined
    let term = -1
    for (const n of this.nodes) {
      const s = n.running?.consensus.inspect()
      if (s?.role === "leader" && s.term > term) {
        best = n
        term = s.term
      }
    }
    return best
  }

  /** Safety checks of every running node; after every step of the world. */
  private observeAll(): void {
    for (const n of this.nodes) {
      const r = n.running
      if (r !== undefined) this.checker.observe(n.id, r.consensus.inspect())
    }
    if (this.world.events >= this.nextLogsMatch) {
      this.nextLogsMatch = this.world.events + 2_000
      this.checker.checkLogsMatch(this.states())
    }
  }

  /** After an install, the node's state equals what every replica had at that index. */
  private checkInstall(node: string, index: number, applier: Applier): void {
    this.installs++
    const ref = this.reference
    if (ref.applied > index) {
      this.installsUnchecked++
      return
    }
    while (ref.applied < index) {
      const e = this.checker.appliedAt(ref.applied + 1)
      if (e === undefined) throw new SafetyViolation(`${node} installed a snapshot at ${index}, but no node applied entry ${ref.applied + 1}`)
      applyToState(ref.kv, ref.jobs, e, newStateChanges())
      ref.applied = e.index
    }
    if (digest(applier.kv, applier.jobs) !== digest(ref.kv, ref.jobs)) {
      throw new SafetyViolation(`${node} installed a snapshot at ${index} whose state differs from the replicas' state at that index`)
    }
  }

  /**
   * Wipes a follower's disk, only while that loses nothing Raft needs: every node up in one term
   * under one leader (no vote of this term is still to be cast, so the wiped node's lost vote
   * cannot elect a second leader) and every other node holding every committed entry durably.
   */
  private wipe(): void {
    const leader = this.leader()
    const members = this.members()
    if (leader === undefined || members.length < 2 || this.nodes.some((n) => n.running === undefined)) return
    const ls = leader.running!.consensus.inspect()
    // Every node, members or not: a removed node with a stale configuration could count the
    // wiped node's forgotten vote.
    const steady = this.nodes.every((n) => {
      const s = n.running!.consensus.inspect()
      return s.term === ls.term && s.leader === leader.id
    })
    if (!steady) return
    const victim = this.world.pick(members.filter((n) => n !== leader))
    const othersHoldAll = members.every((n) => n === victim || n.running!.consensus.inspect().log.persistedIndex >= ls.log.committed)
    if (!othersHoldAll) return
    this.wipes++
    this.note(`${victim.id}'s disk is wiped`)
    victim.wipe()
    this.restartLater(victim, 50, 450)
  }

  /**
   * The leader is asked to hand leadership to a random other member, or (as on SIGTERM) to the
   * most caught-up one; writes keep coming meanwhile and wait for the outcome.
   */
  private transfer(): void {
    const leader = this.leader()
    if (leader === undefined) return
    const to = this.world.chance(0.5) ? null : this.world.pick(this.nodes.filter((n) => n !== leader)).id
    this.transfers++
    this.note(`${leader.id} is asked to hand leadership to ${to ?? "the most caught-up follower"}`)
    leader.running!.consensus.transferLeadership(to, (r) => {
      if (r.ok) this.transfersDone++
      this.note(`transfer from ${leader.id}: ${r.ok ? `${r.leader} leads in term ${r.term}` : `${r.reason} (leader ${r.leader ?? "unknown"})`}`)
    })
  }

  /**
   * One membership change asked of the leader: add a node that is no member as a learner,
   * promote a learner, or remove a member (the leader too), keeping three to five voters.
   */
  private changeMembership(): void {
    const leader = this.leader()
    if (leader === undefined) return
    const m = leader.running!.consensus.status().membership
    const outsiders = this.nodes.filter((n) => !isMember(m, n.id)).map((n) => n.id)
    const removable = [...(m.voters.length > 3 ? m.voters : []), ...m.learners]
    const r = this.world.random()
    const [op, id]: readonly ["add" | "promote" | "remove", string] | readonly [undefined, undefined] =
      r < 0.35 && m.learners.length > 0 && m.voters.length < 5
        ? ["promote", this.world.pick(m.learners)]
        : r < 0.7 && outsiders.length > 0
          ? ["add", this.world.pick(outsiders)]
          : removable.length > 0
            ? ["remove", this.world.pick(removable)]
            : [undefined, undefined]
    if (op === undefined) return
    this.memberChanges++
    this.note(`${leader.id} is asked to ${op} ${id}`)
    leader.running!.consensus.changeMembership(op, id, (res) => {
      if (res.ok && res.changed) this.memberChangesTaken++
      this.note(`${op} ${id} at ${leader.id}: ${res.ok ? `${res.changed ? "appended" : "in effect already"} at ${res.index}` : `${res.reason}: ${res.message}`}`)
    })
  }

  private crash(node: SimNode, how: string): void {
    if (node.isDown) return
    this.crashes++
    this.note(`${node.id} crashes${how === "" ? "" : ` ${how}`}`)
    node.crash()
    this.restartLater(node, 50, 450)
  }

  private restartLater(node: SimNode, minMs: number, maxMs: number): void {
    this.world.schedule(this.world.int(minMs, maxMs), () => {
      if (!node.isDown) return
      this.restarts++
      this.note(`${node.id} boots`)
      node.boot()
    })
  }

  private nemesis(): void {
    const r = this.world.random()
    const ids = this.nodes.map((n) => n.id)
    if (r < 0.2) {
      // A random split of nodes and clients, sometimes the leader alone.
      const leader = this.leader()
      const alone = leader !== undefined && this.world.chance(0.4)
      const groups = new Map<string, number>()
      for (const id of ids) groups.set(id, alone ? (id === leader.id ? 1 : 0) : this.world.int(0, 2))
      for (const c of ["c1", "c2", "c3", "p1", "w1", "w2"]) groups.set(c, this.world.int(0, 2))
      this.network.partition(groups)
      this.partitions++
      this.note(`partition ${JSON.stringify([...groups])}`)
      // A leader cut off from its peers that also stalls (a GC pause) keeps believing it leads
      // for longer after it wakes: its clients on its side meet it then.
      if (alone && this.world.chance(0.5) && leader.pause()) {
        const ms = this.world.int(150, 800)
        this.pauses++
        this.note(`${leader.id} pauses for ${ms} ms`)
        this.world.schedule(ms, () => leader.resume())
      }
    } else if (r < 0.35) {
      this.network.heal()
      this.note("heal")
    } else if (r < 0.5) {
      const victim = this.world.chance(0.5) ? this.leader() : this.world.pick(this.nodes)
      if (victim !== undefined) this.crash(victim, "")
    } else if (r < 0.58) {
      const victim = this.world.chance(0.5) ? this.leader() : this.world.pick(this.nodes)
      if (victim?.running !== undefined) {
        this.note(`${victim.id} stops (SIGTERM)`)
        victim.stop(() => this.restartLater(victim, 20, 300))
      }
    } else if (r < 0.68) {
      // A pause past the election timeout: the others move on, then it wakes believing what it did.
      const victim = this.world.chance(0.6) ? this.leader() : this.world.pick(this.nodes)
      if (victim?.pause() === true) {
        const ms = this.world.int(50, 1_500)
        this.pauses++
        this.note(`${victim.id} pauses for ${ms} ms`)
        this.world.schedule(ms, () => {
          this.note(`${victim.id} resumes`)
          victim.resume()
        })
      }
    } else if (r < 0.74) {
      // Mostly the leader's: a leader whose own log lags commits through its followers.
      const victim = (this.world.chance(0.6) ? this.leader() : undefined) ?? this.world.pick(this.nodes)
      victim.disk.slowMs = this.world.int(5, 40)
      this.note(`${victim.id}'s disk slows to +${victim.disk.slowMs} ms a write`)
      this.world.schedule(this.world.int(100, 1_000), () => {
        victim.disk.slowMs = 0
      })
    } else if (r < 0.88) {
      // Mostly a little loss (a lost lease reply costs a worker its whole lease timeout), sometimes a lot.
      const harsh = this.world.chance(0.3)
      this.network.dropRate = this.world.random() * (harsh ? 0.2 : 0.04)
      this.network.dupRate = this.world.random() * (harsh ? 0.1 : 0.04)
      this.network.maxDelayMs = this.world.int(1, harsh ? 25 : 10)
      this.note(`network drop=${this.network.dropRate.toFixed(2)} dup=${this.network.dupRate.toFixed(2)} delay<=${this.network.maxDelayMs}`)
    } else if (r < 0.92) {
      this.wipe()
    } else if (r < 0.95) {
      this.transfer()
    } else if (r < 0.98) {
      // More requests at once than a node may hold, at the leader, a follower or the service.
      const target = this.world.chance(0.3) ? undefined : this.world.chance(0.5) ? this.leader()?.id : this.world.pick(this.nodes).id
      const count = this.world.int(20, 120)
      this.floods++
      this.note(`flood of ${count} requests at ${target ?? "the service"}`)
      this.flood.burst(target, count)
    } else {
      this.network.maxDelayMs = this.world.int(1, 4)
    }
  }

  async run(): Promise<SimResult> {
    const { chaosMs, healMs } = this.opts
    try {
      for (const n of this.nodes) this.world.schedule(this.world.int(0, this.opts.tickMs), () => n.boot())
      this.world.schedule(50, () => this.clients.start(3, 1, 2))
      const nemesis = (): void => {
        if (this.world.now >= chaosMs) return
        this.nemesis()
        this.world.schedule(this.world.int(100, 500), nemesis)
      }
      this.world.schedule(300, nemesis)
      // Membership changes on their own schedule, among everything else.
      const reconfigure = (): void => {
        if (this.world.now >= chaosMs || !this.reconfigures) return
        this.changeMembership()
        this.world.schedule(this.world.int(300, 1_500), reconfigure)
      }
      this.world.schedule(this.world.int(300, 1_500), reconfigure)
      this.world.afterStep = () => this.observeAll()

      await this.world.run(chaosMs)
      this.network.heal()
      this.network.maxDelayMs = 2
      for (const n of this.nodes) {
        n.resume()
        n.disk.slowMs = 0
      }
      this.note("final heal")
      for (const n of this.nodes) if (n.isDown) this.restartLater(n, 1, 20)
      // Clients keep going for half the healed time, then stop and read every key once more.
      await this.world.run(chaosMs + healMs / 2)
      // A call in flight may take its whole deadline (a parked lease: its wait and then some).
      const stopped = this.clients.stop()
      await this.runUntil(() => settledOr(stopped), this.world.now + 10_000)
      const finals = this.clients.finalReads()
      await this.runUntil(() => settledOr(finals), this.world.now + 10_000)
      await this.runUntil(() => this.caughtUp(), this.world.now + 5_000)
      this.elections = Math.max(0, ...this.states().map(([, s]) => s.term))
      await this.finalChecks()
      return this.result(true)
    } catch (err) {
      if (err instanceof SafetyViolation || err instanceof InvariantViolation || err instanceof ClientBug) return this.result(false, err.message)
      throw err
    } finally {
      this.clients.close()
      this.flood.close()
      for (const n of this.nodes) n.crash()
    }
  }

  /** Runs the world a millisecond at a time until `done` or the deadline (then fails). */
  private async runUntil(done: () => boolean, deadline: number): Promise<void> {
    while (!done()) {
      if (this.world.now >= deadline) throw new SafetyViolation(`liveness: still not done at ${deadline} ms (${this.describeCluster()})`)
      await this.world.run(this.world.now + 1)
    }
  }

  private describeCluster(): string {
    return this.nodes
      .map((n) => {
        const s = n.running?.consensus.inspect()
        if (s === undefined) return `${n.id} down`
        const progress = [...s.progress].map(([id, pr]) => `${id}:${pr.state}@${pr.next}`).join(",")
        const snap = n.running!.snapshotter.status()
        const sending = snap.sending.length > 0 ? ` sending to ${snap.sending.join(",")}` : ""
        const receiving = snap.receiving === null ? "" : ` receiving ${snap.receiving.index} (${snap.receiving.received} bytes)`
        return `${n.id} ${s.role} term ${s.term} base ${s.log.baseIndex} commit ${s.log.committed} applied ${n.running!.applier.applied}${progress === "" ? "" : ` [${progress}]`}${sending}${receiving}`
      })
      .join("; ")
  }

  /** Every node up, one leader, every member applied what it committed. */
  private caughtUp(): boolean {
    const leader = this.leader()
    if (leader === undefined || this.nodes.some((n) => n.running === undefined)) return false
    const target = leader.running!.consensus.inspect().log.committed
    return this.members().every((n) => n.running!.applier.applied === target)
  }

  private async finalChecks(): Promise<void> {
    this.checker.checkLogsMatch(this.states())
    const leader = this.leader()!
    const expected = digest(leader.running!.applier.kv, leader.running!.applier.jobs)
    for (const n of this.members()) {
      const a = n.running!.applier
      if (digest(a.kv, a.jobs) !== expected) throw new SafetyViolation(`state machines differ at index ${a.applied}: ${n.id} vs ${leader.id}`)
    }
    const report = checkRegisterHistory(this.clients.history.entries)
    if (report.valid === false) throw new SafetyViolation(`linearizability: ${report.violations.map((v) => v.explanation).join("\n")}`)
    if (report.valid === "unknown") throw new SafetyViolation(`linearizability: the search gave up on ${report.unknownKeys.join(", ")}`)
    if (this.clients.staleViolations.length > 0) throw new SafetyViolation(this.clients.staleViolations[0]!)
    this.checkJobs(leader.running!.applier.jobs)
    const written = this.flood.refusedKeys.find((key) => leader.running!.applier.kv.get(key) !== undefined)
    if (written !== undefined) throw new SafetyViolation(`a put of ${written} was answered busy, yet it was written`)
    await this.checkDisks()
  }

  private checkJobs(jobs: JobQueue): void {
    const record = this.clients.jobs
    for (const id of record.enqueued) if (jobs.get(id) === undefined) throw new SafetyViolation(`durability: acknowledged enqueue of job ${id} is lost`)
    for (const [id, token] of record.acked) {
      const j = jobs.get(id)
      if (j?.state !== "completed" || j.token !== token) throw new SafetyViolation(`job ${id} was acked with token ${token} but is ${j?.state} with token ${j?.token}`)
    }
    if (record.ackedTwice.length > 0) throw new SafetyViolation(`a job completed twice: ${record.ackedTwice[0]}`)
    if (record.tokenReused.length > 0) throw new SafetyViolation(record.tokenReused[0]!)
  }

  /** Stops every node cleanly, then reads each disk back: it must hold what the node applied. */
  private async checkDisks(): Promise<void> {
    const inMemory = new Map<string, () => string>()
    let down = 0
    for (const n of this.nodes) {
      const a = n.running!.applier
      inMemory.set(n.id, () => `${a.applied} ${digest(a.kv, a.jobs)}`)
      n.stop(() => down++)
    }
    const deadline = this.world.now + 10_000
    await this.runUntil(() => down === this.nodes.length, deadline)
    for (const n of this.nodes) {
      const loaded = await loadState(await n.disk.open())
      const onDisk = `${loaded.applied} ${digest(loaded.kv, loaded.jobs)}`
      if (onDisk !== inMemory.get(n.id)!()) throw new SafetyViolation(`${n.id}: the state on disk after a clean stop differs from the state it applied`)
    }
  }

  private result(ok: boolean, error?: string): SimResult {
    const base = {
      seed: this.opts.seed,
      ok,
      events: this.world.events,
      messages: this.network.delivered,
      ok_: this.clients.counts.ok,
      fail: this.clients.counts.fail,
      info: this.clients.counts.info,
      enqueued: this.clients.jobs.enqueued.size,
      completed: this.clients.jobs.acked.size,
      committed: this.checker.commitIndex,
      elections: this.elections,
      crashes: this.crashes,
      restarts: this.restarts,
      partitions: this.partitions,
      pauses: this.pauses,
      wipes: this.wipes,
      installs: this.installs,
      snapshots: this.snapshots,
      floods: this.floods,
      // The flood's, and the clients' calls that the typed client ended with `busy`.
      busy: this.flood.answers.busy + this.clients.history.entries.filter((e) => "error" in e && e.error === "busy").length,
      transfers: this.transfers,
      transfersDone: this.transfersDone,
      memberChanges: this.memberChanges,
      memberChangesTaken: this.memberChangesTaken
    }
    return error === undefined ? base : { ...base, error, failedAtMs: this.world.now }
  }
}

/** True once `p` has settled (checked between steps of the world). */
const settledOr = (p: Promise<unknown>): boolean => {
  const state = settled.get(p)
  if (state !== undefined) return state
  settled.set(p, false)
  void p.then(
    () => settled.set(p, true),
    () => settled.set(p, true)
  )
  return false
}
const settled = new WeakMap<Promise<unknown>, boolean>()

export const simulate = (opts: SimOptions): Promise<SimResult> => new Simulation(opts).run()
