/**
 * The simulated world: one virtual clock, one queue of timed events, one seeded generator.
 * Everything that takes time in a simulated run — messages in flight, disk writes, every timer
 * of every node and client — is an event here; nothing waits on real time, so one seed replays
 * one run exactly.
 *
 * Time advances in whole virtual milliseconds. The events of one millisecond run back to back
 * (like the callbacks of one socket read), then every microtask they queued runs to the end —
 * the nodes' Readies, Applier drains, promise continuations — before the clock moves on:
 * `setImmediate` fires only once the microtask queue is empty, and no real timer or socket is
 * in play. The Effect runtime is given a scheduler that never falls back to `setTimeout` and a
 * `Clock` that reads and sleeps on the virtual clock.
 */
import { Clock, Duration, Effect, Scheduler } from "effect"
import { nextRandom } from "../../actors/raft/random.ts"
import { MinHeap } from "../../actors/applier/minHeap.ts"
import type { Cancel, TimersShape } from "../../actors/services/timers.ts"
import { Life } from "./life.ts"

interface SimEvent {
  readonly at: number
  readonly seq: number
  run: (() => void) | undefined
}

const before = (a: SimEvent, b: SimEvent): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Thrown out of `run` when an event's callback throws: the simulator's own bug, or a check. */
export class EventFailure extends Error {
  override readonly name = "EventFailure"
}

export class World {
  /** Virtual milliseconds since the run began. */
  now = 0
  /** Events run so far. */
  events = 0
  /** Ordered by (time, insertion order). */
  private readonly queue = new MinHeap<SimEvent>(before)
  private seq = 0
  private readonly rng: { rng: number }
  /** Set by a check that failed inside a callback; `run` stops and rethrows it. */
  private failure: unknown = undefined
  /** Runs after every step (a millisecond's events and their microtasks): the safety checks. */
  afterStep: () => void = () => {}

  constructor(seed: number) {
    this.rng = { rng: seed ^ 0x5eed }
  }

  /** A number in [0, 1) from the run's generator. */
  random(): number {
    return nextRandom(this.rng)
  }

  /** An integer in [min, max). */
  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min))
  }

  chance(p: number): boolean {
    return this.random() < p
  }

  pick<A>(items: ReadonlyArray<A>): A {
    return items[Math.floor(this.random() * items.length)]!
  }

  /** A fresh seed for something that keeps its own generator (a node's Random). */
  seed(): number {
    return Math.floor(this.random() * 2 ** 31)
  }

  /** Runs `fn` `delayMs` from now (rounded up to whole milliseconds); the result cancels it. */
  schedule(delayMs: number, fn: () => void): Cancel {
    const e: SimEvent = { at: this.now + Math.max(0, Math.ceil(delayMs)), seq: this.seq++, run: fn }
    this.queue.push(e)
    return () => {
      e.run = undefined
    }
  }

  /** Stops the run at the next step with `cause` (a failed check inside a callback). */
  fail(cause: unknown): void {
    this.failure ??= cause
  }

  /** Runs events until `until` (virtual ms) or until none are left. */
  async run(until: number): Promise<void> {
    for (;;) {
      const next = this.queue.peek()
      if (next === undefined || next.at > until) {
        this.now = Math.max(this.now, until)
        return
      }
      this.now = next.at
      // Every event of this millisecond, then their microtasks.
      while (this.queue.size > 0 && this.queue.peek()!.at === this.now) {
        const e = this.queue.pop()!
        const run = e.run
        if (run === undefined) continue
        this.events++
        run()
      }
      await settle()
      if (this.failure === undefined) {
        try {
          this.afterStep()
        } catch (e) {
          this.fail(e)
        }
      }
      if (this.failure !== undefined) throw this.failure
    }
  }

  /**
   * Timers on the virtual clock for one process life, with a fixed offset for a node whose
   * clock is off, and `lateness` for a busy machine whose timers all fire late (1.2: a 10 ms
   * timer after 12 ms). A repeating timer that came due while the process was paused fires
   * once when it resumes, as Node's do.
   */
  timers(skewMs = 0, life: Life = new Life(), lateness = 1): TimersShape {
    return {
      now: () => this.now + skewMs,
      after: (ms, fn) => this.schedule(ms * lateness, () => life.run(fn)),
      every: (ms, fn) => {
        let cancel: Cancel
        let waiting = false
        const fire = (): void => {
          waiting = false
          fn()
        }
        const tick = (): void => {
          if (!life.alive) return
          cancel = this.schedule(ms * lateness, tick)
          if (waiting) return
          waiting = true
          life.run(fire)
        }
        cancel = this.schedule(ms * lateness, tick)
        return () => cancel()
      }
    }
  }

  /** Effect's `Clock` on the virtual clock. */
  clock(skewMs = 0): Clock.Clock {
    const millis = (): number => this.now + skewMs
    return {
      [Clock.ClockTypeId]: Clock.ClockTypeId,
      unsafeCurrentTimeMillis: millis,
      unsafeCurrentTimeNanos: () => BigInt(millis()) * 1_000_000n,
      currentTimeMillis: Effect.sync(millis),
      currentTimeNanos: Effect.sync(() => BigInt(millis()) * 1_000_000n),
      sleep: (duration: Duration.Duration) =>
        Effect.async<void>((resume) => {
          const cancel = this.schedule(Duration.toMillis(duration), () => resume(Effect.void))
          return Effect.sync(cancel)
        })
    }
  }
}

/**
 * Effect's scheduler for simulated fibers: every task in a microtask, never a real timer (the
 * default one yields with `setTimeout` after a long run of tasks, which would tie a run to
 * the machine's speed).
 */
export const microtaskScheduler: Scheduler.Scheduler = Scheduler.make((task) => queueMicrotask(task), () => false)
