/**
 * Time for actors: the wall clock and plain callback timers, as a service, so a test or the
 * simulator can drive them. Actors never call `Date.now`, `setTimeout` or `setInterval`
 * themselves. Callback timers rather than Effect schedules: the leader's timers fire hundreds of
 * times a second, and a fiber turn per firing is a measurable cost (STYLE.md).
 */
import { Context, Effect, Layer, type Scope } from "effect"

export type Cancel = () => void

export interface TimersShape {
  /** Wall-clock milliseconds since the epoch. */
  now(): number
  /** Calls `fn` once, `ms` from now; the returned function cancels it. */
  after(ms: number, fn: () => void): Cancel
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Cancel
}

export class Timers extends Context.Tag("archio/Timers")<Timers, TimersShape>() {}

/** Node's timers, with the time read from Effect's `Clock`. */
export const live: Layer.Layer<Timers> = Layer.effect(
  Timers,
  Effect.map(Effect.clock, (clock) => ({
    now: () => clock.unsafeCurrentTimeMillis(),
    after: (ms, fn) => {
      const t = setTimeout(fn, ms)
      return () => clearTimeout(t)
    },
    every: (ms, fn) => {
      const t = setInterval(fn, ms)
      return () => clearInterval(t)
    }
  }))
)

/** `every` for as long as the current scope lives. */
export const everyScoped = (timers: TimersShape, ms: number, fn: () => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => timers.every(ms, fn)),
    (cancel) => Effect.sync(cancel)
  ).pipe(Effect.asVoid)
