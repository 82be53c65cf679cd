/**
 * `archio status`: the whole cluster as one table, asked over NATS. The member list comes from
 * `admin.members` (any node answers, with the leader's view), or else from any node's
 * `admin.status`; then every member is asked on its own subject (`node.<id>.admin.status`), all
 * at once, each with `--timeout`. One row per member: its role, term, commit and applied index,
 * lag (the leader's last index minus what the leader knows the member holds), log base and last
 * snapshot. A problem line follows the table when there is not exactly one leader or a member
 * does not answer, and the exit code is then 1.
 *
 * `--json` prints the rows as one JSON object; `--watch` asks again every `--interval` until
 * Ctrl-C, redrawing the screen when stdout is a terminal and printing a timestamped block each
 * time otherwise; `--node ID` prints that node's own `admin.status` as JSON instead (the
 * command's output before the table).
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node"
import { Either, Schema } from "effect"
import { isNoResponders, isTimeout } from "../protocol/bus.ts"
import * as Client from "../protocol/client.ts"
import { readError } from "../protocol/reply.ts"
import * as subjects from "../protocol/subjects.ts"
import { table } from "./clientOutput.ts"
import { defineCommand } from "./command.ts"
import { clusterOption, natsOptions, readCluster, readNats, readTimeout, redactUrl, type NatsSettings } from "./config.ts"
import { connectClient } from "./nats.ts"
import { ConfigError, integer, name, type CommandLine, type OptionSpec } from "./options.ts"
import { pause, stopRequest, type Terminal } from "./terminal.ts"

const defaultTimeoutMs = 2000
const defaultIntervalMs = 1000

export const statusOptions = {
  cluster: clusterOption,
  ...natsOptions,
  node: { flag: "--node", env: "STATUS_NODE", placeholder: "ID", default: "every member", help: "print this node's own admin.status (JSON) instead of the table" },
  timeout: {
    flag: "--timeout",
    env: "STATUS_TIMEOUT_MS",
    placeholder: "MS",
    default: String(defaultTimeoutMs),
    help: "how long to wait for each answer, in milliseconds (every member is asked at once)"
  },
  json: { flag: "--json", help: "print the rows as one JSON object per line" },
  watch: { flag: "--watch", short: "-w", help: "ask again every --interval and redraw, until Ctrl-C" },
  interval: {
    flag: "--interval",
    env: "STATUS_INTERVAL_MS",
    placeholder: "MS",
    default: String(defaultIntervalMs),
    help: "how often --watch asks, in milliseconds"
  }
} as const satisfies Record<string, OptionSpec>

export interface StatusConfig {
  readonly cluster: string
  readonly nats: NatsSettings
  /** Print this node's own status (JSON) instead of the cluster's table. */
  readonly node: string | undefined
  /** How long each request may wait for its answer. */
  readonly timeoutMs: number
  readonly json: boolean
  readonly watch: boolean
  /** Between two rounds of `--watch`. */
  readonly intervalMs: number
}

export const statusConfig = (line: CommandLine<keyof typeof statusOptions>): Either.Either<StatusConfig, ConfigError> => {
  const problems: Array<string> = []
  const cluster = readCluster(line, problems)
  const nats = readNats(line, problems)
  const nodeGiven = line.get("node")
  const node = nodeGiven === undefined ? undefined : name(nodeGiven, "a node id", problems)
  const timeoutMs = readTimeout(line, defaultTimeoutMs, problems)
  const watch = line.has("watch")
  const intervalGiven = line.get("interval")
  const intervalMs = intervalGiven === undefined ? defaultIntervalMs : integer(intervalGiven, 100, 3_600_000, problems)
  if (intervalGiven?.source === "--interval" && !watch) problems.push("--interval only applies with --watch")
  if (problems.length > 0 || cluster === undefined || timeoutMs === undefined || intervalMs === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ cluster, nats, node, timeoutMs, json: line.has("json"), watch, intervalMs })
}

// ---------------------------------------------------------------------------------------------
// Asking

/** Connects once; `--watch` keeps reconnecting, a one-shot command fails fast instead. */
const open = (config: StatusConfig): Promise<NatsConnection> =>
  connectClient(config.nats, "archio-status", {
    waitOnFirstConnect: false,
    timeout: config.timeoutMs,
    ...(config.watch ? { maxReconnectAttempts: -1 } : { reconnect: false, maxReconnectAttempts: 0 })
  })

/** Why a request got no usable answer, as a sentence; `nobody` when nothing listens on the subject. */
export class Unanswered extends Error {
  constructor(
    message: string,
    readonly nobody: boolean
  ) {
    super(message)
  }
}

/** One request; its reply, or an `Unanswered` that says why not. */
const request = async (nc: NatsConnection, subject: string, timeoutMs: number): Promise<Msg> => {
  try {
    return await nc.request(subject, new Uint8Array(0), { timeout: timeoutMs })
  } catch (e) {
    if (isNoResponders(e)) throw new Unanswered(`nothing answers on ${subject}`, true)
    if (isTimeout(e)) throw new Unanswered(`no answer on ${subject} within ${timeoutMs} ms`, false)
    throw new Unanswered(`request on ${subject} failed: ${e instanceof Error ? e.message : String(e)}`, false)
  }
}

/** A reply's JSON body, or an `Unanswered` for an error reply or one that is not JSON. */
const bodyOf = (msg: Msg, subject: string): unknown => {
  const err = readError(msg)
  if (err !== undefined) throw new Unanswered(`${subject} answered ${err.code}: ${err.message}`, false)
  try {
    return JSON.parse(msg.string())
  } catch {
    throw new Unanswered(`${subject} answered something that is not JSON`, false)
  }
}

/** Asks `admin.status` of one node once; resolves to the reply text or rejects with a sentence. */
export const requestStatus = async (config: StatusConfig, nc: NatsConnection): Promise<string> => {
  const node = config.node!
  const subject = subjects.node(config.cluster, node, "admin.status")
  try {
    return (await request(nc, subject, config.timeoutMs)).string()
  } catch (e) {
    if (e instanceof Unanswered && e.nobody) throw new Error(`node ${node} does not answer on ${subject} at ${where(config)}: ${checkCluster(config)}`)
    throw e
  }
}

const where = (config: StatusConfig): string => config.nats.servers.map(redactUrl).join(",")
const checkCluster = (config: StatusConfig): string => `is the cluster running, and is its cluster name "${config.cluster}"?`

// ---------------------------------------------------------------------------------------------
// The cluster's table

/** One member as the table shows it: its own answer, and the leader's view of its lag. */
export interface StatusRow {
  readonly id: string
  /** `voter` or `learner`. */
  readonly member: Client.MemberRole
  /** Its Raft role; this and every field after it is null when the node did not answer. */
  readonly role: Client.RaftRole | null
  readonly term: number | null
  /** The leader it knows of. */
  readonly leader: string | null
  readonly commitIndex: number | null
  readonly appliedIndex: number | null
  readonly lastIndex: number | null
  /** Index of the last entry compacted away (the log starts after it). */
  readonly logBaseIndex: number | null
  /** Index of the last snapshot taken or installed there. */
  readonly snapshotIndex: number | null
  /** From the leader's view: null without one. */
  readonly matchIndex: number | null
  readonly lag: number | null
  /** Why it did not answer, or null. */
  readonly error: string | null
}

export interface ClusterView {
  readonly cluster: string
  /** When the answers came, ISO 8601. */
  readonly time: string
  /** The leader, when exactly one member says it leads. */
  readonly leader: string | null
  /** The highest term any member answered with. */
  readonly term: number | null
  readonly nodes: ReadonlyArray<StatusRow>
  /** One sentence per problem: not exactly one leader, a member that does not answer. */
  readonly problems: ReadonlyArray<string>
}

/** What the table reads of a node's `admin.status` (other fields are ignored). */
const NodeAnswer = Schema.Struct({
  role: Client.RaftRole,
  term: Client.NonNegativeInt,
  leader: Schema.NullOr(Schema.String),
  commitIndex: Client.NonNegativeInt,
  appliedIndex: Client.NonNegativeInt,
  lastIndex: Client.NonNegativeInt,
  logBaseIndex: Client.NonNegativeInt,
  snapshot: Schema.NullOr(Schema.Struct({ index: Client.NonNegativeInt })),
  members: Schema.Array(Schema.Union(Client.Member, Schema.String))
})
export type NodeAnswer = Schema.Schema.Type<typeof NodeAnswer>

const decodeMembers = Schema.decodeUnknownEither(Client.MembersResponse)
const decodeAnswer = Schema.decodeUnknownEither(NodeAnswer)

/** A node that answers `admin.status` with members as plain ids (before admin.members) lists voters. */
const asMember = (m: Client.Member | string): Client.Member => (typeof m === "string" ? { id: m, role: "voter", matchIndex: null, lag: null } : m)

/** The member list: `admin.members` (the leader's view), else any node's `admin.status`. */
const roster = async (nc: NatsConnection, config: StatusConfig): Promise<ReadonlyArray<Client.Member>> => {
  const membersSubject = subjects.admin(config.cluster, "members")
  try {
    const decoded = decodeMembers(bodyOf(await request(nc, membersSubject, config.timeoutMs), membersSubject))
    if (Either.isRight(decoded)) return decoded.right.members
  } catch (e) {
    if (!(e instanceof Unanswered)) throw e
  }
  // Nodes that do not serve admin.members yet, or a leader that did not answer for a follower.
  const statusSubject = subjects.admin(config.cluster, "status")
  try {
    const body = bodyOf(await request(nc, statusSubject, config.timeoutMs), statusSubject)
    const decoded = decodeAnswer(body)
    if (Either.isLeft(decoded)) throw new Error(`the answer on ${statusSubject} lists no members this command can read: ${JSON.stringify(body)}`)
    return decoded.right.members.map(asMember)
  } catch (e) {
    if (e instanceof Unanswered && e.nobody) throw new Error(`no archio node answers on ${membersSubject} or ${statusSubject} at ${where(config)}: ${checkCluster(config)}`)
    throw e
  }
}

/** One member's own `admin.status`, or why it has none. */
const askNode = async (nc: NatsConnection, config: StatusConfig, id: string): Promise<NodeAnswer | Unanswered> => {
  const subject = subjects.node(config.cluster, id, "admin.status")
  try {
    const body = bodyOf(await request(nc, subject, config.timeoutMs), subject)
    const decoded = decodeAnswer(body)
    return Either.isRight(decoded) ? decoded.right : new Unanswered(`its answer on ${subject} is not a status this command can read`, false)
  } catch (e) {
    if (e instanceof Unanswered) return e.nobody ? new Unanswered(`nothing answers on ${subject}`, true) : e
    throw e
  }
}

/** The table's rows and problems from the member list and each member's answer. Pure. */
export const buildView = (
  cluster: string,
  time: Date,
  members: ReadonlyArray<Client.Member>,
  answers: ReadonlyArray<NodeAnswer | Unanswered>
): ClusterView => {
  const leaders = members.flatMap((m, i) => {
    const a = answers[i]
    return a !== undefined && !(a instanceof Unanswered) && a.role === "leader" ? [{ id: m.id, answer: a }] : []
  })
  // The lag of each member, from the leader's own status when one leader answered, else from admin.members.
  const view = leaders.length === 1 ? new Map(leaders[0]!.answer.members.map(asMember).map((m) => [m.id, m])) : new Map(members.map((m) => [m.id, m]))
  const nodes = members.map((m, i): StatusRow => {
    const a = answers[i]
    const seen = view.get(m.id)
    const progress = { matchIndex: seen?.matchIndex ?? null, lag: seen?.lag ?? null }
    if (a === undefined || a instanceof Unanswered) {
      return { id: m.id, member: m.role, role: null, term: null, leader: null, commitIndex: null, appliedIndex: null, lastIndex: null, logBaseIndex: null, snapshotIndex: null, ...progress, error: a?.message ?? "not asked" }
    }
    return {
      id: m.id,
      member: m.role,
      role: a.role,
      term: a.term,
      leader: a.leader,
      commitIndex: a.commitIndex,
      appliedIndex: a.appliedIndex,
      lastIndex: a.lastIndex,
      logBaseIndex: a.logBaseIndex,
      snapshotIndex: a.snapshot?.index ?? null,
      ...progress,
      error: null
    }
  })
  const problems: Array<string> = []
  if (leaders.length === 0) problems.push("no leader: writes and linearizable reads fail until one is elected")
  if (leaders.length > 1) problems.push(`${leaders.length} members say they lead: ${leaders.map((l) => `${l.id} (term ${l.answer.term})`).join(", ")}`)
  for (const row of nodes) if (row.error !== null) problems.push(`${row.id} does not answer: ${row.error}`)
  const terms = nodes.flatMap((r) => (r.term === null ? [] : [r.term]))
  return {
    cluster,
    time: time.toISOString(),
    leader: leaders.length === 1 ? leaders[0]!.id : null,
    term: terms.length === 0 ? null : Math.max(...terms),
    nodes,
    problems
  }
}

/** Asks for the member list, then every member at once. Rejects with a sentence when no member list is to be had. */
export const clusterView = async (nc: NatsConnection, config: StatusConfig): Promise<ClusterView> => {
  const members = await roster(nc, config)
  const answers = await Promise.all(members.map((m) => askNode(nc, config, m.id)))
  return buildView(config.cluster, new Date(), members, answers)
}

const cell = (v: string | number | null): string => (v === null ? "-" : String(v))

const columns = ["NODE", "ROLE", "MEMBER", "TERM", "COMMIT", "APPLIED", "LAG", "LOG BASE", "SNAPSHOT"] as const

/** The table for people: a title, one line per member, then the problems. */
export const renderTable = (view: ClusterView): string => {
  const rows = view.nodes.map((r) => [r.id, r.role ?? "-", r.member, cell(r.term), cell(r.commitIndex), cell(r.appliedIndex), cell(r.lag), cell(r.logBaseIndex), cell(r.snapshotIndex)])
  const answering = view.nodes.filter((r) => r.error === null).length
  const title =
    `cluster ${view.cluster}: ` +
    (view.leader === null ? "no single leader" : `leader ${view.leader}, term ${cell(view.term)}`) +
    `; ${answering} of ${view.nodes.length} members answer`
  return `${title}\n${table(columns, rows)}${view.problems.map((p) => `problem: ${p}\n`).join("")}`
}

/** The rows for programs: one JSON object on one line. */
export const renderJson = (view: ClusterView): string => `${JSON.stringify({ ok: view.problems.length === 0, ...view })}\n`

// ---------------------------------------------------------------------------------------------
// Running

/** Clears the screen and moves to its top left (ANSI), for `--watch` on a terminal. */
export const clearScreen = "\x1b[H\x1b[2J"

/** One round: the text to print, and whether all was well. */
type Round = { readonly text: string; readonly ok: boolean }

const oneNode = async (config: StatusConfig, nc: NatsConnection): Promise<Round> => {
  const reply = await requestStatus(config, nc)
  try {
    return { text: `${JSON.stringify(JSON.parse(reply), null, config.json ? undefined : 2)}\n`, ok: true }
  } catch {
    return { text: `${reply}\n`, ok: true } // not JSON: printed as it came
  }
}

const wholeCluster = async (config: StatusConfig, nc: NatsConnection): Promise<Round> => {
  const view = await clusterView(nc, config)
  return { text: config.json ? renderJson(view) : renderTable(view), ok: view.problems.length === 0 }
}

const watch = async (config: StatusConfig, terminal: Terminal, round: () => Promise<Round>): Promise<number> => {
  const stop = stopRequest(terminal)
  // A redrawn screen on a terminal; elsewhere (a file, a pipe, --json) blocks one after another.
  const redraw = terminal.isTTY === true && !config.json
  try {
    for (;;) {
      const result = await Promise.race([
        round().then(
          (r) => r.text,
          (e: unknown) => `archio status: ${e instanceof Error ? e.message : String(e)}\n`
        ),
        stop.stopped.then(() => undefined)
      ])
      if (result === undefined) return 0
      const now = new Date().toISOString()
      if (redraw) terminal.out(`${clearScreen}archio status --watch: every ${config.intervalMs} ms, Ctrl-C stops; ${now}\n\n${result}`)
      else if (config.json) terminal.out(result)
      else terminal.out(`--- ${now}\n${result}`)
      if (await pause(config.intervalMs, stop.stopped)) return 0
    }
  } finally {
    stop.dispose()
  }
}

export const runStatus = async (config: StatusConfig, terminal: Terminal): Promise<number> => {
  let nc: NatsConnection
  try {
    nc = await open(config)
  } catch (e) {
    terminal.err(`archio status: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
  const round = () => (config.node === undefined ? wholeCluster(config, nc) : oneNode(config, nc))
  try {
    if (config.watch) return await watch(config, terminal, round)
    const r = await round()
    terminal.out(r.text)
    return r.ok ? 0 : 1
  } catch (e) {
    terminal.err(`archio status: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  } finally {
    await nc.close().catch(() => undefined)
  }
}

export const statusCommand = defineCommand({
  path: "status",
  summary: "show the whole cluster as one table (or one node's status), once or --watch",
  description: `Shows a running cluster as one table, one row per member: its Raft role, voter or learner,
term, commit and applied index, lag (the leader's last index minus what the leader knows the
member holds), log base (the last index compacted away) and last snapshot index. The members
come from archio.<cluster>.admin.members (answered by any node); then each member is asked on
archio.<cluster>.node.<id>.admin.status, all at once, each for up to --timeout. A "problem:"
line follows the table when there is not exactly one leader or a member does not answer, and
the exit code is then 1.

--json prints the same as one JSON object per line ({"ok","cluster","time","leader","term",
"nodes":[...],"problems":[...]}). --watch asks again every --interval until Ctrl-C: on a
terminal it redraws the screen, otherwise (a file, a pipe, --json) it prints one block per
round, each after a "--- <time>" line. --node prints that one node's own admin.status as JSON.
Exit codes: 0 all well (or --watch stopped), 1 a problem or no answer, 2 bad usage.`,
  options: [{ title: "Flags", options: statusOptions }],
  examples: [
    "archio status --nats nats://127.0.0.1:4222",
    "archio status --cluster dev --watch --interval 500",
    "archio status --json | jq '.nodes[] | {id, role, lag}'",
    "archio status --cluster dev --node n2"
  ],
  check: statusConfig,
  run: runStatus
})
