/**
 * Admission: how many client requests one node may hold at once, by what they wait for. A
 * request that waits (a write for its commit, a linearizable read for ReadIndex, a lease parked
 * until a job is ready, a request forwarded to the leader) holds memory until it is answered;
 * past a bound the node answers `busy` at once instead of growing. `busy` is always given before
 * the request reaches the log, so a client that sees it knows nothing was written.
 *
 * A held request is a Responder wrapped so that its answer gives its place back. A request that
 * is forwarded gives back its first place and takes one among the forwards until the leader's
 * answer is relayed.
 */
import { archioError, type ArchioError } from "../../protocol/errors.ts"
import type { Bus } from "../../protocol/bus.ts"
import type { WaitingCounts } from "../../protocol/client.ts"
import type { Responder, Unanswered } from "./responder.ts"

/** What a held request waits for. */
export type Waiting = keyof WaitingCounts

/** Most requests of each kind one node holds at once, and most request bytes among writes and forwards. */
export interface Bounds {
  readonly writes: number
  readonly reads: number
  readonly leases: number
  readonly forwards: number
  readonly bytes: number
}

/**
 * Bounds from one number: `maxHeld` of each kind, half as many parked leases (one per worker
 * process waiting), and 64 MiB of payload among writes and forwards (each at most
 * `maxRequestBytes`).
 */
export const boundsOf = (maxHeld: number): Bounds => ({
  writes: maxHeld,
  reads: maxHeld,
  leases: Math.max(1, Math.floor(maxHeld / 2)),
  forwards: maxHeld,
  bytes: 64 * 1024 * 1024
})

/**
 * Many times what a saturated cluster holds (64 clients keep 64 writes waiting), yet a queue a
 * node works through in a fraction of a second at its usual pace: past it, waiting longer only
 * turns into timeouts.
 */
export const defaultMaxHeld = 1024

export const defaultBounds: Bounds = boundsOf(defaultMaxHeld)

export interface Admission {
  /**
   * `r` holding a place among `kind` until it is answered, or undefined when the bound is
   * reached (then `r` was answered `busy`). Forwards are taken by `forward`, not admitted.
   */
  admit(kind: Exclude<Waiting, "forwards">, r: Responder): Responder | undefined
  /** Requests held now, by kind (for status and metrics). */
  held(): WaitingCounts
  /** Requests answered `busy` since start, by kind. */
  refused(): WaitingCounts
}

const counts = (): Record<Waiting, number> => ({ writes: 0, reads: 0, leases: 0, forwards: 0 })

const carriesBytes = (kind: Waiting): boolean => kind === "writes" || kind === "forwards"

export const make = (id: string, bounds: Bounds): Admission => {
  const held = counts()
  const refused = counts()
  let bytes = 0

  // Made once per kind: under a flood every refusal would otherwise build an Error and its stack.
  const refusals = new Map<Waiting, ArchioError>()
  const busy = (kind: Waiting): ArchioError => {
    let err = refusals.get(kind)
    if (err === undefined) {
      const what = kind === "leases" ? "parked leases" : kind
      err = archioError("busy", `node ${id} holds as many ${what} as it may (${bounds[kind]}); back off and retry`, { node: id, waiting: kind })
      refusals.set(kind, err)
    }
    return err
  }

  const take = (kind: Waiting, size: number): boolean => {
    if (held[kind] >= bounds[kind] || (size > 0 && bytes + size > bounds.bytes && held[kind] > 0)) {
      refused[kind]++
      return false
    }
    held[kind]++
    bytes += size
    return true
  }

  const give = (kind: Waiting, size: number): void => {
    held[kind]--
    bytes -= size
    // A place given back twice would let the node hold more than its bound, unseen.
    if (held[kind] < 0 || bytes < 0) throw new Error(`admission: ${kind} given back more often than taken (held ${held[kind]}, bytes ${bytes})`)
  }

  const admit = (kind: Exclude<Waiting, "forwards">, r: Responder): Responder | undefined => {
    const size = carriesBytes(kind) ? r.data.length : 0
    if (!take(kind, size)) {
      r.fail(busy(kind))
      return undefined
    }
    let holding = true
    const release = (): void => {
      if (!holding) return
      holding = false
      give(kind, size)
    }
    return {
      data: r.data,
      forwardedBy: r.forwardedBy,
      ok: (body) => {
        release()
        r.ok(body)
      },
      fail: (err) => {
        release()
        r.fail(err)
      },
      forward: (nc: Bus, subject: string, self: string, timeoutMs: number, unanswered?: Unanswered, settled?: () => void) => {
        release()
        const size = r.data.length
        if (!take("forwards", size)) {
          r.fail(busy("forwards"))
          return settled?.()
        }
        r.forward(nc, subject, self, timeoutMs, unanswered, () => {
          give("forwards", size)
          settled?.()
        })
      },
      get done() {
        return r.done
      }
    }
  }

  return { admit, held: () => ({ ...held }), refused: () => ({ ...refused }) }
}
