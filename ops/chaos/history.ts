/**
 * The chaos history: every operation's invocation and completion, as JSON lines
 * (`history.jsonl` in the run folder). One JSON object per line; the checkers read it back.
 *
 * Format (version 1):
 *
 * ```jsonl
 * {"type":"meta","version":1,"seed":7,"workload":"register","faults":["kill"],"nodes":3,"started":"2026-11-22T08:00:00.000Z","timeUnit":"ns"}
 * {"type":"invoke","id":0,"client":"c1","f":"write","key":"r0-0","value":"c1-1","time":1843201}
 * {"type":"ok","id":0,"client":"c1","f":"write","key":"r0-0","value":"c1-1","time":4122984,"revision":12,"node":"n2"}
 * {"type":"invoke","id":1,"client":"c2","f":"cas","key":"r0-0","value":[null,"c2-1"],"expectedRevision":0,"time":5000000}
 * {"type":"fail","id":1,"client":"c2","f":"cas","key":"r0-0","value":[null,"c2-1"],"time":6000000,"error":"conflict","revision":12}
 * {"type":"invoke","id":2,"client":"c3","f":"read","key":"r0-0","value":null,"time":7000000}
 * {"type":"ok","id":2,"client":"c3","f":"read","key":"r0-0","value":"c1-1","time":8000000,"revision":12,"node":"n1"}
 * {"type":"info","id":3,"client":"c1","f":"write","key":"r0-0","value":"c1-2","time":1508000000,"error":"timeout"}
 * {"type":"nemesis","phase":"start","fault":"partition","time":9000000,"detail":{"shape":"bridge","cut":["s1-s3"]}}
 * ```
 *
 * - `type`: `invoke` when a client starts an operation; then exactly one completion with the same
 *   `id`: `ok` (it took effect, or the read returned `value`), `fail` (it definitely did not take
 *   effect, e.g. a cas `conflict`), or `info` (unknown: timed out or unavailable after retries,
 *   so it may or may not have taken effect, at any time after its invocation). `nemesis` lines
 *   record faults (ignored by the checkers); `meta` (first line) describes the run.
 * - `id`: unique per operation; `client`: the logical client (one operation in flight each).
 * - `f`: `read`, `write` or `cas` for the register workload (other workloads add their own).
 * - `key`: the register; `value`: for `write` the value written, for `cas` `[expected, new]`
 *   (`expected` null = "absent", sent as expectedRevision 0), for `read` null on invoke and the
 *   value read on `ok` (null = key absent). Every written value is unique in a run, so a read
 *   names the write it saw.
 * - `time`: monotonic nanoseconds since the harness started (`process.hrtime.bigint()`), as an
 *   integer. An invocation is stamped before the request is sent and a completion after the
 *   reply arrived, so the real operation lies inside [invoke, completion].
 * - Optional on completions: `revision` (the key's mod revision after a write, seen by a read,
 *   or reported by a cas refused with `conflict`), `node` (who answered), `error` (the error
 *   code), `message`.
 * - The jobs workload (`jobs.ts`) adds operations `enqueue` (`value`: the payload ids sent,
 *   `ids` on `ok`: the job ids) and `list` (final state pages), and two non-operation lines:
 *   `worker` (an outcome printed by an `archio worker` process) and `job-event` (a job
 *   transition seen on the event subjects). See `jobs.ts` and ops/chaos/README.md.
 */
import { createWriteStream, type WriteStream } from "node:fs"
import { readFile } from "node:fs/promises"

export type Completion = "ok" | "fail" | "info"

export interface MetaEntry {
  readonly type: "meta"
  readonly version: 1
  readonly [k: string]: unknown
}

export interface InvokeEntry {
  readonly type: "invoke"
  readonly id: number
  readonly client: string
  readonly f: string
  readonly key: string
  readonly value: unknown
  readonly time: number
  readonly [k: string]: unknown
}

export interface CompleteEntry {
  readonly type: Completion
  readonly id: number
  readonly client: string
  readonly f: string
  readonly key: string
  readonly value: unknown
  readonly time: number
  readonly error?: string
  readonly [k: string]: unknown
}

export interface NemesisEntry {
  readonly type: "nemesis"
  readonly phase: "start" | "end" | "note"
  readonly fault: string
  readonly time: number
  readonly detail?: unknown
}

/**
 * Jobs workload: one outcome line of an `archio worker` process (`acked`, `failed`, `released`,
 * `lost`), stamped when the harness read it. `worker` is the worker id, `token` the lease's
 * fencing token.
 */
export interface WorkerEntry {
  readonly type: "worker"
  readonly worker: string
  readonly event: string
  readonly id: string
  readonly token: number
  readonly time: number
  readonly [k: string]: unknown
}

/**
 * Jobs workload: a job transition published by the leader on `events.jobs.<queue>.<id>.<state>`
 * (core NATS, at most once: some may be missing). `revision` is the log revision of the
 * transition, `attempts` the job's attempt count after it.
 */
export interface JobEventEntry {
  readonly type: "job-event"
  readonly id: string
  readonly state: string
  readonly attempts: number
  readonly revision: number
  readonly time: number
  readonly [k: string]: unknown
}

export type HistoryEntry = MetaEntry | InvokeEntry | CompleteEntry | NemesisEntry | WorkerEntry | JobEventEntry

/** An invocation paired with its completion (`info` with no time when none was recorded). */
export interface PairedOp {
  readonly id: number
  readonly client: string
  readonly f: string
  readonly key: string
  readonly invoke: InvokeEntry
  readonly type: Completion
  /** Completion time; undefined when the history ended before the operation did. */
  readonly end: number | undefined
  readonly complete: CompleteEntry | undefined
}

/** Pairs invocations with completions by id. An invocation never completed counts as `info`. */
export const pairOps = (entries: Iterable<HistoryEntry>): Array<PairedOp> => {
  const invokes = new Map<number, InvokeEntry>()
  const completions = new Map<number, CompleteEntry>()
  for (const e of entries) {
    if (e.type === "invoke") {
      if (invokes.has(e.id)) throw new Error(`history: operation id ${e.id} invoked twice`)
      invokes.set(e.id, e)
    } else if (e.type === "ok" || e.type === "fail" || e.type === "info") {
      if (completions.has(e.id)) throw new Error(`history: operation id ${e.id} completed twice`)
      completions.set(e.id, e)
    }
  }
  const ops: Array<PairedOp> = []
  for (const [id, invoke] of invokes) {
    const c = completions.get(id)
    if (c !== undefined && c.time < invoke.time) throw new Error(`history: operation ${id} completes before it is invoked`)
    ops.push({ id, client: invoke.client, f: invoke.f, key: invoke.key, invoke, type: c?.type ?? "info", end: c?.time, complete: c })
  }
  for (const id of completions.keys()) if (!invokes.has(id)) throw new Error(`history: operation ${id} completes but was never invoked`)
  ops.sort((a, b) => a.invoke.time - b.invoke.time || a.id - b.id)
  return ops
}

/** Parses JSON lines (blank lines skipped); names the line of any bad entry. */
export const parseHistory = (text: string): Array<HistoryEntry> => {
  const out: Array<HistoryEntry> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "") continue
    let e: unknown
    try {
      e = JSON.parse(line)
    } catch (err) {
      throw new Error(`history line ${i + 1}: not JSON (${err instanceof Error ? err.message : String(err)})`)
    }
    if (typeof e !== "object" || e === null || typeof (e as { type?: unknown }).type !== "string") {
      throw new Error(`history line ${i + 1}: an entry is an object with a "type"`)
    }
    const entry = e as HistoryEntry
    if (entry.type === "invoke" || entry.type === "ok" || entry.type === "fail" || entry.type === "info") {
      if (typeof entry.id !== "number" || typeof entry.time !== "number" || typeof entry.key !== "string" || typeof entry.f !== "string") {
        throw new Error(`history line ${i + 1}: an operation needs numeric "id" and "time" and string "f" and "key"`)
      }
    }
    out.push(entry)
  }
  return out
}

export const readHistory = async (path: string): Promise<Array<HistoryEntry>> => parseHistory(await readFile(path, "utf8"))

/** Nanoseconds since `origin`, as a JSON-safe integer. */
export const clock = (origin: bigint = process.hrtime.bigint()): (() => number) => () => Number(process.hrtime.bigint() - origin)

/**
 * Collects the history in memory (for the checker) and appends each entry to a file as it
 * happens, so a crashed run still leaves what it recorded.
 */
export class HistoryRecorder {
  readonly entries: Array<HistoryEntry> = []
  private nextId = 0
  private readonly out: WriteStream | undefined

  constructor(
    readonly now: () => number,
    path?: string
  ) {
    this.out = path === undefined ? undefined : createWriteStream(path, { flags: "a" })
  }

  append(entry: HistoryEntry): void {
    this.entries.push(entry)
    this.out?.write(`${JSON.stringify(entry)}\n`)
  }

  /** Records an invocation stamped now and returns a function that records its completion. */
  invoke(
    client: string,
    f: string,
    key: string,
    value: unknown,
    extra: Record<string, unknown> = {}
  ): (type: Completion, value: unknown, extra?: Record<string, unknown>) => void {
    const id = this.nextId++
    this.append({ ...extra, type: "invoke", id, client, f, key, value, time: this.now() })
    let done = false
    return (type, completionValue, more = {}) => {
      if (done) throw new Error(`operation ${id} completed twice`)
      done = true
      this.append({ ...more, type, id, client, f, key, value: completionValue, time: this.now() })
    }
  }

  nemesis(phase: NemesisEntry["phase"], fault: string, detail?: unknown): void {
    this.append(detail === undefined ? { type: "nemesis", phase, fault, time: this.now() } : { type: "nemesis", phase, fault, time: this.now(), detail })
  }

  close(): Promise<void> {
    const out = this.out
    if (out === undefined) return Promise.resolve()
    return new Promise((resolve) => out.end(() => resolve()))
  }
}
