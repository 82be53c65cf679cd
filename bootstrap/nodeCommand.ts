/**
 * `archio node`: one node in this process, until SIGINT or SIGTERM.
 *
 * `runNodeProcess` runs `runNode` in a fiber; SIGINT or SIGTERM interrupt it, which releases the
 * layers in order (a leader hands leadership to its most caught-up follower, NATS drained, then
 * the database closed) before we exit 0. A second signal
 * during shutdown is only noted: under `archio dev` a Ctrl-C reaches the node twice (from the
 * terminal and from the launcher). A shutdown that hangs ends with exit 1 after `shutdownGraceMs`.
 *
 * A node that fails — an actor's defect (actors/services/supervisor.ts), or an exception or
 * rejection that escaped every actor — is logged with its stack, stopped the same clean way,
 * and exits 1; never an uncaught exception that kills the process with NATS undrained.
 */
import { Cause, Effect, Exit, Fiber, List } from "effect"
import { defineCommand } from "./command.ts"
import { describe, nodeConfig, nodeOptions, type Config } from "./config.ts"
import { exitLine, loggerLayer } from "./logging.ts"
import { runNode, version } from "./node.ts"
import { processTerminal, type Terminal } from "./terminal.ts"

/** How long a node may take to shut down before it gives up and exits 1. */
export const shutdownGraceMs = 15_000

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
  const fields = { node: config.id, cluster: config.cluster }
  const format = config.logFormat ?? "text"
  const logging = loggerLayer(config.logLevel, format, fields)
  // The exit messages below bypass the logger: in the log's format too.
  const say = (line: string): void => terminal.err(exitLine(format, line, fields))
  const log = (effect: Effect.Effect<void>): void => {
    Effect.runFork(effect.pipe(Effect.annotateLogs("node", config.id), Effect.provide(logging)))
  }
  log(Effect.logInfo(`starting archio node ${version}: ${describe(config)}`))
  const fiber = Effect.runFork(runNode(config).pipe(Effect.provide(logging)))
  let stopping = false
  let deadline: ReturnType<typeof setTimeout> | undefined
  const stop = (why: string): void => {
    if (stopping) {
      log(Effect.logInfo(`${why}: shutdown already in progress`))
      return
    }
    stopping = true
    log(Effect.logInfo(`${why}: shutting down (handing leadership over if leading, draining NATS, closing the database)`))
    deadline = setTimeout(() => {
      say(`archio node ${config.id}: shutdown took longer than ${shutdownGraceMs} ms; exiting\n`)
      process.exit(1)
    }, shutdownGraceMs)
    deadline.unref()
    Effect.runFork(Fiber.interrupt(fiber))
  }
  const onSigint = () => stop("SIGINT")
  const onSigterm = () => stop("SIGTERM")
  process.on("SIGINT", onSigint)
  process.on("SIGTERM", onSigterm)
  // Outside any actor's guard (a library's callback, a bug in the wiring): still a clean stop.
  let escaped: string | undefined
  const onEscaped = (what: string) => (error: unknown) => {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error)
    escaped ??= `${what}: ${error instanceof Error ? error.message : String(error)}`
    log(Effect.logError(`${what}, stopping the node: ${text}`))
    stop(what)
  }
  const onUncaught = onEscaped("uncaught exception")
  const onUnhandled = onEscaped("unhandled rejection")
  process.on("uncaughtException", onUncaught)
  process.on("unhandledRejection", onUnhandled)
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
  process.off("uncaughtException", onUncaught)
  process.off("unhandledRejection", onUnhandled)
  if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
    say(`archio node ${config.id}: ${errorText(exit.cause)}\n`)
    return 1
  }
  if (escaped !== undefined) {
    say(`archio node ${config.id}: ${escaped}; stopped\n`)
    return 1
  }
  await Effect.runPromise(Effect.logInfo("stopped cleanly").pipe(Effect.annotateLogs("node", config.id), Effect.provide(logging)))
  return 0
}

export const nodeCommand = defineCommand({
  path: "node",
  summary: "run one Archio node (archio node --help lists its flags)",
  description: `Runs one Archio node. Every flag can also be set with the environment variable shown;
a flag wins over its variable. Older variable names are accepted when the new one is unset.
SIGINT or SIGTERM shut the node down cleanly with exit code 0: a leader first hands leadership
to its most caught-up follower (waiting at most two election timeouts), so clients see no
election; then NATS is drained and the database closed.`,
  options: [{ title: "Flags", options: nodeOptions }],
  examples: ["archio node --id n1 --cluster dev --nats nats://127.0.0.1:4222 --peers n1,n2,n3 --data ./data/n1 --http-port 8081"],
  check: nodeConfig,
  run: (config, terminal) => runNodeProcess(config, terminal)
})
