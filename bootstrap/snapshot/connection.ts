/**
 * How `archio snapshot save` and `archio snapshot now` reach a cluster: the connection flags
 * (those of `archio status`, with a longer `--timeout`, as a snapshot of a large state takes a
 * while), one connection that does not reconnect, and the subject of an admin request to any
 * node or to one. Requests go through `ArchioClient.call`, so a lost reply or a cluster still
 * electing is retried until `--timeout`.
 */
import { connect } from "@nats-io/transport-node"
import { Effect, Either } from "effect"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { ArchioError } from "../../protocol/errors.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { clusterOption, natsOptions, readCluster, readNats, readTimeout, redactUrl, type NatsSettings } from "../config.ts"
import { clientOptions } from "../nats.ts"
import { name, type CommandLine, type OptionSpec } from "../options.ts"

export const defaultTimeoutMs = 30_000

export const connectionOptions = {
  cluster: clusterOption,
  ...natsOptions,
  timeout: {
    flag: "--timeout",
    env: "SNAPSHOT_TIMEOUT_MS",
    placeholder: "MS",
    default: String(defaultTimeoutMs),
    help: "how long one request may keep retrying (no answer, lost replies), in milliseconds"
  }
} as const satisfies Record<string, OptionSpec>

export const nodeOption = { flag: "--node", placeholder: "ID", default: "any node", help: "ask this node, on its own subject" } as const satisfies OptionSpec

export const jsonOption = { flag: "--json", help: "print the result as one JSON object on one line" } as const satisfies OptionSpec

export interface Connection {
  readonly cluster: string
  readonly nats: NatsSettings
  readonly timeoutMs: number
}

/** The connection settings, or undefined after adding their problems to `problems`. */
export const readConnection = (line: CommandLine<keyof typeof connectionOptions>, problems: Array<string>): Connection | undefined => {
  const before = problems.length
  const cluster = readCluster(line, problems)
  const nats = readNats(line, problems)
  const timeoutMs = readTimeout(line, defaultTimeoutMs, problems)
  return problems.length > before || cluster === undefined || timeoutMs === undefined ? undefined : { cluster, nats, timeoutMs }
}

/** `--node`, checked; undefined when not given (or after a problem). */
export const readNode = (line: CommandLine<"node">, problems: Array<string>): string | undefined => {
  const given = line.get("node")
  return given === undefined ? undefined : name(given, "a node id", problems)
}

/** `archio.<cluster>.admin.<op>` (any node), or `archio.<cluster>.node.<id>.admin.<op>`. */
export const adminSubject = (cluster: string, node: string | undefined, op: string): string =>
  node === undefined ? Subjects.admin(cluster, op) : Subjects.node(cluster, node, `admin.${op}`)

/**
 * A client on a fresh connection that never reconnects (a one-shot command fails rather than
 * waits); each attempt of a request waits `attemptTimeoutMs`, all of them `timeoutMs`.
 */
export const openClient = async (connection: Connection, attemptTimeoutMs: number): Promise<ArchioClient> => {
  const where = connection.nats.servers.map(redactUrl).join(",")
  const base = await Effect.runPromise(Effect.either(clientOptions(connection.nats, "archio-snapshot")))
  if (Either.isLeft(base)) throw new Error(base.left.message)
  try {
    const nc = await connect({ ...base.right, waitOnFirstConnect: false, reconnect: false, maxReconnectAttempts: 0, timeout: Math.min(connection.timeoutMs, 10_000) })
    return new ArchioClient(nc, { cluster: connection.cluster, deadlineMs: connection.timeoutMs, attemptTimeoutMs: Math.min(attemptTimeoutMs, connection.timeoutMs) }, true)
  } catch (e) {
    throw new Error(`cannot connect to NATS at ${where}: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** Closes the client without hanging on a drain (the connection may already be gone). */
export const closeClient = async (client: ArchioClient): Promise<void> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([client.close().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))])
  clearTimeout(timer)
  if (!client.nc.isClosed()) await client.nc.close().catch(() => undefined)
}

/** A failed request as one sentence; "no node answers" adds what to check. */
export const failureText = (e: unknown, cluster: string): string => {
  if (!(e instanceof ArchioError)) return e instanceof Error ? e.message : String(e)
  const text = `${e.code.replace("_", " ")}: ${e.message}`
  return e.code === "unavailable" && e.message.startsWith("no Archio node answers")
    ? `${text}: is the cluster running, and is its cluster name "${cluster}"?`
    : text
}
