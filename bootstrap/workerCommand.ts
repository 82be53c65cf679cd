/**
 * `archio worker`: one worker process. Loads the handler module, connects to NATS (and keeps
 * reconnecting: a worker outlives NATS restarts), runs the worker runtime of
 * `protocol/worker.ts` until SIGTERM or SIGINT, then stops it gracefully and exits 0.
 */
import { Either } from "effect"
import { hostname } from "node:os"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { ArchioClient } from "../protocol/archioClient.ts"
import { JobsClient } from "../protocol/jobsClient.ts"
import { Worker, type Handler } from "../protocol/worker.ts"
import { defineCommand } from "./command.ts"
import { kvClientConfig, kvOptions, type KvClientConfig } from "./config.ts"
import { connectClient } from "./nats.ts"
import { ConfigError, integer, name, type CommandLine, type Given, type OptionSpec } from "./options.ts"
import { stopRequest, type Terminal } from "./terminal.ts"

/** What to run, how much at once, and the connection. */
export const workerOptions = {
  queues: { flag: "--queue", env: "WORKER_QUEUES", placeholder: "Q1,Q2", default: "required", help: "queues to take jobs from, in order of preference" },
  handler: { flag: "--handler", env: "WORKER_HANDLER", placeholder: "FILE", default: "required", help: "module whose default export runs one job: async (payload, ctx) => result" },
  concurrency: { flag: "--concurrency", env: "WORKER_CONCURRENCY", placeholder: "N", default: "1", help: "jobs run at once" },
  workerId: { flag: "--worker-id", env: "WORKER_ID", placeholder: "ID", default: "<host>-<pid>", help: "name recorded on leased jobs" },
  leaseMs: { flag: "--lease-ms", env: "WORKER_LEASE_MS", placeholder: "MS", default: "30000", help: "lease length; running jobs are extended every third of it" },
  waitMs: { flag: "--wait-ms", env: "WORKER_WAIT_MS", placeholder: "MS", default: "5000", help: "how long one lease request waits for a job" },
  graceMs: { flag: "--grace-ms", env: "WORKER_GRACE_MS", placeholder: "MS", default: "10000", help: "on SIGTERM/SIGINT, how long running jobs may finish before they are released" },
  ...kvOptions
} as const satisfies Record<string, OptionSpec>

export interface WorkerConfig extends KvClientConfig {
  readonly queues: ReadonlyArray<string>
  readonly handler: string
  readonly concurrency: number
  readonly workerId: string
  readonly leaseMs: number
  readonly waitMs: number
  readonly graceMs: number
}

export const workerConfig = (line: CommandLine<keyof typeof workerOptions>, defaultWorkerId: string): Either.Either<WorkerConfig, ConfigError> => {
  const problems: Array<string> = []
  const required = (key: "queues" | "handler"): Given | undefined => {
    const given = line.get(key)
    if (given === undefined) problems.push(`${workerOptions[key].flag} (or ${workerOptions[key].env}) is required`)
    return given
  }
  const queuesGiven = required("queues")
  const queues = queuesGiven === undefined ? [] : queuesGiven.value.split(",").map((q) => name({ ...queuesGiven, value: q.trim() }, "a queue name", problems))
  const handler = required("handler")?.value
  const count = (key: "concurrency" | "leaseMs" | "waitMs" | "graceMs", fallback: number, min: number, max: number): number => {
    const given = line.get(key)
    return given === undefined ? fallback : (integer(given, min, max, problems) ?? fallback)
  }
  const concurrency = count("concurrency", 1, 1, 1000)
  const leaseMs = count("leaseMs", 30_000, 100, 3_600_000)
  const waitMs = count("waitMs", 5_000, 0, 60_000)
  const graceMs = count("graceMs", 10_000, 0, 3_600_000)
  const connection = kvClientConfig(line, problems)
  if (problems.length > 0 || connection === undefined || handler === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({
    ...connection,
    queues: queues.filter((q): q is string => q !== undefined),
    handler,
    concurrency,
    workerId: line.get("workerId")?.value ?? defaultWorkerId,
    leaseMs,
    waitMs,
    graceMs
  })
}

/** The handler: the module's default export, or its `handler` export. */
const loadHandler = async (file: string, cwd: string): Promise<Handler> => {
  const mod = (await import(pathToFileURL(resolve(cwd, file)).href)) as { default?: unknown; handler?: unknown }
  const fn = typeof mod.default === "function" ? mod.default : mod.handler
  if (typeof fn !== "function") throw new Error(`${file} must export a function as default (or as "handler")`)
  return fn as Handler
}

/** Runs the worker until SIGTERM/SIGINT or the terminal's signal; resolves to the exit code. */
const runWorker = async (config: WorkerConfig, terminal: Terminal): Promise<number> => {
  let handler: Handler
  try {
    handler = await loadHandler(config.handler, terminal.cwd ?? process.cwd())
  } catch (e) {
    terminal.err(`archio worker: cannot load handler ${config.handler}: ${e instanceof Error ? e.message : String(e)}\n`)
    return 2
  }
  let client: ArchioClient
  try {
    const nc = await connectClient(config.nats, `archio-worker-${config.workerId}`, { maxReconnectAttempts: -1, timeout: config.timeoutMs })
    const inboxPrefix = config.nats.inboxPrefix
    client = new ArchioClient(nc, { cluster: config.cluster, deadlineMs: config.timeoutMs, ...(inboxPrefix === undefined ? {} : { inboxPrefix }) }, true)
  } catch (e) {
    terminal.err(`archio worker: ${e instanceof Error ? e.message : String(e)}\n`)
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

export const workerCommand = defineCommand({
  path: "worker",
  summary: "run a job worker: lease jobs, run a handler module, ack or fail them",
  description: `Runs a job worker: leases jobs from the queues (long-polling while idle), runs the handler
module's default export on each (async (payload, { job, signal, progress }) => result),
extends the leases of long jobs, and acks the result or fails the job with the thrown error
(retryable, unless it is a NonRetryableError). SIGTERM or SIGINT stops leasing, lets running
jobs finish for --grace-ms, releases the rest and exits 0. Each job outcome is printed on
stdout as one JSON line ({"event":"acked"|"failed"|"released"|"lost","id","token",...});
problems go to stderr.`,
  options: [{ title: "Flags", options: workerOptions }],
  examples: ["archio worker --queue emails,reports --concurrency 8 --handler ./handlers/send.js"],
  check: (line) => workerConfig(line, `${hostname()}-${process.pid}`),
  run: runWorker
})
