/**
 * The chaos topology: N nats-servers clustered with routes, every route through a fault proxy,
 * and N Archio nodes, node `n<i>` attached to server `s<i>` only.
 *
 * ```
 *   n1 ── s1 ──proxy s1->s2──▶ s2 ── n2        each ordered pair (i, j) has its own proxy:
 *          ◀──proxy s2->s1──                   s<i> dials s<j>'s cluster port through it.
 *   (same for s1-s3, s2-s3)
 * ```
 *
 * Cutting the link between s<i> and s<j> cuts both proxies, so no message crosses between the
 * two servers in either direction: a real network partition between NATS servers, which the
 * Archio nodes see only as silence. NATS forwards a message over one route hop only, so a
 * "bridge" partition (s1-s2 and s2-s3 up, s1-s3 cut) really keeps n1 and n3 apart.
 *
 * Two server settings keep the proxies in the path:
 * - `--cluster_advertise` names a dead address: NATS gossips each server's advertised cluster
 *   address so peers dial it directly ("implicit routes"); a dead address makes those dials fail,
 *   so only the configured routes through the proxies exist.
 * - `--no_advertise`: servers do not tell clients about the other servers' client URLs, so a node
 *   whose server restarts reconnects to that same server rather than hopping to another one.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { mkdir } from "node:fs/promises"
import { join } from "node:path"
import { LocalCluster, type NodeStatus } from "../cluster.ts"
import { freePort, startNatsServer, type NatsServerHandle } from "../../bootstrap/natsServer.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { FaultProxy, type ProxyStats } from "./proxy.ts"

export const linkKey = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`)

interface ServerSlot {
  readonly index: number
  readonly name: string
  readonly clientPort: number
  readonly clusterPort: number
  readonly monitorPort: number
  readonly args: ReadonlyArray<string>
  readonly logFile: string
  handle: NatsServerHandle | undefined
}

export interface MeshOptions {
  readonly size: number
  /** Server logs go to `<logDir>/s<i>.log`. */
  readonly logDir: string
  readonly clusterName?: string
  /** Random source for proxy delay jitter. */
  readonly random?: () => number
}

/** N clustered nats-servers whose routes all pass through fault proxies. */
export class NatsMesh {
  /** Open cuts per link (`"i-j"`, 0-based): a link is cut while any fault holds it. */
  private readonly cuts = new Map<string, number>()
  private readonly delays = new Map<string, Array<{ readonly ms: number; readonly jitterMs: number }>>()

  private constructor(
    readonly servers: ReadonlyArray<ServerSlot>,
    private readonly proxies: ReadonlyMap<string, FaultProxy>
  ) {}

  static async start(options: MeshOptions): Promise<NatsMesh> {
    const n = options.size
    const clusterName = options.clusterName ?? "archio-chaos"
    const clientPorts: number[] = []
    const clusterPorts: number[] = []
    const monitorPorts: number[] = []
    for (let i = 0; i < n; i++) {
      clientPorts.push(await freePort())
      clusterPorts.push(await freePort())
      monitorPorts.push(await freePort())
    }
    // A port nobody listens on: the advertised cluster address, so implicit routes never form.
    const deadPort = await freePort()
    const proxies = new Map<string, FaultProxy>()
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue
        const proxy = await FaultProxy.start({ targetPort: clusterPorts[j]!, name: `s${i + 1}->s${j + 1}` }, options.random)
        proxies.set(`${i}->${j}`, proxy)
      }
    }
    const servers: ServerSlot[] = []
    for (let i = 0; i < n; i++) {
      const routes: string[] = []
      for (let j = 0; j < n; j++) if (j !== i) routes.push(`nats-route://127.0.0.1:${proxies.get(`${i}->${j}`)!.port}`)
      const args = [
        "--name",
        `s${i + 1}`,
        "--cluster_name",
        clusterName,
        "--cluster",
        `nats://127.0.0.1:${clusterPorts[i]}`,
        "--routes",
        routes.join(","),
        "--cluster_advertise",
        `127.0.0.1:${deadPort}`,
        "--no_advertise=true",
        "-m",
        String(monitorPorts[i])
      ]
      servers.push({
        index: i,
        name: `s${i + 1}`,
        clientPort: clientPorts[i]!,
        clusterPort: clusterPorts[i]!,
        monitorPort: monitorPorts[i]!,
        args,
        logFile: join(options.logDir, `s${i + 1}.log`),
        handle: undefined
      })
    }
    await mkdir(options.logDir, { recursive: true })
    const mesh = new NatsMesh(servers, proxies)
    for (let i = 0; i < n; i++) await mesh.startServer(i)
    await mesh.waitForRoutes(30_000)
    return mesh
  }

  get size(): number {
    return this.servers.length
  }

  url(i: number): string {
    return `nats://127.0.0.1:${this.servers[i]!.clientPort}`
  }

  isUp(i: number): boolean {
    return this.servers[i]!.handle !== undefined
  }

  async startServer(i: number): Promise<void> {
    const s = this.servers[i]!
    if (s.handle !== undefined) return
    s.handle = await startNatsServer({ port: s.clientPort, args: s.args, logFile: s.logFile })
  }

  /** Stops server `i` (SIGKILL: a crash; SIGTERM: a clean stop) and waits until it is gone. */
  async stopServer(i: number, signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    const s = this.servers[i]!
    const handle = s.handle
    if (handle === undefined) return
    s.handle = undefined
    if (signal === "SIGKILL" && handle.process.exitCode === null && handle.process.signalCode === null) handle.process.kill("SIGKILL")
    await handle.stop()
  }

  /** Number of routes server `i` reports (its /routez), or undefined when it does not answer. */
  async routeCount(i: number): Promise<number | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.servers[i]!.monitorPort}/routez`, { signal: AbortSignal.timeout(1000) })
      const body = (await res.json()) as { num_routes?: number }
      return body.num_routes
    } catch {
      return undefined
    }
  }

  /** Waits until every running server has a route to every other running server. */
  async waitForRoutes(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs
    while (performance.now() < deadline) {
      const up = this.servers.filter((s) => s.handle !== undefined)
      const counts = await Promise.all(up.map((s) => this.routeCount(s.index)))
      if (counts.every((c) => c !== undefined && c >= up.length - 1)) return true
      await new Promise((r) => setTimeout(r, 100))
    }
    return false
  }

  /** Cuts the link between servers a and b (both directions). Counted: heal as often as cut. */
  cut(a: number, b: number): void {
    const key = linkKey(a, b)
    this.cuts.set(key, (this.cuts.get(key) ?? 0) + 1)
    this.apply(a, b)
  }

  heal(a: number, b: number): void {
    const key = linkKey(a, b)
    const n = (this.cuts.get(key) ?? 0) - 1
    if (n <= 0) this.cuts.delete(key)
    else this.cuts.set(key, n)
    this.apply(a, b)
  }

  /** Adds latency to the link between a and b until `undelay` with the same numbers. */
  delay(a: number, b: number, ms: number, jitterMs: number): void {
    const key = linkKey(a, b)
    const list = this.delays.get(key) ?? []
    list.push({ ms, jitterMs })
    this.delays.set(key, list)
    this.apply(a, b)
  }

  undelay(a: number, b: number, ms: number, jitterMs: number): void {
    const key = linkKey(a, b)
    const list = this.delays.get(key) ?? []
    const at = list.findIndex((d) => d.ms === ms && d.jitterMs === jitterMs)
    if (at >= 0) list.splice(at, 1)
    if (list.length === 0) this.delays.delete(key)
    this.apply(a, b)
  }

  /** Every cut and delay lifted at once (the final heal). */
  healAll(): void {
    this.cuts.clear()
    this.delays.clear()
    for (const proxy of this.proxies.values()) proxy.heal()
  }

  /** Links cut right now, as `"i-j"` keys. */
  cutLinks(): ReadonlyArray<string> {
    return [...this.cuts.keys()]
  }

  proxyStats(): Record<string, ProxyStats> {
    const out: Record<string, ProxyStats> = {}
    for (const p of this.proxies.values()) out[p.name] = p.stats
    return out
  }

  private apply(a: number, b: number): void {
    const key = linkKey(a, b)
    const cut = (this.cuts.get(key) ?? 0) > 0
    const delays = this.delays.get(key) ?? []
    const ms = delays.reduce((m, d) => Math.max(m, d.ms), 0)
    const jitterMs = delays.reduce((m, d) => Math.max(m, d.jitterMs), 0)
    for (const dir of [`${a}->${b}`, `${b}->${a}`]) {
      const proxy = this.proxies.get(dir)!
      if (cut) proxy.cut()
      else {
        proxy.heal()
        if (ms > 0 || jitterMs > 0) proxy.delay(ms, jitterMs)
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => this.stopServer(s.index, "SIGTERM")))
    await Promise.all([...this.proxies.values()].map((p) => p.stop()))
  }
}

/** An `admin.snapshot` reply. */
export interface SnapshotReply {
  readonly node: string
  readonly index: number
  readonly term: number
  readonly size: number
  readonly checksum: string
  /** When it was taken, ms since the epoch (the node's clock). */
  readonly time: number
}

export interface ChaosClusterOptions {
  readonly nodes: number
  /** The run folder: node data in `data/`, logs in `logs/`. */
  readonly dir: string
  readonly cluster?: string
  readonly env?: Readonly<Record<string, string>>
  readonly random?: () => number
}

/** Connects to one server only: no other servers learned, reconnect to it forever. */
export const connectLocal = (url: string, name: string): Promise<NatsConnection> =>
  connect({
    servers: url,
    name,
    noAsyncTraces: true,
    ignoreClusterUpdates: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 5_000,
    waitOnFirstConnect: true
  })

/**
 * The whole system under test: the mesh, the Archio nodes (reusing LocalCluster's child
 * processes, node `n<i+1>` on server `i`), and one harness connection per server for status.
 */
export class ChaosCluster {
  private constructor(
    readonly mesh: NatsMesh,
    readonly nodes: LocalCluster,
    /** Harness connection to each server, for `admin.status` of the node attached there. */
    private readonly admin: ReadonlyArray<NatsConnection>
  ) {}

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const logDir = join(options.dir, "logs")
    const meshOptions: MeshOptions = options.random === undefined ? { size: options.nodes, logDir } : { size: options.nodes, logDir, random: options.random }
    const mesh = await NatsMesh.start(meshOptions)
    let nodes: LocalCluster | undefined
    const admin: NatsConnection[] = []
    try {
      const natsUrls: Record<string, string> = {}
      for (let i = 0; i < options.nodes; i++) natsUrls[`n${i + 1}`] = mesh.url(i)
      nodes = await LocalCluster.start({
        natsUrl: mesh.url(0),
        natsUrls,
        dataRoot: join(options.dir, "data"),
        logDir,
        size: options.nodes,
        cluster: options.cluster ?? "chaos",
        env: { _TAPJS_PROCESSINFO_COVERAGE_: "0", ...options.env }
      })
      for (let i = 0; i < options.nodes; i++) admin.push(await connectLocal(mesh.url(i), `archio-chaos-admin-s${i + 1}`))
      return new ChaosCluster(mesh, nodes, admin)
    } catch (e) {
      for (const nc of admin) await nc.close().catch(() => undefined)
      await nodes?.stop().catch(() => undefined)
      await mesh.stop()
      throw e
    }
  }

  get ids(): ReadonlyArray<string> {
    return this.nodes.ids
  }

  get cluster(): string {
    return this.nodes.cluster
  }

  /** Index of the server node `id` is attached to. */
  serverOf(id: string): number {
    return this.nodes.ids.indexOf(id)
  }

  /** `admin.status` of a node, asked through its own server; undefined when it does not answer. */
  async status(id: string, timeoutMs = 400): Promise<NodeStatus | undefined> {
    const i = this.serverOf(id)
    const nc = this.admin[i]
    if (nc === undefined || !this.mesh.isUp(i) || !this.nodes.isRunning(id)) return undefined
    try {
      const m = await nc.request(Subjects.node(this.cluster, id, "admin.status"), "{}", { timeout: timeoutMs })
      const body = m.json<NodeStatus & { ok?: boolean }>()
      return body.ok === false ? undefined : body
    } catch {
      return undefined
    }
  }

  /**
   * A request to node `id`'s own subject `op` (`admin.snapshot`, ...), through its server: the
   * parsed reply, or what went wrong (the node's error, a timeout, no responders).
   */
  async ask<A>(id: string, op: string, body: unknown, timeoutMs: number): Promise<{ readonly ok: true; readonly reply: A } | { readonly ok: false; readonly error: string }> {
    const i = this.serverOf(id)
    const nc = this.admin[i]
    if (nc === undefined || !this.mesh.isUp(i) || !this.nodes.isRunning(id)) return { ok: false, error: "down" }
    try {
      const m = await nc.request(Subjects.node(this.cluster, id, op), JSON.stringify(body), { timeout: timeoutMs })
      const reply = m.json<A & { ok?: boolean; error?: { code?: string; message?: string } }>()
      if (reply.ok === false) return { ok: false, error: `${reply.error?.code ?? "error"}: ${reply.error?.message ?? ""}` }
      return { ok: true, reply }
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) }
    }
  }

  /** `admin.snapshot` on node `id`: it takes a snapshot now and compacts its log. */
  snapshot(id: string, timeoutMs = 10_000): Promise<{ readonly ok: true; readonly reply: SnapshotReply } | { readonly ok: false; readonly error: string }> {
    return this.ask<SnapshotReply>(id, "admin.snapshot", {}, timeoutMs)
  }

  async statuses(timeoutMs = 400): Promise<Array<NodeStatus | undefined>> {
    return Promise.all(this.ids.map((id) => this.status(id, timeoutMs)))
  }

  /** The node that claims leadership with the highest term, if any answers. */
  async leader(): Promise<string | undefined> {
    const leaders = (await this.statuses()).filter((s): s is NodeStatus => s?.role === "leader")
    leaders.sort((a, b) => b.term - a.term)
    return leaders[0]?.id
  }

  /**
   * Waits until the cluster is whole again: every node answers, all agree on one leader and
   * term, and every node has applied the leader's commit index. Returns what it last saw when
   * the time runs out.
   */
  async waitSettled(timeoutMs: number): Promise<{ readonly settled: boolean; readonly statuses: Array<NodeStatus | undefined> }> {
    const deadline = performance.now() + timeoutMs
    let last: Array<NodeStatus | undefined> = []
    while (performance.now() < deadline) {
      last = await this.statuses(800)
      const all = last.filter((s): s is NodeStatus => s !== undefined)
      const leader = all.find((s) => s.role === "leader")
      if (
        all.length === this.ids.length &&
        leader !== undefined &&
        all.every((s) => s.leader === leader.id && s.term === leader.term && s.appliedIndex >= leader.commitIndex)
      ) {
        return { settled: true, statuses: last }
      }
      await new Promise((r) => setTimeout(r, 200))
    }
    return { settled: false, statuses: last }
  }

  async stop(): Promise<void> {
    for (const nc of this.admin) await nc.close().catch(() => undefined)
    // Paused nodes must run again to stop; LocalCluster sends SIGCONT before SIGTERM.
    this.mesh.healAll()
    await this.nodes.stop()
    await this.mesh.stop()
  }
}
