/**
 * `archio dev` shows its nodes' logs in the readable form even when the shell exports
 * LOG_FORMAT=json: it prefixes each line with the node's id, which would break a JSON line.
 */
import t from "tap"
import { devInProcess } from "../support/dev.ts"
import { natsServer } from "../support/nats.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

const startup = { timeoutMs: 60_000, everyMs: 100 }

t.test("archio dev with LOG_FORMAT=json in its environment: text lines from every node", async (t) => {
  const cwd = await tempDir(t)
  const server = await natsServer(t)
  const env = { ...process.env, NATS_URL: server.url, CLUSTER: "fmt", LOG_FORMAT: "json", NO_COLOR: "1", _TAPJS_PROCESSINFO_COVERAGE_: "0" }
  const dev = devInProcess(t, [], { cwd, env })
  await until("the cluster to come up", () => dev.output().includes('cluster "fmt" is up'), startup)
  dev.notePids()
  for (const id of ["n1", "n2", "n3"]) {
    t.match(dev.output(), new RegExp(`^\\[${id}\\] \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z INFO  node ${id} ready in cluster fmt`, "m"), `${id}: a text line`)
  }
  t.notMatch(dev.output(), /^\[n\d\] \{/m, "no JSON line")
  dev.stop()
  t.equal(await dev.done, 0)
})
