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
import { parseWorkerConfig, redactUrl, workerHelpText, type Env } from "./config.ts"
import { clientOptions } from "./nats.ts"

export interface WorkerIo {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  readonly env: Env
  /** Stops the worker when aborted (tests); without it SIGTERM and SIGINT do. */
  readonly signal?: AbortSignal
}

/** The handler: the module's default export, or its `handler` export. */
const loadHandler = async (file: string): Promise<Handler> => {
  const mod = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown; handler?: unknown }
  const fn = typeof mod.default === "function" ? mod.default : mod.handler
  if (typeof fn !== "function") throw new Error(`${file} must export a function as default (or as "handler")`)
  return fn as Handler
}

/** `archio worker ...` (argv without `worker`); resolves to the exit code. */
export const workerCommand = async (argv: ReadonlyArray<string>, io: WorkerIo): Promise<number> => {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.out(workerHelpText)
    return 0
  }
  const parsed = parseWorkerConfig(argv, io.env, `${hostname()}-${process.pid}`)
  if (Either.isLeft(parsed)) {
    for (const problem of parsed.left.problems) io.err(`archio worker: ${problem}\n`)
    io.err(`Run "archio worker --help" for the flags and variables.\n`)
    return 2
  }
  const config = parsed.right
  let handler: Handler
  try {
    handler = await loadHandler(config.handler)
  } catch (e) {
    io.err(`archio worker: cannot load handler ${config.handler}: ${e instanceof Error ? e.message : String(e)}\n`)
    return 2
  }
  const base = await Effect.runPromise(Effect.either(clientOptions(config.nats, `archio-worker-${config.workerId}`)))
  if (Either.isLeft(base)) {
    io.err(`archio worker: ${base.left.message}\n`)
    return 1
  }
  let client: ArchioClient
  try {
    const nc = await connect({ ...base.right, maxReconnectAttempts: -1, timeout: config.timeoutMs })
    client = new ArchioClient(nc, { cluster: config.cluster, deadlineMs: config.timeoutMs }, true)
  } catch (e) {
    io.err(`archio worker: cannot connect to NATS at ${config.nats.servers.map(redactUrl).join(",")}: ${e instanceof Error ? e.message : String(e)}\n`)
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
      if (e.type === "error") io.err(`archio worker ${config.workerId}: ${e.message}\n`)
      else io.out(`${JSON.stringify({ event: e.type, ...e, type: undefined })}\n`)
    }
  })
  worker.start()
  io.err(`archio worker ${config.workerId}: taking jobs from ${config.queues.join(",")} with concurrency ${config.concurrency} (cluster ${config.cluster})\n`)
  await new Promise<void>((done) => {
    if (io.signal !== undefined) {
      if (io.signal.aborted) return done()
      io.signal.addEventListener("abort", () => done(), { once: true })
      return
    }
    const stop = (): void => {
      process.off("SIGINT", stop)
      process.off("SIGTERM", stop)
      done()
    }
    process.on("SIGINT", stop)
    process.on("SIGTERM", stop)
  })
  io.err(`archio worker ${config.workerId}: stopping (running jobs get ${config.graceMs} ms)\n`)
  await worker.stop()
  await client.close()
  const c = worker.counts
  io.err(`archio worker ${config.workerId}: stopped (${c.acked} acked, ${c.failed} failed, ${c.released} released, ${c.lost} lost)\n`)
  return 0
}
