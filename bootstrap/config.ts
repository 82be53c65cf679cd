/**
 * Node configuration from command-line flags and environment variables; a flag wins over
 * its variable, a variable over an older alias (`KVSTORE_PORT`, `PORT`, `RAFT_DATA_DIR`,
 * `RAFT_SNAPSHOT_THRESHOLD`), an alias over the default.
 *
 * Everything here is pure: `parseConfig(argv, env)` returns every problem it finds at once,
 * each naming the flag or variable the bad value came from, so `archio node` can print them
 * and exit 2. One table (`nodeOptions`) drives parsing, `helpText` and the README table.
 */
import { Data, Either } from "effect"
import { validToken } from "../protocol/subjects.ts"

/** Environment as `process.env` gives it. */
export type Env = Readonly<Record<string, string | undefined>>

export class ConfigError extends Data.TaggedError("ConfigError")<{
  /** One sentence per problem, each naming the flag or variable and the value. */
  readonly problems: ReadonlyArray<string>
}> {
  override get message(): string {
    return this.problems.join("\n")
  }
}

export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "none"] as const
export type LogLevelName = (typeof logLevels)[number]

/** How to reach and authenticate with NATS. Secrets never appear in logs (see `describe`). */
export interface NatsSettings {
  /** One or more server URLs, tried in turn (the client picks and fails over). */
  readonly servers: ReadonlyArray<string>
  readonly user: string | undefined
  readonly pass: string | undefined
  readonly token: string | undefined
  /** Path of a `.creds` file (JWT + nkey seed), read when connecting. */
  readonly credsFile: string | undefined
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
  /** Log entries kept before the log is compacted into a snapshot. */
  readonly snapshotThreshold: number
  /** Length of one Raft tick in milliseconds. */
  readonly tickMs: number
  /** Election timeout in ticks; each timeout is drawn from [electionTicks, 2 * electionTicks). */
  readonly electionTicks: number
  /** Leader heartbeat interval in ticks; always less than `electionTicks`. */
  readonly heartbeatTicks: number
  readonly logLevel: LogLevelName
}

/** What `archio status` and `archio dev` need: where NATS is and which cluster to talk to. */
export interface ClientConfig {
  readonly cluster: string
  readonly nats: NatsSettings
  /** Ask this node on its own subject instead of any node through the queue group. */
  readonly node: string | undefined
  readonly timeoutMs: number
}

export const defaults = {
  cluster: "dev",
  natsUrl: "nats://127.0.0.1:4222",
  dataRoot: "./.archio",
  snapshotThreshold: 10_000,
  tickMs: 10,
  electionTicks: 15,
  heartbeatTicks: 3,
  logLevel: "info" as LogLevelName,
  statusTimeoutMs: 2000,
  kvTimeoutMs: 5000
} as const

/** One configurable setting: its flag, its variable, older variable names, and its help line. */
export interface OptionSpec {
  readonly flag: string
  readonly env: string
  readonly legacy?: ReadonlyArray<string>
  readonly placeholder: string
  readonly default: string
  readonly help: string
  /** Never echoed back in messages. */
  readonly secret?: boolean
}

const natsOptions = {
  nats: {
    flag: "--nats",
    env: "NATS_URL",
    placeholder: "URLS",
    default: defaults.natsUrl,
    help: "NATS server URL; a comma-separated list fails over between servers"
  },
  natsUser: { flag: "--nats-user", env: "NATS_USER", placeholder: "USER", default: "-", help: "NATS user (needs the password too)" },
  natsPass: {
    flag: "--nats-pass",
    env: "NATS_PASS",
    placeholder: "PASS",
    default: "-",
    help: "NATS password (prefer the variable: flags show in `ps`)",
    secret: true
  },
  natsToken: {
    flag: "--nats-token",
    env: "NATS_TOKEN",
    placeholder: "TOKEN",
    default: "-",
    help: "NATS token (prefer the variable: flags show in `ps`)",
    secret: true
  },
  natsCreds: { flag: "--nats-creds", env: "NATS_CREDS", placeholder: "FILE", default: "-", help: "NATS .creds file (JWT + nkey seed)" },
  natsTlsCa: { flag: "--nats-tls-ca", env: "NATS_TLS_CA", placeholder: "FILE", default: "-", help: "CA certificate (PEM) that signed the server's" },
  natsTlsCert: { flag: "--nats-tls-cert", env: "NATS_TLS_CERT", placeholder: "FILE", default: "-", help: "client certificate (PEM) for mutual TLS" },
  natsTlsKey: { flag: "--nats-tls-key", env: "NATS_TLS_KEY", placeholder: "FILE", default: "-", help: "client private key (PEM) for mutual TLS" }
} as const satisfies Record<string, OptionSpec>

const clusterOption = {
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
    placeholder: "IDS",
    default: "the node's own id",
    help: "comma-separated ids of all voting nodes, this one included"
  },
  data: {
    flag: "--data",
    env: "DATA_DIR",
    legacy: ["RAFT_DATA_DIR"],
    placeholder: "DIR",
    default: `${defaults.dataRoot}/<id>`,
    help: "folder of this node's LevelDB database"
  },
  httpPort: {
    flag: "--http-port",
    env: "HTTP_PORT",
    legacy: ["KVSTORE_PORT", "PORT"],
    placeholder: "PORT",
    default: "none",
    help: "port of the HTTP shim (1-65535)"
  },
  snapshotThreshold: {
    flag: "--snapshot-threshold",
    env: "SNAPSHOT_THRESHOLD",
    legacy: ["RAFT_SNAPSHOT_THRESHOLD"],
    placeholder: "N",
    default: String(defaults.snapshotThreshold),
    help: "log entries kept before compacting into a snapshot"
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
  }
} as const satisfies Record<string, OptionSpec>

/** `archio status` settings. */
export const statusOptions = {
  cluster: clusterOption,
  ...natsOptions,
  node: { flag: "--node", env: "STATUS_NODE", placeholder: "ID", default: "any node", help: "ask this node on its own subject" },
  timeout: {
    flag: "--timeout",
    env: "STATUS_TIMEOUT_MS",
    placeholder: "MS",
    default: String(defaults.statusTimeoutMs),
    help: "how long to wait for an answer, in milliseconds"
  }
} as const satisfies Record<string, OptionSpec>

/**
 * `archio kv` connection settings, shared by every subcommand (each adds its own flags in
 * `bootstrap/kvCli.ts`).
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

/** `archio worker` settings: what to run, how much at once, and the connection. */
export const workerOptions = {
  queues: { flag: "--queue", env: "WORKER_QUEUES", placeholder: "Q1,Q2", default: "required", help: "queues to take jobs from, in order of preference" },
  handler: { flag: "--handler", env: "WORKER_HANDLER", placeholder: "FILE", default: "required", help: "module whose default export runs one job: async (payload, ctx) => result" },
  concurrency: { flag: "--concurrency", env: "WORKER_CONCURRENCY", placeholder: "N", default: "1", help: "jobs run at once" },
  workerId: { flag: "--worker-id", env: "WORKER_ID", placeholder: "ID", default: "<host>-<pid>", help: "name recorded on leased jobs" },
  leaseMs: { flag: "--lease-ms", env: "WORKER_LEASE_MS", placeholder: "MS", default: "30000", help: "lease length; running jobs are extended every third of it" },
  waitMs: { flag: "--wait-ms", env: "WORKER_WAIT_MS", placeholder: "MS", default: "5000", help: "how long one lease request waits for a job" },
  graceMs: { flag: "--grace-ms", env: "WORKER_GRACE_MS", placeholder: "MS", default: "10000", help: "on SIGTERM/SIGINT, how long running jobs may finish before they are released" },
  ...kvOptions
} as const satisfies Record<string, OptionSpec>

export interface WorkerConfig extends KvClientConfig {
  readonly queues: ReadonlyArray<string>
  readonly handler: string
  readonly concurrency: number
  readonly workerId: string
  readonly leaseMs: number
  readonly waitMs: number
  readonly graceMs: number
}

/** What `archio kv` needs: where NATS is, which cluster, and how long to keep retrying. */
export interface KvClientConfig {
  readonly cluster: string
  readonly nats: NatsSettings
  readonly timeoutMs: number
}

// ---------------------------------------------------------------------------------------------
// Flags

/**
 * Splits `--flag value` and `--flag=value` pairs. Unknown flags, missing values and stray
 * positional arguments are problems; when a flag is given twice the last one wins.
 */
export const parseFlags = (
  argv: ReadonlyArray<string>,
  specs: Readonly<Record<string, OptionSpec>>,
  command: string
): Either.Either<ReadonlyMap<string, string>, ConfigError> => {
  const byFlag = new Map<string, string>()
  for (const [key, spec] of Object.entries(specs)) byFlag.set(spec.flag, key)
  const values = new Map<string, string>()
  const problems: Array<string> = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith("--")) {
      problems.push(`unexpected argument ${JSON.stringify(arg)} (see archio ${command} --help)`)
      continue
    }
    const eq = arg.indexOf("=")
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const key = byFlag.get(flag)
    if (key === undefined) {
      problems.push(`unknown flag ${JSON.stringify(flag)} (see archio ${command} --help)`)
      if (eq === -1 && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("--")) i++
      continue
    }
    if (eq !== -1) {
      values.set(key, arg.slice(eq + 1))
      continue
    }
    const next = argv[i + 1]
    if (next === undefined || next.startsWith("--")) {
      problems.push(`${flag} needs a value`)
      continue
    }
    values.set(key, next)
    i++
  }
  return problems.length > 0 ? Either.left(new ConfigError({ problems })) : Either.right(values)
}

// ---------------------------------------------------------------------------------------------
// Values

interface Raw {
  /** The flag or variable the value came from, for messages. */
  readonly name: string
  readonly value: string
}

/** Flag, then variable, then the older variable names; empty variables count as unset. */
const pick = (spec: OptionSpec, key: string, flags: ReadonlyMap<string, string>, env: Env): Raw | undefined => {
  const fromFlag = flags.get(key)
  if (fromFlag !== undefined) return { name: spec.flag, value: fromFlag }
  for (const name of [spec.env, ...(spec.legacy ?? [])]) {
    const value = env[name]
    if (value !== undefined && value !== "") return { name, value }
  }
  return undefined
}

const quote = (raw: Raw, secret = false): string => (secret ? "(hidden)" : JSON.stringify(raw.value))

const tokenRule = "letters, digits, _ or - (1 to 64 characters)"

const integer = (raw: Raw, min: number, max: number, problems: Array<string>): number | undefined => {
  const value = raw.value.trim()
  const n = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n
  problems.push(`${raw.name} must be an integer from ${min} to ${max}, got ${quote(raw)}`)
  return undefined
}

const token = (raw: Raw, what: string, problems: Array<string>): string | undefined => {
  if (validToken(raw.value)) return raw.value
  problems.push(`${raw.name} must be ${what} made of ${tokenRule}, got ${quote(raw)}`)
  return undefined
}

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

const parseNats = (
  get: (key: keyof typeof natsOptions) => Raw | undefined,
  problems: Array<string>
): NatsSettings => {
  const urlRaw = get("nats") ?? { name: natsOptions.nats.env, value: defaults.natsUrl }
  const items = urlRaw.value.split(",").map((s) => s.trim())
  const servers: Array<string> = []
  for (const item of items) {
    if (natsUrl(item)) servers.push(item)
    else {
      const shown = item === "" ? urlRaw.value : item
      problems.push(
        `${urlRaw.name} must be a comma-separated list of nats://host:port or tls://host:port URLs, got ${JSON.stringify(shown)}`
      )
      break
    }
  }
  const str = (key: keyof typeof natsOptions): string | undefined => get(key)?.value
  const user = get("natsUser")
  const pass = get("natsPass")
  const tokenRaw = get("natsToken")
  const creds = get("natsCreds")
  if ((user === undefined) !== (pass === undefined)) {
    const missing = user === undefined ? natsOptions.natsUser : natsOptions.natsPass
    const given = user ?? pass!
    problems.push(`${given.name} is set but ${missing.env} (or ${missing.flag}) is not: give the NATS user and password together`)
  }
  const methods = [user ?? pass, tokenRaw, creds].filter((r): r is Raw => r !== undefined)
  if (methods.length > 1) {
    problems.push(`choose one NATS authentication method, got ${methods.map((r) => r.name).join(", ")}`)
  }
  const ca = get("natsTlsCa")
  const cert = get("natsTlsCert")
  const key = get("natsTlsKey")
  if ((cert === undefined) !== (key === undefined)) {
    const given = cert ?? key!
    const missing = cert === undefined ? natsOptions.natsTlsCert : natsOptions.natsTlsKey
    problems.push(`${given.name} is set but ${missing.env} (or ${missing.flag}) is not: a client certificate needs its key`)
  }
  const wantsTls = ca !== undefined || cert !== undefined || key !== undefined || servers.some((s) => s.startsWith("tls://"))
  return {
    servers,
    user: str("natsUser"),
    pass: str("natsPass"),
    token: str("natsToken"),
    credsFile: str("natsCreds"),
    tls: wantsTls ? { caFile: ca?.value, certFile: cert?.value, keyFile: key?.value } : undefined
  }
}

const parseLogLevel = (raw: Raw | undefined, problems: Array<string>): LogLevelName => {
  if (raw === undefined) return defaults.logLevel
  const value = raw.value.trim().toLowerCase()
  const found = logLevels.find((l) => l === value)
  if (found !== undefined) return found
  problems.push(`${raw.name} must be one of ${logLevels.join(", ")}, got ${quote(raw)}`)
  return defaults.logLevel
}

/**
 * Reads `archio node` settings from `argv` (the arguments after `node`) and `env`.
 * Pure: the same inputs give the same result. On failure every problem is listed.
 */
export const parseConfig = (argv: ReadonlyArray<string>, env: Env): Either.Either<Config, ConfigError> =>
  Either.flatMap(parseFlags(argv, nodeOptions, "node"), (flags) => {
    const problems: Array<string> = []
    const get = (key: keyof typeof nodeOptions): Raw | undefined => pick(nodeOptions[key], key, flags, env)

    const idRaw = get("id")
    let id: string | undefined
    if (idRaw === undefined) {
      problems.push(`${nodeOptions.id.env} (or ${nodeOptions.id.flag}) is required: the id of this node, for example n1`)
    } else {
      id = token(idRaw, "a node id", problems)
    }
    const clusterRaw = get("cluster")
    const cluster = clusterRaw === undefined ? defaults.cluster : token(clusterRaw, "a cluster name", problems)

    const nats = parseNats(get, problems)

    const peersRaw = get("peers")
    let peers: ReadonlyArray<string> = id === undefined ? [] : [id]
    if (peersRaw !== undefined) {
      const list = peersRaw.value.split(",").map((s) => s.trim())
      const bad = list.find((p) => !validToken(p))
      const seen = new Set<string>()
      const dup = list.find((p) => (seen.has(p) ? true : (seen.add(p), false)))
      if (bad !== undefined) {
        problems.push(`${peersRaw.name} must be a comma-separated list of node ids made of ${tokenRule}, got ${JSON.stringify(peersRaw.value)}`)
      } else if (dup !== undefined) {
        problems.push(`${peersRaw.name} lists ${JSON.stringify(dup)} twice, got ${JSON.stringify(peersRaw.value)}`)
      } else if (id !== undefined && !list.includes(id)) {
        problems.push(`${peersRaw.name} must include this node's own id ${JSON.stringify(id)}, got ${JSON.stringify(peersRaw.value)}`)
      } else {
        peers = list
      }
    }

    const dataRaw = get("data")
    let dataDir = `${defaults.dataRoot}/${id ?? "node"}`
    if (dataRaw !== undefined) {
      if (dataRaw.value.trim() === "") problems.push(`${dataRaw.name} must be a folder path, got ${quote(dataRaw)}`)
      else dataDir = dataRaw.value
    }

    const httpRaw = get("httpPort")
    const httpPort = httpRaw === undefined ? undefined : integer(httpRaw, 1, 65535, problems)

    const snapRaw = get("snapshotThreshold")
    const snapshotThreshold = snapRaw === undefined ? defaults.snapshotThreshold : integer(snapRaw, 1, 1_000_000_000, problems)

    const tickRaw = get("tickMs")
    const tickMs = tickRaw === undefined ? defaults.tickMs : integer(tickRaw, 1, 60_000, problems)
    const electionRaw = get("electionTicks")
    const electionTicks = electionRaw === undefined ? defaults.electionTicks : integer(electionRaw, 2, 1_000_000, problems)
    const heartbeatRaw = get("heartbeatTicks")
    const heartbeatTicks = heartbeatRaw === undefined ? defaults.heartbeatTicks : integer(heartbeatRaw, 1, 1_000_000, problems)
    if (electionTicks !== undefined && heartbeatTicks !== undefined && heartbeatTicks >= electionTicks) {
      const hb = heartbeatRaw?.name ?? nodeOptions.heartbeatTicks.env
      const el = electionRaw?.name ?? nodeOptions.electionTicks.env
      problems.push(`${hb} (${heartbeatTicks}) must be less than ${el} (${electionTicks}): followers would call elections between heartbeats`)
    }

    const logLevel = parseLogLevel(get("logLevel"), problems)

    if (
      problems.length > 0 ||
      id === undefined ||
      cluster === undefined ||
      snapshotThreshold === undefined ||
      tickMs === undefined ||
      electionTicks === undefined ||
      heartbeatTicks === undefined
    ) {
      return Either.left(new ConfigError({ problems }))
    }
    return Either.right({
      id,
      cluster,
      nats,
      peers,
      dataDir,
      httpPort,
      snapshotThreshold,
      tickMs,
      electionTicks,
      heartbeatTicks,
      logLevel
    })
  })

/** Reads `archio status` settings (also used by `archio dev` with no flags). */
export const parseClientConfig = (argv: ReadonlyArray<string>, env: Env): Either.Either<ClientConfig, ConfigError> =>
  Either.flatMap(parseFlags(argv, statusOptions, "status"), (flags) => {
    const problems: Array<string> = []
    const get = (key: keyof typeof statusOptions): Raw | undefined => pick(statusOptions[key], key, flags, env)
    const clusterRaw = get("cluster")
    const cluster = clusterRaw === undefined ? defaults.cluster : token(clusterRaw, "a cluster name", problems)
    const nats = parseNats(get, problems)
    const nodeRaw = get("node")
    const node = nodeRaw === undefined ? undefined : token(nodeRaw, "a node id", problems)
    const timeoutRaw = get("timeout")
    const timeoutMs = timeoutRaw === undefined ? defaults.statusTimeoutMs : integer(timeoutRaw, 1, 600_000, problems)
    if (problems.length > 0 || cluster === undefined || timeoutMs === undefined) return Either.left(new ConfigError({ problems }))
    return Either.right({ cluster, nats, node, timeoutMs })
  })

/**
 * Reads `archio kv` connection settings from `argv` (only the flags of `kvOptions`; the
 * subcommand's own arguments are taken out first) and `env`. `command` names the subcommand in
 * messages (`kv put`).
 */
export const parseKvConfig = (argv: ReadonlyArray<string>, env: Env, command = "kv"): Either.Either<KvClientConfig, ConfigError> =>
  Either.flatMap(parseFlags(argv, kvOptions, command), (flags) => {
    const problems: Array<string> = []
    const get = (key: keyof typeof kvOptions): Raw | undefined => pick(kvOptions[key], key, flags, env)
    const clusterRaw = get("cluster")
    const cluster = clusterRaw === undefined ? defaults.cluster : token(clusterRaw, "a cluster name", problems)
    const nats = parseNats(get, problems)
    const timeoutRaw = get("timeout")
    const timeoutMs = timeoutRaw === undefined ? defaults.kvTimeoutMs : integer(timeoutRaw, 1, 600_000, problems)
    if (problems.length > 0 || cluster === undefined || timeoutMs === undefined) return Either.left(new ConfigError({ problems }))
    return Either.right({ cluster, nats, timeoutMs })
  })

export const parseWorkerConfig = (argv: ReadonlyArray<string>, env: Env, defaultWorkerId: string): Either.Either<WorkerConfig, ConfigError> =>
  Either.flatMap(parseFlags(argv, workerOptions, "worker"), (flags) => {
    const problems: Array<string> = []
    const get = (key: keyof typeof workerOptions): Raw | undefined => pick(workerOptions[key], key, flags, env)
    const required = (key: "queues" | "handler"): Raw | undefined => {
      const raw = get(key)
      if (raw === undefined) problems.push(`${workerOptions[key].flag} (or ${workerOptions[key].env}) is required`)
      return raw
    }
    const queuesRaw = required("queues")
    const queues = queuesRaw === undefined ? [] : queuesRaw.value.split(",").map((q) => token({ ...queuesRaw, value: q.trim() }, "a queue name", problems))
    const handler = required("handler")?.value
    const num = (key: "concurrency" | "leaseMs" | "waitMs" | "graceMs", fallback: number, min: number, max: number): number => {
      const raw = get(key)
      return raw === undefined ? fallback : (integer(raw, min, max, problems) ?? fallback)
    }
    const concurrency = num("concurrency", 1, 1, 1000)
    const leaseMs = num("leaseMs", 30_000, 100, 3_600_000)
    const waitMs = num("waitMs", 5_000, 0, 60_000)
    const graceMs = num("graceMs", 10_000, 0, 3_600_000)
    const workerIdRaw = get("workerId")
    const clusterRaw = get("cluster")
    const cluster = clusterRaw === undefined ? defaults.cluster : token(clusterRaw, "a cluster name", problems)
    const nats = parseNats(get, problems)
    const timeoutRaw = get("timeout")
    const timeoutMs = timeoutRaw === undefined ? defaults.kvTimeoutMs : integer(timeoutRaw, 1, 600_000, problems)
    if (problems.length > 0 || cluster === undefined || timeoutMs === undefined || handler === undefined) return Either.left(new ConfigError({ problems }))
    return Either.right({
      cluster,
      nats,
      timeoutMs,
      queues: queues.filter((q): q is string => q !== undefined),
      handler,
      concurrency,
      workerId: workerIdRaw?.value ?? defaultWorkerId,
      leaseMs,
      waitMs,
      graceMs
    })
  })

/** The settings as one log line, secrets left out. */
export const describe = (config: Config): string => {
  const auth =
    config.nats.user !== undefined
      ? `user ${config.nats.user}`
      : config.nats.token !== undefined
        ? "token"
        : config.nats.credsFile !== undefined
          ? `creds ${config.nats.credsFile}`
          : "none"
  return [
    `id=${config.id}`,
    `cluster=${config.cluster}`,
    `nats=${config.nats.servers.map(redactUrl).join(",")}`,
    `auth=${auth}`,
    `tls=${config.nats.tls === undefined ? "off" : "on"}`,
    `peers=${config.peers.join(",")}`,
    `data=${config.dataDir}`,
    `http=${config.httpPort ?? "off"}`,
    `snapshot=${config.snapshotThreshold}`,
    `tick=${config.tickMs}ms`,
    `election=${config.electionTicks}`,
    `heartbeat=${config.heartbeatTicks}`
  ].join(" ")
}

/** A server URL with any password in it replaced by `***`. */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]+):([^@/]+)@/, "//$1:***@")

// ---------------------------------------------------------------------------------------------
// Help

const table = (specs: Readonly<Record<string, OptionSpec>>): string => {
  const rows = Object.values(specs).map((s) => {
    const names = [s.env, ...(s.legacy ?? [])].join(", ")
    return [`  ${s.flag} ${s.placeholder}`, names, s.default === "-" ? "" : s.default, s.help] as const
  })
  const w0 = Math.max(...rows.map((r) => r[0].length))
  const lines: Array<string> = []
  for (const [flag, env, def, help] of rows) {
    lines.push(`${flag.padEnd(w0)}  ${help}`)
    const detail = def === "" ? `env ${env}` : def === "required" ? `env ${env}; required` : `env ${env}; default ${def}`
    lines.push(`${"".padEnd(w0)}  (${detail})`)
  }
  lines.push(`${"  --help, -h".padEnd(w0)}  show this help`)
  return lines.join("\n")
}

export const helpText = `Usage: archio node [flags]

Runs one Archio node. Every flag can also be set with the environment variable shown;
a flag wins over its variable. Older variable names are accepted when the new one is unset.

${table(nodeOptions)}

Example:
  archio node --id n1 --cluster dev --nats nats://127.0.0.1:4222 --peers n1,n2,n3 --data ./data/n1 --http-port 8081

SIGINT or SIGTERM shut the node down cleanly (NATS drained, database closed) with exit code 0.
`

export const statusHelpText = `Usage: archio status [flags]

Asks a running cluster for its status over NATS (archio.<cluster>.admin.status, answered by
any one node, or archio.<cluster>.node.<id>.admin.status with --node) and prints the JSON.

${table(statusOptions)}
`

export const workerHelpText = `Usage: archio worker --queue Q1,Q2 --handler ./handler.js [flags]

Runs a job worker: leases jobs from the queues (long-polling while idle), runs the handler
module's default export on each (async (payload, { job, signal, progress }) => result),
extends the leases of long jobs, and acks the result or fails the job with the thrown error
(retryable, unless it is a NonRetryableError). SIGTERM or SIGINT stops leasing, lets running
jobs finish for --grace-ms, releases the rest and exits 0. Each job outcome is printed on
stdout as one JSON line ({"event":"acked"|"failed"|"released"|"lost","id","token",...});
problems go to stderr.

${table(workerOptions)}
`

/** The connection flags of every `archio kv` subcommand, as help lines. */
export const kvConnectionHelp = table(kvOptions)
