/**
 * How `archio jobs` prints for people: aligned tables, times as ages ("3s ago", "in 5m"), and
 * one job as a list of labelled fields. (`--json` prints the cluster's replies as they came,
 * through ../clientOutput.ts.) Times in replies are the leader's clock, ms since the epoch; ages
 * are taken against this machine's clock, so clock skew between the two shows in them.
 */
import type { JobView, QueueStats } from "../../protocol/client.ts"
import { show, table } from "../clientOutput.ts"

const second = 1000
const minute = 60 * second
const hour = 60 * minute
const day = 24 * hour

/** A length of time in at most two units: `850ms`, `42s`, `4m12s`, `2h5m`, `3d4h`. */
export const span = (ms: number): string => {
  const two = (big: number, bigUnit: string, small: number, smallUnit: string): string =>
    `${Math.floor(ms / big)}${bigUnit}${Math.floor((ms % big) / small) === 0 ? "" : `${Math.floor((ms % big) / small)}${smallUnit}`}`
  if (ms < second) return `${Math.floor(ms)}ms`
  if (ms < minute) return `${Math.floor(ms / second)}s`
  if (ms < hour) return two(minute, "m", second, "s")
  if (ms < day) return two(hour, "h", minute, "m")
  return two(day, "d", hour, "h")
}

/** When `at` is, seen from `now`: `3s ago`, `in 5m`, or `just now` within a second either way. */
export const ago = (at: number, now: number): string => {
  const d = now - at
  if (Math.abs(d) < second) return "just now"
  return d > 0 ? `${span(d)} ago` : `in ${span(-d)}`
}

/** At most `max` characters of `s`, ending in `...` when cut. */
export const clip = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 3)}...`)

/** A JSON value on one line (payloads, results, progress). */
export const compact = (value: unknown): string => JSON.stringify(value) ?? "null"

/** What a job is waiting for or ended with, in a few words. */
const note = (j: JobView, now: number): string => {
  switch (j.state) {
    case "scheduled":
      return `runs ${ago(j.runAt, now)}`
    case "failed":
      return `retry ${ago(j.runAt, now)}${j.error === undefined ? "" : `: ${show(j.error)}`}`
    case "leased":
      return `${j.workerId ?? "a worker"}, lease ends ${j.leaseUntil === undefined ? "?" : ago(j.leaseUntil, now)}`
    case "dead":
      return j.error === undefined ? "" : show(j.error)
    default:
      return ""
  }
}

/** One row per job: id, state, attempts, priority, ages, what it waits for, the payload cut short. */
export const jobsTable = (jobs: ReadonlyArray<JobView>, now: number): string =>
  table(
    ["ID", "STATE", "ATTEMPTS", "PRIORITY", "CREATED", "UPDATED", "NOTE", "PAYLOAD"],
    jobs.map((j) => [
      j.id,
      j.state,
      `${j.attempts}/${j.maxAttempts}`,
      String(j.priority),
      ago(j.createdAt, now),
      ago(j.updatedAt, now),
      clip(note(j, now), 48),
      clip(compact(j.payload), 60)
    ])
  )

const when = (at: number, now: number): string => `${ago(at, now)} (${new Date(at).toISOString()})`

/** One job, a labelled field per line; fields the job does not have are left out. */
export const jobDetail = (j: JobView, now: number): string => {
  const rows: Array<readonly [string, string]> = [
    ["id", j.id],
    ["queue", j.queue],
    ["state", j.state],
    ["attempts", `${j.attempts} of ${j.maxAttempts}`],
    ["priority", String(j.priority)],
    ["created", when(j.createdAt, now)],
    ["updated", when(j.updatedAt, now)],
    ["run at", when(j.runAt, now)]
  ]
  if (j.finishedAt !== undefined) rows.push(["finished", when(j.finishedAt, now)])
  if (j.workerId !== undefined) rows.push(["worker", j.workerId])
  if (j.token !== undefined) rows.push(["lease token", String(j.token)])
  if (j.leaseUntil !== undefined) rows.push(["lease ends", when(j.leaseUntil, now)])
  if (j.uniqueKey !== undefined) rows.push(["unique key", show(j.uniqueKey)])
  rows.push(["payload", compact(j.payload)])
  if (j.progress !== undefined) rows.push(["progress", compact(j.progress)])
  if (j.result !== undefined) rows.push(["result", compact(j.result)])
  if (j.error !== undefined) rows.push(["error", show(j.error)])
  const width = Math.max(...rows.map(([label]) => label.length))
  return rows.map(([label, value]) => `${`${label}:`.padEnd(width + 1)}  ${value}`).join("\n") + "\n"
}

/** One row per queue: counts by state, the longest ready wait, and the last minute's throughput. */
export const statsTable = (queues: ReadonlyArray<QueueStats>): string =>
  table(
    ["QUEUE", "SCHEDULED", "READY", "LEASED", "FAILED", "DEAD", "COMPLETED", "CANCELLED", "OLDEST READY", "DONE/MIN", "FAILED/MIN"],
    queues.map((q) => [
      q.queue,
      String(q.scheduled),
      String(q.ready),
      String(q.leased),
      String(q.failed),
      String(q.dead),
      String(q.completed),
      String(q.cancelled),
      q.ready === 0 ? "-" : span(q.oldestReadyMs),
      String(q.completedLastMinute),
      String(q.failedLastMinute)
    ])
  )
