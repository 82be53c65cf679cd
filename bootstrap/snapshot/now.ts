/**
 * `archio snapshot now`: has one node (any, or `--node`) take a snapshot now and compact its
 * log behind it, through `admin.snapshot`, and prints what it took.
 */
import { Either } from "effect"
import * as Client from "../../protocol/client.ts"
import { defineCommand } from "../command.ts"
import { ConfigError, type CommandLine, type OptionSpec } from "../options.ts"
import type { Terminal } from "../terminal.ts"
import { connectionOptions, jsonOption, nodeOption, readConnection, readNode, runAdminCall, type Connection } from "./connection.ts"

export const nowOptions = { node: nodeOption, json: jsonOption } as const satisfies Record<string, OptionSpec>

export interface NowSettings {
  readonly node: string | undefined
  readonly json: boolean
  readonly connection: Connection
}

export const nowSettings = (line: CommandLine<keyof typeof nowOptions | keyof typeof connectionOptions>): Either.Either<NowSettings, ConfigError> => {
  const problems: Array<string> = []
  const node = readNode(line, problems)
  const connection = readConnection(line, problems)
  if (problems.length > 0 || connection === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ node, json: line.has("json"), connection })
}

export const runNow = (s: NowSettings, terminal: Terminal): Promise<number> =>
  runAdminCall(
    {
      command: "archio snapshot now",
      connection: s.connection,
      node: s.node,
      op: "snapshot",
      body: {},
      // One attempt may take all of --timeout: a snapshot of a large state takes a while, and
      // asking again would only queue a second one behind it.
      attemptTimeoutMs: s.connection.timeoutMs,
      reply: Client.SnapshotResponse,
      render: (t) => `node ${t.node} took a snapshot at index ${t.index}, term ${t.term}: ${t.size} bytes, sha256 ${t.checksum}; its log is compacted behind it\n`,
      json: s.json
    },
    terminal
  )

export const nowCommand = defineCommand({
  path: "snapshot now",
  summary: "have a node take a snapshot now and compact its log",
  description: `Asks one node to take a snapshot of its applied state now and compact its log behind it
(archio.<cluster>.admin.snapshot, answered by any one node, or
archio.<cluster>.node.<id>.admin.snapshot with --node), and prints the snapshot's index, term,
size and sha256. Nodes also take one by themselves every --snapshot-threshold entries; this
one stays on the node (to copy the state off the cluster, use archio snapshot save).
Exit codes: 0 taken, 1 failed (no node answers, the node refused), 2 bad usage.`,
  options: [
    { title: "Flags", options: nowOptions },
    { title: "Connection flags (a flag wins over its variable)", options: connectionOptions }
  ],
  examples: ["archio snapshot now --cluster prod", "archio snapshot now --node n2 --json"],
  check: nowSettings,
  run: runNow
})
