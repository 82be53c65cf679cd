/**
 * In-process Archio nodes for tests: each runs `runNode` in a fiber against a private
 * nats-server and a temporary data folder, interrupted (NATS drained, LevelDB closed) when the
 * test ends.
 */
import { Effect, Fiber, Logger, LogLevel } from "effect"
import { join } from "node:path"
import type { Msg, NatsConnection } from "@nats-io/transport-node"
import { parseConfig, type Config } from "../../bootstrap/config.ts"
import type { Env } from "../../bootstrap/options.ts"
import { runNode } from "../../bootstrap/node.ts"
import { errorCodeHeader } from "../../protocol/reply.ts"
import { natsClient, natsServer } from "./nats.ts"
import { tempDir } from "./tmp.ts"
import { until } from "./wait.ts"

interface Teardown {
  teardown(fn: () => unknown): void
}

export const quiet = Logger.minimumLogLevel(LogLevel.None)

/** A node config from environment variables, as `archio node` would read them. */
export const config = (env: Env): Config => {
  const parsed = parseConfig([], env)
  if (parsed._tag === "Left") throw new Error(parsed.left.message)
  return parsed.right
}

export type Body = Record<string, unknown> & { ok: boolean }

export interface Reply {
  readonly body: Body
  readonly code: string | undefined
}

/** A raw request with a hand-written payload to `archio.c.kv.<op>`, as another language would send. */
export const send = async (nc: NatsConnection, op: string, payload: string): Promise<Reply> => {
  const msg: Msg = await nc.request(`archio.c.kv.${op}`, payload, { timeout: 5000 })
  return { body: msg.json<Body>(), code: msg.headers?.get("Nats-Service-Error-Code") || undefined }
}

/**
 * A one-node cluster `c` that has elected itself and answers writes; returns a client connection.
 * `env` adds or overrides node variables (for example `HTTP_PORT`).
 */
export const singleNode = async (t: Teardown, env: Env = {}): Promise<NatsConnection> => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const nc = await natsClient(t, server.url)
  const c = config({ NODE_ID: "n1", PEERS: "n1", NATS_URL: server.url, DATA_DIR: join(dir, "n1"), CLUSTER: "c", ...env })
  const fiber = Effect.runFork(runNode(c).pipe(Effect.provide(quiet)))
  t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  // A put that fails or times out means the node is not up yet.
  await until("the node to become writable", async () => (await send(nc, "put", '{"key":"boot","value":"1"}')).body.ok, { timeoutMs: 15_000, everyMs: 100 })
  return nc
}

/** A request's parsed reply body and its error code header (undefined on success). */
export interface Raw {
  readonly body: Record<string, unknown>
  readonly code: string | undefined
}

/** One request on any subject, its payload as JSON (a string is sent as it is). */
export const ask = async (nc: NatsConnection, subject: string, payload: unknown, timeout = 5_000): Promise<Raw> => {
  const msg = await nc.request(subject, typeof payload === "string" ? payload : JSON.stringify(payload), { timeout })
  return { body: msg.json<Record<string, unknown>>(), code: msg.headers?.get(errorCodeHeader) || undefined }
}

/** Schema decoding that refuses fields a reply should not have. */
export const strictly = { onExcessProperty: "error", errors: "all" } as const
