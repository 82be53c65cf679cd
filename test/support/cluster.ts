/**
 * A real three-node cluster on a private nats-server in a temp folder, stopped when the test
 * ends. Node processes report no coverage: they run the esbuild bundle while tap's process uses its own
 * loader, and V8 coverage merged by byte offset across the two would be wrong.
 */
import type { ConnectionOptions } from "@nats-io/transport-node"
import type { StartOptions } from "../../bootstrap/natsServer.ts"
import { LocalCluster } from "../../ops/cluster.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { natsServer } from "./nats.ts"

interface Teardown {
  teardown(fn: () => unknown): void
  passing(): boolean
}

/** The last lines of every node's log, so a failure in CI can be read without the folder. */
const logTails = async (logDir: string, lines = 60): Promise<string> => {
  const files = await readdir(logDir).catch(() => [] as Array<string>)
  const parts = await Promise.all(
    files.sort().map(async (f) => `--- ${f} (last ${lines} lines)\n${(await readFile(join(logDir, f), "utf8")).split("\n").slice(-lines - 1).join("\n")}`)
  )
  return parts.join("\n")
}

/** How `testCluster` starts things beyond the defaults (test/security: the shipped NATS configuration and credentials). */
export interface TestClusterOptions {
  /** How to start the nats-server, e.g. with `-c` and the shipped configuration. */
  readonly nats?: StartOptions
  /** The harness connection's credentials (and `inboxPrefix`), which the returned client uses too. */
  readonly harness?: Partial<ConnectionOptions>
  /** Extra environment of one node, by id. */
  readonly envOf?: Readonly<Record<string, Readonly<Record<string, string>>>>
  /** The cluster name (default `dev`). */
  readonly cluster?: string
  /** How many nodes (default 3). */
  readonly size?: number
}

export const testCluster = async (t: Teardown, env: Readonly<Record<string, string>> = {}, options: TestClusterOptions = {}) => {
  const nats = await natsServer(t, options.nats)
  const dir = await mkdtemp(join(tmpdir(), "archio-cluster-"))
  // One teardown, in this order: stop the nodes, show their logs if the test failed, remove the folder.
  const started: { cluster?: LocalCluster } = {}
  t.teardown(async () => {
    await started.cluster?.stop()
    if (!t.passing()) process.stderr.write(`node logs of the failed test:\n${await logTails(`${dir}/logs`)}\n`)
    await rm(dir, { recursive: true, force: true })
  })
  const cluster = await LocalCluster.start({
    natsUrl: nats.url,
    dataRoot: dir,
    logDir: `${dir}/logs`,
    env: { _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env },
    ...(options.envOf === undefined ? {} : { envOf: options.envOf }),
    ...(options.harness === undefined ? {} : { harness: options.harness }),
    ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
    ...(options.size === undefined ? {} : { size: options.size })
  })
  started.cluster = cluster
  const inboxPrefix = options.harness?.inboxPrefix
  const client = new ArchioClient(cluster.nc, { cluster: cluster.cluster, deadlineMs: 20_000, ...(inboxPrefix === undefined ? {} : { inboxPrefix }) })
  return { nats, cluster, client, dir }
}
