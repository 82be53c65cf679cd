/**
 * `archio cluster members`: the members of a running cluster as the leader sees them, through
 * `admin.members` (any node answers: a follower asks its leader). Each member with its role
 * (voter or learner), match index (the highest log index the leader knows it holds) and lag
 * (the leader's last index minus that). With no leader known, the answering node's list
 * without match indexes.
 */
import { Either } from "effect"
import * as Client from "../../protocol/client.ts"
import { table } from "../clientOutput.ts"
import { defineCommand } from "../command.ts"
import { ConfigError, type CommandLine, type OptionSpec } from "../options.ts"
import type { Terminal } from "../terminal.ts"
import { connectionOptions, connectionSection, jsonOption, nodeOption, readConnection, readNode, runAdminCall, type Connection } from "./connection.ts"

export const membersOptions = { node: nodeOption, json: jsonOption } as const satisfies Record<string, OptionSpec>

export interface MembersSettings {
  readonly node: string | undefined
  readonly json: boolean
  readonly connection: Connection
}

export const membersSettings = (line: CommandLine<keyof typeof membersOptions | keyof typeof connectionOptions>): Either.Either<MembersSettings, ConfigError> => {
  const problems: Array<string> = []
  const node = readNode(line, problems)
  const connection = readConnection(line, problems)
  if (problems.length > 0 || connection === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ node, json: line.has("json"), connection })
}

const cell = (v: number | null): string => (v === null ? "-" : String(v))

/** One line per member: id, role, match index, lag, and which one leads. */
export const memberTable = (members: ReadonlyArray<Client.Member>, leader: string | null): string =>
  table(
    ["NODE", "ROLE", "MATCH", "LAG", ""],
    members.map((m) => [m.id, m.role, cell(m.matchIndex), cell(m.lag), m.id === leader ? "leader" : ""])
  )

/** The reply for people: who answered, then one line per member. */
export const renderMembers = (r: Client.MembersResponse): string => {
  const title =
    r.leader === null
      ? `no leader is known (term ${r.term}): the members as node ${r.node} has them, without match indexes`
      : `members as leader ${r.leader} sees them (term ${r.term})`
  return `${title}\n${memberTable(r.members, r.leader)}`
}

export const runMembers = (s: MembersSettings, terminal: Terminal): Promise<number> =>
  runAdminCall(
    { command: "archio cluster members", connection: s.connection, node: s.node, op: "members", body: {}, attemptTimeoutMs: 2000, reply: Client.MembersResponse, render: renderMembers, json: s.json },
    terminal
  )

export const membersCommand = defineCommand({
  path: "cluster members",
  summary: "list the members with role, match index and lag",
  description: `Lists the members of a running cluster as the leader sees them
(archio.<cluster>.admin.members, answered by any node: a follower asks its leader; or
archio.<cluster>.node.<id>.admin.members with --node): each member's id, role (voter or
learner), match index (the highest log index the leader knows it holds) and lag (the leader's
last index minus that; 0 for the leader). While no leader is known, the answering node lists the
members without match index and lag. For each node's own term, commit and applied index, see
archio status. Exit codes: 0 listed, 1 failed (no node answers), 2 bad usage.`,
  options: [{ title: "Flags", options: membersOptions }, connectionSection],
  examples: ["archio cluster members --cluster prod", "archio cluster members --json | jq '.members[] | select(.lag > 100)'"],
  check: membersSettings,
  run: runMembers
})
