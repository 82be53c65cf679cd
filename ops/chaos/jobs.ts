/**
 * The jobs workload: producers enqueue jobs while `archio worker` processes lease and ack them,
 * under the nemesis' faults; after the heal the queue must drain and the final state must
 * account for every acknowledged enqueue and every ack (checked by `jobsChecker.ts`).
 *
 * - Producers `p<k>` (`producers`, default 3) each on server `s<(k-1) mod N + 1>`, one enqueue at
 *   a time through the typed client (`JobsClient`, whose enqueues carry idempotency tokens):
 *   mostly `jobs.enqueue`, sometimes `jobs.enqueueBatch` of 2-5. Every job's payload has a
 *   unique id (`{"p":"p2-17","sleep":ms}`); the handler sleeps 1-10 ms, or for 3% of the jobs
 *   0.5-3 s (past the 2 s lease: those live on lease extensions). History: an `enqueue` operation, `value` = the
 *   payload ids sent, `ids` on `ok` = the job ids; `fail` only for `bad_request`/`too_large`/`busy`,
 *   anything else (timeout, unavailable) is `info`.
 * - Workers `w<k>` (`workers`, default 3): `archio worker` child processes, worker `w<k>` on
 *   server `s<(k-1) mod N + 1>`, concurrency 8, lease 2 s (extended every third of it). Their
 *   handler sleeps `payload.sleep` ms and returns `{p, token, attempt, worker}` (the lease it
 *   ran under) as the job's result, which is how the checker tells which lease's ack was
 *   accepted. Each outcome line they print (`acked`, `failed`, `released`, `lost`, with id and
 *   token) becomes a `worker` history line. Their stderr goes to `logs/w<k>.log`.
 * - `worker-kill` (`workerKill`, on by default): 3-8 s in, then every 4-12 s until the nemesis
 *   stops, one worker gets SIGKILL (70%) or SIGTERM (a graceful stop that releases what it
 *   cannot finish within 1 s), stays down 0.3-3 s, and starts again under the same id. Recorded as `nemesis` lines with fault `worker-kill`. A worker that
 *   exits without being asked is restarted and noted (`worker-exit`).
 * - Job events: one subscriber per server on `archio.<cluster>.events.jobs.<queue>.>`; the
 *   `leased`, `completed`, `failed`, `dead` and `cancelled` transitions are recorded once each
 *   (`job-event` lines with id, state, attempts, revision). At most once: some may be missing.
 * - `final`: wait until the queue has no scheduled, ready, leased or failed job (giving up
 *   after `drainMs` without a job finishing, or 10 min), stop the workers (SIGTERM), then read every job with `jobs.list` (pages of 1000,
 *   linearizable reads) as `list` operations of client `final`.
 */
import { createInterface } from "node:readline"
import { spawn, type ChildProcess } from "node:child_process"
import { createWriteStream, type WriteStream } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { NatsConnection, Subscription } from "@nats-io/transport-node"
import { ArchioClient } from "../../protocol/archioClient.ts"
import type { JobView } from "../../protocol/client.ts"
import { ArchioError } from "../../protocol/errors.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { binPath } from "../cluster.ts"
import type { Completion, HistoryEntry } from "./history.ts"
import { checkJobsHistory, type FinalJob } from "./jobsChecker.ts"
import type { Rng } from "./nemesis.ts"
import { connectLocal } from "./topology.ts"
import { connectClient, type CheckResult, type Workload, type WorkloadContext } from "./workload.ts"

export interface JobsOptions {
  readonly producers: number
  readonly workers: number
  /** Jobs one worker runs at once. */
  readonly concurrency: number
  readonly leaseMs: number
  /** Deadline of one enqueue (the client's retries included). */
  readonly opTimeoutMs: number
  /** Pause between a producer's enqueues, drawn from [0, thinkMs]. */
  readonly thinkMs: number
  /** Fraction of enqueues sent as `enqueueBatch` of 2..maxBatch. */
  readonly batchFraction: number
  readonly maxBatch: number
  /** The handler sleeps a time drawn from [1, maxSleepMs] (fixed per job, in its payload). */
  readonly maxSleepMs: number
  /**
   * Fraction of long jobs, sleeping [longSleepMs] instead: longer than the lease, so they live
   * on lease extensions, and a SIGTERM'd worker releases them after its 1 s grace.
   */
  readonly longFraction: number
  readonly longSleepMs: readonly [number, number]
  /** Attempts per job: high, so that leases lost to faults do not make jobs dead. */
  readonly maxAttempts: number
  /**
   * How long `final` waits for the queue to drain without progress (no more jobs finished);
   * a backlog left by the faults is worked off as long as it keeps shrinking (at most 10 min).
   */
  readonly drainMs: number
  /** Kill and restart workers now and then. */
  readonly workerKill: boolean
  readonly queue: string
}

export const defaultJobsOptions: JobsOptions = {
  producers: 3,
  workers: 3,
  concurrency: 8,
  leaseMs: 2_000,
  opTimeoutMs: 2_000,
  thinkMs: 20,
  batchFraction: 0.3,
  maxBatch: 5,
  maxSleepMs: 10,
  longFraction: 0.03,
  longSleepMs: [500, 3_000],
  maxAttempts: 1_000,
  drainMs: 30_000,
  workerKill: true,
  queue: "chaos"
}

const failCodes = new Set(["bad_request", "too_large", "busy"])

const outcomeOf = (e: unknown): { readonly type: Completion; readonly error: string; readonly message: string } => {
  if (e instanceof ArchioError) return { type: failCodes.has(e.code) ? "fail" : "info", error: e.code, message: e.message.slice(0, 200) }
  return { type: "info", error: "exception", message: (e instanceof Error ? e.message : String(e)).slice(0, 200) }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    if (signal?.aborted === true) return r()
    const timer = setTimeout(r, ms)
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer)
        r()
      },
      { once: true }
    )
  })

const nodeOf = (reply: object): string | undefined => {
  const node = (reply as { node?: unknown }).node
  return typeof node === "string" ? node : undefined
}

/** The handler every worker runs: sleep, then return the lease it ran under. */
const handlerSource = `export default async (payload, ctx) => {
  const ms = payload && typeof payload.sleep === "number" ? payload.sleep : 0
  if (ms > 0) await new Promise((r) => setTimeout(r, ms))
  return { p: payload && typeof payload.p === "string" ? payload.p : null, token: ctx.job.token, attempt: ctx.job.attempt, worker: process.env.ARCHIO_CHAOS_WORKER ?? null }
}
`

export const toFinalJob = (j: JobView): FinalJob => {
  const p = (j.payload as { p?: unknown } | null)?.p
  return {
    id: j.id,
    state: j.state,
    p: typeof p === "string" ? p : null,
    attempts: j.attempts,
    ...(j.result === undefined ? {} : { result: j.result }),
    ...(j.error === undefined ? {} : { error: j.error })
  }
}

/** One `archio worker` child process, restartable under the same id. */
class ChaosWorker {
  private proc: ChildProcess | undefined
  private closed: Promise<void> = Promise.resolve()
  /** Set while the harness itself stops the process, so its exit is not "on its own". */
  private stopping = false
  incarnation = 0

  constructor(
    readonly id: string,
    private readonly args: ReadonlyArray<string>,
    private readonly log: WriteStream,
    private readonly onLine: (line: { event: string; id: string; token: number }) => void,
    private readonly onUnexpectedExit: (w: ChaosWorker, code: number | string) => void
  ) {}

  get running(): boolean {
    return this.proc !== undefined
  }

  get pid(): number | undefined {
    return this.proc?.pid
  }

  start(): void {
    if (this.proc !== undefined) return
    this.incarnation++
    this.stopping = false
    const proc = spawn(process.execPath, [binPath, "worker", ...this.args], {
      env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: "0", ARCHIO_CHAOS_WORKER: this.id },
      stdio: ["ignore", "pipe", "pipe"]
    })
    this.proc = proc
    this.log.write(`--- ${new Date().toISOString()} start ${this.id} #${this.incarnation} pid ${proc.pid}\n`)
    createInterface({ input: proc.stdout!, crlfDelay: Infinity }).on("line", (line) => {
      if (!line.startsWith("{")) return
      try {
        const o = JSON.parse(line) as { event?: unknown; id?: unknown; token?: unknown }
        if (typeof o.event === "string" && typeof o.id === "string" && typeof o.token === "number") this.onLine({ event: o.event, id: o.id, token: o.token })
      } catch {
        this.log.write(`unparsable stdout line: ${line}\n`)
      }
    })
    proc.stderr!.on("data", (chunk: Buffer) => this.log.write(chunk))
    this.closed = new Promise<void>((resolve) =>
      proc.once("close", (code, signal) => {
        this.log.write(`--- ${new Date().toISOString()} ${this.id} #${this.incarnation} exited ${code ?? signal}\n`)
        if (this.proc === proc) this.proc = undefined
        if (!this.stopping) this.onUnexpectedExit(this, code ?? signal ?? "?")
        resolve()
      })
    )
  }

  /** Stops the process with `signal` and waits until it is gone (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals, graceMs = 10_000): Promise<void> {
    const proc = this.proc
    if (proc === undefined) return
    this.stopping = true
    proc.kill(signal)
    if (signal !== "SIGKILL") {
      const late = await Promise.race([this.closed.then(() => false), sleep(graceMs).then(() => true)])
      if (late) proc.kill("SIGKILL")
    }
    await this.closed
  }

  /** Last resort (harness exit): no waiting. */
  killNow(): void {
    this.proc?.kill("SIGKILL")
  }
}

interface Producer {
  readonly name: string
  readonly client: ArchioClient
  readonly jobs: JobsClient
  readonly rng: Rng
  counter: number
}

export class JobsWorkload implements Workload {
  readonly name = "jobs"
  private ctx: WorkloadContext | undefined
  private producers: Producer[] = []
  private workers: ChaosWorker[] = []
  private readonly subscribers: Array<{ readonly nc: NatsConnection; readonly sub: Subscription }> = []
  private readonly seenEvents = new Set<string>()
  private logs: WriteStream[] = []
  private readonly emergency = (): void => {
    for (const w of this.workers) w.killNow()
  }

  constructor(readonly options: JobsOptions = defaultJobsOptions) {}

  async start(ctx: WorkloadContext): Promise<void> {
    this.ctx = ctx
    const servers = ctx.cluster.mesh.size
    const o = this.options
    // Job events, one subscriber per server (the leader publishes once; the server it is on
    // may be cut off from some subscribers), recorded once each.
    const subject = `${Subjects.events(ctx.cluster.cluster)}.jobs.${o.queue}.>`
    const keep = new Set(["leased", "completed", "failed", "dead", "cancelled"])
    for (let i = 0; i < servers; i++) {
      const nc = await connectLocal(ctx.cluster.mesh.url(i), `archio-chaos-events-s${i + 1}`)
      const sub = nc.subscribe(subject, {
        callback: (err, m) => {
          if (err !== null) return
          try {
            const e = m.json<{ id?: unknown; state?: unknown; attempts?: unknown; revision?: unknown; time?: unknown }>()
            if (typeof e.id !== "string" || typeof e.state !== "string" || typeof e.revision !== "number" || !keep.has(e.state)) return
            const k = `${e.id}/${e.state}/${e.revision}`
            if (this.seenEvents.has(k)) return
            this.seenEvents.add(k)
            ctx.history.append({
              type: "job-event",
              id: e.id,
              state: e.state,
              attempts: typeof e.attempts === "number" ? e.attempts : -1,
              revision: e.revision,
              leaderTime: typeof e.time === "number" ? e.time : null,
              server: `s${i + 1}`,
              time: ctx.history.now()
            })
          } catch {
            // not an event
          }
        }
      })
      this.subscribers.push({ nc, sub })
    }
    for (let k = 0; k < o.producers; k++) {
      const name = `p${k + 1}`
      const client = await connectClient(ctx, name, k % servers, o.opTimeoutMs)
      this.producers.push({ name, client, jobs: new JobsClient(client), rng: ctx.rng.fork(name), counter: 0 })
    }
    const handler = join(ctx.dir, "jobs-handler.mjs")
    await writeFile(handler, handlerSource)
    process.once("exit", this.emergency)
    for (let k = 0; k < o.workers; k++) {
      const id = `w${k + 1}`
      const log = createWriteStream(join(ctx.dir, "logs", `${id}.log`), { flags: "a" })
      this.logs.push(log)
      const args = [
        "--queue",
        o.queue,
        "--handler",
        handler,
        "--nats",
        ctx.cluster.mesh.url(k % servers),
        "--cluster",
        ctx.cluster.cluster,
        "--worker-id",
        id,
        "--concurrency",
        String(o.concurrency),
        "--lease-ms",
        String(o.leaseMs),
        "--wait-ms",
        "1000",
        "--grace-ms",
        "1000",
        "--timeout",
        "5000"
      ]
      const w = new ChaosWorker(
        id,
        args,
        log,
        (line) => ctx.history.append({ type: "worker", worker: id, event: line.event, id: line.id, token: line.token, time: ctx.history.now() }),
        (worker, code) => {
          ctx.history.nemesis("note", "worker-exit", { worker: worker.id, code })
          ctx.log(`jobs: worker ${worker.id} exited on its own (${code}); restarting it`)
          worker.start()
        }
      )
      this.workers.push(w)
      w.start()
    }
    ctx.log(`jobs: ${o.producers} producers, ${o.workers} workers (concurrency ${o.concurrency}, lease ${o.leaseMs} ms)${o.workerKill ? ", worker kills on" : ""}`)
  }

  private async produce(p: Producer, stop: AbortSignal): Promise<void> {
    const h = this.ctx!.history
    const o = this.options
    while (!stop.aborted) {
      const n = p.rng.chance(o.batchFraction) ? p.rng.int(2, o.maxBatch) : 1
      const ps = Array.from({ length: n }, () => `${p.name}-${++p.counter}`)
      const specs = ps.map((id) => ({ queue: o.queue, payload: { p: id, sleep: p.rng.chance(o.longFraction) ? p.rng.int(o.longSleepMs[0], o.longSleepMs[1]) : p.rng.int(1, o.maxSleepMs) }, maxAttempts: o.maxAttempts }))
      const done = h.invoke(p.name, "enqueue", o.queue, ps, n > 1 ? { batch: true } : {})
      try {
        if (n === 1) {
          const r = await p.jobs.enqueue(specs[0]!)
          done("ok", ps, { ids: [r.id], revision: r.revision, node: nodeOf(r) })
        } else {
          const r = await p.jobs.enqueueBatch(specs)
          done("ok", ps, { ids: r.ids, revision: r.revision, node: nodeOf(r) })
        }
      } catch (e) {
        const out = outcomeOf(e)
        done(out.type, ps, { error: out.error, message: out.message })
      }
      if (o.thinkMs > 0) await sleep(p.rng.int(0, o.thinkMs))
    }
  }

  private async killWorkers(stop: AbortSignal): Promise<void> {
    const ctx = this.ctx!
    const rng = ctx.rng.fork("worker-kill")
    await sleep(rng.int(3_000, 8_000), stop)
    while (!stop.aborted) {
      const w = rng.pick(this.workers)
      const signal: NodeJS.Signals = rng.chance(0.7) ? "SIGKILL" : "SIGTERM"
      const downMs = rng.int(300, 3_000)
      ctx.history.nemesis("start", "worker-kill", { worker: w.id, signal, downMs, pid: w.pid })
      ctx.log(`jobs: ${signal} worker ${w.id}, down ${downMs} ms`)
      await w.stop(signal, 8_000)
      await sleep(downMs)
      w.start()
      ctx.history.nemesis("end", "worker-kill", { worker: w.id })
      await sleep(rng.int(4_000, 12_000), stop)
    }
  }

  async run(stop: AbortSignal, faults?: AbortSignal): Promise<void> {
    await Promise.all([...this.producers.map((p) => this.produce(p, stop)), this.options.workerKill ? this.killWorkers(faults ?? stop) : Promise.resolve()])
  }

  async final(): Promise<void> {
    const ctx = this.ctx!
    const o = this.options
    const reader = await connectClient(ctx, "final", 0, 10_000)
    try {
      const jobs = new JobsClient(reader)
      for (const w of this.workers) w.start()
      const started = performance.now()
      let progressAt = started
      let finished = -1
      let drained = false
      let last: unknown
      while (performance.now() - progressAt < o.drainMs && performance.now() - started < 600_000) {
        try {
          const s = (await jobs.stats(o.queue))[0]
          last = s
          if (s !== undefined && s.scheduled + s.ready + s.leased + s.failed === 0) {
            drained = true
            break
          }
          const done = s === undefined ? 0 : s.completed + s.dead + s.cancelled
          if (done > finished) {
            finished = done
            progressAt = performance.now()
          }
        } catch (e) {
          last = e instanceof Error ? e.message : String(e)
        }
        await sleep(500)
      }
      const drainMs = Math.round(performance.now() - started)
      ctx.history.nemesis("note", "jobs-drain", { drained, ms: drainMs, stats: last })
      ctx.log(drained ? `jobs: queue drained ${(drainMs / 1000).toFixed(1)} s after the settle` : `jobs: queue NOT drained after ${(drainMs / 1000).toFixed(1)} s: ${JSON.stringify(last)}`)
      await Promise.all(this.workers.map((w) => w.stop("SIGTERM", 10_000)))
      // Late events of the last acks.
      await sleep(300)
      let cursor: string | null = null
      let failures = 0
      do {
        const done = ctx.history.invoke("final", "list", o.queue, cursor)
        try {
          const page = await jobs.list(o.queue, { limit: 1000, ...(cursor === null ? {} : { cursor }) })
          const next = page.cursor ?? null
          done("ok", page.jobs.map(toFinalJob), { cursor: next, node: nodeOf(page) })
          cursor = next
        } catch (e) {
          const out = outcomeOf(e)
          done(out.type, null, { error: out.error, message: out.message })
          if (++failures > 20) {
            ctx.log("jobs: the final state could not be read")
            break
          }
          await sleep(500)
        }
      } while (cursor !== null)
    } finally {
      await reader.close().catch(() => undefined)
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop("SIGKILL")))
    for (const s of this.subscribers) {
      s.sub.unsubscribe()
      await s.nc.close().catch(() => undefined)
    }
    this.subscribers.length = 0
    await Promise.all(this.producers.map((p) => p.client.close().catch(() => undefined)))
    this.producers = []
    await Promise.all(this.logs.map((l) => new Promise<void>((r) => l.end(() => r()))))
    this.logs = []
    process.off("exit", this.emergency)
  }

  check(entries: ReadonlyArray<HistoryEntry>): CheckResult {
    const started = performance.now()
    const r = checkJobsHistory(entries)
    const ms = performance.now() - started
    const c = r.counts
    const fmt = (rec: Readonly<Record<string, number>>) =>
      Object.entries(rec)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => `${k} ${n}`)
        .join(", ") || "none"
    const byKind = new Map<string, number>()
    for (const v of r.violations) byKind.set(v.kind, (byKind.get(v.kind) ?? 0) + 1)
    const lines = [
      `enqueues    ${c.enqueueOps.ok + c.enqueueOps.fail + c.enqueueOps.info} (ok ${c.enqueueOps.ok}, fail ${c.enqueueOps.fail}, info ${c.enqueueOps.info}) carrying ${c.payloads.ok + c.payloads.fail + c.payloads.info} jobs; of ${c.payloads.info} unknown ones ${c.unknownApplied} exist`,
      `workers     lines: ${fmt(c.workerLines)}; worker kills ${c.workerKills}${c.workerExits > 0 ? `, exits on their own ${c.workerExits}` : ""}; events seen: ${fmt(c.events)}`,
      r.finalComplete ? `final       ${c.finalJobs} jobs: ${fmt(c.finalByState)}; lease of the accepted ack checked on ${c.leaseChecked}` : "final       the final state could not be read completely",
      `checker     ${r.violations.length === 0 ? "no violation" : [...byKind].map(([k, n]) => `${k} ${n}`).join(", ")} (${(ms / 1000).toFixed(1)} s)`
    ]
    if (r.live === false) lines.push(`liveness    ${c.finalJobs - (c.finalByState.completed ?? 0)} jobs not completed after the drain wait`)
    return {
      valid: r.valid,
      lines,
      violations: r.violations.map((v) => v.explanation),
      details: { counts: r.counts, safe: r.safe, live: r.live, finalComplete: r.finalComplete, violations: r.violations, stragglers: r.stragglers }
    }
  }
}
