/**
 * `archio cluster add|promote|remove ID`: one membership change through `admin.add`,
 * `admin.promote` or `admin.remove` (any node takes it: a follower passes it to the leader,
 * which answers once the change is committed), then the members as the leader sees them.
 */
import { Either } from "effect"
import * as Client from "../../protocol/client.ts"
import type { MembershipOp } from "../../protocol/membership.ts"
import { defineCommand } from "../command.ts"
import { ConfigError, name, type CommandLine, type OptionSpec } from "../options.ts"
import type { Terminal } from "../terminal.ts"
import { connectionOptions, connectionSection, jsonOption, readConnection, runAdminCall, type Connection } from "./connection.ts"
import { memberTable } from "./members.ts"

export const changeOptions = { json: jsonOption } as const satisfies Record<string, OptionSpec>

export interface ChangeSettings {
  readonly id: string
  readonly json: boolean
  readonly connection: Connection
}

export const changeSettings = (line: CommandLine<keyof typeof changeOptions | keyof typeof connectionOptions>): Either.Either<ChangeSettings, ConfigError> => {
  const problems: Array<string> = []
  const id = name({ source: "ID", value: line.args[0] ?? "" }, "a node id", problems)
  const connection = readConnection(line, problems)
  if (problems.length > 0 || connection === undefined || id === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ id, json: line.has("json"), connection })
}

const done: Record<MembershipOp, (id: string) => string> = {
  add: (id) => `added ${id} as a learner: it catches up from the leader; promote it once its lag is small`,
  promote: (id) => `promoted ${id}: it votes from now on`,
  remove: (id) => `removed ${id}: it is no member any more (stop it)`
}

/** What the change did, then the members (as `archio cluster members` shows them). */
export const renderChange = (op: MembershipOp, id: string, r: Client.MembershipChangeResponse): string =>
  `${r.changed ? done[op](id) : `nothing to do: ${id} ${op === "add" ? "is a learner already" : op === "promote" ? "is a voter already" : "is no member"}`} (configuration at index ${r.index}, cluster id ${r.clusterId})\n` +
  memberTable(r.members, r.node)

const runChange =
  (op: MembershipOp) =>
  (s: ChangeSettings, terminal: Terminal): Promise<number> =>
    runAdminCall(
      {
        command: `archio cluster ${op}`,
        connection: s.connection,
        node: undefined,
        op,
        body: { id: s.id },
        // A change is idempotent (asked again, one in effect changes nothing), so a lost reply is asked again.
        attemptTimeoutMs: 2000,
        reply: Client.MembershipChangeResponse,
        render: (r) => renderChange(op, s.id, r),
        json: s.json
      },
      terminal
    )

const command = (op: MembershipOp, summary: string, description: string, example: string) =>
  defineCommand({
    path: `cluster ${op}`,
    summary,
    args: ["ID"],
    minArgs: 1,
    description,
    options: [{ title: "Flags", options: changeOptions }, connectionSection],
    examples: [example, `archio cluster ${op} n4 --json`],
    check: changeSettings,
    run: runChange(op)
  })

export const addCommand = command(
  "add",
  "add a node as a learner (it receives the log, does not vote)",
  `Adds node ID to the cluster as a learner (archio.<cluster>.admin.add, answered by the leader):
it receives the snapshot and the log but neither votes nor counts for commits. Start it with
"archio node --id ID --join" (an empty data dir) before or after. A node that answers with data
of another cluster is refused (conflict). Then "archio cluster promote ID" once it caught up.
Adding a learner again changes nothing. Exit codes: 0 added, 1 failed, 2 bad usage.`,
  "archio cluster add n4 --cluster prod"
)

export const promoteCommand = command(
  "promote",
  "make a caught-up learner a voter",
  `Makes learner ID a voter (archio.<cluster>.admin.promote). Refused with unavailable while it
lags more than 1,000 entries, still receives a snapshot or has not answered the leader yet;
the command asks again until --timeout, so it also waits for the learner to catch up. One
change at a time: another one not yet committed is refused (unavailable, asked again).
Exit codes: 0 promoted, 1 failed, 2 bad usage.`,
  "archio cluster promote n4 --timeout 60000"
)

export const removeCommand = command(
  "remove",
  "remove a voter (the leader too) or a learner",
  `Removes node ID (archio.<cluster>.admin.remove). A voter, the leader included: the leader
keeps leading until its removal is committed, then hands leadership to the most caught-up voter
and steps down. The removed node stops getting the log, never campaigns, and says in its log
that it was removed: stop it then. The last voter cannot be removed. Exit codes: 0 removed,
1 failed, 2 bad usage.`,
  "archio cluster remove n1 --cluster prod"
)
