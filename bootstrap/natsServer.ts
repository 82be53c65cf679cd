/**
 * Finding and starting `nats-server` for the dev launcher, tests and benchmarks.
 * We never touch a server we did not start; the one we start listens on a free port.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const candidates = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]

/** The exact command that installs nats-server on this machine, for messages. */
export const installHint =
  "sudo apt-get update && sudo apt-get install -y nats-server   (Debian/Ubuntu; elsewhere see https://docs.nats.io/running-a-nats-service/introduction/installation)"

/** Path of the nats-server binary, or undefined when none is installed. */
export const findNatsServer = (): string | undefined => {
  const fromEnv = process.env["NATS_SERVER_BIN"]
  if (fromEnv !== undefined && fromEnv !== "" && existsSync(fromEnv)) return fromEnv
  for (const path of candidates) if (existsSync(path)) return path
  const which = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" })
  const found = which.stdout.trim()
  return which.status === 0 && found !== "" ? found : undefined
}

/**
 * Installs nats-server with apt-get when we are root and apt-get exists; otherwise
 * returns undefined so the caller can print `installHint`.
 */
export const installNatsServer = (log: (line: string) => void = () => {}): string | undefined => {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0
  const hasApt = spawnSync("sh", ["-c", "command -v apt-get"]).status === 0
  if (!isRoot || !hasApt) return undefined
  log("nats-server is missing: installing it with apt-get (Debian package nats-server)")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env })
  const res = spawnSync("apt-get", ["install", "-y", "-qq", "nats-server"], { stdio: "inherit", env })
  return res.status === 0 ? findNatsServer() : undefined
}

/** A TCP port nobody listens on right now (the kernel picks it). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** True when something accepts TCP connections at host:port within `timeoutMs`. */
export const canConnect = (host: string, port: number, timeoutMs = 500): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/** host and port of a nats:// URL (the first one of a comma-separated list). */
export const hostPort = (url: string): { host: string; port: number } => {
  const first = url.split(",")[0]!.trim()
  const parsed = new URL(first.includes("://") ? first : `nats://${first}`)
  return { host: parsed.hostname || "127.0.0.1", port: parsed.port === "" ? 4222 : Number(parsed.port) }
}

export interface NatsServerHandle {
  readonly url: string
  readonly port: number
  readonly process: ChildProcess
  /** Stops the server and removes its folder; safe to call twice. */
  readonly stop: () => Promise<void>
}

export interface StartOptions {
  readonly port?: number
  /** Extra nats-server arguments, for example `["-js"]`. */
  readonly args?: ReadonlyArray<string>
  /** Where nats-server writes its log; by default it is discarded. */
  readonly logFile?: string
  /** Variables added to the server's environment (a configuration file may refer to them). */
  readonly env?: Readonly<Record<string, string>>
}

/** Starts a private nats-server on a free port and waits until it accepts connections. */
export const startNatsServer = async (options: StartOptions = {}): Promise<NatsServerHandle> => {
  const bin = findNatsServer()
  if (bin === undefined) throw new Error(`nats-server is not installed. Install it with:\n  ${installHint}`)
  const port = options.port ?? (await freePort())
  const dir = await mkdtemp(join(tmpdir(), "archio-nats-"))
  const args = ["-a", "127.0.0.1", "-p", String(port), "-sd", dir, ...(options.args ?? [])]
  if (options.logFile !== undefined) args.push("-l", options.logFile)
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...options.env } })
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString()
  })
  let stopped = false
  const stop = async () => {
    if (!stopped) {
      stopped = true
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
        child.kill("SIGTERM")
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000)
        await exited
        clearTimeout(timer)
      }
    }
    await rm(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 10_000
  while (!(await canConnect("127.0.0.1", port, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`nats-server did not start on port ${port}: ${stderr.trim() || "no output"}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return { url: `nats://127.0.0.1:${port}`, port, process: child, stop }
}
