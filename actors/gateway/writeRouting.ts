/**
 * Which nodes take writes on the shared service subjects (`archio.<cluster>.kv.put`, ...).
 *
 * Every member joins the service's queue group, so a plain NATS request lands on any of them,
 * and a follower must forward a write to the leader: one more NATS round trip for two requests
 * in three. So the write endpoints (and `jobs.lease`, which waits at the leader) are served by
 * the leader alone while a leader is known and settled, and by every member otherwise, so that
 * some node always answers (forwarding, or `unavailable` during an election) and no request
 * meets "no responders" for longer than the cluster has no leader.
 *
 * A follower lets go only once the same leader has been known for `settleMs`: the leader
 * subscribes when it takes office, and its interest must reach the server before the last
 * follower's goes, or requests would find nobody for a moment. A node that loses its leader
 * (an election started, or it stepped down) takes writes again at once.
 */
import type { RaftRole } from "../../protocol/client.ts"
import type { NodeId } from "../../protocol/raft.ts"

/** How long a leader must be known before a follower stops taking writes. */
export const settleMs = 500

/** What the decision needs: the node's Raft view, and since when its leader has been the same. */
export interface RoutingView {
  readonly self: NodeId
  readonly role: RaftRole
  readonly leader: NodeId | null
  /** Clock time at which `leader` last changed (any clock, the same as `now`). */
  readonly leaderSince: number
  readonly now: number
}

/** True when this node should take the write endpoints' requests now. */
export const takesWrites = (v: RoutingView): boolean =>
  v.role === "leader" || v.leader === null || v.leader === v.self || v.now - v.leaderSince < settleMs

/** Follows one node's leader over time and says when its write endpoints should change. */
export class WriteRouting {
  #leader: NodeId | null = null
  #since: number
  #taking: boolean | undefined = undefined

  constructor(
    readonly self: NodeId,
    now: number
  ) {
    this.#since = now
  }

  /**
   * Given the node's role and leader now, returns `true` or `false` when the write endpoints
   * must start or stop taking requests, `undefined` when nothing changes.
   */
  update(role: RaftRole, leader: NodeId | null, now: number): boolean | undefined {
    if (leader !== this.#leader) {
      this.#leader = leader
      this.#since = now
    }
    const want = takesWrites({ self: this.self, role, leader, leaderSince: this.#since, now })
    if (want === this.#taking) return undefined
    this.#taking = want
    return want
  }

  /** Forget what was decided (the service was restarted): the next `update` says it again. */
  reset(): void {
    this.#taking = undefined
  }
}
