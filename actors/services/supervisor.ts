/**
 * Supervision of one node's actors. Actors run their hot paths in plain callbacks (bus
 * deliveries, timers, microtasks), outside any fiber, so Effect cannot see them fail; every such
 * callback is registered through `guard`, which turns a throw into the node's failure: it is
 * logged with the actor's name and stack, and the node stops as if interrupted — the Gateway
 * stops taking requests, NATS drains, the database closes — then `archio node` exits 1. A broken
 * invariant is a bug, not a condition to live with, and a node that answers but no longer
 * decides is worse than one that is down (its supervisor restarts it; peers elect around it).
 *
 * After the first failure every guarded callback is a no-op: nothing of a broken node keeps
 * deciding while it shuts down.
 */
import { Cause, Context, Data, Deferred, Effect, Runtime } from "effect"

/** An actor failed: a throw in one of its callbacks, a failed write, a broken invariant. */
export class ActorFailure extends Data.TaggedError("ActorFailure")<{
  readonly actor: string
  /** The first line of the failure: what broke. */
  readonly reason: string
  /** The stack, or the whole cause. */
  readonly detail: string
}> {
  override get message(): string {
    return `actor ${this.actor} failed: ${this.reason}`
  }
}

export interface SupervisorShape {
  /** `fn`, but a throw stops the node in the name of `actor`; a no-op once the node failed. */
  guard<A extends ReadonlyArray<unknown>>(actor: string, fn: (...args: A) => void): (...args: A) => void
  /** Stops the node: `actor` failed with `cause` (first failure wins). */
  fail(actor: string, cause: unknown): void
  /** True once an actor failed. */
  readonly failed: boolean
}

export class Supervisor extends Context.Tag("archio/Supervisor")<Supervisor, SupervisorShape>() {}

const describe = (cause: unknown): { reason: string; detail: string } => {
  if (Cause.isCause(cause)) {
    const squashed = Cause.squash(cause)
    return { reason: squashed instanceof Error ? squashed.message : String(squashed), detail: Cause.pretty(cause) }
  }
  if (cause instanceof Error) return { reason: cause.message, detail: cause.stack ?? cause.message }
  return { reason: String(cause), detail: String(cause) }
}

/**
 * A supervisor, and the effect that fails with the first `ActorFailure` (the node awaits it).
 * Failures are logged through the runtime this was made in, so they carry the node's log
 * annotations.
 */
export const make: Effect.Effect<{ readonly supervisor: SupervisorShape; readonly failure: Effect.Effect<never, ActorFailure> }> = Effect.gen(
  function* () {
    const failure = yield* Deferred.make<never, ActorFailure>()
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    let failed = false
    const fail = (actor: string, cause: unknown): void => {
      if (failed) return
      failed = true
      const { reason, detail } = describe(cause)
      const error = new ActorFailure({ actor, reason, detail })
      runFork(Effect.logError(`actor ${actor} failed, stopping the node: ${detail}`).pipe(Effect.zipRight(Deferred.fail(failure, error))))
    }
    const supervisor: SupervisorShape = {
      guard:
        <A extends ReadonlyArray<unknown>>(actor: string, fn: (...args: A) => void) =>
        (...args: A): void => {
          if (failed) return
          try {
            fn(...args)
          } catch (cause) {
            fail(actor, cause)
          }
        },
      fail,
      get failed() {
        return failed
      }
    }
    return { supervisor, failure: Deferred.await(failure) }
  }
)
