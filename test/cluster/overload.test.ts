/**
 * Overload against three real node processes with small bounds (MAX_HELD=16): a flood of raw
 * puts on the service subject far past what the cluster serves, and a burst of long-polling
 * leases at the leader. Every node stays up and answers; the flood meets `busy` (429) and no put
 * answered `busy` was written; parked leases stop at the bound; the cluster serves normally
 * right after. The minute-long version with figures is `npm run bench -- overload`.
 */
import t from "tap"
import { Flooder, Probe } from "../../ops/bench/overload.ts"
import { errorCodeHeader, readError } from "../../protocol/reply.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { testCluster } from "../support/cluster.ts"
import { until } from "../support/wait.ts"

t.setTimeout(180_000)

const maxHeld = 16

interface Admission {
  readonly held: Record<string, number>
  readonly busy: Record<string, number>
}

t.test("a flood of puts and a burst of leases: busy past the bounds, nothing written that was refused, every node up", async (t) => {
  const { cluster, client, nats } = await testCluster(t, { MAX_HELD: String(maxHeld) })
  const leader = await cluster.waitForLeader(30_000)
  await client.put("before", "v")

  const probe = new Probe(client, "probe/")
  const flood = await Flooder.start(nats.url, { cluster: cluster.cluster, rate: 20_000, valueBytes: 64, uniqueKeys: true, keyPrefix: "o/" })
  await new Promise((resolve) => setTimeout(resolve, 6_000))
  const report = await flood.stop()
  await probe.stop()
  t.comment(`flood: ${report.sent} puts in ${report.seconds.toFixed(1)} s; answers ${JSON.stringify(report.answers)}; unanswered ${report.unanswered}`)
  t.comment(`probe: ${probe.latencies.length} puts ok; refused ${JSON.stringify(probe.errors)}`)
  t.ok((report.answers["busy"] ?? 0) > 0, "the flood met busy")
  t.ok((report.answers["ok"] ?? 0) > 0, "and some of it was admitted and written")
  t.same(
    Object.keys(report.answers).filter((code) => !["ok", "busy", "timeout", "unavailable"].includes(code)),
    [],
    "no other answer than ok, busy, or a deadline"
  )

  for (const id of cluster.ids) t.ok(cluster.pid(id) !== undefined, `${id} is still running`)
  const statuses = await Promise.all(cluster.ids.map((id) => client.status(id)))
  for (const s of statuses) {
    const a = s["admission"] as Admission
    for (const [kind, held] of Object.entries(a.held)) t.ok(held <= maxHeld, `${String(s["id"])} holds ${held} ${kind}, within the bound`)
  }
  const refused = statuses.reduce((n, s) => n + Object.values((s["admission"] as Admission).busy).reduce((a, b) => a + b, 0), 0)
  t.ok(refused >= (report.answers["busy"] ?? 0), `the nodes counted their busy answers (${refused})`)

  // Every key the flood wrote, read linearizably: none of them was answered busy.
  const written = new Set<string>()
  for await (const page of client.scanAll({ prefix: "o/", keysOnly: true, limit: 1000 })) for (const item of page.items) written.add(item.key)
  const refusedButWritten = report.busyKeys.filter((k) => written.has(k))
  t.same(refusedButWritten.slice(0, 5), [], `none of the ${report.busyKeys.length} puts answered busy was written (${written.size} keys written)`)
  t.ok(written.size <= (report.answers["ok"] ?? 0) + (report.answers["timeout"] ?? 0) + (report.answers["unavailable"] ?? 0) + report.unanswered, "no more keys than puts that may have been written")

  const start = performance.now()
  await client.put("after", "v")
  t.equal((await client.get("after"))?.value, "v", `a put right after the flood (${Math.round(performance.now() - start)} ms)`)

  t.test("a burst of long-polling leases at the leader: as many park as the bound allows, the rest are busy at once", async (t) => {
    const leases = maxHeld / 2
    const nc = cluster.nc
    const subject = Subjects.node(cluster.cluster, leader, "jobs.lease")
    const body = new TextEncoder().encode(JSON.stringify({ queues: ["idle"], max: 1, workerId: "burst", waitMs: 3_000, leaseMs: 1_000 }))
    const sent = performance.now()
    const answers = await Promise.all(
      Array.from({ length: 5 * leases }, () =>
        nc.request(subject, body, { timeout: 10_000 }).then((msg) => ({ code: readError(msg)?.code ?? "ok", status: msg.headers?.get(errorCodeHeader) ?? "", ms: performance.now() - sent }))
      )
    )
    const busy = answers.filter((a) => a.code === "busy")
    const parked = answers.filter((a) => a.code === "ok")
    t.equal(parked.length, leases, `${leases} parked until their wait ended`)
    t.equal(busy.length, 4 * leases, "the rest were busy")
    t.ok(busy.every((a) => a.status === "429"), "busy is 429 in the service error header")
    t.ok(Math.max(...busy.map((a) => a.ms)) < Math.min(...parked.map((a) => a.ms)), "busy came back before any parked lease")
    await until("the leader holds no lease any more", async () => ((await client.status(leader))["admission"] as Admission).held["leases"] === 0, { timeoutMs: 10_000 })
  })
})
