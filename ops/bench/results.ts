/**
 * What a closed-loop benchmark measured, and its rate: apart from common.ts so that the
 * side-by-side summary (and its test) load no cluster code.
 */
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
