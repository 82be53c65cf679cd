/**
 * What the snapshot and memory benchmarks read about each node from the outside: its resident
 * memory (/proc/<pid>/status VmRSS), the size of its data folder, and the longest event-loop
 * stall a phase caused, measured by asking the node for `admin.status` on its own subject every
 * few milliseconds and taking the slowest reply.
 *
 * The stall figure is an upper bound of the node's own stall: a reply also waits for NATS, for
 * the requests queued ahead of it, and for this process's event loop (which runs the load too).
 */
import type { NatsConnection } from "@nats-io/transport-node"
import { readFileSync } from "node:fs"
import { readdir, stat } from "node:fs/promises"
import { join } from "node:path"
import * as Subjects from "../../protocol/subjects.ts"

/** Resident memory of process `pid` in bytes, or undefined (not running, not Linux). */
export const rssBytes = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m === null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}

/** Bytes of every file under `dir` (as `du --apparent-size`); 0 when it does not exist. */
export const dirBytes = async (dir: string): Promise<number> => {
  let total = 0
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return 0
  }
  for (const e of entries) {
    const path = join(dir, e.name)
    if (e.isDirectory()) total += await dirBytes(path)
    else if (e.isFile()) total += await stat(path).then((s) => s.size, () => 0)
  }
  return total
}

export const mb = (bytes: number | undefined): string => (bytes === undefined ? "?" : `${(bytes / 1e6).toFixed(1)} MB`)

export const ms = (x: number | undefined): string => (x === undefined ? "?" : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`)

/**
 * Sends `admin.status` to each node's own subject every `everyMs` and keeps, per phase, the
 * slowest reply per node. A node that is down (no responders) counts nothing; a request still
 * unanswered when the phase ends counts with its age so far.
 */
export class StallProbe {
  private readonly pending = new Map<string, Set<number>>()
  private slowest = new Map<string, number>()
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly ids: ReadonlyArray<string>,
    private readonly everyMs = 5
  ) {
    for (const id of ids) this.pending.set(id, new Set())
  }

  start(): void {
    if (this.timer !== undefined) return
    const body = new TextEncoder().encode("{}")
    this.timer = setInterval(() => {
      for (const id of this.ids) {
        const sent = performance.now()
        const waiting = this.pending.get(id)!
        waiting.add(sent)
        this.nc.request(Subjects.node(this.cluster, id, "admin.status"), body, { timeout: 60_000 }).then(
          () => {
            if (waiting.delete(sent)) this.note(id, performance.now() - sent)
          },
          () => void waiting.delete(sent)
        )
      }
    }, this.everyMs)
  }

  private note(id: string, latency: number): void {
    if (latency > (this.slowest.get(id) ?? 0)) this.slowest.set(id, latency)
  }

  /** The slowest reply per node since the last call (or the start), and starts a new phase. */
  take(): Record<string, number> {
    const now = performance.now()
    const out: Record<string, number> = {}
    for (const id of this.ids) {
      for (const sent of this.pending.get(id)!) this.note(id, now - sent)
      out[id] = Math.round((this.slowest.get(id) ?? 0) * 10) / 10
    }
    this.slowest = new Map()
    return out
  }

  /** Drops the requests waiting on node `id` (call it when the node is stopped: they get no answer). */
  forget(id: string): void {
    this.pending.get(id)?.clear()
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }
}
