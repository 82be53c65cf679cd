/**
 * The node's services for tests of one actor: timers a test moves by hand, a supervisor whose
 * failures the test reads, and a scope closed when the test ends.
 */
import { Effect, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { Supervisor, make as makeSupervisor, type ActorFailure } from "../../actors/services/supervisor.ts"
import { Timers, type Cancel, type TimersShape } from "../../actors/services/timers.ts"

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Timers that fire only when the test calls `advance`: no real time passes in the test. */
export class ManualTimers implements TimersShape {
  private time: number
  private readonly pending: Array<{ at: number; seq: number; fn: () => void; every: number | undefined; cancelled: boolean }> = []
  private seq = 0

  constructor(start = 1_700_000_000_000) {
    this.time = start
  }

  now(): number {
    return this.time
  }

  after(ms: number, fn: () => void): Cancel {
    return this.add(ms, fn, undefined)
  }

  every(ms: number, fn: () => void): Cancel {
    return this.add(ms, fn, ms)
  }

  private add(ms: number, fn: () => void, every: number | undefined): Cancel {
    const t = { at: this.time + ms, seq: this.seq++, fn, every, cancelled: false }
    this.pending.push(t)
    return () => {
      t.cancelled = true
    }
  }

  /** Moves time forward by `ms`, firing every timer that comes due, in order. */
  advance(ms: number): void {
    const until = this.time + ms
    for (;;) {
      const due = this.pending.filter((t) => !t.cancelled && t.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due === undefined) break
      this.time = due.at
      if (due.every === undefined) due.cancelled = true
      else due.at += due.every
      due.fn()
    }
    this.time = until
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i]!.cancelled) this.pending.splice(i, 1)
  }

  /** Timers not yet fired or cancelled. */
  get scheduled(): number {
    return this.pending.filter((t) => !t.cancelled).length
  }
}

/** A supervisor for one test; `failures` fill as actors fail. */
export const testSupervisor = async (): Promise<{ readonly layer: Layer.Layer<Supervisor>; readonly failures: ActorFailure[] }> => {
  const failures: ActorFailure[] = []
  // Failures are read from `failures`; the log line they also make would only be noise here.
  const { supervisor, failure } = await Effect.runPromise(makeSupervisor.pipe(Logger.withMinimumLogLevel(LogLevel.None)))
  void Effect.runPromise(Effect.either(failure)).then((r) => {
    if (r._tag === "Left") failures.push(r.left)
  })
  return { layer: Layer.succeed(Supervisor, supervisor), failures }
}

/** A scope that closes when the test ends (or earlier with `close`). */
export const testScope = (t: Teardown): { readonly scope: Scope.CloseableScope; readonly close: () => Promise<void> } => {
  const scope = Effect.runSync(Scope.make())
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  t.teardown(close)
  return { scope, close }
}

export const timersLayer = (timers: TimersShape): Layer.Layer<Timers> => Layer.succeed(Timers, timers)
