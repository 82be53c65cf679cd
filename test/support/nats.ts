/**
 * A private nats-server per test (never the shared one on 4222), stopped when the test ends,
 * pass or fail.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { startNatsServer, type NatsServerHandle, type StartOptions } from "../../bootstrap/natsServer.ts"

interface Teardown {
  teardown(fn: () => unknown): void
}

export const natsServer = async (t: Teardown, options?: StartOptions): Promise<NatsServerHandle> => {
  const server = await startNatsServer(options)
  t.teardown(() => server.stop())
  return server
}

/** A client connection to `url`, drained when the test ends. */
export const natsClient = async (t: Teardown, url: string): Promise<NatsConnection> => {
  const nc = await connect({ servers: url, noAsyncTraces: true, name: "archio-test" })
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close()
  })
  return nc
}
