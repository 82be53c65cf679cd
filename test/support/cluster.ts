/**
 * A real three-node cluster on a private nats-server in a temp folder, stopped when the test
 * ends. Node processes report no coverage: they run under tsx while tap's process uses its own
 * loader, and V8 coverage merged by byte offset across the two would be wrong.
 */
import { LocalCluster } from "../../ops/cluster.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { natsServer } from "./nats.ts"
import { tempDir } from "./tmp.ts"

interface Teardown {
  teardown(fn: () => unknown): void
}

export const testCluster = async (t: Teardown, env: Readonly<Record<string, string>> = {}) => {
  const nats = await natsServer(t)
  const dir = await tempDir(t)
  const cluster = await LocalCluster.start({
    natsUrl: nats.url,
    dataRoot: dir,
    logDir: `${dir}/logs`,
    env: { _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env }
  })
  t.teardown(() => cluster.stop())
  const client = new ArchioClient(cluster.nc, { deadlineMs: 20_000 })
  return { nats, cluster, client, dir }
}
