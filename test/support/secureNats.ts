/**
 * The shipped NATS configuration (ops/nats/) for a private nats-server in tests, rendered into a
 * temp folder the way `archio dev --secure` renders it (bootstrap/secureNats.ts), with fresh
 * passwords; and connections as one of its roles.
 */
import { connect, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node"
import type { StartOptions } from "../../bootstrap/natsServer.ts"
import { newCredentials, serverEnvironment, writeServerConfig, type Credentials, type RoleCredentials } from "../../bootstrap/secureNats.ts"
import { tempDir } from "./tmp.ts"

interface Teardown {
  teardown(fn: () => unknown): void
}

/** How to start nats-server with the shipped `single.conf` for `cluster` (with `include ./tls.conf` and its variables when `tlsEnv` is given). */
export const secureServerStart = async (
  t: Teardown,
  options: { readonly cluster: string; readonly tlsEnv?: Readonly<Record<string, string>> }
): Promise<{ readonly start: StartOptions; readonly credentials: RoleCredentials; readonly dir: string }> => {
  const dir = await tempDir(t, "archio-secure-")
  const config = await writeServerConfig(dir, { cluster: options.cluster, tls: options.tlsEnv !== undefined })
  const credentials = newCredentials()
  return { start: { args: ["-c", config], env: { ...serverEnvironment(credentials), ...options.tlsEnv } }, credentials, dir }
}

/** The `archio` variables that connect as `c` (what `<role>.env` holds, without the URL). */
export const envAs = (c: Credentials): Record<string, string> => ({ NATS_USER: c.user, NATS_PASS: c.password, NATS_INBOX_PREFIX: c.inboxPrefix })

/** nats.js options that connect as `c`. */
export const optionsAs = (c: Credentials): Partial<ConnectionOptions> => ({ user: c.user, pass: c.password, inboxPrefix: c.inboxPrefix })

/** A connection as `c` (with its inbox prefix unless `inboxPrefix` says otherwise), closed when the test ends. */
export const connectAs = async (t: Teardown, url: string, c: Credentials, extra: Partial<ConnectionOptions> = {}): Promise<NatsConnection> => {
  const nc = await connect({ servers: url, noAsyncTraces: true, name: `archio-test-${c.user}`, ...optionsAs(c), ...extra })
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close()
  })
  return nc
}

/** Every error the server reports to `nc` from now on (permissions violations among them), as messages. */
export const serverErrors = (nc: NatsConnection): Array<string> => {
  const seen: Array<string> = []
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") seen.push(s.error.message)
  })()
  return seen
}
