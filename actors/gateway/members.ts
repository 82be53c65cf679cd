/**
 * The member list `admin.members` and `admin.status` report, from one node's consensus status.
 * Pure: the Gateway decides whose view to use (the leader's, forwarded to when this node
 * follows); this only turns a status into the list: the configuration in effect there (voters,
 * then learners), with match index and lag when the status is a leader's.
 */
import type { Member } from "../../protocol/client.ts"
import type { Status } from "../raft/core.ts"

/**
 * Each member with its match index and lag when `status` is a leader's (the leader's own match
 * is its last index, so its lag is 0); otherwise with both null.
 */
export const memberList = (status: Pick<Status, "id" | "role" | "lastIndex" | "peers" | "membership">): Array<Member> => {
  const { voters, learners } = status.membership
  const listed = [...voters.map((id) => ({ id, role: "voter" as const })), ...learners.map((id) => ({ id, role: "learner" as const }))]
  if (status.role !== "leader") return listed.map((m) => ({ ...m, matchIndex: null, lag: null }))
  const match = new Map(status.peers.map((p) => [p.id, p.matchIndex]))
  return listed.map((m) => {
    const matchIndex = m.id === status.id ? status.lastIndex : match.get(m.id)
    // A member the leader tracks no progress for (it leads a configuration without itself).
    if (matchIndex === undefined) return { ...m, matchIndex: null, lag: null }
    return { ...m, matchIndex, lag: Math.max(0, status.lastIndex - matchIndex) }
  })
}
