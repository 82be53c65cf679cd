/**
 * Graceful leader restarts on three real node processes: under a continuous writer the leader
 * gets SIGTERM 20 times (each time it hands leadership to its most caught-up follower before it
 * stops) and, for comparison, SIGKILL 5 times. No write fails and every acknowledged write reads
 * back; the write gaps are reported, not asserted (BENCHMARKS.md has the figures; `npm run bench
 * -- transfer` measures the same).
 */
import t from "tap"
import { ContinuousWriter, gapSummary, restartLeaders, type RestartSignal } from "../../ops/bench/transfer.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { testCluster } from "../support/cluster.ts"

t.setTimeout(600_000)

t.test("20 SIGTERMs of the leader under a continuous writer: each hands over, no write fails or is lost", async (t) => {
  const { cluster } = await testCluster(t)
  const handovers: Array<{ id: string; line: string }> = []
  cluster.onLine((id, line) => {
    if (/handed leadership to|could not hand leadership over/.test(line)) handovers.push({ id, line })
  })
  // A deadline long enough for any election: a write may wait, never fail.
  const client = new ArchioClient(cluster.nc, { deadlineMs: 30_000 })
  const writer = new ContinuousWriter(client)
  const plan: RestartSignal[] = [...Array<RestartSignal>(20).fill("SIGTERM"), ...Array<RestartSignal>(5).fill("SIGKILL")]
  const rounds = await restartLeaders(cluster, writer, plan, (r, i) =>
    t.comment(`${String(i + 1).padStart(2)} ${r.signal} ${r.stopped} -> ${r.next}: write gap ${r.gapMs.toFixed(1)} ms, exited after ${r.exitMs.toFixed(0)} ms`)
  )
  await writer.stop()

  t.same(writer.failed, [], "no write failed")
  t.ok(writer.acked.size > 100, `writes went on throughout (${writer.acked.size} acknowledged)`)
  const stored = new Map<string, string>()
  for await (const page of client.scanAll({ prefix: "w" })) for (const item of page.items) stored.set(item.key, item.value ?? "")
  const lost = [...writer.acked].filter(([k, v]) => stored.get(k) !== v).map(([k]) => k)
  t.same(lost, [], `every acknowledged write reads back (${writer.acked.size})`)

  const terms = rounds.filter((r) => r.signal === "SIGTERM")
  t.ok(terms.every((r) => r.next !== r.stopped), "after each SIGTERM another node leads")
  const handedOver = terms.filter((r) => handovers.some((h) => h.id === r.stopped && h.line.includes("handed leadership to"))).length
  const refused = handovers.filter((h) => h.line.includes("could not hand"))
  t.same(refused.map((h) => `${h.id}: ${h.line}`), [], "no handover failed")
  t.equal(handovers.length, terms.length, "each SIGTERM logged one handover")
  t.ok(handedOver === terms.length, `each stopped leader says it handed over (${handedOver} of ${terms.length})`)
  t.comment(gapSummary(rounds, "SIGTERM"))
  t.comment(gapSummary(rounds, "SIGKILL"))
  await client.close()
})
