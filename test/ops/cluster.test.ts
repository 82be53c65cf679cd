/**
 * The local cluster harness that tests, benchmarks and chaos runs start their nodes with.
 */
import t from "tap"
import { fileURLToPath } from "node:url"
import { testCluster } from "../support/cluster.ts"

const slowStart = fileURLToPath(new URL("../support/slowStart.mjs", import.meta.url))

t.test("start returns once every node answers, even one that starts after the others elected a leader", async (t) => {
  const { cluster } = await testCluster(t, { NODE_OPTIONS: `--import ${slowStart}`, SLOW_START_ID: "n3", SLOW_START_MS: "2000" })
  const statuses = await Promise.all(cluster.ids.map((id) => cluster.status(id, 200)))
  t.same(
    statuses.map((s) => s?.id),
    cluster.ids,
    "every node answers admin.status at once"
  )
})
