/**
 * What the comparisons drive, apart from any cluster code (so BullMQ's side and its test load
 * none): the `JobSystem` every job benchmark takes (jobs.ts's load generators run Archio and
 * BullMQ through it alike), worker processes, bulk preloading, and a request as a plain NATS
 * client sends it.
 */
import { createInterface } from "node:readline"
import { spawn, type ChildProcess } from "node:child_process"
import { errors, type NatsConnection } from "@nats-io/transport-node"
import { readError } from "../../protocol/reply.ts"

/** The wall-clock time in ms with sub-ms precision, comparable across processes of one machine. */
export const wallMs = (): number => performance.timeOrigin + performance.now()

/** What a worker's handler does: `noop` returns at once; `stamp` prints "started <i> <ms since the payload's stamp t>". */
export type Handler = "noop" | "stamp"

export interface BenchWorker {
  readonly proc: ChildProcess
  /** Resolves once the worker says it is taking jobs. */
  readonly ready: Promise<void>
  /** Lines its handler printed (when stdout is collected). */
  readonly lines: string[]
  /** SIGTERM (graceful stop), SIGKILL after 15 s; resolves when it is gone. */
  stop(): Promise<void>
}

/** What the job benchmarks need of a queue system (Archio, BullMQ), on a fresh cluster or server. */
export interface JobSystem {
  /** As printed, e.g. "Archio typed", "BullMQ always" (appendfsync always). */
  readonly name: string
  /** One job per request, as a producer sends it. */
  enqueue(queue: string, payload: object): Promise<unknown>
  /** Puts `n` jobs on `queue` as fast as the system takes them (bulk where it has it; not measured). */
  preload(queue: string, n: number): Promise<void>
  /** Jobs of `queue` completed so far. */
  completed(queue: string): Promise<number>
  /** One worker process on `queue` whose handler is `handler` (stdout collected for `stamp`). */
  startWorker(o: { readonly id: string; readonly queue: string; readonly handler: Handler; readonly concurrency: number }): BenchWorker
}

const live = new Set<ChildProcess>()
// Never leave a worker behind (it would reconnect forever).
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL")
})

/**
 * Starts a worker process (`archio worker`, bullmqWorker.ts); it is ready once its stderr says
 * "taking jobs from", as both print.
 */
export const spawnWorker = (o: { readonly id: string; readonly args: ReadonlyArray<string>; readonly collect: boolean; readonly env?: Readonly<Record<string, string>> | undefined }): BenchWorker => {
  const proc = spawn(process.execPath, o.args, { env: { ...process.env, ...o.env }, stdio: ["ignore", o.collect ? "pipe" : "ignore", "pipe"] })
  live.add(proc)
  const exited = new Promise<void>((resolve) =>
    proc.once("exit", () => {
      live.delete(proc)
      resolve()
    })
  )
  const lines: string[] = []
  if (o.collect) {
    createInterface({ input: proc.stdout!, crlfDelay: Infinity }).on("line", (line) => lines.push(line))
  }
  let stderr = ""
  const ready = new Promise<void>((resolve, reject) => {
    proc.stderr!.setEncoding("utf8")
    proc.stderr!.on("data", (chunk: string) => {
      if (stderr.length < 8192) stderr += chunk
      if (stderr.includes("taking jobs from")) resolve()
    })
    void exited.then(() => reject(new Error(`worker ${o.id} exited before it was ready: ${stderr.trim()}`)))
  })
  // Awaited later; an early exit is reported there.
  ready.catch(() => undefined)
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill("SIGTERM")
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000)
    await exited
    clearTimeout(timer)
  }
  return { proc, ready, lines, stop }
}

/** Enqueues `n` jobs of `queue` in batches of 1000, four requests at a time. */
export const preloadInBatches = async (n: number, addBatch: (from: number, count: number) => Promise<unknown>): Promise<void> => {
  let next = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < n) {
        const from = next
        next = Math.min(n, next + 1000)
        await addBatch(from, next - from)
      }
    })
  )
}

const utf8 = new TextEncoder()

/**
 * Retries of plain requests so far (this process): answers `unavailable` (no leader known
 * right now) and no responders (nobody serves the subject at this moment, e.g. while a new
 * leader subscribes), which a client of any language meets and retries. The benches print how
 * many a measurement had.
 */
export const plainRetries = { count: 0 }

/** ", 3 plain requests retried" for a measurement that had retries, else nothing. */
export const retriesNote = (n: number): string => (n === 0 ? "" : `, ${n} plain request${n === 1 ? "" : "s"} retried (unavailable or no responders)`)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * A request as any NATS client sends it: `nc.request` on the service subject (whichever node
 * serves it answers), JSON in and out, no idempotency token. Retried after `unavailable` or
 * no responders, neither of which wrote anything, with a short backoff for up to 30 s (as a
 * careful plain client would); any other error reply rejects.
 */
export const plainRequest = async (nc: NatsConnection, subject: string, body: object): Promise<Uint8Array> => {
  const payload = utf8.encode(JSON.stringify(body))
  const deadline = performance.now() + 30_000
  for (let backoff = 5; ; backoff = Math.min(backoff * 2, 100)) {
    let retry: Error
    try {
      const m = await nc.request(subject, payload, { timeout: 30_000 })
      const err = readError(m)
      if (err === undefined) return m.data
      if (err.code !== "unavailable") throw err
      retry = err
    } catch (e) {
      if (!(e instanceof errors.RequestError && e.isNoResponders())) throw e
      retry = e
    }
    if (performance.now() > deadline) throw retry
    plainRetries.count++
    await sleep(backoff)
  }
}
