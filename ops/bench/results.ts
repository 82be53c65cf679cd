/**
 * What a closed-loop benchmark measured, and its rate: apart from common.ts so that the
 * side-by-side summary (and its test) load no cluster code.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"

export interface LoopResult {
  /** Operations completed in the window. */
  readonly count: number
  /** Latency of each, ms, ascending. */
  readonly sorted: ReadonlyArray<number>
  readonly seconds: number
  /** CPU of this process and of its child processes over the window. */
  readonly cpu: string
  /** CPU that processes outside the run used over the window, % of one core. */
  readonly others: number
  /** Which measurement this is (1 unless the first ones were disturbed). */
  readonly attempt: number
}

/** One measured level of a closed-loop benchmark. */
export interface Level {
  readonly concurrency: number
  readonly result: LoopResult
}

/** Operations per second over the measured window. */
export const perSecond = (r: LoopResult): number => r.count / r.seconds

/**
 * Where a comparison's JSON result goes unless `--json FILE` says: `.archio/bench/` under the
 * working folder (ignored by git, beside `archio dev`'s data), one file per run.
 */
export const defaultResultPath = (command: string, startedAt: string): string =>
  join(".archio", "bench", `${command}-${startedAt.replace(/[:.]/g, "-")}.json`)

/** Writes `doc` as indented JSON to `path` (its folder made if missing); returns the absolute path. */
export const writeResultFile = async (path: string, doc: unknown): Promise<string> => {
  const full = resolve(path)
  await mkdir(dirname(full), { recursive: true })
  await writeFile(full, `${JSON.stringify(doc, null, 2)}\n`)
  return full
}
