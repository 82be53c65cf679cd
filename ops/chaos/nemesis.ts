/**
 * The nemesis: a seeded schedule of faults, and the code that injects them into a ChaosCluster.
 *
 * `planSchedule(seed, ...)` is pure: the same seed, duration, fault list and node count give the
 * same steps (kinds, timings, shapes, which role each fault aims at). Only what cannot be known
 * in advance is decided while running: which node leads right now. Those picks come from a
 * second generator forked from the same seed, so a run that sees the same leaders makes the same
 * choices. (Timing on a real machine never repeats exactly; the seed fixes the plan.)
 *
 * Faults:
 * - `kill`: SIGKILL a node (the leader, a follower or any), keep it down, restart it from its
 *   data folder.
 * - `pause`: SIGSTOP a node for longer than the election timeout, then SIGCONT.
 * - `partition`: cut NATS routes through the fault proxies: `majority-minority` (a random
 *   minority of servers apart from the rest), `isolate-leader` (the leader's server alone),
 *   `bridge` (two sides that cannot talk, one node that talks to both).
 * - `nats-restart`: stop a NATS server (SIGKILL or SIGTERM), keep it down, start it again on the
 *   same ports; its node and clients lose NATS meanwhile.
 * - `delay`: add latency and jitter to every route.
 * - `snapshot`: `admin.snapshot` on every node that is up (each takes a snapshot and compacts
 *   its log); in about half of the steps where it is alone, also a wipe: a follower is stopped,
 *   its data folder deleted and the node started again empty, so it must come back by
 *   InstallSnapshot from the leader (only when every node and server is up, and only after the
 *   other nodes hold everything committed, so no committed entry lives on the wiped disk
 *   alone). The step ends when the wiped node has caught up (at most 30 s). A plan with
 *   `snapshot` among its faults always holds at least one wipe.
 * A step holds one fault, sometimes two of different kinds at once; a quiet gap follows each.
 * At the end everything is healed (`healAll`).
 */
import type { HistoryRecorder } from "./history.ts"
import type { NodeStatus } from "../cluster.ts"
import type { ChaosCluster } from "./topology.ts"

export const faultKinds = ["kill", "pause", "partition", "nats-restart", "delay", "snapshot", "membership"] as const
export type FaultKind = (typeof faultKinds)[number]

export const isFaultKind = (s: string): s is FaultKind => (faultKinds as ReadonlyArray<string>).includes(s)

export type Target = "leader" | "follower" | "any"
export type PartitionShape = "majority-minority" | "isolate-leader" | "bridge"

export type Fault =
  | { readonly kind: "kill"; readonly target: Target; readonly downMs: number }
  | { readonly kind: "pause"; readonly target: Target; readonly pauseMs: number }
  | { readonly kind: "partition"; readonly shape: PartitionShape; readonly order: ReadonlyArray<number>; readonly holdMs: number }
  | { readonly kind: "nats-restart"; readonly target: Target; readonly downMs: number; readonly signal: "SIGKILL" | "SIGTERM" }
  | { readonly kind: "delay"; readonly ms: number; readonly jitterMs: number; readonly holdMs: number }
  /** `wipe`: also stop a follower, delete its data and start it again, down for `downMs`. */
  | { readonly kind: "snapshot"; readonly wipe: boolean; readonly downMs: number }
  /** Replace a node by itself: remove it, wipe it, start it with --join, add, catch up, promote. */
  | { readonly kind: "membership"; readonly target: Target }

export interface Step {
  /** Milliseconds after the nemesis starts. */
  readonly at: number
  readonly faults: ReadonlyArray<Fault>
}

/** mulberry32: small, fast, seedable; `fork` derives an independent stream. */
export class Rng {
  private s: number

  constructor(seed: number) {
    this.s = seed >>> 0
  }

  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0
    let z = this.s
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<A>(xs: ReadonlyArray<A>): A {
    if (xs.length === 0) throw new Error("pick from an empty list")
    return xs[Math.floor(this.next() * xs.length)]!
  }

  shuffle<A>(xs: ReadonlyArray<A>): Array<A> {
    const out = [...xs]
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1))
      ;[out[i], out[j]] = [out[j]!, out[i]!]
    }
    return out
  }

  /** An independent generator derived from this one's seed and a label. */
  fork(label: string): Rng {
    let h = this.s ^ 0x9e3779b9
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0
    return new Rng(h)
  }
}

export interface PlanOptions {
  readonly durationMs: number
  readonly faults: ReadonlyArray<FaultKind>
  readonly nodes: number
  /** Quiet time before the first fault; default 2 s. */
  readonly warmupMs?: number
  /** Chance a step combines two faults of different kinds; default 0.2. */
  readonly comboChance?: number
}

const planFault = (rng: Rng, kind: FaultKind, nodes: number): Fault => {
  const target = (): Target => rng.pick<Target>(["leader", "leader", "follower", "any"])
  switch (kind) {
    case "kill":
      return { kind, target: target(), downMs: rng.int(300, 6_000) }
    case "pause":
      // Well past the default election timeout (150-300 ms), up to a few seconds.
      return { kind, target: target(), pauseMs: rng.int(600, 5_000) }
    case "partition":
      return {
        kind,
        shape: rng.pick<PartitionShape>(["majority-minority", "isolate-leader", "bridge"]),
        order: rng.shuffle(Array.from({ length: nodes }, (_, i) => i)),
        holdMs: rng.int(1_500, 10_000)
      }
    case "nats-restart":
      return { kind, target: target(), downMs: rng.int(200, 5_000), signal: rng.chance(0.7) ? "SIGKILL" : "SIGTERM" }
    case "delay":
      return { kind, ms: rng.int(20, 300), jitterMs: rng.int(0, 200), holdMs: rng.int(2_000, 8_000) }
    case "snapshot":
      return { kind, wipe: rng.chance(0.5), downMs: rng.int(300, 3_000) }
    case "membership":
      return { kind, target: target() }
  }
}

/** Time planned for a node's replacement (remove, restart empty, add, catch up, promote). */
const membershipMs = 8_000

/** Time planned for the forced snapshots of a step, and for a wiped node to catch up. */
const snapshotMs = 1_000
const catchUpMs = 3_000

export const faultDuration = (f: Fault): number => {
  switch (f.kind) {
    case "kill":
    case "nats-restart":
      return f.downMs
    case "pause":
      return f.pauseMs
    case "partition":
    case "delay":
      return f.holdMs
    case "snapshot":
      return f.wipe ? f.downMs + catchUpMs : snapshotMs
    case "membership":
      return membershipMs
  }
}

const isWipe = (f: Fault): boolean => f.kind === "snapshot" && f.wipe

/** The whole schedule for a run, from the seed alone. */
export const planSchedule = (seed: number, options: PlanOptions): Array<Step> => {
  const rng = new Rng(seed).fork("plan")
  const steps: Step[] = []
  if (options.faults.length === 0) return steps
  const combo = options.comboChance ?? 0.2
  let at = options.warmupMs ?? 2_000
  for (;;) {
    const kinds = [rng.pick(options.faults)]
    if (options.faults.length > 1 && rng.chance(combo)) kinds.push(rng.pick(options.faults.filter((k) => k !== kinds[0])))
    // A wipe is never combined with another fault: it runs only on a whole cluster.
    const faults = kinds.map((k) => planFault(rng, k, options.nodes)).map((f) => (f.kind === "snapshot" && kinds.length > 1 ? { ...f, wipe: false } : f))
    const length = Math.max(...faults.map(faultDuration))
    // Leave time to heal and settle inside the run.
    if (at + length > options.durationMs) break
    steps.push({ at, faults })
    at += length + rng.int(1_000, 3_000)
  }
  return options.faults.includes("snapshot") ? withAWipe(steps, rng, options.durationMs) : steps
}

/**
 * A plan with `snapshot` enabled gets at least one wipe (a short run may draw none): when it has
 * none, the step nearest the middle of the run becomes a lone wipe, dropping the steps after it
 * that it would overlap. A run too short for a wipe has none.
 */
const withAWipe = (steps: Array<Step>, rng: Rng, durationMs: number): Array<Step> => {
  if (steps.length === 0 || steps.some((s) => s.faults.some(isWipe))) return steps
  const minMs = 300
  const drawn = rng.int(minMs, 3_000)
  const order = steps.map((_, i) => i).sort((a, b) => Math.abs(a - steps.length / 2) - Math.abs(b - steps.length / 2))
  const chosen = order.find((i) => steps[i]!.at + minMs + catchUpMs <= durationMs)
  if (chosen === undefined) return steps
  const at = steps[chosen]!.at
  const downMs = Math.min(drawn, durationMs - at - catchUpMs)
  const end = at + downMs + catchUpMs
  return [...steps.slice(0, chosen), { at, faults: [{ kind: "snapshot", wipe: true, downMs }] }, ...steps.slice(chosen + 1).filter((s) => s.at >= end + 1_000)]
}

/** Which servers a partition cuts apart, as pairs of server indexes, and the groups it makes. */
export const partitionCuts = (
  shape: PartitionShape,
  order: ReadonlyArray<number>,
  leaderIndex: number | undefined
): { readonly cuts: Array<readonly [number, number]>; readonly groups: Array<ReadonlyArray<number>> } => {
  const n = order.length
  const across = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.flatMap((x) => b.map((y) => [x, y] as const))
  if (shape === "bridge" && n >= 3) {
    const bridge = order[0]!
    const rest = order.slice(1)
    const left = rest.slice(0, Math.floor(rest.length / 2))
    const right = rest.slice(Math.floor(rest.length / 2))
    return { cuts: across(left, right), groups: [[...left, bridge], [bridge, ...right]] }
  }
  let minority: number[]
  if (shape === "isolate-leader" && leaderIndex !== undefined) minority = [leaderIndex]
  else minority = order.slice(0, Math.max(1, Math.floor((n - 1) / 2)))
  const majority = order.filter((i) => !minority.includes(i))
  return { cuts: across(minority, majority), groups: [minority, majority] }
}

export interface NemesisStats {
  readonly steps: number
  readonly injected: Record<string, number>
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted === true) return resolve()
    const timer = setTimeout(done, Math.max(0, ms))
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener("abort", done)
      resolve()
    }
    signal?.addEventListener("abort", done)
  })

/** Polls `f` every 100 ms until it gives a value, or `ms` pass (undefined). */
const pollFor = async <A>(ms: number, f: () => Promise<A | undefined>): Promise<A | undefined> => {
  const deadline = performance.now() + ms
  for (;;) {
    const a = await f()
    if (a !== undefined) return a
    if (performance.now() >= deadline) return undefined
    await sleep(100)
  }
}

/** Polls `test` every 100 ms until it holds (true) or `ms` pass (false). */
const waitUntil = async (ms: number, test: () => Promise<boolean>): Promise<boolean> => (await pollFor(ms, async () => ((await test()) ? true : undefined))) === true

/** Runs a schedule against a cluster, recording every fault in the history. */
export class Nemesis {
  private readonly paused = new Set<string>()
  private readonly killed = new Set<string>()
  private readonly serversDown = new Set<number>()
  private readonly injected: Record<string, number> = {}
  /** Nodes removed by a membership step and not yet voters again (healAll finishes them). */
  private readonly rejoining = new Set<string>()
  private stepsRun = 0

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly history: HistoryRecorder,
    /** Runtime picks (which follower, ...): a fork of the run's seed. */
    private readonly rng: Rng,
    private readonly log: (line: string) => void = () => {}
  ) {}

  get stats(): NemesisStats {
    return { steps: this.stepsRun, injected: { ...this.injected } }
  }

  /** Runs the steps in time; `stop` aborts waiting (a step under way still heals itself). */
  async run(steps: ReadonlyArray<Step>, stop: AbortSignal): Promise<void> {
    const started = performance.now()
    for (const step of steps) {
      await sleep(step.at - (performance.now() - started), stop)
      if (stop.aborted) return
      this.stepsRun++
      const claimed = new Set<string>()
      const leader = await this.cluster.leader()
      await Promise.all(step.faults.map((f) => this.inject(f, leader, claimed)))
    }
  }

  private pickNode(target: Target, leader: string | undefined, claimed: Set<string>): string {
    const ids = this.cluster.ids.filter((id) => !claimed.has(id))
    const pool = ids.length > 0 ? ids : [...this.cluster.ids]
    let chosen: string
    if (target === "leader" && leader !== undefined && pool.includes(leader)) chosen = leader
    else if (target === "follower") chosen = this.rng.pick(pool.filter((id) => id !== leader).length > 0 ? pool.filter((id) => id !== leader) : pool)
    else chosen = this.rng.pick(pool)
    claimed.add(chosen)
    return chosen
  }

  private count(name: string): void {
    this.injected[name] = (this.injected[name] ?? 0) + 1
  }

  private async inject(f: Fault, leader: string | undefined, claimed: Set<string>): Promise<void> {
    const nodes = this.cluster.nodes
    const mesh = this.cluster.mesh
    switch (f.kind) {
      case "kill": {
        const id = this.pickNode(f.target, leader, claimed)
        const role = id === leader ? "leader" : "follower"
        this.count("kill")
        this.history.nemesis("start", "kill", { node: id, role, downMs: f.downMs })
        this.log(`kill ${id} (${role}) for ${f.downMs} ms`)
        this.killed.add(id)
        this.paused.delete(id)
        await nodes.kill(id)
        await sleep(f.downMs)
        if (!nodes.isRunning(id)) nodes.startNode(id)
        this.killed.delete(id)
        this.history.nemesis("end", "kill", { node: id, restarted: true })
        return
      }
      case "pause": {
        const id = this.pickNode(f.target, leader, claimed)
        const role = id === leader ? "leader" : "follower"
        if (!nodes.isRunning(id)) return
        this.count("pause")
        this.history.nemesis("start", "pause", { node: id, role, pauseMs: f.pauseMs })
        this.log(`pause ${id} (${role}) for ${f.pauseMs} ms`)
        this.paused.add(id)
        await nodes.pause(id)
        await sleep(f.pauseMs)
        if (this.paused.delete(id)) await nodes.resume(id)
        this.history.nemesis("end", "pause", { node: id })
        return
      }
      case "partition": {
        const leaderIndex = leader === undefined ? undefined : this.cluster.serverOf(leader)
        const { cuts, groups } = partitionCuts(f.shape, f.order, leaderIndex)
        const names = (g: ReadonlyArray<number>) => g.map((i) => this.cluster.ids[i]!)
        const detail = { shape: f.shape, groups: groups.map(names), cut: cuts.map(([a, b]) => `s${a + 1}-s${b + 1}`), leader, holdMs: f.holdMs }
        this.count("partition")
        this.count(`partition:${f.shape}`)
        this.history.nemesis("start", "partition", detail)
        this.log(`partition ${f.shape}: ${groups.map((g) => names(g).join(",")).join(" | ")} for ${f.holdMs} ms`)
        for (const [a, b] of cuts) mesh.cut(a, b)
        await sleep(f.holdMs)
        for (const [a, b] of cuts) mesh.heal(a, b)
        this.history.nemesis("end", "partition", { shape: f.shape })
        return
      }
      case "nats-restart": {
        const id = this.pickNode(f.target, leader, claimed)
        const server = this.cluster.serverOf(id)
        if (this.serversDown.has(server)) return
        this.count("nats-restart")
        this.history.nemesis("start", "nats-restart", { server: `s${server + 1}`, node: id, role: id === leader ? "leader" : "follower", signal: f.signal, downMs: f.downMs })
        this.log(`nats-restart s${server + 1} (node ${id}) with ${f.signal}, down ${f.downMs} ms`)
        this.serversDown.add(server)
        await mesh.stopServer(server, f.signal)
        await sleep(f.downMs)
        await this.startServer(server)
        this.history.nemesis("end", "nats-restart", { server: `s${server + 1}` })
        return
      }
      case "delay": {
        const n = mesh.size
        this.count("delay")
        this.history.nemesis("start", "delay", { ms: f.ms, jitterMs: f.jitterMs, holdMs: f.holdMs })
        this.log(`delay every route ${f.ms} ms (+${f.jitterMs} jitter) for ${f.holdMs} ms`)
        for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) mesh.delay(a, b, f.ms, f.jitterMs)
        await sleep(f.holdMs)
        for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) mesh.undelay(a, b, f.ms, f.jitterMs)
        this.history.nemesis("end", "delay", {})
        return
      }
      case "membership": {
        const id = this.pickNode(f.target, leader, claimed)
        const role = id === leader ? "leader" : "follower"
        this.count("membership")
        this.history.nemesis("start", "membership", { node: id, role })
        this.log(`membership: replace ${id} (${role}): remove, wipe, start with --join, add, promote`)
        this.killed.add(id)
        const removed = await this.memberChange("remove", id, 15_000)
        if (removed === undefined) {
          this.killed.delete(id)
          this.count("membership:skipped")
          this.log(`membership: ${id} could not be removed within 15 s; left as it is`)
          this.history.nemesis("end", "membership", { node: id, skipped: "not removed" })
          return
        }
        this.rejoining.add(id)
        await this.cluster.nodes.stopNode(id)
        await this.cluster.nodes.wipe(id)
        this.cluster.nodes.rejoinNode(id)
        this.killed.delete(id)
        const started = performance.now()
        const back = await this.restoreMember(id, 30_000)
        const ms = Math.round(performance.now() - started)
        if (back) this.count("membership:replaced")
        this.log(`membership: ${id} ${back ? `is a voter again ${ms} ms after its start` : "is NOT a voter again within 30 s (finished at the heal)"}`)
        // Half the time leadership then moves to the node just back (admin.transfer).
        let transferred: string | undefined
        if (back && this.rng.chance(0.5)) {
          const now = await this.cluster.leader()
          const r = now === undefined || now === id ? undefined : await this.cluster.ask<{ leader: string; ms: number }>(now, "admin.transfer", { id }, 5_000)
          transferred = r === undefined ? "no leader to ask" : r.ok ? `${r.reply.leader} leads after ${r.reply.ms} ms` : r.error
          if (r?.ok === true) this.count("membership:transferred")
          this.log(`membership: leadership to ${id}: ${transferred}`)
        }
        this.history.nemesis("end", "membership", { node: id, removedBy: removed, voterAgain: back, ms, ...(transferred === undefined ? {} : { transfer: transferred }) })
        return
      }
      case "snapshot": {
        const up = this.cluster.ids.filter((id) => this.isUp(id))
        this.count("snapshot")
        this.history.nemesis("start", "snapshot", { nodes: up, wipe: f.wipe, ...(f.wipe ? { downMs: f.downMs } : {}) })
        const taken = await Promise.all(
          up.map(async (id) => {
            const sent = performance.now()
            let r = await this.cluster.snapshot(id)
            // A node started a moment ago may not have subscribed yet.
            while (!r.ok && r.error.includes("no responders") && performance.now() - sent < 5_000 && this.isUp(id)) {
              await sleep(200)
              r = await this.cluster.snapshot(id)
            }
            if (r.ok) this.count("snapshot:forced")
            return r.ok ? { node: id, index: r.reply.index, size: r.reply.size, ms: Math.round(performance.now() - sent) } : { node: id, error: r.error }
          })
        )
        this.log(`snapshot on ${taken.map((t) => ("error" in t ? `${t.node} (failed: ${t.error})` : `${t.node} (index ${t.index}, ${t.size} bytes)`)).join(", ") || "no node (none is up)"}`)
        const wiped = f.wipe ? await this.wipeFollower(f.downMs) : undefined
        this.history.nemesis("end", "snapshot", { taken, ...(wiped === undefined ? {} : { wipe: wiped }) })
        return
      }
    }
  }

  /** Running (and not being killed), not paused, and its NATS server up. */
  private isUp(id: string): boolean {
    return this.cluster.nodes.isRunning(id) && !this.killed.has(id) && !this.paused.has(id) && this.cluster.mesh.isUp(this.cluster.serverOf(id))
  }

  /**
   * Stops a follower, deletes its data folder and starts it again empty; waits (at most 30 s)
   * until it has applied the leader's commit index, and says whether it installed a snapshot
   * (its log says "installed a snapshot from") or caught up from the log alone (the leader had
   * not compacted). Skipped unless every node and server is up with no link cut, and until the
   * other nodes have applied the leader's commit index: a committed entry must not live on the
   * wiped disk alone.
   */
  private async wipeFollower(downMs: number): Promise<Record<string, unknown>> {
    const skip = (why: string): Record<string, unknown> => {
      this.count("snapshot:wipe-skipped")
      this.log(`snapshot: no wipe: ${why}`)
      return { skipped: why }
    }
    const cluster = this.cluster
    if (!cluster.ids.every((id) => this.isUp(id)) || cluster.mesh.cutLinks().length > 0) return skip("not every node and server is up")
    // Nodes restarted by the step before may still be starting: give them a moment.
    const leader = await pollFor(10_000, async (): Promise<NodeStatus | undefined> => {
      const statuses = (await cluster.statuses(1_000)).filter((s) => s !== undefined)
      const l = statuses.filter((s) => s.role === "leader").sort((a, b) => b.term - a.term)[0]
      return l !== undefined && statuses.length === cluster.ids.length && statuses.every((s) => s.leader === l.id) ? l : undefined
    })
    if (leader === undefined) return skip("no leader that every node follows, for 10 s")
    const commitIndex = leader.commitIndex
    const followers = cluster.ids.filter((id) => id !== leader.id)
    const id = this.rng.pick(followers)
    const others = cluster.ids.filter((x) => x !== id)
    const held = await waitUntil(10_000, async () => (await Promise.all(others.map((o) => cluster.status(o, 1_000)))).every((s) => s !== undefined && s.appliedIndex >= commitIndex))
    if (!held) return skip(`${others.join(",")} did not all apply the leader's commit index ${commitIndex} within 10 s`)
    const leaderBase = (await cluster.status(leader.id, 1_000))?.logBaseIndex ?? leader.logBaseIndex
    let installed = false
    const unlisten = cluster.nodes.onLine((from, line) => {
      if (from === id && line.includes("installed a snapshot from")) installed = true
    })
    try {
      this.count("snapshot:wipe")
      this.log(`snapshot: wipe ${id} (follower; leader ${leader.id}, log base ${leaderBase ?? "?"}): stop, delete its data, down ${downMs} ms`)
      this.killed.add(id)
      await cluster.nodes.kill(id)
      await cluster.nodes.wipe(id)
      await sleep(downMs)
      const started = performance.now()
      if (!cluster.nodes.isRunning(id)) cluster.nodes.startNode(id)
      this.killed.delete(id)
      let caughtUpMs: number | undefined
      await waitUntil(30_000, async () => {
        const now = await cluster.leader()
        const [l, s] = await Promise.all([now === undefined ? undefined : cluster.status(now, 1_000), cluster.status(id, 1_000)])
        if (l === undefined || s === undefined || s.appliedIndex < l.commitIndex) return false
        caughtUpMs = performance.now() - started
        return true
      })
      // The log line may trail the status a little.
      if (caughtUpMs !== undefined) await waitUntil(3_000, () => Promise.resolve(installed))
      if (installed) this.count("snapshot:installed")
      if (caughtUpMs === undefined) this.count("snapshot:not-caught-up")
      this.log(
        `snapshot: ${id} ${caughtUpMs === undefined ? "did NOT catch up within 30 s" : `caught up ${Math.round(caughtUpMs)} ms after its start`}, ${installed ? "by InstallSnapshot" : "without installing a snapshot"}`
      )
      return { node: id, leader: leader.id, leaderLogBase: leaderBase ?? null, caughtUpMs: caughtUpMs === undefined ? null : Math.round(caughtUpMs), installed }
    } finally {
      unlisten()
    }
  }

  /**
   * One membership change (`admin.<op>`) asked of whichever node leads, again until it is taken
   * or `ms` pass: the node that answered, or undefined.
   */
  private async memberChange(op: "add" | "promote" | "remove", id: string, ms: number): Promise<string | undefined> {
    return pollFor(ms, async () => {
      const leader = await this.cluster.leader()
      if (leader === undefined) return undefined
      const r = await this.cluster.ask<{ node: string }>(leader, `admin.${op}`, { id }, 5_000)
      return r.ok ? r.reply.node : undefined
    })
  }

  /** Adds `id` (started empty with --join) as a learner, waits until it caught up, promotes it. */
  private async restoreMember(id: string, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms
    const left = () => Math.max(0, deadline - performance.now())
    if ((await this.memberChange("add", id, left())) === undefined) return false
    // Promotion is refused while the learner lags; asked again until it is taken.
    if ((await this.memberChange("promote", id, left())) === undefined) return false
    this.rejoining.delete(id)
    return true
  }

  private async startServer(i: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.cluster.mesh.startServer(i)
        this.serversDown.delete(i)
        return
      } catch (e) {
        // The port can linger for a moment after a crash; try again shortly.
        if (attempt >= 20) throw e
        await sleep(250)
      }
    }
  }

  /**
   * Undoes everything: routes healed, servers up, paused nodes resumed, killed nodes started.
   * Returns the nodes found down that the nemesis had not killed: they exited on their own (a
   * bug to report even when the history is linearizable); they are started again too.
   */
  async healAll(): Promise<Array<string>> {
    this.cluster.mesh.healAll()
    for (let i = 0; i < this.cluster.mesh.size; i++) if (!this.cluster.mesh.isUp(i)) await this.startServer(i)
    const crashed: string[] = []
    for (const id of this.cluster.ids) {
      if (this.paused.delete(id)) await this.cluster.nodes.resume(id)
      if (!this.cluster.nodes.isRunning(id)) {
        if (!this.killed.has(id)) crashed.push(id)
        this.cluster.nodes.startNode(id)
      }
    }
    this.killed.clear()
    // A replacement cut short by other faults: the node is made a voter again now.
    for (const id of [...this.rejoining]) {
      const back = await this.restoreMember(id, 60_000)
      this.log(`heal: ${id} ${back ? "is a voter again" : "could NOT be made a voter again"}`)
    }
    this.history.nemesis("note", "heal-all", crashed.length > 0 ? { exitedOnTheirOwn: crashed } : undefined)
    return crashed
  }
}
