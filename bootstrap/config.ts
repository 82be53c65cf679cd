/**
 * Settings shared by the commands: a node's (`archio node`), and the NATS connection every
 * command that talks to a cluster uses; their option tables, and the checks that turn a parsed
 * command line into them. Each check reports every problem at once, naming the flag or
 * variable the bad value came from.
 *
 * `nodeOptions` is the single source of `archio node`'s flags, its help and the README table.
 */
import { Either } from "effect"
import * as Admission from "../actors/gateway/admission.ts"
import type { FollowerWrites } from "../actors/gateway/http.ts"
import { validToken } from "../protocol/subjects.ts"
import {
  ConfigError,
  integer,
  name,
  nameRule,
  parseCommandLine,
  type CommandLine,
  type Env,
  type Given,
  type OptionSpec
} from "./options.ts"

export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "none"] as const
export type LogLevelName = (typeof logLevels)[number]
/** `text`: one readable line per event; `json`: one JSON object per line (Loki, Elasticsearch). */
export const logFormats = ["text", "json"] as const
export type LogFormat = (typeof logFormats)[number]

/** How to reach and authenticate with NATS. Secrets never appear in logs (see `describe`). */
export interface NatsSettings {
  /** One or more server URLs, tried in turn (the client picks and fails over). */
  readonly servers: ReadonlyArray<string>
  readonly user: string | undefined
  readonly pass: string | undefined
  readonly token: string | undefined
  /** Path of a `.creds` file (JWT + nkey seed), read when connecting. */
  readonly credsFile: string | undefined
  /** Path of a file holding a user nkey seed (`SU...`), read when connecting. */
  readonly nkeyFile: string | undefined
  /**
   * Prefix of this connection's reply subjects (`_INBOX` when unset). A NATS user allowed to read
   * only its own inbox (ops/nats: `_INBOX_<user>.>`) must use that prefix.
   */
  readonly inboxPrefix: string | undefined
  /** Present when any TLS file is configured (or a `tls://` URL is used). */
  readonly tls: NatsTls | undefined
}

export interface NatsTls {
  readonly caFile: string | undefined
  readonly certFile: string | undefined
  readonly keyFile: string | undefined
}

export interface Config {
  /** This node's id, a single subject token (`n1`). */
  readonly id: string
  /** Cluster name, a single subject token; every subject starts with `archio.<cluster>.`. */
  readonly cluster: string
  readonly nats: NatsSettings
  /** Every voting member, including `id`; NATS does the addressing so ids are enough. */
  readonly peers: ReadonlyArray<string>
  /** Folder of this node's LevelDB database, as given (relative paths are from the cwd). */
  readonly dataDir: string
  /** Port of the HTTP shim, when one is wanted. */
  readonly httpPort: number | undefined
  /** Interface the HTTP shim listens on. */
  readonly httpHost: string
  /** Bearer token the HTTP shim requires for writes and admin routes, when set. */
  readonly httpToken: string | undefined
  /** What the HTTP shim does with a write while this node does not lead; `forward` when absent. */
  readonly httpFollowerWrites?: FollowerWrites
  /** Nodes' HTTP base URLs by id (`HTTP_PEERS`), so answers can name the leader's; absent when not given. */
  readonly httpPeers?: Readonly<Record<string, string>>
  /** Log entries kept before the log is compacted into a snapshot. */
  readonly snapshotThreshold: number
  /** Most waiting client requests of each kind the node holds before answering `busy`. */
  readonly maxHeld: number
  /** Length of one Raft tick in milliseconds. */
  readonly tickMs: number
  /** Election timeout in ticks; each timeout is drawn from [electionTicks, 2 * electionTicks). */
  readonly electionTicks: number
  /** Leader heartbeat interval in ticks; always less than `electionTicks`. */
  readonly heartbeatTicks: number
  readonly logLevel: LogLevelName
  /** `json` when asked for (`LOG_FORMAT`); absent means `text`. */
  readonly logFormat?: LogFormat
}

export const defaults = {
  cluster: "dev",
  natsUrl: "nats://127.0.0.1:4222",
  dataRoot: "./.archio",
  snapshotThreshold: 10_000,
  maxHeld: Admission.defaultMaxHeld,
  tickMs: 10,
  electionTicks: 15,
  heartbeatTicks: 3,
  logLevel: "info" as LogLevelName,
  logFormat: "text" as LogFormat,
  kvTimeoutMs: 5000
} as const

/** How to reach NATS and authenticate, for every command that talks to a cluster. */
export const natsOptions = {
  nats: {
    flag: "--nats",
    env: "NATS_URL",
    placeholder: "URLS",
    default: defaults.natsUrl,
    help: "NATS server URL; a comma-separated list fails over between servers"
  },
  natsUser: { flag: "--nats-user", env: "NATS_USER", placeholder: "USER", help: "NATS user (needs the password too)" },
  natsPass: { flag: "--nats-pass", env: "NATS_PASS", placeholder: "PASS", help: "NATS password (prefer the variable: flags show in `ps`)" },
  natsToken: { flag: "--nats-token", env: "NATS_TOKEN", placeholder: "TOKEN", help: "NATS token (prefer the variable: flags show in `ps`)" },
  natsCreds: { flag: "--nats-creds", env: "NATS_CREDS", placeholder: "FILE", help: "NATS .creds file (JWT + nkey seed)" },
  natsNkey: { flag: "--nats-nkey", env: "NATS_NKEY", placeholder: "FILE", help: "file holding a NATS user nkey seed (SU...)" },
  natsInboxPrefix: {
    flag: "--nats-inbox-prefix",
    env: "NATS_INBOX_PREFIX",
    placeholder: "PREFIX",
    default: "_INBOX",
    help: "prefix of reply subjects; a NATS user that may read only its own inbox needs it (_INBOX_<user> with ops/nats)"
  },
  natsTlsCa: { flag: "--nats-tls-ca", env: "NATS_TLS_CA", placeholder: "FILE", help: "CA certificate (PEM) that signed the server's" },
  natsTlsCert: { flag: "--nats-tls-cert", env: "NATS_TLS_CERT", placeholder: "FILE", help: "client certificate (PEM) for mutual TLS" },
  natsTlsKey: { flag: "--nats-tls-key", env: "NATS_TLS_KEY", placeholder: "FILE", help: "client private key (PEM) for mutual TLS" }
} as const satisfies Record<string, OptionSpec>

export const clusterOption = {
  flag: "--cluster",
  env: "CLUSTER",
  placeholder: "NAME",
  default: defaults.cluster,
  help: "cluster name; subjects start with archio.<cluster>."
} as const satisfies OptionSpec

/** Every `archio node` setting, in the order `--help` lists them. */
export const nodeOptions = {
  id: { flag: "--id", env: "NODE_ID", placeholder: "ID", default: "required", help: "this node's id: letters, digits, _ or -" },
  cluster: clusterOption,
  ...natsOptions,
  peers: {
    flag: "--peers",
    env: "PEERS",
    legacy: ["RAFT_NODES"],
    placeholder: "IDS",
    default: "the node's own id",
    help: "comma-separated ids of the voting nodes of a NEW cluster, this one included (after its first leader, the log holds the members)"
  },
  join: {
    flag: "--join",
    env: "JOIN",
    default: "off (JOIN=1 turns it on)",
    help: "start empty and wait to be added to a running cluster (archio cluster add), instead of --peers"
  },
  data: {
    flag: "--data",
    env: "DATA_DIR",
    placeholder: "DIR",
    default: "<data root>/<id>",
    help: "folder of this node's LevelDB database (wins over --data-root)"
  },
  dataRoot: {
    flag: "--data-root",
    env: "DATA_ROOT",
    legacy: ["RAFT_DATA_DIR"],
    placeholder: "DIR",
    default: defaults.dataRoot,
    help: "folder holding the nodes' data folders: without --data, this node's is <DIR>/<id>"
  },
  httpPort: {
    flag: "--http-port",
    env: "HTTP_PORT",
    legacy: ["KVSTORE_PORT", "PORT"],
    placeholder: "PORT",
    default: "none",
    help: "port of the HTTP shim (1-65535)"
  },
  httpHost: {
    flag: "--http-host",
    env: "HTTP_HOST",
    placeholder: "HOST",
    default: "127.0.0.1",
    help: "interface the HTTP shim listens on (0.0.0.0 for every interface)"
  },
  httpToken: {
    flag: "--http-token",
    env: "HTTP_TOKEN",
    placeholder: "TOKEN",
    default: "none",
    help: "bearer token the HTTP shim requires for writes and admin routes"
  },
  httpFollowerWrites: {
    flag: "--http-follower-writes",
    env: "HTTP_FOLLOWER_WRITES",
    placeholder: "MODE",
    default: "forward",
    help: "HTTP writes on a node that does not lead: forward (passed to the leader) or reject (409 not_leader naming the leader)"
  },
  httpPeers: {
    flag: "--http-peers",
    env: "HTTP_PEERS",
    placeholder: "ID=URL,...",
    default: "none",
    help: "the nodes' HTTP base URLs (n1=http://10.0.0.1:8081,...), to tell clients the leader's in /raft/leader and 409s"
  },
  snapshotThreshold: {
    flag: "--snapshot-threshold",
    env: "SNAPSHOT_THRESHOLD",
    legacy: ["RAFT_SNAPSHOT_THRESHOLD"],
    placeholder: "N",
    default: String(defaults.snapshotThreshold),
    help: "log entries kept before compacting into a snapshot"
  },
  maxHeld: {
    flag: "--max-held",
    env: "MAX_HELD",
    placeholder: "N",
    default: String(defaults.maxHeld),
    help: "waiting requests of each kind (writes, reads, forwards; half as many parked leases) a node holds before answering busy"
  },
  tickMs: { flag: "--tick-ms", env: "TICK_MS", placeholder: "MS", default: String(defaults.tickMs), help: "Raft tick length in milliseconds" },
  electionTicks: {
    flag: "--election-ticks",
    env: "ELECTION_TICKS",
    placeholder: "N",
    default: String(defaults.electionTicks),
    help: "election timeout in ticks, randomized in [N, 2N)"
  },
  heartbeatTicks: {
    flag: "--heartbeat-ticks",
    env: "HEARTBEAT_TICKS",
    placeholder: "N",
    default: String(defaults.heartbeatTicks),
    help: "leader heartbeat in ticks; must be less than the election ticks"
  },
  logLevel: {
    flag: "--log-level",
    env: "LOG_LEVEL",
    placeholder: "LEVEL",
    default: defaults.logLevel,
    help: `one of ${logLevels.join(", ")}`
  },
  logFormat: {
    flag: "--log-format",
    env: "LOG_FORMAT",
    placeholder: "FORMAT",
    default: defaults.logFormat,
    help: "text (time LEVEL message key=value) or json (one JSON object per line, for Loki or Elasticsearch)"
  }
} as const satisfies Record<string, OptionSpec>

/**
 * The connection of a command that sends requests through the typed client (every `archio kv`
 * command, `archio worker`): NATS, the cluster, and how long a request may keep retrying.
 */
export const kvOptions = {
  cluster: clusterOption,
  ...natsOptions,
  timeout: {
    flag: "--timeout",
    env: "KV_TIMEOUT_MS",
    placeholder: "MS",
    default: String(defaults.kvTimeoutMs),
    help: "how long one request may keep retrying (no leader yet, lost replies), in milliseconds"
  }
} as const satisfies Record<string, OptionSpec>

/** What a client command needs: where NATS is, which cluster, and how long to keep retrying. */
export interface KvClientConfig {
  readonly cluster: string
  readonly nats: NatsSettings
  readonly timeoutMs: number
}

// ---------------------------------------------------------------------------------------------
// Checks

/** Accepts `host`, `host:port`, `nats://host[:port]` and `tls://host[:port]`. */
const natsUrl = (item: string): boolean => {
  if (item === "") return false
  let url: URL
  try {
    url = new URL(item.includes("://") ? item : `nats://${item}`)
  } catch {
    return false
  }
  if (url.protocol !== "nats:" && url.protocol !== "tls:") return false
  if (url.hostname === "") return false
  if (url.pathname !== "" && url.pathname !== "/") return false
  if (url.port !== "") {
    const port = Number(url.port)
    if (!Number.isInteger(port) || port < 1 || port > 65535) return false
  }
  return true
}

/** Dot-separated tokens, none empty or a wildcard: what nats.js accepts as `inboxPrefix`. */
const inboxToken = /^[^\s.*>]+$/
export const validInboxPrefix = (prefix: string): boolean => prefix.split(".").every((token) => inboxToken.test(token))

/** The NATS servers and credentials, checked together (one auth method, a cert with its key). */
export const readNats = (line: CommandLine<keyof typeof natsOptions>, problems: Array<string>): NatsSettings => {
  const get = line.get
  const urlGiven = get("nats") ?? { source: natsOptions.nats.env, value: defaults.natsUrl }
  const items = urlGiven.value.split(",").map((s) => s.trim())
  const servers: Array<string> = []
  for (const item of items) {
    if (natsUrl(item)) servers.push(item)
    else {
      const shown = item === "" ? urlGiven.value : item
      problems.push(
        `${urlGiven.source} must be a comma-separated list of nats://host:port or tls://host:port URLs, got ${JSON.stringify(shown)}`
      )
      break
    }
  }
  const user = get("natsUser")
  const pass = get("natsPass")
  const token = get("natsToken")
  const creds = get("natsCreds")
  const nkey = get("natsNkey")
  if ((user === undefined) !== (pass === undefined)) {
    const missing = user === undefined ? natsOptions.natsUser : natsOptions.natsPass
    const given = user ?? pass!
    problems.push(`${given.source} is set but ${missing.env} (or ${missing.flag}) is not: give the NATS user and password together`)
  }
  const methods = [user ?? pass, token, creds, nkey].filter((g): g is Given => g !== undefined)
  if (methods.length > 1) {
    problems.push(`choose one NATS authentication method, got ${methods.map((g) => g.source).join(", ")}`)
  }
  const ca = get("natsTlsCa")
  const cert = get("natsTlsCert")
  const key = get("natsTlsKey")
  if ((cert === undefined) !== (key === undefined)) {
    const given = cert ?? key!
    const missing = cert === undefined ? natsOptions.natsTlsCert : natsOptions.natsTlsKey
    problems.push(`${given.source} is set but ${missing.env} (or ${missing.flag}) is not: a client certificate needs its key`)
  }
  const inbox = get("natsInboxPrefix")
  if (inbox !== undefined && !validInboxPrefix(inbox.value)) {
    problems.push(`${inbox.source} must be a subject prefix without wildcards or spaces, such as _INBOX_client, got ${JSON.stringify(inbox.value)}`)
  }
  const wantsTls = ca !== undefined || cert !== undefined || key !== undefined || servers.some((s) => s.startsWith("tls://"))
  return {
    servers,
    user: user?.value,
    pass: pass?.value,
    token: token?.value,
    credsFile: creds?.value,
    nkeyFile: nkey?.value,
    inboxPrefix: inbox?.value,
    tls: wantsTls ? { caFile: ca?.value, certFile: cert?.value, keyFile: key?.value } : undefined
  }
}

/** The cluster name, `defaults.cluster` when unset; undefined after a problem. */
export const readCluster = (line: CommandLine<"cluster">, problems: Array<string>): string | undefined => {
  const given = line.get("cluster")
  return given === undefined ? defaults.cluster : name(given, "a cluster name", problems)
}

/** A timeout in milliseconds, `fallback` when unset; undefined after a problem. */
export const readTimeout = (line: CommandLine<"timeout">, fallback: number, problems: Array<string>): number | undefined => {
  const given = line.get("timeout")
  return given === undefined ? fallback : integer(given, 1, 600_000, problems)
}

const readLogLevel = (given: Given | undefined, problems: Array<string>): LogLevelName => {
  if (given === undefined) return defaults.logLevel
  const value = given.value.trim().toLowerCase()
  const found = logLevels.find((l) => l === value)
  if (found !== undefined) return found
  problems.push(`${given.source} must be one of ${logLevels.join(", ")}, got ${JSON.stringify(given.value)}`)
  return defaults.logLevel
}

const readLogFormat = (given: Given | undefined, problems: Array<string>): LogFormat => {
  if (given === undefined) return defaults.logFormat
  const found = logFormats.find((f) => f === given.value.trim().toLowerCase())
  if (found !== undefined) return found
  problems.push(`${given.source} must be one of ${logFormats.join(", ")}, got ${JSON.stringify(given.value)}`)
  return defaults.logFormat
}

/**
 * When the ids come from the variables (no --peers) and PEERS and its older name RAFT_NODES are
 * both set to different members, the sentence saying so; a node must not guess which one is meant.
 */
const variablesDisagree = (given: ReadonlyArray<Given>): string | undefined => {
  const [first, ...rest] = given
  if (first === undefined || first.source === nodeOptions.peers.flag) return undefined
  const members = (g: Given): string => [...new Set(g.value.split(",").map((s) => s.trim()))].sort().join(",")
  const other = rest.find((g) => members(g) !== members(first))
  return other === undefined
    ? undefined
    : `${first.source} (${JSON.stringify(first.value)}) and ${other.source} (${JSON.stringify(other.value)}) name different members: ${other.source} is the older name of ${first.source}, set only one (or both the same)`
}

const readFollowerWrites = (given: Given, problems: Array<string>): FollowerWrites | undefined => {
  const value = given.value.trim().toLowerCase()
  if (value === "forward" || value === "reject") return value
  problems.push(`${given.source} must be forward or reject, got ${JSON.stringify(given.value)}`)
  return undefined
}

/** `n1=http://10.0.0.1:8081,n2=...`: each node's HTTP base URL by id (http or https, no query). */
const readHttpPeers = (given: Given, problems: Array<string>): Readonly<Record<string, string>> | undefined => {
  const urls: Record<string, string> = Object.create(null) as Record<string, string>
  for (const item of given.value.split(",").map((s) => s.trim())) {
    const at = item.indexOf("=")
    const id = item.slice(0, at).trim()
    const url = item.slice(at + 1).trim()
    let parsed: URL | undefined
    try {
      parsed = new URL(url)
    } catch {
      parsed = undefined
    }
    const usable = parsed !== undefined && ["http:", "https:"].includes(parsed.protocol) && parsed.hostname !== "" && parsed.search === "" && parsed.hash === ""
    if (at <= 0 || !validToken(id) || !usable) {
      problems.push(`${given.source} must be a comma-separated list of <node id>=<http(s) URL> entries such as n1=http://10.0.0.1:8081, got ${JSON.stringify(item)}`)
      return undefined
    }
    if (Object.hasOwn(urls, id)) {
      problems.push(`${given.source} names ${JSON.stringify(id)} twice, got ${JSON.stringify(given.value)}`)
      return undefined
    }
    // A base URL: clients append the route (`${leader}/set`), so no trailing slash.
    urls[id] = url.replace(/\/+$/, "")
  }
  return urls
}

/** `archio node`'s settings from a parsed command line; on failure, every problem. */
export const nodeConfig = (line: CommandLine<keyof typeof nodeOptions>): Either.Either<Config, ConfigError> => {
  const problems: Array<string> = []
  const get = line.get

  const idGiven = get("id")
  let id: string | undefined
  if (idGiven === undefined) {
    problems.push(`${nodeOptions.id.env} (or ${nodeOptions.id.flag}) is required: the id of this node, for example n1`)
  } else {
    id = name(idGiven, "a node id", problems)
  }
  const cluster = readCluster(line, problems)
  const nats = readNats(line, problems)

  const peersGiven = get("peers")
  const peersConflict = variablesDisagree(line.all("peers"))
  if (peersConflict !== undefined) problems.push(peersConflict)
  const joinGiven = get("join")
  const join = line.has("join") || (joinGiven !== undefined && ["1", "true", "yes"].includes(joinGiven.value.trim().toLowerCase()))
  let peers: ReadonlyArray<string> = id === undefined || join ? [] : [id]
  if (join && peersGiven !== undefined) {
    problems.push(`--join and ${peersGiven.source} exclude each other: a joining node learns the members from the cluster`)
  } else if (peersGiven !== undefined) {
    const list = peersGiven.value.split(",").map((s) => s.trim())
    const bad = list.find((p) => !validToken(p))
    const seen = new Set<string>()
    const dup = list.find((p) => (seen.has(p) ? true : (seen.add(p), false)))
    if (bad !== undefined) {
      problems.push(`${peersGiven.source} must be a comma-separated list of node ids made of ${nameRule}, got ${JSON.stringify(peersGiven.value)}`)
    } else if (dup !== undefined) {
      problems.push(`${peersGiven.source} lists ${JSON.stringify(dup)} twice, got ${JSON.stringify(peersGiven.value)}`)
    } else if (id !== undefined && !list.includes(id)) {
      problems.push(`${peersGiven.source} must include this node's own id ${JSON.stringify(id)}, got ${JSON.stringify(peersGiven.value)}`)
    } else {
      peers = list
    }
  }

  const dataGiven = get("data")
  const rootGiven = get("dataRoot")
  let dataDir = `${defaults.dataRoot}/${id ?? "node"}`
  if (dataGiven !== undefined) {
    if (dataGiven.value.trim() === "") problems.push(`${dataGiven.source} must be a folder path, got ${JSON.stringify(dataGiven.value)}`)
    else dataDir = dataGiven.value
  } else if (rootGiven !== undefined) {
    // As the older service did with RAFT_DATA_DIR: one root for every node, a folder per id.
    if (rootGiven.value.trim() === "") problems.push(`${rootGiven.source} must be a folder path, got ${JSON.stringify(rootGiven.value)}`)
    else dataDir = `${rootGiven.value}${rootGiven.value.endsWith("/") ? "" : "/"}${id ?? "node"}`
  }

  const httpGiven = get("httpPort")
  const httpPort = httpGiven === undefined ? undefined : integer(httpGiven, 1, 65535, problems)
  const hostGiven = get("httpHost")
  const httpHost = hostGiven === undefined ? "127.0.0.1" : hostGiven.value.trim()
  if (hostGiven !== undefined && (httpHost === "" || /\s/.test(httpHost))) problems.push(`${hostGiven.source} must be a host name or address, got ${JSON.stringify(hostGiven.value)}`)
  const tokenGiven = get("httpToken")
  const httpToken = tokenGiven?.value
  if (tokenGiven !== undefined && tokenGiven.value.length < 16) problems.push(`${tokenGiven.source} must be at least 16 characters (a guessable token protects nothing)`)
  const writesGiven = get("httpFollowerWrites")
  const httpFollowerWrites = writesGiven === undefined ? undefined : readFollowerWrites(writesGiven, problems)
  const httpPeersGiven = get("httpPeers")
  const httpPeers = httpPeersGiven === undefined ? undefined : readHttpPeers(httpPeersGiven, problems)

  const snapGiven = get("snapshotThreshold")
  const snapshotThreshold = snapGiven === undefined ? defaults.snapshotThreshold : integer(snapGiven, 1, 1_000_000_000, problems)

  const heldGiven = get("maxHeld")
  const maxHeld = heldGiven === undefined ? defaults.maxHeld : integer(heldGiven, 1, 10_000_000, problems)

  const tickGiven = get("tickMs")
  const tickMs = tickGiven === undefined ? defaults.tickMs : integer(tickGiven, 1, 60_000, problems)
  const electionGiven = get("electionTicks")
  const electionTicks = electionGiven === undefined ? defaults.electionTicks : integer(electionGiven, 2, 1_000_000, problems)
  const heartbeatGiven = get("heartbeatTicks")
  const heartbeatTicks = heartbeatGiven === undefined ? defaults.heartbeatTicks : integer(heartbeatGiven, 1, 1_000_000, problems)
  if (electionTicks !== undefined && heartbeatTicks !== undefined && heartbeatTicks >= electionTicks) {
    const hb = heartbeatGiven?.source ?? nodeOptions.heartbeatTicks.env
    const el = electionGiven?.source ?? nodeOptions.electionTicks.env
    problems.push(`${hb} (${heartbeatTicks}) must be less than ${el} (${electionTicks}): followers would call elections between heartbeats`)
  }

  const logLevel = readLogLevel(get("logLevel"), problems)
  const logFormat = readLogFormat(get("logFormat"), problems)

  if (
    problems.length > 0 ||
    id === undefined ||
    cluster === undefined ||
    snapshotThreshold === undefined ||
    maxHeld === undefined ||
    tickMs === undefined ||
    electionTicks === undefined ||
    heartbeatTicks === undefined
  ) {
    return Either.left(new ConfigError({ problems }))
  }
  return Either.right({ id, cluster, nats, peers, dataDir, httpPort, httpHost, httpToken, snapshotThreshold, maxHeld, tickMs, electionTicks, heartbeatTicks, logLevel, ...(logFormat === "text" ? {} : { logFormat }), ...(httpFollowerWrites === undefined ? {} : { httpFollowerWrites }), ...(httpPeers === undefined ? {} : { httpPeers }) })
}

/**
 * Reads `archio node` settings from `argv` (the arguments after `node`) and `env`, as
 * `archio node` does. Pure: the same inputs give the same result. On failure every problem is
 * listed.
 */
export const parseConfig = (argv: ReadonlyArray<string>, env: Env): Either.Either<Config, ConfigError> => {
  const { line, problems } = parseCommandLine(argv, nodeOptions, env, { path: "node", args: [], minArgs: 0 })
  return problems.length > 0 ? Either.left(new ConfigError({ problems })) : nodeConfig(line)
}

/**
 * The connection settings of a client command (`kvOptions`), or undefined after adding its
 * problems to `problems` (which may already hold the command's others).
 */
export const kvClientConfig = (line: CommandLine<keyof typeof kvOptions>, problems: Array<string>): KvClientConfig | undefined => {
  const before = problems.length
  const cluster = readCluster(line, problems)
  const nats = readNats(line, problems)
  const timeoutMs = readTimeout(line, defaults.kvTimeoutMs, problems)
  return problems.length > before || cluster === undefined || timeoutMs === undefined ? undefined : { cluster, nats, timeoutMs }
}

/** The settings as one log line, secrets left out. */
export const describe = (config: Config): string => {
  const auth =
    config.nats.user !== undefined
      ? `user ${config.nats.user}`
      : config.nats.token !== undefined
        ? "token"
        : config.nats.credsFile !== undefined
          ? `creds ${config.nats.credsFile}`
          : config.nats.nkeyFile !== undefined
            ? `nkey ${config.nats.nkeyFile}`
            : "none"
  return [
    `id=${config.id}`,
    `cluster=${config.cluster}`,
    `nats=${config.nats.servers.map(redactUrl).join(",")}`,
    `auth=${auth}`,
    ...(config.nats.inboxPrefix === undefined ? [] : [`inbox=${config.nats.inboxPrefix}`]),
    `tls=${config.nats.tls === undefined ? "off" : "on"}`,
    config.peers.length === 0 ? "join" : `peers=${config.peers.join(",")}`,
    `data=${config.dataDir}`,
    `http=${config.httpPort === undefined ? "off" : `${config.httpHost}:${config.httpPort}${config.httpToken === undefined ? "" : " (token)"}`}`,
    ...(config.httpFollowerWrites === "reject" ? ["http-follower-writes=reject"] : []),
    ...(config.httpPeers === undefined ? [] : [`http-peers=${Object.keys(config.httpPeers).join(",")}`]),
    `snapshot=${config.snapshotThreshold}`,
    `tick=${config.tickMs}ms`,
    `election=${config.electionTicks}`,
    `heartbeat=${config.heartbeatTicks}`
  ].join(" ")
}

/** A server URL with any password in it replaced by `***`. */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]+):([^@/]+)@/, "//$1:***@")
