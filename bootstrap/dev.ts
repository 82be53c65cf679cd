/**
 * `archio dev` (and `npm start`): a local cluster in one terminal.
 *
 * 1. Uses the NATS server at NATS_URL (default nats://127.0.0.1:4222) when one answers there;
 *    otherwise starts its own `nats-server` on a free port (installing it with apt-get when we
 *    are root, else printing the install command and exiting 1).
 * 2. Starts nodes n1, n2, n3 as child processes (`node bin/archio.js node ...`), data under
 *    ./.archio/<id>, HTTP ports 8081-8083 (a free port instead of a taken one), every output
 *    line prefixed with the node id.
 * 3. Waits until every node answers on its own status subject, then prints what to type next.
 * 4. Ctrl-C / SIGTERM: SIGTERM to every node, SIGKILL after `stopGraceMs`, stop the nats-server
 *    it started, exit 0 (1 when a node had to be killed or failed to stop cleanly).
 *
 * A node that exits on its own is reported and restarted after a back-off (1 s, doubling up
 * to 16 s); after 5 failures in a row, each within 10 s of starting, it is left down and said
 * so, and when every node is down the launcher stops with exit 1. Restarting keeps `npm start`
 * a three-node cluster through crashes during development; the log shows every exit.
 *
 * `--secure` always starts its own nats-server, with the shipped configuration (ops/nats/
 * single.conf: four roles, anonymous connections refused) and fresh credentials for each role
 * (bootstrap/secureNats.ts), written to .archio/secure/<role>.env (mode 0600) and printed once;
 * the nodes connect as `node`, the launcher as `admin`, and the HTTP shims require a generated
 * token for writes.
 */
import type { NatsConnection } from "@nats-io/transport-node"
import { Either } from "effect"
import { spawn, type ChildProcess } from "node:child_process"
import { randomInt } from "node:crypto"
import { mkdirSync } from "node:fs"
import * as net from "node:net"
import { join, relative, resolve } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { defineCommand } from "./command.ts"
import { clusterOption, natsOptions, readCluster, readNats, redactUrl, type NatsSettings } from "./config.ts"
import { connectClient } from "./nats.ts"
import {
  clientEnvironment,
  newCredentials,
  passwordFrom,
  roles,
  serverEnvironment,
  writeCredentialFiles,
  writePrivateFile,
  writeServerConfig,
  type Credentials,
  type RoleCredentials
} from "./secureNats.ts"
import * as subjects from "../protocol/subjects.ts"
import {
  canConnect,
  findNatsServer,
  freePort,
  hostPort,
  installHint,
  installNatsServer,
  startNatsServer,
  type NatsServerHandle
} from "./natsServer.ts"
import { ConfigError, type CommandLine, type OptionSpec, type OptionTable } from "./options.ts"
import { processTerminal, type Terminal } from "./terminal.ts"

export const nodeIds = ["n1", "n2", "n3"] as const
export const firstHttpPort = 8081
/** How long stopping nodes may take before they get SIGKILL. */
export const stopGraceMs = 10_000
const readyTimeoutMs = 60_000
const duplicateSignalMs = 1000
const healthyAfterMs = 10_000
const maxQuickFailures = 5

const binPath = fileURLToPath(new URL("../bin/archio.js", import.meta.url))

/** The same settings without their flags: archio dev reads them from the environment only. */
const fromEnvironment = <Table extends OptionTable>(table: Table): { readonly [Key in keyof Table]: OptionSpec } =>
  // Object.entries forgets the keys; the map keeps every one of them.
  Object.fromEntries(Object.entries(table).map(([key, { flag: _flag, ...spec }]) => [key, spec])) as { readonly [Key in keyof Table]: OptionSpec }

/**
 * What archio dev reads from the environment (its only flag is `--secure`); its environment is
 * passed on to the nodes, so one variable sets both.
 */
const { nats: natsUrl, ...natsAuth } = natsOptions

export const devVariables = {
  ...fromEnvironment({ nats: { ...natsUrl, help: "NATS server to use when one answers there" }, cluster: clusterOption, ...natsAuth }),
  noColor: { env: "NO_COLOR", help: "plain prefixes even on a terminal" },
  forceColor: { env: "FORCE_COLOR", help: "coloured prefixes even when the output is not a terminal (0: not)" }
} as const satisfies Record<string, OptionSpec>

export const devFlags = {
  secure: {
    flag: "--secure",
    help: "own nats-server with the roles of ops/nats and new credentials (.archio/secure/)"
  }
} as const satisfies Record<string, OptionSpec>

export interface DevSettings {
  readonly cluster: string
  readonly nats: NatsSettings
  readonly color: "never" | "always" | "on a terminal"
  readonly secure: boolean
}

export const devSettings = (line: CommandLine<keyof typeof devVariables | keyof typeof devFlags>): Either.Either<DevSettings, ConfigError> => {
  const problems: Array<string> = []
  const cluster = readCluster(line, problems)
  const nats = readNats(line, problems)
  const force = line.get("forceColor")
  const color = line.get("noColor") !== undefined ? "never" : force !== undefined && force.value !== "0" ? "always" : "on a terminal"
  const secure = line.has("secure")
  if (secure) {
    // Its own server and credentials: a NATS variable meant for another server would be ignored.
    const given = (Object.keys(natsOptions) as Array<keyof typeof natsOptions>).flatMap((key) => line.get(key)?.source ?? [])
    if (given.length > 0) {
      problems.push(`--secure starts its own nats-server with generated credentials, so ${given.join(", ")} cannot be used with it: unset ${given.length === 1 ? "it" : "them"}`)
    }
  }
  if (problems.length > 0 || cluster === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ cluster, nats, color, secure })
}

// ---------------------------------------------------------------------------------------------
// Output

const useColor = (settings: DevSettings, tty: boolean): boolean =>
  settings.color === "always" || (settings.color === "on a terminal" && tty)

const colors = ["36", "35", "33", "34", "32"]

export const prefixFor = (name: string, index: number, color: boolean): string =>
  color ? `\x1b[${colors[index % colors.length]}m[${name}]\x1b[0m ` : `[${name}] `

const pipeLines = (stream: NodeJS.ReadableStream | null, prefix: string, write: (text: string) => void): void => {
  if (stream === null) return
  createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => write(`${prefix}${line}\n`))
}

// ---------------------------------------------------------------------------------------------
// Ports

const portFree = (port: number): Promise<boolean> =>
  new Promise((done) => {
    const server = net.createServer()
    server.unref()
    server.once("error", () => done(false))
    server.listen(port, () => server.close(() => done(true)))
  })

/** 8081, 8082, 8083, each replaced by a free port when something already listens there. */
export const pickHttpPorts = async (count: number, first = firstHttpPort): Promise<Array<number>> => {
  const ports: Array<number> = []
  for (let i = 0; i < count; i++) ports.push((await portFree(first + i)) ? first + i : await freePort())
  return ports
}

// ---------------------------------------------------------------------------------------------
// Nodes

interface Child {
  readonly id: string
  args: ReadonlyArray<string>
  readonly prefix: string
  process: ChildProcess | undefined
  startedAt: number
  quickFailures: number
  restartTimer: ReturnType<typeof setTimeout> | undefined
  givenUp: boolean
}

const describeExit = (code: number | null, signal: NodeJS.Signals | null): string =>
  signal !== null ? `signal ${signal}` : `code ${code ?? "?"}`

const alive = (p: ChildProcess | undefined): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null

const waitExit = (p: ChildProcess): Promise<void> =>
  alive(p) ? new Promise((done) => p.once("exit", () => done())) : Promise.resolve()

/** Resolves once every node answers on its own status subject (or the time is up). */
const waitReady = async (nc: NatsConnection, cluster: string, ids: ReadonlyArray<string>, isStopping: () => boolean): Promise<boolean> => {
  const pending = new Set(ids)
  const deadline = Date.now() + readyTimeoutMs
  while (pending.size > 0 && Date.now() < deadline && !isStopping()) {
    for (const id of [...pending]) {
      try {
        await nc.request(subjects.node(cluster, id, "admin.status"), new Uint8Array(0), { timeout: 500 })
        pending.delete(id)
      } catch {
        // not up yet
      }
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 250))
  }
  return pending.size === 0
}

/** What `--secure` made: the credentials of each role, their files, the HTTP token. */
interface Secured {
  /** .archio/secure: the server's configuration and the credential files. */
  readonly dir: string
  readonly credentials: RoleCredentials
  readonly files: { readonly [R in keyof RoleCredentials]: string }
  readonly httpToken: string
  readonly httpTokenFile: string
}

interface ResolvedNats {
  readonly url: string
  readonly server: NatsServerHandle | undefined
  readonly secured: Secured | undefined
}

const noServer = (say: (line: string) => void, wanted: string): number => {
  say(`no NATS server answers at ${redactUrl(wanted)} and nats-server is not installed.`)
  say(`Install it with:\n  ${installHint}\nor set NATS_URL to a running NATS server, then run this again.`)
  return 1
}

/**
 * `--secure`: the shipped single-server configuration for our cluster in .archio/secure/, a
 * nats-server on a free port that reads the fresh passwords from its environment, and each
 * role's credentials written next to it.
 */
const startSecureNats = async (settings: DevSettings, home: string, say: (line: string) => void): Promise<ResolvedNats | number> => {
  if (findNatsServer() === undefined && installNatsServer((line) => say(line)) === undefined) {
    say("nats-server is not installed.")
    say(`Install it with:\n  ${installHint}\nthen run this again.`)
    return 1
  }
  const dir = join(home, "secure")
  const config = await writeServerConfig(dir, { cluster: settings.cluster })
  const credentials = newCredentials()
  // The files first (they name the URL): nothing is left running when writing them fails.
  const port = await freePort()
  const files = await writeCredentialFiles(dir, credentials, `nats://127.0.0.1:${port}`, settings.cluster)
  const httpToken = passwordFrom(randomInt)
  const httpTokenFile = join(dir, "http.env")
  await writePrivateFile(httpTokenFile, `HTTP_TOKEN=${httpToken}\n`)
  const logFile = join(home, "nats-server.log")
  say(`--secure: starting nats-server with ${relative(resolve(home, ".."), config)} (ops/nats/single.conf) on a free port (log: ${logFile})`)
  const server = await startNatsServer({ port, logFile, args: ["-c", config], env: serverEnvironment(credentials) })
  return { url: server.url, server, secured: { dir, credentials, files, httpToken, httpTokenFile } }
}

const resolveNats = async (settings: DevSettings, home: string, say: (line: string) => void): Promise<ResolvedNats | number> => {
  if (settings.secure) return startSecureNats(settings, home, say)
  const wanted = settings.nats.servers.join(",")
  const { host, port } = hostPort(settings.nats.servers[0] ?? "nats://127.0.0.1:4222")
  if (await canConnect(host, port, 1000)) {
    say(`using the NATS server that answers at ${redactUrl(wanted)}`)
    return { url: wanted, server: undefined, secured: undefined }
  }
  if (findNatsServer() === undefined && installNatsServer((line) => say(line)) === undefined) return noServer(say, wanted)
  mkdirSync(home, { recursive: true })
  const logFile = join(home, "nats-server.log")
  say(`no NATS server answers at ${redactUrl(wanted)}: starting nats-server on a free port (log: ${logFile})`)
  const server = await startNatsServer({ logFile })
  return { url: server.url, server, secured: undefined }
}

/** The settings of a connection as `credentials` (the launcher's own, as admin). */
const settingsAs = (credentials: Credentials, url: string): NatsSettings => ({
  servers: url.split(","),
  user: credentials.user,
  pass: credentials.password,
  token: undefined,
  credsFile: undefined,
  nkeyFile: undefined,
  inboxPrefix: credentials.inboxPrefix,
  tls: undefined
})

/** What the banner says after "try:" on a cluster without credentials. */
const openTryLines = (url: string, cluster: string, httpPort: number): Array<string> => {
  const shown = redactUrl(url)
  const flags = cluster === "dev" ? "" : ` --cluster ${cluster}`
  return [
    `cluster "${cluster}" is up: ${nodeIds.join(", ")} answer on NATS at ${shown}`,
    "try:",
    `  nats req -s ${shown} ${subjects.admin(cluster, "status")} ''`,
    `  npx archio status --nats ${shown}${flags}`,
    `  npx archio status --nats ${shown}${flags} --node n2`,
    `  npx archio kv put name luffy --nats ${shown}${flags}; npx archio kv get name --nats ${shown}${flags}`,
    `  nats req -s ${shown} ${subjects.jobs(cluster, "enqueue")} '{"queue":"emails","payload":{"to":"a@b.c"}}'`,
    `  curl localhost:${httpPort}/health; curl localhost:${httpPort}/metrics`
  ]
}

/** The banner of `--secure`: the credentials of every role, once, and how to use each. */
export const secureTryLines = (url: string, cluster: string, httpPort: number, secured: Secured, cwd: string): Array<string> => {
  const file = (path: string): string => relative(cwd, path)
  const c = secured.credentials
  const natsAs = (role: keyof RoleCredentials): string => `nats -s ${url} --user ${c[role].user} --password ${c[role].password} --inbox-prefix ${c[role].inboxPrefix}`
  return [
    `cluster "${cluster}" is up (secure): ${nodeIds.join(", ")} answer on NATS at ${url}; anonymous connections are refused`,
    `credentials (new every run, shown only now; also in ${file(secured.dir)}/, mode 0600):`,
    ...roles.map((role) => `  ${role.padEnd(6)} user ${c[role].user.padEnd(6)} password ${c[role].password}  inbox prefix ${c[role].inboxPrefix}  ${file(secured.files[role])}${role === "node" ? "  (the nodes use it)" : ""}`),
    `  HTTP token ${secured.httpToken}  ${file(secured.httpTokenFile)}  (writes and /raft/status on the HTTP shims)`,
    "try:",
    `  ${natsAs("client")} req ${subjects.kv(cluster, "put")} '{"key":"name","value":"luffy"}'`,
    `  ${natsAs("admin")} req ${subjects.admin(cluster, "status")} ''`,
    `  ${natsAs("client")} sub '${subjects.kvEvents(cluster)}.>'`,
    `  env $(cat ${file(secured.files.client)}) npx archio kv get name`,
    `  env $(cat ${file(secured.files.admin)}) npx archio status`,
    `  env $(cat ${file(secured.files.worker)}) npx archio worker --queue emails --handler ./handler.mjs`,
    `  curl -X PUT -H "Authorization: Bearer ${secured.httpToken}" localhost:${httpPort}/set -d '{"key":"name","value":"zoro"}'`
  ]
}

/**
 * Runs the dev cluster until SIGINT/SIGTERM or the terminal's signal, which stops it like SIGINT
 * does; resolves to the exit code. `.archio/` goes in the terminal's working folder.
 */
const runDev = async (settings: DevSettings, terminal: Terminal): Promise<number> => {
  const env = terminal.env
  const cwd = terminal.cwd ?? process.cwd()
  const write = terminal.out
  const color = useColor(settings, terminal === processTerminal && process.stdout.isTTY === true)
  const devPrefix = color ? "\x1b[1m[dev]\x1b[0m " : "[dev] "
  const say = (line: string): void => write(`${devPrefix}${line}\n`)
  const cluster = settings.cluster
  const home = resolve(cwd, ".archio")

  let stopping = false
  let finish: (code: number) => void = () => {}
  const finished = new Promise<number>((done) => (finish = done))
  const children: Array<Child> = []
  let nats: ResolvedNats | undefined
  let monitor: NatsConnection | undefined

  const stopAll = async (code: number): Promise<void> => {
    for (const child of children) if (child.restartTimer !== undefined) clearTimeout(child.restartTimer)
    const live = children.filter((c) => alive(c.process))
    if (live.length > 0) say(`stopping ${live.map((c) => c.id).join(", ")}`)
    for (const child of live) child.process!.kill("SIGTERM")
    let killed = false
    const timer = setTimeout(() => {
      for (const child of live) {
        if (alive(child.process)) {
          killed = true
          say(`${child.id} did not stop within ${stopGraceMs / 1000} s: SIGKILL`)
          child.process.kill("SIGKILL")
        }
      }
    }, stopGraceMs)
    await Promise.all(live.map((c) => waitExit(c.process!)))
    clearTimeout(timer)
    const unclean = live.filter((c) => c.process!.exitCode !== 0)
    if (monitor !== undefined) await monitor.close().catch(() => undefined)
    if (nats?.server !== undefined) {
      say("stopping nats-server")
      await nats.server.stop()
    }
    if (unclean.length > 0 && !killed) {
      say(`${unclean.map((c) => `${c.id} (${describeExit(c.process!.exitCode, c.process!.signalCode)})`).join(", ")} did not stop cleanly`)
    }
    say("stopped")
    finish(killed || unclean.length > 0 ? 1 : code)
  }

  // While NATS is being found or started there is nothing to stop yet; the start-up code
  // checks `stopping` once it has a server.
  // A second signal more than a second after the first kills the nodes at once. Closer ones are
  // the same Ctrl-C arriving twice: from the terminal and again forwarded by `npm start`.
  let running = false
  let firstSignalAt = 0
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      if (Date.now() - firstSignalAt < duplicateSignalMs) return
      say(`${signal} again: killing the nodes now`)
      for (const child of children) if (alive(child.process)) child.process.kill("SIGKILL")
      return
    }
    stopping = true
    firstSignalAt = Date.now()
    say(`${signal}: shutting down`)
    if (running) void stopAll(0)
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  const onAbort = (): void => onSignal("SIGINT")
  if (terminal.signal?.aborted === true) stopping = true
  else terminal.signal?.addEventListener("abort", onAbort)
  const onCrash = (error: unknown): void => {
    process.stderr.write(`archio dev: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    for (const child of children) if (alive(child.process)) child.process.kill("SIGKILL")
    void nats?.server?.stop()
    process.exit(1)
  }
  process.on("uncaughtException", onCrash)
  process.on("unhandledRejection", onCrash)

  // Ports are picked free but taken only when a node binds them: another process (another
  // `archio dev`) may bind one first, and the node would die on it at every restart.
  const moveOffTakenPort = async (child: Child): Promise<void> => {
    const at = child.args.indexOf("--http-port")
    const port = Number(child.args[at + 1])
    if (await portFree(port)) return
    const next = await freePort()
    child.args = [...child.args.slice(0, at + 1), String(next), ...child.args.slice(at + 2)]
    say(`${child.id}: HTTP port ${port} is taken; it moves to ${next}`)
  }

  const start = (child: Child): void => {
    const secured = nats?.secured
    const asNode = secured === undefined ? {} : { ...clientEnvironment(secured.credentials.node, nats!.url, cluster), HTTP_TOKEN: secured.httpToken }
    const p = spawn(process.execPath, [binPath, "node", ...child.args], {
      stdio: ["pipe", "pipe", "pipe"],
      cwd,
      // Readable lines whatever LOG_FORMAT the shell exports: dev prefixes each line with the
      // node's id, so a JSON line would not be JSON any more (run archio node for JSON logs).
      env: { ...env, ...asNode, LOG_FORMAT: "text", ARCHIO_SUPERVISED: "1" }
    })
    child.process = p
    child.startedAt = Date.now()
    child.restartTimer = undefined
    pipeLines(p.stdout, child.prefix, write)
    pipeLines(p.stderr, child.prefix, write)
    p.stdin?.on("error", () => undefined)
    p.on("error", (e) => say(`${child.id} could not be started: ${e.message}`))
    p.on("exit", (code, signal) => {
      if (stopping) return
      const ranMs = Date.now() - child.startedAt
      child.quickFailures = ranMs < healthyAfterMs ? child.quickFailures + 1 : 0
      if (child.quickFailures >= maxQuickFailures) {
        child.givenUp = true
        say(`${child.id} exited (${describeExit(code, signal)}) ${child.quickFailures} times in a row right after starting; leaving it down (see its log above)`)
        if (children.every((c) => c.givenUp)) {
          say("every node is down")
          stopping = true
          void stopAll(1)
        }
        return
      }
      const delay = 1000 * 2 ** Math.max(0, child.quickFailures - 1)
      say(`${child.id} exited unexpectedly (${describeExit(code, signal)}); restarting it in ${delay / 1000} s`)
      child.restartTimer = setTimeout(() => {
        void moveOffTakenPort(child).then(() => {
          if (!stopping) start(child)
        })
      }, delay)
    })
    say(`started ${child.id} (pid ${p.pid ?? "?"})`)
  }

  const startCluster = async (url: string): Promise<void> => {
    const ports = await pickHttpPorts(nodeIds.length)
    nodeIds.forEach((id, i) => {
      const dataDir = join(home, id)
      const httpPort = ports[i]!
      const args = ["--id", id, "--cluster", cluster, "--nats", url, "--peers", nodeIds.join(","), "--data", dataDir, "--http-port", String(httpPort)]
      say(`${id}: data ${relative(cwd, dataDir)}, HTTP port ${httpPort}`)
      children.push({ id, args, prefix: prefixFor(id, i, color), process: undefined, startedAt: 0, quickFailures: 0, restartTimer: undefined, givenUp: false })
    })
    for (const child of children) if (!stopping) start(child)

    const secured = nats?.secured
    const monitorSettings = secured === undefined ? { ...settings.nats, servers: url.split(",") } : settingsAs(secured.credentials.admin, url)
    monitor = await connectClient(monitorSettings, `archio-dev-${cluster}`, { waitOnFirstConnect: false })
    if (await waitReady(monitor, cluster, nodeIds, () => stopping)) {
      const lines = secured === undefined ? openTryLines(url, cluster, ports[0]!) : secureTryLines(url, cluster, ports[0]!, secured, cwd)
      // One write, so whoever reads the pipe sees the whole banner at once.
      write([...lines, "Ctrl-C stops the cluster."].map((line) => `${devPrefix}${line}\n`).join(""))
    } else if (!stopping) {
      say(`not every node answered within ${readyTimeoutMs / 1000} s; see the logs above`)
    }
    // A stop that came while we were connecting may have missed this connection.
    if (stopping) await monitor.close().catch(() => undefined)
  }

  let code: number
  try {
    const resolved = await resolveNats(settings, home, say)
    if (typeof resolved === "number") code = resolved
    else {
      nats = resolved
      running = true
      if (stopping) void stopAll(0)
      else await startCluster(resolved.url)
      code = await finished
    }
  } catch (e) {
    say(`failed: ${e instanceof Error ? e.message : String(e)}`)
    if (running) {
      if (!stopping) {
        stopping = true
        void stopAll(1)
      }
      code = await finished
    } else code = 1
  }
  terminal.signal?.removeEventListener("abort", onAbort)
  process.off("SIGINT", onSignal)
  process.off("SIGTERM", onSignal)
  process.off("uncaughtException", onCrash)
  process.off("unhandledRejection", onCrash)
  return code
}

export const devCommand = defineCommand({
  path: "dev",
  summary: "start a local NATS server (if none answers) and three nodes n1, n2, n3",
  description: `Starts a local Archio cluster: NATS (the server at NATS_URL when one answers there, otherwise
a private nats-server on a free port) and three nodes n1, n2, n3 as child processes, with data
under ./.archio/<id> and HTTP ports 8081-8083 (another free port when one is taken).
Ctrl-C stops everything. Other node variables (SNAPSHOT_THRESHOLD, TICK_MS, LOG_LEVEL, ...)
pass through to the nodes, except LOG_FORMAT: dev shows readable lines, prefixed by node.

With --secure it always starts its own nats-server, with the shipped configuration
(ops/nats/single.conf: roles node, client, worker and admin; anonymous connections refused)
and new credentials for every role, written to ./.archio/secure/<role>.env (mode 0600) and
printed once; the nodes connect as node, and their HTTP shims require a new token for writes.`,
  options: [
    { title: "Flags", options: devFlags },
    { title: "Environment", options: devVariables }
  ],
  examples: ["archio dev", "archio dev --secure", "NATS_URL=nats://10.0.0.5:4222 CLUSTER=test archio dev"],
  check: devSettings,
  run: runDev
})
