/**
 * A private Redis 7 for the BullMQ side of `jobs-vs-bullmq`: Debian's `redis-server`, started
 * by the bench on a free port with a temp folder, never the machine's shared one on 6379.
 * Durability as the comparison states it: an append-only file only (no RDB snapshots, whose
 * forks would land in the middle of a measurement), synced on every write (`appendfsync
 * always`, the setting that acknowledges only what is on disk, as Archio does on a majority)
 * or once a second (`everysec`, Redis's default for AOF: up to a second of acknowledged jobs
 * lost on a crash). One process, no replica: BullMQ's usual deployment.
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { canConnect, freePort } from "../../bootstrap/natsServer.ts"
import { atInterrupt } from "./cleanup.ts"

export type AppendFsync = "always" | "everysec"

export const redisInstallHint = "sudo apt-get install -y redis-server   (Debian/Ubuntu: Redis 7)"

/**
 * BullMQ 6 loads its Redis driver, ioredis, as an optional peer dependency: without it every
 * Queue and Worker fails. Pinned to the version BullMQ 6.7.0 is tested with.
 */
export const ioredisInstallHint = "npm install --save-dev --save-exact ioredis@5.11.1   (BullMQ's Redis driver, an optional peer of bullmq 6)"

/** Why BullMQ cannot run here (no redis-server, no ioredis), or undefined when it can. */
export const bullmqMissing = (): string | undefined => {
  if (findRedisServer() === undefined) return `no redis-server on PATH; install it with: ${redisInstallHint}`
  try {
    // Resolved the way BullMQ's own require("ioredis") resolves it (NODE_PATH included).
    createRequire(import.meta.url).resolve("ioredis")
  } catch {
    return `BullMQ needs the ioredis package, which is not installed; add it with: ${ioredisInstallHint}`
  }
  return undefined
}

export const findRedisServer = (): string | undefined => {
  if (existsSync("/usr/bin/redis-server")) return "/usr/bin/redis-server"
  const which = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" })
  return which.status === 0 && which.stdout.trim() !== "" ? which.stdout.trim() : undefined
}

/** The redis-server command line of a private, AOF-only server on loopback. */
export const redisArgs = (o: { readonly port: number; readonly dir: string; readonly appendfsync: AppendFsync }): string[] => [
  "--port", String(o.port),
  "--bind", "127.0.0.1",
  "--dir", o.dir,
  "--appendonly", "yes",
  "--appendfsync", o.appendfsync,
  // No RDB snapshots: their forks would land inside a measurement, and the AOF is the durability under test.
  "--save", "",
  // BullMQ refuses to trust a server that may evict its keys.
  "--maxmemory-policy", "noeviction",
  "--daemonize", "no",
  "--logfile", ""
]

export interface RedisServer {
  readonly port: number
  /** e.g. "Redis server v=7.0.15". */
  readonly version: string
  readonly appendfsync: AppendFsync
  /** Its data folder (the AOF lives in `appendonlydir/`), removed by `stop`. */
  readonly dir: string
  /** Stops the server (SIGTERM: Redis syncs its AOF and exits) and removes its folder; safe twice. */
  stop(): Promise<void>
}

/** Starts a private Redis on a free port and waits until it accepts connections. */
export const startRedis = async (appendfsync: AppendFsync): Promise<RedisServer> => {
  const bin = findRedisServer()
  if (bin === undefined) throw new Error(`redis-server is not installed; ${redisInstallHint}`)
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), "archio-bench-redis-"))
  const proc = spawn(bin, redisArgs({ port, dir, appendfsync }), { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const keep = (chunk: Buffer) => {
    if (output.length < 8192) output += chunk.toString()
  }
  proc.stdout.on("data", keep)
  proc.stderr.on("data", keep)
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()))
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM")
        const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000)
        await exited
        clearTimeout(timer)
      }
      await rm(dir, { recursive: true, force: true })
    })())
  const off = atInterrupt(stop)
  const deadline = performance.now() + 10_000
  while (!(await canConnect("127.0.0.1", port, 200))) {
    if (proc.exitCode !== null || performance.now() > deadline) {
      off()
      await stop()
      throw new Error(`redis-server did not start on port ${port}: ${output.trim() || "no output"}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  const version = spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout.split(" sha=")[0]?.trim() ?? "redis-server"
  return {
    port,
    version,
    appendfsync,
    dir,
    stop: async () => {
      off()
      await stop()
    }
  }
}
