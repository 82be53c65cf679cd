/**
 * `archio worker`: one worker process. Loads the handler module, connects to NATS (and keeps
 * reconnecting: a worker outlives NATS restarts), runs the worker runtime of
 * `protocol/worker.ts` until SIGTERM or SIGINT, then stops it gracefully and exits 0.
 */
import { connect } from "@nats-io/transport-node"
import { Effect, Either } from "effect"
import { hostname } from "node:os"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { ArchioClient } from "../protocol/archioClient.ts"
import { JobsClient } from "../protocol/jobsClient.ts"
import { Worker, type Handler } from "../protocol/worker.ts"
import { parseWorkerConfig, redactUrl, workerHelpText } from "./config.ts"
import { clientOptions } from "./nats.ts"
import { stopRequest, type Terminal } from "./terminal.ts"

/** The handler: the module's default export, or its `handler` export. */
const loadHandler = async (file: string): Promise<Handler> => {
  const mod = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown; handler?: unknown }
  const fn = typeof mod.default === "function" ? mod.default : mod.handler
  if (typeof fn !== "function") throw new Error(`${file} must export a function as default (or as "handler")`)
  return fn as Handler
}

/** `archio worker ...` (argv without `worker`); resolves to the exit code. */
export const workerCommand = async (argv: ReadonlyArray<string>, terminal: Terminal): Promise<number> => {
  if (argv.includes("--help") || argv.includes("-h")) {
    terminal.out(workerHelpText)
    return 0
  }
  const parsed = parseWorkerConfig(argv, terminal.env, `${hostname()}-${process.pid}`)
  if (Either.isLeft(parsed)) {
    for (const problem of parsed.left.problems) terminal.err(`archio worker: ${problem}\n`)
    terminal.err(`Run "archio worker --help" for the flags and variables.\n`)
    return 2
  }
  const config = parsed.right
  let handler: Handler
  try {
    handler = await loadHandler(config.handler)
  } catch (e) {
    terminal.err(`archio worker: cannot load handler ${config.handler}: ${e instanceof Error ? e.message : String(e)}\n`)
    return 2
  }
  const base = await Effect.runPromise(Effect.either(clientOptions(config.nats, `archio-worker-${config.workerId}`)))
  if (Either.isLeft(base)) {
    terminal.err(`archio worker: ${base.left.message}\n`)
    return 1
  }
  let client: ArchioClient
  try {
    const nc = await connect({ ...base.right, maxReconnectAttempts: -1, timeout: config.timeoutMs })
    client = new ArchioClient(nc, { cluster: config.cluster, deadlineMs: config.timeoutMs }, true)
  } catch (e) {
    terminal.err(`archio worker: cannot connect to NATS at ${config.nats.servers.map(redactUrl).join(",")}: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
  const worker = new Worker(new JobsClient(client), {
    queues: config.queues,
    handler,
    workerId: config.workerId,
    concurrency: config.concurrency,
    leaseMs: config.leaseMs,
    waitMs: config.waitMs,
    graceMs: config.graceMs,
    log: (e) => {
      if (e.type === "error") terminal.err(`archio worker ${config.workerId}: ${e.message}\n`)
      else terminal.out(`${JSON.stringify({ event: e.type, ...e, type: undefined })}\n`)
    }
  })
  worker.start()
  terminal.err(`archio worker ${config.workerId}: taking jobs from ${config.queues.join(",")} with concurrency ${config.concurrency} (cluster ${config.cluster})\n`)
  const stop = stopRequest(terminal)
  await stop.stopped
  stop.dispose()
  terminal.err(`archio worker ${config.workerId}: stopping (running jobs get ${config.graceMs} ms)\n`)
  await worker.stop()
  await client.close()
  const c = worker.counts
  terminal.err(`archio worker ${config.workerId}: stopped (${c.acked} acked, ${c.failed} failed, ${c.released} released, ${c.lost} lost)\n`)
  return 0
}
