/**
 * A cluster's configuration as Raft log entries carry it (EntryKind.Config) and the applied
 * state keeps it: voters elect and commit; learners only receive the log. The first leader of a
 * new cluster appends the configuration `--peers` seeded, with a random cluster id; from then
 * on the log is the truth. One change at a time (a learner added, a learner promoted, a member
 * removed): any two majorities of consecutive configurations overlap (Raft thesis §4.1).
 */
import { Schema } from "effect"
import { NodeIdName } from "./client.ts"

export const Membership = Schema.Struct({
  /** The cluster's id: random, chosen by its first leader; "" until then (a seed configuration). */
  cluster: Schema.String,
  voters: Schema.Array(NodeIdName),
  learners: Schema.Array(NodeIdName)
}).annotations({ identifier: "Membership" })
export type Membership = Schema.Schema.Type<typeof Membership>

const text = new TextEncoder()
const untext = new TextDecoder()
const decode = Schema.decodeUnknownSync(Membership)

export const encodeMembership = (m: Membership): Uint8Array => text.encode(JSON.stringify(m))

/** Throws on bytes that are not a configuration: a corrupt log, never client input. */
export const decodeMembership = (data: Uint8Array): Membership => decode(JSON.parse(untext.decode(data)))

/** A configuration `--peers` implies for a brand-new cluster (no cluster id yet). */
export const seedMembership = (voters: ReadonlyArray<string>): Membership => ({ cluster: "", voters: [...new Set(voters)], learners: [] })

export const isVoter = (m: Membership, id: string): boolean => m.voters.includes(id)
export const isMember = (m: Membership, id: string): boolean => m.voters.includes(id) || m.learners.includes(id)

export type MembershipOp = "add" | "promote" | "remove"

/**
 * The configuration after one change, or a sentence saying why the change is refused; `null`
 * when it is already in effect (asking again after a lost reply changes nothing).
 */
export const changeMembership = (m: Membership, op: MembershipOp, id: string): Membership | null | { readonly refused: string } => {
  switch (op) {
    case "add":
      if (m.learners.includes(id)) return null
      if (m.voters.includes(id)) return { refused: `node ${id} is already a voter` }
      return { ...m, learners: [...m.learners, id] }
    case "promote":
      if (m.voters.includes(id)) return null
      if (!m.learners.includes(id)) return { refused: `node ${id} is not a learner: add it first (admin.add), then promote it once it caught up` }
      return { ...m, voters: [...m.voters, id], learners: m.learners.filter((l) => l !== id) }
    case "remove":
      if (!isMember(m, id)) return null
      if (m.voters.length === 1 && m.voters[0] === id) return { refused: `node ${id} is the last voter: a cluster needs one` }
      return { ...m, voters: m.voters.filter((v) => v !== id), learners: m.learners.filter((l) => l !== id) }
  }
}
