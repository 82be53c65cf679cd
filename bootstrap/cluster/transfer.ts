/**
 * `archio cluster transfer [ID]`: moves leadership to voter ID, or to the most caught-up other
 * voter, through `admin.transfer` (any node takes it: a follower passes it to the leader, which
 * answers once the new leader has taken over), and prints who leads now.
 */
import { Either } from "effect"
import * as Client from "../../protocol/client.ts"
import { defineCommand } from "../command.ts"
import { ConfigError, name, type CommandLine, type OptionSpec } from "../options.ts"
import type { Terminal } from "../terminal.ts"
import { connectionOptions, connectionSection, jsonOption, readConnection, runAdminCall, type Connection } from "./connection.ts"

export const transferOptions = { json: jsonOption } as const satisfies Record<string, OptionSpec>

export interface TransferSettings {
  /** The voter to hand leadership to; undefined: the leader picks the most caught-up one. */
  readonly id: string | undefined
  readonly json: boolean
  readonly connection: Connection
}

export const transferSettings = (line: CommandLine<keyof typeof transferOptions | keyof typeof connectionOptions>): Either.Either<TransferSettings, ConfigError> => {
  const problems: Array<string> = []
  const given = line.args[0]
  const id = given === undefined ? undefined : name({ source: "ID", value: given }, "a node id", problems)
  const connection = readConnection(line, problems)
  if (problems.length > 0 || connection === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ id, json: line.has("json"), connection })
}

export const runTransfer = (s: TransferSettings, terminal: Terminal): Promise<number> =>
  runAdminCall(
    {
      command: "archio cluster transfer",
      connection: s.connection,
      node: undefined,
      op: "transfer",
      body: s.id === undefined ? {} : { id: s.id },
      // One attempt may take all of --timeout: asking again after a lost reply could move
      // leadership twice. Quick refusals (no leader yet, a transfer under way) are retried.
      attemptTimeoutMs: s.connection.timeoutMs,
      reply: Client.TransferResponse,
      render: (r) => `leadership moved from ${r.node} to ${r.leader} (term ${r.term}) in ${r.ms} ms\n`,
      json: s.json
    },
    terminal
  )

export const transferCommand = defineCommand({
  path: "cluster transfer",
  summary: "move leadership to a node (or the most caught-up one)",
  args: ["[ID]"],
  minArgs: 0,
  description: `Moves leadership to voter ID, or without ID to the most caught-up other voter, through
archio.<cluster>.admin.transfer (answered by any node: a follower passes it to the leader). The
leader brings ID up to date, tells it to start an election at once (TimeoutNow), and answers once
ID leads; meanwhile writes wait rather than fail. Prints the new leader, its term and how long the
handover took. Use it to drain a node before maintenance; "archio node" does it by itself when the
leader gets SIGTERM. Fails with bad_request when ID is not a voter or already leads, and with
unavailable when no leader is known or ID did not take over within an election timeout (the old
leader then keeps leading). Exit codes: 0 moved, 1 failed, 2 bad usage.`,
  options: [{ title: "Flags", options: transferOptions }, connectionSection],
  examples: ["archio cluster transfer n2 --cluster prod", "archio cluster transfer --json"],
  check: transferSettings,
  run: runTransfer
})
