/**
 * A real local cluster for tests, benchmarks and chaos runs: each node is its own
 * `archio node` process (what an operator runs), on a NATS server given by URL. Nodes can be
 * killed, restarted, paused and resumed like real machines.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createWriteStream, type WriteStream } from "node:fs"
import { mkdir, rm } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { connect, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node"
import * as Subjects from "../protocol/subjects.ts"

/** The `archio` command, run with this Node (bin/archio.js keeps a bundle of the sources fresh). */
export const binPath = resolve(dirname(fileURLToPath(import.meta.url)), "..", "bin", "archio.js")

export interface ClusterOptions {
  readonly natsUrl: string
  /** Each node keeps its database in `<dataRoot>/<id>`. */
  readonly dataRoot: string
  readonly size?: number
  readonly cluster?: string
  /** Node logs go to `<logDir>/<id>.log` (appended across restarts); discarded when absent. */
  readonly logDir?: string
  /** Extra environment for every node (e.g. `TICK_MS`). */
  readonly env?: Readonly<Record<string, string>>
  /** Extra environment for one node, by id, over `env` (e.g. its own `HTTP_PORT`). */
  readonly envOf?: Readonly<Record<string, Readonly<Record<string, string>>>>
  /**
   * Options of the harness connection beyond the URL, such as the credentials of a NATS user
   * allowed the nodes' `admin.status` (and its `inboxPrefix`), when the server refuses anonymous ones.
   */
  readonly harness?: Partial<ConnectionOptions>
  /**
   * NATS URL per node id, for topologies where each node talks to its own server (the chaos
   * harness); a node not listed uses `natsUrl`. The harness connection always uses `natsUrl`.
   */
  readonly natsUrls?: Readonly<Record<string, string>>
}

export interface NodeStatus {
  readonly id: string
  readonly role: string
  readonly term: number
  readonly leader: string | null
  readonly commitIndex: number
  readonly appliedIndex: number
  readonly lastIndex: number
  /** Where the log starts after compaction (issue 19; absent from older nodes). */
  readonly logBaseIndex?: number
  readonly logBaseTerm?: number
  /** The last snapshot taken or installed on the node. */
  readonly snapshot?: { readonly index: number; readonly term: number; readonly size: number; readonly time: number } | null
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Called with each line a node writes (stdout or stderr), across its restarts. */
export type LineListener = (id: string, line: string) => void

export class LocalCluster {
  /** The nodes this harness started: the seeded ones (`--peers`), then any it started with `--join`. */
  readonly ids: string[]
  /** Nodes started with `--join` (restarted the same way). */
  private readonly joined = new Set<string>()
  readonly cluster: string
  private readonly procs = new Map<string, ChildProcess>()
  private readonly logs = new Map<string, WriteStream>()
  private readonly lineListeners = new Set<LineListener>()

  private constructor(
    private readonly options: ClusterOptions,
    readonly nc: NatsConnection
  ) {
    this.ids = Array.from({ length: options.size ?? 3 }, (_, i) => `n${i + 1}`)
    this.cluster = options.cluster ?? "dev"
  }

  /**
   * Starts every node and waits until a leader is elected and every node answers: two nodes
   * can elect one before the third has subscribed to its subjects.
   */
  static async start(options: ClusterOptions): Promise<LocalCluster> {
    const nc = await connect({ servers: options.natsUrl, noAsyncTraces: true, name: "archio-cluster-harness", ...options.harness })
    const c = new LocalCluster(options, nc)
    if (options.logDir !== undefined) await mkdir(options.logDir, { recursive: true })
    for (const id of c.ids) c.startNode(id)
    await c.waitForLeader(30_000)
    await c.waitForEvery(() => true, 30_000, "answered")
    return c
  }

  isRunning(id: string): boolean {
    const p = this.procs.get(id)
    return p !== undefined && p.exitCode === null && p.signalCode === null
  }

  /** The folder node `id` keeps its database in. */
  dataDir(id: string): string {
    return join(this.options.dataRoot, id)
  }

  /** Deletes node `id`'s data folder (a lost disk); the node must be stopped. */
  async wipe(id: string): Promise<void> {
    if (this.isRunning(id)) throw new Error(`node ${id} is running; stop or kill it before wiping its data`)
    await rm(this.dataDir(id), { recursive: true, force: true })
  }

  /** Calls `listener` with every line any node writes from now on; returns an unsubscribe. */
  onLine(listener: LineListener): () => void {
    this.lineListeners.add(listener)
    return () => this.lineListeners.delete(listener)
  }

  /** The file node `id` logs to, when the cluster keeps logs. */
  logFile(id: string): string | undefined {
    return this.options.logDir === undefined ? undefined : join(this.options.logDir, `${id}.log`)
  }

  /** The process id of node `id` while it runs (for /proc/<pid>/status and the like). */
  pid(id: string): number | undefined {
    return this.isRunning(id) ? this.procs.get(id)?.pid : undefined
  }

  /** Starts (or restarts) one node process with its data folder. */
  /** Starts a new node with `--join`: empty, no member, waiting for `admin.add`. */
  joinNode(id: string): void {
    if (this.ids.includes(id)) throw new Error(`node ${id} is known already`)
    this.ids.push(id)
    this.joined.add(id)
    this.startNode(id)
  }

  /** Starts a known node again with `--join` from now on (after it was removed and wiped). */
  rejoinNode(id: string): void {
    this.joined.add(id)
    this.startNode(id)
  }

  startNode(id: string): void {
    if (this.isRunning(id)) throw new Error(`node ${id} is already running`)
    const seeded = Array.from({ length: this.options.size ?? 3 }, (_, i) => `n${i + 1}`)
    const args = [
      binPath,
      "node",
      "--id",
      id,
      "--cluster",
      this.cluster,
      ...(this.joined.has(id) ? ["--join"] : ["--peers", seeded.join(",")]),
      "--nats",
      this.options.natsUrls?.[id] ?? this.options.natsUrl,
      "--data",
      this.dataDir(id)
    ]
    // Supervised: a node exits when its stdin closes, so none outlives a crashed harness.
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...this.options.env, ...this.options.envOf?.[id], ARCHIO_SUPERVISED: "1" },
      stdio: ["pipe", "pipe", "pipe"]
    })
    const logDir = this.options.logDir
    if (logDir !== undefined) {
      let log = this.logs.get(id)
      if (log === undefined) {
        log = createWriteStream(join(logDir, `${id}.log`), { flags: "a" })
        this.logs.set(id, log)
      }
      child.stdout?.pipe(log, { end: false })
      child.stderr?.pipe(log, { end: false })
    } else {
      child.stdout?.resume()
      child.stderr?.resume()
    }
    for (const stream of [child.stdout, child.stderr]) {
      let partial = ""
      stream?.on("data", (chunk: Buffer) => {
        if (this.lineListeners.size === 0) {
          partial = ""
          return
        }
        const lines = (partial + chunk.toString("utf8")).split("\n")
        partial = lines.pop()!
        for (const line of lines) for (const l of this.lineListeners) l(id, line)
      })
    }
    this.procs.set(id, child)
  }

  /** Sends `signal` and, for terminating signals, waits until the process is gone. */
  async signal(id: string, signal: NodeJS.Signals): Promise<void> {
    const p = this.procs.get(id)
    if (p === undefined || !this.isRunning(id)) return
    const exited = new Promise<void>((r) => p.once("exit", () => r()))
    p.kill(signal)
    if (signal === "SIGKILL" || signal === "SIGTERM" || signal === "SIGINT") await exited
  }

  kill(id: string): Promise<void> {
    return this.signal(id, "SIGKILL")
  }

  /** Stops one node cleanly (SIGTERM; SIGKILL after `graceMs`) and waits until it is gone. */
  async stopNode(id: string, graceMs = 10_000): Promise<void> {
    const p = this.procs.get(id)
    if (p === undefined || !this.isRunning(id)) return
    const exited = new Promise<void>((r) => p.once("exit", () => r()))
    p.kill("SIGCONT")
    p.kill("SIGTERM")
    const timer = setTimeout(() => p.kill("SIGKILL"), graceMs)
    await exited
    clearTimeout(timer)
  }

  pause(id: string): Promise<void> {
    return this.signal(id, "SIGSTOP")
  }

  resume(id: string): Promise<void> {
    return this.signal(id, "SIGCONT")
  }

  /** One node's admin.status, or undefined when it does not answer in time. */
  async status(id: string, timeoutMs = 500): Promise<NodeStatus | undefined> {
    try {
      const m = await this.nc.request(Subjects.node(this.cluster, id, "admin.status"), "{}", { timeout: timeoutMs })
      return m.json<NodeStatus>()
    } catch {
      return undefined
    }
  }

  /** Waits until a running node reports itself leader and returns its id. */
  async waitForLeader(timeoutMs: number, among: ReadonlyArray<string> = this.ids): Promise<string> {
    const deadline = performance.now() + timeoutMs
    while (performance.now() < deadline) {
      const statuses = await Promise.all(among.filter((id) => this.isRunning(id)).map((id) => this.status(id, 300)))
      const leader = statuses.find((s) => s?.role === "leader")
      if (leader !== undefined) return leader.id
      await sleep(25)
    }
    throw new Error(`no leader among ${among.join(",")} within ${timeoutMs} ms`)
  }

  /** Waits until every running node has applied at least `index`. */
  waitForApplied(index: number, timeoutMs: number): Promise<void> {
    return this.waitForEvery((s) => s.appliedIndex >= index, timeoutMs, `applied index ${index}`)
  }

  /** Waits until every running node answers admin.status with a status that passes `test`. */
  private async waitForEvery(test: (s: NodeStatus) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (performance.now() < deadline) {
      const statuses = await Promise.all(this.ids.filter((id) => this.isRunning(id)).map((id) => this.status(id, 300)))
      if (statuses.every((s) => s !== undefined && test(s))) return
      await sleep(25)
    }
    throw new Error(`not every node ${what} within ${timeoutMs} ms`)
  }

  /** Stops every node (SIGTERM, then SIGKILL after a grace period) and closes the harness. */
  async stop(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.stopNode(id)))
    for (const log of this.logs.values()) log.end()
    if (!this.nc.isClosed()) await this.nc.close()
  }
}
