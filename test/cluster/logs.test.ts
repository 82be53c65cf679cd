/**
 * Nodes started with LOG_FORMAT=json, as real processes: everything they write is JSON, one
 * object per line, and the cluster's story is in it — snapshots taken, sent and installed, a
 * configuration change, and both NATS connections of every node dropping and coming back when
 * the nats-server restarts.
 */
import t from "tap"
import { readFile } from "node:fs/promises"
import { startNatsServer } from "../../bootstrap/natsServer.ts"
import type { MembershipChangeResponse } from "../../protocol/client.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { testCluster } from "../support/cluster.ts"
import { until } from "../support/wait.ts"

t.setTimeout(300_000)

/** Three node processes share two cores: look every 100 ms, allow 60 s. */
const patiently = { timeoutMs: 60_000, everyMs: 100 }

interface Line {
  readonly time: string
  readonly level: string
  readonly message: string
  readonly node: string
  readonly cluster: string
  readonly [field: string]: unknown
}

t.test("LOG_FORMAT=json: only JSON lines, telling of snapshots, members and NATS reconnects", async (t) => {
  // A small threshold: the log is compacted after a few writes, so a new node needs a snapshot.
  const { cluster, client, nats } = await testCluster(t, { LOG_FORMAT: "json", SNAPSHOT_THRESHOLD: "20" })
  const admin = <A>(op: string, body: unknown = {}) => client.call<A>(Subjects.admin(cluster.cluster, op), body)
  const raw = async (id: string): Promise<string> => readFile(cluster.logFile(id)!, "utf8")
  /** Every line of node `id`'s log, each parsed (a line that is not JSON fails the test there). */
  const lines = async (id: string): Promise<Array<Line>> =>
    (await raw(id))
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Line)
  const logged = async (id: string, test: (l: Line) => boolean): Promise<boolean> => (await lines(id)).some(test)

  for (let i = 0; i < 60; i++) await client.put(`story/${i}`, String(i))
  const leader = await cluster.waitForLeader(10_000)
  // Elections and leader changes carry their term and indexes as fields, to filter on.
  const elected = (await lines(leader)).find((l) => l.message.startsWith("elected leader ("))
  t.match(elected, { level: "info", term: Number, lastIndex: Number, commit: Number, leader }, `${leader}'s election line has term, lastIndex, commit and leader fields`)
  for (const id of cluster.ids.filter((x) => x !== leader)) {
    await until(`${id} to log whom it follows`, () => logged(id, (l) => l.message.includes(`following ${leader} (`)), patiently)
    const following = (await lines(id)).find((l) => l.message.includes(`following ${leader} (`))
    t.match(following, { term: Number, lastIndex: Number, commit: Number, leader }, `${id}'s following line has the fields`)
  }
  await until(`${leader} to take a snapshot`, () => logged(leader, (l) => /^snapshot at index \d+ term \d+: \d+ bytes; log compacted to \d+$/.test(l.message)), patiently)

  // A new node: added as a learner (a configuration change every member logs), it catches up by snapshot.
  cluster.joinNode("n4")
  const added = await admin<MembershipChangeResponse>("add", { id: "n4" })
  t.ok(added.changed, "n4 added as a learner")
  await until("n4 to install a snapshot", () => logged("n4", (l) => /^installed a snapshot from n\d at index \d+ term \d+/.test(l.message)), patiently)
  for (const id of ["n1", "n2", "n3"]) {
    await until(`${id} to log the change`, () => logged(id, (l) => /^configuration: added n4 as a learner at index \d+ \(term \d+\); now voters n\d,n\d,n\d, learners n4/.test(l.message)), patiently)
  }
  const leaderNow = await cluster.waitForLeader(10_000)
  t.ok(await logged(leaderNow, (l) => l.message.startsWith("sending a snapshot at index") && l.message.endsWith("to n4")), `${leaderNow} logged sending n4 a snapshot`)

  // The nats-server goes away and comes back on the same port: each node's two connections say so.
  await nats.stop()
  const ids = cluster.ids
  for (const id of ids) {
    for (const connection of ["client", "raft"]) {
      await until(`${id}'s ${connection} connection to notice`, () => logged(id, (l) => l.level === "warn" && l.message.startsWith("NATS disconnected from") && l["connection"] === connection), patiently)
    }
  }
  const again = await startNatsServer({ port: nats.port })
  t.teardown(() => again.stop())
  for (const id of ids) {
    for (const connection of ["client", "raft"]) {
      await until(`${id}'s ${connection} connection to come back`, () => logged(id, (l) => l.level === "info" && l.message.startsWith("NATS reconnected to") && l["connection"] === connection), patiently)
    }
  }
  await until("a write after the restart", async () => (await client.put("story/after", "1")).revision > 0, patiently)

  // Nothing but JSON, each line with its time, level, message, node and cluster.
  for (const id of ids) {
    const text = await raw(id)
    const all = await lines(id)
    t.ok(all.length > 10, `${id} logged ${all.length} lines`)
    t.equal(text.split("\n").filter((l) => l !== "").length, all.length, `${id}: every line is JSON`)
    const bad = all.filter((l) => typeof l.time !== "string" || Number.isNaN(Date.parse(l.time)) || !["trace", "debug", "info", "warn", "error", "fatal"].includes(l.level) || typeof l.message !== "string" || l.node !== id || l.cluster !== cluster.cluster)
    t.same(bad, [], `${id}: every line has time, level, message, node ${id} and cluster ${cluster.cluster}`)
    t.ok(all.some((l) => l.message.startsWith("node ") && l.message.includes(" ready in cluster ")), `${id} logged that it is ready`)
  }
  t.ok(await logged("n4", (l) => /^receiving a snapshot at index \d+ term \d+ from n\d$/.test(l.message)), "n4 logged receiving the snapshot")
})
