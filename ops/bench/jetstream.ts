/**
 * NATS JetStream KV with three replicas, the other peer of `kv-vs`: three `nats-server -js`
 * processes on loopback, clustered by routes on free ports, each with its own store folder in
 * one temp folder, and a KV bucket with `replicas: 3` and direct gets (`allow_direct`: any
 * replica answers a get from its own copy, so a get may miss the latest put; JetStream's
 * fast read, as Archio's stale get is Archio's). The client (`@nats-io/kv`) connects to the
 * server of the bucket's stream leader only: JetStream's best case, as etcd's client talks to
 * etcd's leader and Archio's typed client to Archio's.
 *
 * Durability differs: nats-server 2.9 (Debian's) acknowledges a put once a majority holds it
 * in memory and has written it to its file, and syncs to disk every 2 minutes (no per-write
 * fsync; `sync_interval` came with 2.10), where Archio and etcd sync every append.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { jetstreamManager } from "@nats-io/jetstream"
import { Kvm, type KV } from "@nats-io/kv"
import { canConnect, findNatsServer, freePort, installHint } from "../../bootstrap/natsServer.ts"
import { withStop } from "./cleanup.ts"

/** One server of the cluster. */
export interface JetStreamServer {
  /** `server_name`, also the config file's name (`<name>.conf`). */
  readonly name: string
  readonly clientPort: number
  readonly routePort: number
  readonly storeDir: string
}

/** The NATS cluster name the servers share. */
export const jetStreamClusterName = "archio-bench"

/** The config file of `self` in a cluster of `all` (routes to every other server). */
export const jetStreamConfig = (self: JetStreamServer, all: ReadonlyArray<JetStreamServer>): string => {
  const routes = all.filter((s) => s.name !== self.name).map((s) => `    nats-route://127.0.0.1:${s.routePort}`)
  return [
    `server_name: ${self.name}`,
    `listen: 127.0.0.1:${self.clientPort}`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(self.storeDir)}`,
    `}`,
    `cluster {`,
    `  name: ${jetStreamClusterName}`,
    `  listen: 127.0.0.1:${self.routePort}`,
    `  routes: [`,
    ...routes,
    `  ]`,
    `}`,
    ``
  ].join("\n")
}

/** `size` servers named js1, js2, ... with their store folders under `dir`. */
export const jetStreamServers = (dir: string, ports: ReadonlyArray<{ readonly client: number; readonly route: number }>): JetStreamServer[] =>
  ports.map((p, i) => ({ name: `js${i + 1}`, clientPort: p.client, routePort: p.route, storeDir: join(dir, `js${i + 1}`, "store") }))

export interface JetStreamCluster {
  readonly servers: ReadonlyArray<JetStreamServer>
  /** nats://127.0.0.1:<port> of each server, in `servers`' order. */
  readonly urls: ReadonlyArray<string>
  /** Stops every server and removes the folder; safe twice. */
  stop(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts a `size`-server JetStream cluster on free ports and waits until each server accepts connections. */
export const startJetStreamCluster = async (size = 3): Promise<JetStreamCluster> => {
  const bin = findNatsServer()
  if (bin === undefined) throw new Error(`nats-server is not installed. Install it with:\n  ${installHint}`)
  const dir = await mkdtemp(join(tmpdir(), "archio-bench-jetstream-"))
  const ports: { client: number; route: number }[] = []
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), route: await freePort() })
  const servers = jetStreamServers(dir, ports)
  const procs: ChildProcess[] = []
  const outputs: string[] = []
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await Promise.all(
        procs.map(async (p) => {
          if (p.exitCode !== null || p.signalCode !== null) return
          const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()))
          p.kill("SIGTERM")
          const timer = setTimeout(() => p.kill("SIGKILL"), 5000)
          await exited
          clearTimeout(timer)
        })
      )
      await rm(dir, { recursive: true, force: true })
    })())
  try {
    for (const [i, s] of servers.entries()) {
      await mkdir(s.storeDir, { recursive: true })
      const conf = join(dir, `${s.name}.conf`)
      await writeFile(conf, jetStreamConfig(s, servers))
      const p = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] })
      outputs[i] = ""
      p.stderr!.on("data", (chunk: Buffer) => {
        if (outputs[i]!.length < 4096) outputs[i] += chunk.toString()
      })
      procs.push(p)
    }
    const deadline = performance.now() + 10_000
    for (const [i, s] of servers.entries()) {
      while (!(await canConnect("127.0.0.1", s.clientPort, 200))) {
        if (procs[i]!.exitCode !== null || performance.now() > deadline) {
          throw new Error(`nats-server ${s.name} did not start on port ${s.clientPort}: ${outputs[i]!.trim() || "no output"}`)
        }
        await sleep(25)
      }
    }
  } catch (e) {
    await stop()
    throw e
  }
  return { servers, urls: servers.map((s) => `nats://127.0.0.1:${s.clientPort}`), stop }
}

/**
 * Creates (or opens) bucket `name` with `replicas` and direct gets, retrying while the
 * cluster has no JetStream meta leader yet (a fresh cluster answers 503 for a few seconds).
 */
export const createBucket = async (nc: NatsConnection, name: string, replicas: number, timeoutMs = 30_000): Promise<KV> => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    try {
      return await new Kvm(nc).create(name, { replicas, history: 1, allow_direct: true })
    } catch (e) {
      if (performance.now() > deadline) throw new Error(`no KV bucket ${name} (R${replicas}) within ${timeoutMs} ms: ${e instanceof Error ? e.message : String(e)}`)
      await sleep(250)
    }
  }
}

/** The `server_name` of the bucket's stream leader, once it has one. */
export const bucketLeader = async (nc: NatsConnection, bucket: string, timeoutMs = 30_000): Promise<string> => {
  const jsm = await jetstreamManager(nc)
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const info = await jsm.streams.info(`KV_${bucket}`).catch(() => undefined)
    const leader = info?.cluster?.leader
    const replicas = info?.cluster?.replicas ?? []
    // Every replica is current: puts and direct gets measured from the start, not during catch-up.
    if (leader !== undefined && leader !== "" && replicas.length === (info?.config.num_replicas ?? 1) - 1 && replicas.every((r) => r.current)) return leader
    if (performance.now() > deadline) throw new Error(`bucket ${bucket} has no stream leader with current replicas within ${timeoutMs} ms`)
    await sleep(100)
  }
}

export interface JetStreamKvRun {
  readonly kv: KV
  /** The connection to the stream leader's server. */
  readonly nc: NatsConnection
  /** e.g. "nats-server 2.9.10". */
  readonly version: string
  /** The stream leader's server name. */
  readonly leader: string
  readonly cluster: JetStreamCluster
}

/**
 * Runs `run` with an R3 bucket `bench` on a fresh three-server JetStream cluster, the client
 * on the stream leader's server; then stops everything (on Ctrl-C too).
 */
export const withJetStreamKv = async <A>(run: (j: JetStreamKvRun) => Promise<A>): Promise<A> => {
  const cluster = await startJetStreamCluster(3)
  return withStop(cluster.stop, async () => {
    const setup = await connect({ servers: [...cluster.urls], noAsyncTraces: true, name: "archio-bench-jetstream-setup" })
    let leader: string
    try {
      await createBucket(setup, "bench", 3)
      leader = await bucketLeader(setup, "bench")
    } finally {
      await setup.close()
    }
    const url = cluster.urls[cluster.servers.findIndex((s) => s.name === leader)]!
    const nc = await connect({ servers: url, noAsyncTraces: true, noRandomize: true, name: "archio-bench-jetstream" })
    try {
      const kv = await new Kvm(nc).open("bench")
      const version = `nats-server ${nc.info?.version ?? "?"}`
      return await run({ kv, nc, version, leader, cluster })
    } finally {
      await nc.close()
    }
  })
}
