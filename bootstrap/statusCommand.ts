/** `archio status`: asks a running cluster (or one node) for its status over NATS and prints it. */
import { connect, errors as natsErrors, type NatsConnection } from "@nats-io/transport-node"
import { Effect, Either } from "effect"
import * as subjects from "../protocol/subjects.ts"
import { defineCommand } from "./command.ts"
import { clusterOption, natsOptions, readCluster, readNats, readTimeout, redactUrl, type NatsSettings } from "./config.ts"
import { clientOptions } from "./nats.ts"
import { ConfigError, name, type CommandLine, type OptionSpec } from "./options.ts"

const defaultTimeoutMs = 2000

export const statusOptions = {
  cluster: clusterOption,
  ...natsOptions,
  node: { flag: "--node", env: "STATUS_NODE", placeholder: "ID", default: "any node", help: "ask this node on its own subject" },
  timeout: {
    flag: "--timeout",
    env: "STATUS_TIMEOUT_MS",
    placeholder: "MS",
    default: String(defaultTimeoutMs),
    help: "how long to wait for an answer, in milliseconds"
  }
} as const satisfies Record<string, OptionSpec>

export interface StatusConfig {
  readonly cluster: string
  readonly nats: NatsSettings
  /** Ask this node on its own subject instead of any node through the queue group. */
  readonly node: string | undefined
  readonly timeoutMs: number
}

export const statusConfig = (line: CommandLine<keyof typeof statusOptions>): Either.Either<StatusConfig, ConfigError> => {
  const problems: Array<string> = []
  const cluster = readCluster(line, problems)
  const nats = readNats(line, problems)
  const nodeGiven = line.get("node")
  const node = nodeGiven === undefined ? undefined : name(nodeGiven, "a node id", problems)
  const timeoutMs = readTimeout(line, defaultTimeoutMs, problems)
  if (problems.length > 0 || cluster === undefined || timeoutMs === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ cluster, nats, node, timeoutMs })
}

/** Asks `admin.status` once; resolves to the reply text or rejects with a sentence. */
export const requestStatus = async (config: StatusConfig): Promise<string> => {
  const where = config.nats.servers.map(redactUrl).join(",")
  const base = await Effect.runPromise(Effect.either(clientOptions(config.nats, "archio-status")))
  if (Either.isLeft(base)) throw new Error(base.left.message)
  let nc: NatsConnection
  try {
    nc = await connect({ ...base.right, waitOnFirstConnect: false, maxReconnectAttempts: 0, reconnect: false, timeout: config.timeoutMs })
  } catch (e) {
    throw new Error(`cannot connect to NATS at ${where}: ${e instanceof Error ? e.message : String(e)}`)
  }
  const subject = config.node === undefined ? subjects.admin(config.cluster, "status") : subjects.node(config.cluster, config.node, "admin.status")
  try {
    const reply = await nc.request(subject, new Uint8Array(0), { timeout: config.timeoutMs })
    return reply.string()
  } catch (e) {
    if (e instanceof natsErrors.NoRespondersError || (e instanceof Error && e.cause instanceof natsErrors.NoRespondersError)) {
      const who = config.node === undefined ? "no archio node answers" : `node ${config.node} does not answer`
      throw new Error(`${who} on ${subject} at ${where}: is the cluster running, and is its cluster name "${config.cluster}"?`)
    }
    if (e instanceof natsErrors.TimeoutError || (e instanceof Error && e.cause instanceof natsErrors.TimeoutError)) {
      throw new Error(`no answer on ${subject} within ${config.timeoutMs} ms`)
    }
    throw new Error(`status request on ${subject} failed: ${e instanceof Error ? e.message : String(e)}`)
  } finally {
    await nc.close().catch(() => undefined)
  }
}

export const statusCommand = defineCommand({
  path: "status",
  summary: "ask a running cluster for its status over NATS",
  description: `Asks a running cluster for its status over NATS (archio.<cluster>.admin.status, answered by
any one node, or archio.<cluster>.node.<id>.admin.status with --node) and prints the JSON.`,
  options: [{ title: "Flags", options: statusOptions }],
  examples: ["archio status --nats nats://127.0.0.1:4222", "archio status --cluster dev --node n2"],
  check: statusConfig,
  run: async (config, terminal) => {
    try {
      const reply = await requestStatus(config)
      let shown = reply
      try {
        shown = JSON.stringify(JSON.parse(reply), null, 2)
      } catch {
        // not JSON: print as it came
      }
      terminal.out(`${shown}\n`)
      return 0
    } catch (e) {
      terminal.err(`archio status: ${e instanceof Error ? e.message : String(e)}\n`)
      return 1
    }
  }
})
