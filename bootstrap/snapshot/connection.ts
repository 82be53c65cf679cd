/**
 * How `archio snapshot save` and `archio snapshot now` reach a cluster: the connection flags
 * (those of `archio status`, with a longer `--timeout`, as a snapshot of a large state takes a
 * while), one connection that does not reconnect, and the subject of an admin request to any
 * node or to one. Requests go through `ArchioClient.call`, so a lost reply or a cluster still
 * electing is retried until `--timeout`.
 */
import { Either, Schema } from "effect"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { ArchioError, toEnvelope } from "../../protocol/errors.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { clusterOption, natsOptions, readCluster, readNats, readTimeout, type NatsSettings } from "../config.ts"
import { connectClient } from "../nats.ts"
import { name, type CommandLine, type OptionSpec } from "../options.ts"
import type { Terminal } from "../terminal.ts"

export const defaultTimeoutMs = 30_000

/** The connection flags of an admin command, with its own `--timeout` variable and default. */
export const adminConnectionOptions = <Env extends string>(env: Env, defaultMs: number, help: string) =>
  ({
    cluster: clusterOption,
    ...natsOptions,
    timeout: { flag: "--timeout", env, placeholder: "MS", default: String(defaultMs), help }
  }) as const satisfies Record<string, OptionSpec>

export const connectionOptions = adminConnectionOptions("SNAPSHOT_TIMEOUT_MS", defaultTimeoutMs, "how long one request may keep retrying (no answer, lost replies), in milliseconds")

export const nodeOption = { flag: "--node", placeholder: "ID", default: "any node", help: "ask this node, on its own subject" } as const satisfies OptionSpec

export const jsonOption = { flag: "--json", help: "print the result as one JSON object on one line" } as const satisfies OptionSpec

export interface Connection {
  readonly cluster: string
  readonly nats: NatsSettings
  readonly timeoutMs: number
}

/** The connection settings (`defaultMs`: the command's default timeout), or undefined after adding their problems to `problems`. */
export const readConnectionWith = (line: CommandLine<keyof typeof connectionOptions>, defaultMs: number, problems: Array<string>): Connection | undefined => {
  const before = problems.length
  const cluster = readCluster(line, problems)
  const nats = readNats(line, problems)
  const timeoutMs = readTimeout(line, defaultMs, problems)
  return problems.length > before || cluster === undefined || timeoutMs === undefined ? undefined : { cluster, nats, timeoutMs }
}

export const readConnection = (line: CommandLine<keyof typeof connectionOptions>, problems: Array<string>): Connection | undefined =>
  readConnectionWith(line, defaultTimeoutMs, problems)

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
  const nc = await connectClient(connection.nats, "archio-snapshot", {
    waitOnFirstConnect: false,
    reconnect: false,
    maxReconnectAttempts: 0,
    timeout: Math.min(connection.timeoutMs, 10_000)
  })
  const inboxPrefix = connection.nats.inboxPrefix
  return new ArchioClient(
    nc,
    {
      cluster: connection.cluster,
      deadlineMs: connection.timeoutMs,
      attemptTimeoutMs: Math.min(attemptTimeoutMs, connection.timeoutMs),
      ...(inboxPrefix === undefined ? {} : { inboxPrefix })
    },
    true
  )
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

/** One admin request of a one-shot command: whom to ask, with what, and how to show the answer. */
export interface AdminCall<A> {
  /** The command as the user typed it, for error lines (`archio snapshot now`). */
  readonly command: string
  readonly connection: Connection
  readonly node: string | undefined
  readonly op: string
  readonly body: unknown
  /** How long one attempt may wait (a lost reply is asked again after it). */
  readonly attemptTimeoutMs: number
  readonly reply: Schema.Schema<A, any> // eslint-disable-line @typescript-eslint/no-explicit-any -- any encoded form: only decoding is used
  readonly render: (answer: A) => string
  readonly json: boolean
}

/**
 * Sends one admin request and prints its answer (`render`, or the reply as it came with
 * `--json`); exit code 0, or 1 with one line on stderr (and the error envelope on stdout with
 * `--json`).
 */
export const runAdminCall = async <A>(call: AdminCall<A>, terminal: Terminal): Promise<number> => {
  const fail = (message: string): number => {
    terminal.err(`${call.command}: ${message}\n`)
    return 1
  }
  let client: ArchioClient
  try {
    client = await openClient(call.connection, call.attemptTimeoutMs)
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e))
  }
  try {
    const reply = await client.call<unknown>(adminSubject(call.connection.cluster, call.node, call.op), call.body)
    const decoded = Schema.decodeUnknownEither(call.reply)(reply)
    if (Either.isLeft(decoded)) return fail(`the admin.${call.op} reply is not what this command expects: ${JSON.stringify(reply)}`)
    terminal.out(call.json ? `${JSON.stringify(reply)}\n` : call.render(decoded.right))
    return 0
  } catch (e) {
    if (call.json && e instanceof ArchioError) terminal.out(`${JSON.stringify(toEnvelope(e))}\n`)
    return fail(failureText(e, call.connection.cluster))
  } finally {
    await closeClient(client)
  }
}
