/**
 * A real three-node cluster on a private nats-server in a temp folder, stopped when the test
 * ends. Node processes report no coverage: they run the esbuild bundle while tap's process uses its own
 * loader, and V8 coverage merged by byte offset across the two would be wrong.
 */
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

export const testCluster = async (t: Teardown, env: Readonly<Record<string, string>> = {}) => {
  const nats = await natsServer(t)
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
    env: { _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env }
  })
  started.cluster = cluster
  const client = new ArchioClient(cluster.nc, { deadlineMs: 20_000 })
  return { nats, cluster, client, dir }
}
