/**
 * The member list `admin.members` and `admin.status` report, from one node's consensus status.
 * Pure: the Gateway decides whose view to use (the leader's, forwarded to when this node
 * follows); this only turns a status into the list.
 *
 * Today every member is a voter and the list is the configured one (`--peers`); membership
 * changes will make the log the source of both.
 */
import type { Member } from "../../protocol/client.ts"
import type { NodeId } from "../../protocol/raft.ts"
import type { Status } from "../raft/core.ts"

/**
 * Each member of `members` with its match index and lag when `status` is a leader's (the
 * leader's own match is its last index, so its lag is 0); otherwise with both null.
 */
export const memberList = (members: ReadonlyArray<NodeId>, status: Pick<Status, "id" | "role" | "lastIndex" | "peers">): Array<Member> => {
  if (status.role !== "leader") return members.map((id) => ({ id, role: "voter", matchIndex: null, lag: null }))
  const match = new Map(status.peers.map((p) => [p.id, p.matchIndex]))
  return members.map((id) => {
    const matchIndex = id === status.id ? status.lastIndex : match.get(id)
    // A member the leader tracks no progress for (none today) is shown without a view.
    if (matchIndex === undefined) return { id, role: "voter", matchIndex: null, lag: null }
    return { id, role: "voter", matchIndex, lag: Math.max(0, status.lastIndex - matchIndex) }
  })
}
