/**
 * Waiting in tests for something that happens in another process or on another timer: one
 * `until` for the whole suite instead of a copy per file.
 */

/** Resolves after `ms` milliseconds of real time. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export interface UntilOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number
  /** Time between checks (default 10 ms). */
  readonly everyMs?: number
}

/**
 * Resolves once `check` returns true; a check that throws or rejects counts as false (the thing
 * checked is not up yet). Rejects naming `what` when the time runs out.
 */
export const until = async (what: string, check: () => boolean | Promise<boolean>, options: UntilOptions = {}): Promise<void> => {
  const deadline = performance.now() + (options.timeoutMs ?? 10_000)
  const everyMs = options.everyMs ?? 10
  for (;;) {
    let done = false
    try {
      done = await check()
    } catch {
      done = false
    }
    if (done) return
    if (performance.now() > deadline) throw new Error(`timed out after ${options.timeoutMs ?? 10_000} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}
