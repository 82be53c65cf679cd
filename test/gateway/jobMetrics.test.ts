/**
 * The job and key-value series of /metrics on three real node processes: after jobs are
 * enqueued, leased, acked, failed for good and left to let their lease run out, and keys
 * written, every node shows the same counts (each applies the same log), in a valid exposition.
 */
import t from "tap"
import { freePort } from "../../bootstrap/natsServer.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { testCluster } from "../support/cluster.ts"
import { checkHistograms, parseExposition, value, type Exposition } from "../support/exposition.ts"
import { until } from "../support/wait.ts"

/** Three node processes share two cores: look every 50 ms, allow 30 s. */
const patiently = { timeoutMs: 30_000, everyMs: 50 }

t.test("job and key-value metrics count the same transitions on every node", async (t) => {
  const ports: Record<string, number> = { n1: await freePort(), n2: await freePort(), n3: await freePort() }
  const envOf = Object.fromEntries(Object.entries(ports).map(([id, port]) => [id, { HTTP_PORT: String(port) }]))
  const { cluster, client } = await testCluster(t, {}, { envOf })
  const jobs = new JobsClient(client)
  const scrape = async (id: string): Promise<Exposition> => {
    const res = await fetch(`http://127.0.0.1:${ports[id]}/metrics`)
    return parseExposition(await res.text())
  }

  const q = "metrics-q"
  const done = await jobs.enqueue({ queue: q, payload: "acked" })
  const doomed = await jobs.enqueue({ queue: q, payload: "failed for good" })
  const lapsing = await jobs.enqueue({ queue: q, payload: "lease runs out", maxAttempts: 2 })
  await jobs.enqueue({ queue: q, payload: "never leased", delay: 3_600_000 })
  const again = await jobs.enqueue({ queue: q, payload: "acked", uniqueKey: "once" })
  t.equal((await jobs.enqueue({ queue: q, payload: "acked", uniqueKey: "once" })).id, again.id, "the unique key's job again")

  const leased = await jobs.lease({ queues: [q], max: 10, workerId: "metrics-worker", leaseMs: 60_000 })
  t.same(leased.map((j) => j.id).sort(), [done.id, doomed.id, lapsing.id, again.id].sort(), "every ready job leased")
  const lease = (id: string) => leased.find((j) => j.id === id)!
  await jobs.ack(done.id, lease(done.id).token)
  await jobs.ack(again.id, lease(again.id).token)
  await jobs.fail(doomed.id, lease(doomed.id).token, "not retryable", false)
  // The lapsing job is leased again with a short lease that nobody acks: it runs out.
  await jobs.extend(lapsing.id, lease(lapsing.id).token, 300)
  await until("the lease to run out", async () => (await jobs.get(lapsing.id)).state === "ready", patiently)

  await client.put("metrics/a", "héllo")
  await client.put("metrics/b", "12345")
  await client.put("metrics/a", "x")
  await client.del("metrics/b")

  const leader = await cluster.waitForLeader(10_000)
  const commit = (await cluster.status(leader))!.commitIndex
  await cluster.waitForApplied(commit, 30_000)

  const expected: ReadonlyArray<readonly [string, Record<string, string>, number]> = [
    ["archio_jobs_enqueued_total", { queue: q }, 5],
    ["archio_jobs_leased_total", { queue: q }, 4],
    ["archio_jobs_completed_total", { queue: q }, 2],
    ["archio_jobs_failed_total", { queue: q }, 2],
    ["archio_jobs_dead_total", { queue: q }, 1],
    ["archio_jobs_lease_expired_total", { queue: q }, 1],
    ["archio_jobs", { queue: q, state: "completed" }, 2],
    ["archio_jobs", { queue: q, state: "dead" }, 1],
    ["archio_jobs", { queue: q, state: "ready" }, 1],
    ["archio_jobs", { queue: q, state: "scheduled" }, 1],
    ["archio_jobs", { queue: q, state: "leased" }, 0],
    ["archio_jobs_enqueue_to_start_seconds_count", { queue: q }, 4],
    ["archio_kv_writes_total", { op: "put" }, 3],
    ["archio_kv_writes_total", { op: "del" }, 1],
    ["archio_kv_keys", {}, 1],
    ["archio_kv_bytes", {}, "metrics/a".length + 1]
  ]
  for (const id of cluster.ids) {
    const e = await scrape(id)
    for (const family of ["archio_jobs", "archio_jobs_enqueued_total", "archio_jobs_leased_total", "archio_jobs_completed_total", "archio_jobs_failed_total", "archio_jobs_dead_total", "archio_jobs_lease_expired_total", "archio_kv_writes_total"]) {
      t.ok(e.helps.get(family), `${id}: HELP ${family}`)
    }
    t.equal(e.types.get("archio_jobs"), "gauge", `${id}: archio_jobs is a gauge`)
    t.equal(e.types.get("archio_jobs_dead_total"), "counter", `${id}: archio_jobs_dead_total is a counter`)
    t.equal(e.types.get("archio_jobs_enqueue_to_start_seconds"), "histogram", `${id}: enqueue-to-start is a histogram`)
    t.equal(e.types.get("archio_kv_keys"), "gauge")
    for (const [name, labels, n] of expected) t.equal(value(e, name, labels), n, `${id}: ${name}${JSON.stringify(labels)} = ${n}`)
    const sum = value(e, "archio_jobs_enqueue_to_start_seconds_sum", { queue: q })!
    t.ok(sum > 0 && sum < 60, `${id}: the four first leases waited a little (${sum} s in all)`)
    checkHistograms(t, e)
  }
})
