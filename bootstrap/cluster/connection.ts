/**
 * How `archio cluster` commands reach a cluster: the connection flags of `archio status` with an
 * admin `--timeout`, and a client that retries a request (a lost reply, a cluster electing)
 * until then. The client, its subjects and failure sentences are those of `archio snapshot`.
 */
import type { CommandLine } from "../options.ts"
import { adminConnectionOptions, readConnectionWith, type Connection } from "../snapshot/connection.ts"

export { jsonOption, nodeOption, readNode, runAdminCall, type Connection } from "../snapshot/connection.ts"

export const defaultTimeoutMs = 5000

export const connectionOptions = adminConnectionOptions(
  "ADMIN_TIMEOUT_MS",
  defaultTimeoutMs,
  "how long one request may keep retrying (no answer, lost replies, an election), in milliseconds"
)

export const connectionSection = { title: "Connection flags (a flag wins over its variable)", options: connectionOptions } as const

/** The connection settings, or undefined after adding their problems to `problems`. */
export const readConnection = (line: CommandLine<keyof typeof connectionOptions>, problems: Array<string>): Connection | undefined =>
  readConnectionWith(line, defaultTimeoutMs, problems)
