/**
 * The frame every client command (`archio kv ...`, `archio jobs ...`) runs in, so both groups
 * read the same flags, talk through the same client and report failures the same way. A
 * command gives its arguments, its own flags and `prepare`, which checks them and returns the
 * work to do once connected; the frame adds `--json` and the connection flags, checks
 * everything before it connects (so a typo never waits on the network), connects, runs the
 * work, reports a failed request, and closes.
 *
 * Requests go through `ArchioClient`: retries while the cluster elects a leader, idempotency
 * tokens on writes, and `--timeout` as the deadline of each request. A request the cluster
 * refuses as malformed or too large is bad usage (exit 2); any other failure exits 1.
 */
import { Either } from "effect"
import { ArchioClient } from "../protocol/archioClient.ts"
import { ArchioError, toEnvelope } from "../protocol/errors.ts"
import { line } from "./clientOutput.ts"
import { defineCommand, type Command } from "./command.ts"
import { kvClientConfig, kvOptions, type KvClientConfig } from "./config.ts"
import type { OptionSection } from "./help.ts"
import { connectClient } from "./nats.ts"
import { ConfigError, type CommandLine, type OptionSpec, type OptionTable } from "./options.ts"
import { readStdin, type Terminal } from "./terminal.ts"

/** Reads all of standard input; see `ClientCommandSpec.prepare` for when it is given. */
export type Stdin = () => Promise<string>

/** What the work of a command has once connected. */
export interface Session {
  readonly client: ArchioClient
  readonly terminal: Terminal
  /** `--json` was given. */
  readonly json: boolean
  readonly cluster: string
  /** `kv get`, for messages. */
  readonly path: string
}

/** A checked command line: either every problem found, or the work to do once connected. */
export type Prepared = { readonly problems: ReadonlyArray<string> } | { readonly run: (s: Session) => Promise<number> }

export interface ClientCommandSpec<Flags extends OptionTable> {
  /** The word after the group's name (`get` in `archio kv get`). */
  readonly name: string
  readonly summary: string
  readonly args?: ReadonlyArray<string>
  readonly minArgs?: number
  readonly description: string
  /** The command's own flags; `--json` and the connection flags are added. */
  readonly flags: Flags
  readonly examples: ReadonlyArray<string>
  /** Keep reconnecting to NATS while it runs (`kv watch`, `jobs stats --watch`); one-shot commands fail fast instead. */
  readonly follows?: boolean | ((line: CommandLine<keyof Flags & string>) => boolean)
  /**
   * Checks the arguments and returns the work to do. `stdin` reads standard input; it is
   * undefined when other problems were already found, so a command line that is wrong anyway
   * never waits for input (its other problems are still reported).
   */
  readonly prepare: (line: CommandLine<keyof Flags & string>, stdin: Stdin | undefined) => Prepared | Promise<Prepared>
}

const jsonOption = { flag: "--json", help: "print the reply as JSON (one object per line)" } as const satisfies OptionSpec

/** The connection flags as a group's help lists them. */
export const connectionSection = (group: string): OptionSection => ({
  title: `Connection flags (every ${group} command; a flag wins over its variable)`,
  options: kvOptions
})

interface ClientRun {
  readonly connection: KvClientConfig
  readonly json: boolean
  readonly follows: boolean
  readonly work: (s: Session) => Promise<number>
}

const errorText = (e: ArchioError, cluster: string): string => {
  const text = `${e.code.replace("_", " ")}: ${e.message}`
  return e.code === "unavailable" && e.message.startsWith("no Archio node answers")
    ? `${text}: is the cluster running, and is its cluster name "${cluster}"?`
    : text
}

/**
 * Reports a failed request: with --json its error envelope on stdout as the cluster sent it,
 * always the message on stderr. A malformed or oversized request is bad usage (2), the rest 1.
 */
export const failed = (s: Session, e: unknown): number => {
  if (e instanceof ArchioError) {
    if (s.json) s.terminal.out(line(toEnvelope(e)))
    s.terminal.err(`archio ${s.path}: ${errorText(e, s.cluster)}\n`)
    return e.code === "bad_request" || e.code === "too_large" ? 2 : 1
  }
  s.terminal.err(`archio ${s.path}: ${e instanceof Error ? e.message : String(e)}\n`)
  return 1
}

/** Connects with the settings; one-shot commands do not reconnect, following ones do. */
const openClient = async (config: KvClientConfig, group: string, follows: boolean): Promise<ArchioClient> => {
  const nc = await connectClient(config.nats, `archio-${group}`, {
    waitOnFirstConnect: false,
    timeout: config.timeoutMs,
    ...(follows ? {} : { reconnect: false, maxReconnectAttempts: 0 })
  })
  return new ArchioClient(
    nc,
    { cluster: config.cluster, deadlineMs: config.timeoutMs, attemptTimeoutMs: Math.min(2000, config.timeoutMs), ...inbox(config.nats.inboxPrefix) },
    true
  )
}

/** The client's `inboxPrefix` option, when one is set. */
const inbox = (prefix: string | undefined): { inboxPrefix?: string } => (prefix === undefined ? {} : { inboxPrefix: prefix })

/** How long closing may wait for replies in flight to drain before the socket is closed outright. */
const drainGraceMs = 1000

/**
 * Drains the connection, but never hangs on it: a watch stopped while NATS is down would wait
 * for a reconnect that may never come.
 */
const closeClient = async (client: ArchioClient): Promise<void> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([
    client.close().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, drainGraceMs)))
  ])
  clearTimeout(timer)
  if (!client.nc.isClosed()) await client.nc.close().catch(() => undefined)
}

/** `archio <group> <spec.name>`, with the connection flags of every client command. */
export const defineClientCommand = <const Flags extends OptionTable>(group: string, spec: ClientCommandSpec<Flags>): Command => {
  const path = `${group} ${spec.name}`
  const own: OptionTable = { ...spec.flags, json: jsonOption }
  const connection = connectionSection(group)
  // The frame reads only the connection and --json; `prepare` reads the command's own flags.
  return defineCommand<ClientRun, ReadonlyArray<OptionSection>>({
    path,
    summary: spec.summary,
    ...(spec.args === undefined ? {} : { args: spec.args }),
    ...(spec.minArgs === undefined ? {} : { minArgs: spec.minArgs }),
    description: spec.description,
    options: [{ title: "Flags", options: own }, connection],
    examples: spec.examples,
    check: async (commandLine, terminal) => {
      const problems: Array<string> = []
      const settings = kvClientConfig(commandLine, problems)
      const prepared = await spec.prepare(commandLine, problems.length === 0 ? () => readStdin(terminal) : undefined)
      if ("problems" in prepared) problems.push(...prepared.problems)
      if (problems.length > 0 || settings === undefined || "problems" in prepared) return Either.left(new ConfigError({ problems }))
      const follows = typeof spec.follows === "function" ? spec.follows(commandLine) : spec.follows === true
      return Either.right({ connection: settings, json: commandLine.has("json"), follows, work: prepared.run })
    },
    run: async ({ connection, json, follows, work }, terminal) => {
      let client: ArchioClient
      try {
        client = await openClient(connection, group, follows)
      } catch (e) {
        terminal.err(`archio ${path}: ${e instanceof Error ? e.message : String(e)}\n`)
        return 1
      }
      const session: Session = { client, terminal, json, cluster: connection.cluster, path }
      try {
        return await work(session)
      } catch (e) {
        return failed(session, e)
      } finally {
        await closeClient(client)
      }
    }
  })
}
