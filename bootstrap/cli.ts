/**
 * The `archio` command line: `archio node`, `archio dev`, `archio status`, `archio kv` (in
 * `kvCli.ts`).
 * `main(argv)` returns the exit code: 0 done, 1 failed at run time, 2 bad usage.
 *
 * `archio node` runs `runNode` in a fiber; SIGINT or SIGTERM interrupt it, which releases the
 * layers in order (NATS drained, then the database closed) before we exit 0. A second signal
 * during shutdown is only noted: under `archio dev` a Ctrl-C reaches the node twice (from the
 * terminal and from the launcher). A shutdown that hangs ends with exit 1 after `shutdownGraceMs`.
 */
import { connect, errors as natsErrors, type NatsConnection } from "@nats-io/transport-node"
import { Cause, Effect, Either, Exit, Fiber, HashMap, Layer, List, Logger, LogLevel } from "effect"
import { readFileSync } from "node:fs"
import * as subjects from "../protocol/subjects.ts"
import {
  describe,
  helpText,
  parseClientConfig,
  parseConfig,
  redactUrl,
  statusHelpText,
  type ClientConfig,
  type Config,
  type ConfigError,
  type LogLevelName
} from "./config.ts"
import { kvCommand } from "./kvCli.ts"
import { clientOptions } from "./nats.ts"
import { runNode } from "./node.ts"
import { processTerminal, type Terminal } from "./terminal.ts"

/** How long a node may take to shut down before it gives up and exits 1. */
export const shutdownGraceMs = 15_000

export const usage = `Usage: archio <command> [flags]

Commands:
  node     run one Archio node (archio node --help lists its flags)
  dev      start a local NATS server (if none answers) and three nodes n1, n2, n3
  status   ask a running cluster for its status over NATS
  kv       get, put, del, cas, scan, txn and watch keys (archio kv --help lists them)
  worker   run a job worker: lease jobs, run a handler module, ack or fail them
  help     show this help

Global flags:
  --help, -h     show help (also after a command)
  --version, -v  print the version
`

const version = (): string => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown }
    return typeof pkg.version === "string" ? pkg.version : "unknown"
  } catch {
    return "unknown"
  }
}

// ---------------------------------------------------------------------------------------------
// Logging: one line per message on stderr, `time LEVEL message key=value`.

const levelLiterals: Record<LogLevelName, LogLevel.Literal> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warning",
  error: "Error",
  fatal: "Fatal",
  none: "None"
}

const text = (message: unknown): string =>
  (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : JSON.stringify(m) ?? String(m))).join(" ")

export const lineLogger = Logger.make(({ logLevel, message, annotations, cause, date }) => {
  const extras = HashMap.reduce(annotations, "", (acc, value, key) => `${acc} ${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
  const failure = Cause.isEmpty(cause) ? "" : `\n${Cause.pretty(cause)}`
  const level = logLevel.label === "WARN" ? "WARN " : logLevel.label.padEnd(5)
  process.stderr.write(`${date.toISOString()} ${level} ${text(message)}${extras}${failure}\n`)
})

export const loggerLayer = (level: LogLevelName): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, lineLogger), Logger.minimumLogLevel(LogLevel.fromLiteral(levelLiterals[level])))

const printProblems = (terminal: Terminal, command: string, error: ConfigError): void => {
  for (const problem of error.problems) terminal.err(`archio ${command}: ${problem}\n`)
  terminal.err(`Run "archio ${command} --help" for the flags and variables.\n`)
}

const wantsHelp = (argv: ReadonlyArray<string>): boolean => argv.includes("--help") || argv.includes("-h")

// ---------------------------------------------------------------------------------------------
// archio node

const errorText = (cause: Cause.Cause<unknown>): string => {
  const failures = List.fromIterable(Cause.failures(cause))
  const first = List.head(failures)
  if (first._tag === "Some") {
    const e = first.value
    return typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" ? e.message : String(e)
  }
  return Cause.pretty(cause)
}

/** Runs one node until SIGINT/SIGTERM; resolves to the exit code. */
export const runNodeProcess = async (config: Config, terminal: Terminal = processTerminal): Promise<number> => {
  const logging = loggerLayer(config.logLevel)
  const log = (effect: Effect.Effect<void>): void => {
    Effect.runFork(effect.pipe(Effect.annotateLogs("node", config.id), Effect.provide(logging)))
  }
  log(Effect.logInfo(`starting archio node ${version()}: ${describe(config)}`))
  const fiber = Effect.runFork(runNode(config).pipe(Effect.provide(logging)))
  let stopping = false
  let deadline: ReturnType<typeof setTimeout> | undefined
  const stop = (why: string): void => {
    if (stopping) {
      log(Effect.logInfo(`${why}: shutdown already in progress`))
      return
    }
    stopping = true
    log(Effect.logInfo(`${why}: shutting down (draining NATS, closing the database)`))
    deadline = setTimeout(() => {
      terminal.err(`archio node ${config.id}: shutdown took longer than ${shutdownGraceMs} ms; exiting\n`)
      process.exit(1)
    }, shutdownGraceMs)
    deadline.unref()
    Effect.runFork(Fiber.interrupt(fiber))
  }
  const onSigint = () => stop("SIGINT")
  const onSigterm = () => stop("SIGTERM")
  process.on("SIGINT", onSigint)
  process.on("SIGTERM", onSigterm)
  // Under `archio dev` the launcher keeps our stdin open; when it goes away (even by SIGKILL)
  // stdin ends and we stop instead of living on as an orphan holding the data dir.
  if (terminal.env["ARCHIO_SUPERVISED"] === "1") {
    process.stdin.on("end", () => stop("launcher exited"))
    process.stdin.on("error", () => stop("launcher exited"))
    process.stdin.resume()
  }
  const exit = await Effect.runPromise(Fiber.await(fiber))
  if (deadline !== undefined) clearTimeout(deadline)
  process.off("SIGINT", onSigint)
  process.off("SIGTERM", onSigterm)
  if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
    terminal.err(`archio node ${config.id}: ${errorText(exit.cause)}\n`)
    return 1
  }
  await Effect.runPromise(Effect.logInfo("stopped cleanly").pipe(Effect.annotateLogs("node", config.id), Effect.provide(logging)))
  return 0
}

// ---------------------------------------------------------------------------------------------
// archio status

/** Asks `admin.status` once; resolves to the reply text or rejects with a sentence. */
export const requestStatus = async (config: ClientConfig): Promise<string> => {
  const where = config.nats.servers.map(redactUrl).join(",")
  const base = await Effect.runPromise(Effect.either(clientOptions(config.nats, "archio-status")))
  if (Either.isLeft(base)) throw new Error(base.left.message)
  let nc: NatsConnection
  try {
    nc = await connect({ ...base.right, waitOnFirstConnect: false, maxReconnectAttempts: 0, reconnect: false, timeout: config.timeoutMs })
  } catch (e) {
    throw new Error(`cannot connect to NATS at ${where}: ${e instanceof Error ? e.message : String(e)}`)
  }
  const subject = config.node === undefined ? subjects.admin(config.cluster, "status") : subjects.node(config.cluster, config.node, "admin.status")
  try {
    const reply = await nc.request(subject, new Uint8Array(0), { timeout: config.timeoutMs })
    return reply.string()
  } catch (e) {
    if (e instanceof natsErrors.NoRespondersError || (e instanceof Error && e.cause instanceof natsErrors.NoRespondersError)) {
      const who = config.node === undefined ? "no archio node answers" : `node ${config.node} does not answer`
      throw new Error(`${who} on ${subject} at ${where}: is the cluster running, and is its cluster name "${config.cluster}"?`)
    }
    if (e instanceof natsErrors.TimeoutError || (e instanceof Error && e.cause instanceof natsErrors.TimeoutError)) {
      throw new Error(`no answer on ${subject} within ${config.timeoutMs} ms`)
    }
    throw new Error(`status request on ${subject} failed: ${e instanceof Error ? e.message : String(e)}`)
  } finally {
    await nc.close().catch(() => undefined)
  }
}

const statusCommand = async (argv: ReadonlyArray<string>, terminal: Terminal): Promise<number> => {
  if (wantsHelp(argv)) {
    terminal.out(statusHelpText)
    return 0
  }
  const parsed = parseClientConfig(argv, terminal.env)
  if (Either.isLeft(parsed)) {
    printProblems(terminal, "status", parsed.left)
    return 2
  }
  try {
    const reply = await requestStatus(parsed.right)
    let shown = reply
    try {
      shown = JSON.stringify(JSON.parse(reply), null, 2)
    } catch {
      // not JSON: print as it came
    }
    terminal.out(`${shown}\n`)
    return 0
  } catch (e) {
    terminal.err(`archio status: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
}

// ---------------------------------------------------------------------------------------------

const nodeCommand = async (argv: ReadonlyArray<string>, terminal: Terminal): Promise<number> => {
  if (wantsHelp(argv)) {
    terminal.out(helpText)
    return 0
  }
  const parsed = parseConfig(argv, terminal.env)
  if (Either.isLeft(parsed)) {
    printProblems(terminal, "node", parsed.left)
    return 2
  }
  return runNodeProcess(parsed.right, terminal)
}

/** Runs the command line `argv` (without `node` and the script); resolves to the exit code. */
export const main = async (argv: ReadonlyArray<string>, terminal: Terminal = processTerminal): Promise<number> => {
  const [command, ...rest] = argv
  switch (command) {
    case "node":
      return nodeCommand(rest, terminal)
    case "dev": {
      const { runDev } = await import("./dev.ts")
      return runDev(rest, terminal)
    }
    case "status":
      return statusCommand(rest, terminal)
    case "kv":
      return kvCommand(rest, terminal)
    case "worker": {
      const { workerCommand } = await import("./workerCli.ts")
      return workerCommand(rest, terminal)
    }
    case "help":
    case "--help":
    case "-h":
      terminal.out(usage)
      return 0
    case "--version":
    case "-v":
      terminal.out(`${version()}\n`)
      return 0
    case undefined:
      terminal.err(usage)
      return 2
    default:
      terminal.err(`archio: unknown command ${JSON.stringify(command)}\n\n${usage}`)
      return 2
  }
}
