/**
 * A rolling replacement on real processes: under a continuous writer and job traffic, each of
 * the three original nodes is replaced by a new one (start it with --join, add it as a learner,
 * wait until it caught up, promote it, remove the old node, stop it). No client write fails,
 * every acknowledged write reads back, every acknowledged enqueue completes, and the cluster
 * ends with only the new nodes as voters.
 */
import t from "tap"
import { ContinuousWriter } from "../../ops/bench/transfer.ts"
import type { MembersResponse, MembershipChangeResponse } from "../../protocol/client.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { testCluster } from "../support/cluster.ts"
import { until } from "../support/wait.ts"

t.setTimeout(600_000)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test("replacing n1, n2, n3 by n4, n5, n6 one at a time under writes and jobs: nothing fails, nothing is lost", async (t) => {
  const { cluster, client } = await testCluster(t)
  const admin = <A>(op: string, body: unknown = {}) => client.call<A>(Subjects.admin(cluster.cluster, op), body)
  const writer = new ContinuousWriter(client)
  const jobs = new JobsClient(client)
  let running = true
  let stoppedAt = Infinity
  const enqueued = new Set<string>()
  const completed = new Set<string>()
  const jobErrors: string[] = []
  let produced = false
  const producer = (async () => {
    for (let i = 0; running; i++) {
      try {
        enqueued.add((await jobs.enqueue({ queue: "rr", payload: { i } })).id)
      } catch (e) {
        jobErrors.push(`enqueue ${i}: ${e instanceof Error ? e.message : String(e)}`)
      }
      await sleep(10)
    }
    produced = true
  })()
  // A job can be leased (and acked) before its enqueue's reply reaches the producer: a parked
  // lease rides in the enqueue's own append. So the worker stops only once the producer is done
  // and every job it was told of is completed, not when the counts first match.
  const allCompleted = (): boolean => produced && [...enqueued].every((id) => completed.has(id))
  const consumer = (async () => {
    const deadline = () => !running && performance.now() > stoppedAt + 45_000
    while (!allCompleted() && !deadline()) {
      try {
        const leased = await jobs.lease({ queues: ["rr"], max: 16, workerId: "w1", waitMs: 300 })
        for (const job of leased) {
          await jobs.ack(job.id, job.token)
          if (completed.has(job.id)) jobErrors.push(`job ${job.id} completed twice`)
          completed.add(job.id)
        }
      } catch (e) {
        // A lease whose ack was refused (lease_lost after a leader change) is leased again later.
        if (!(e instanceof Error && /lease_lost|lease/.test(e.message))) jobErrors.push(`worker: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
  })()

  const steps: string[] = []
  for (const [old, fresh] of [["n1", "n4"], ["n2", "n5"], ["n3", "n6"]] as const) {
    const started = performance.now()
    cluster.joinNode(fresh)
    const added = await admin<MembershipChangeResponse>("add", { id: fresh })
    t.ok(added.changed, `${fresh} added as a learner`)
    await until(`${fresh} caught up`, async () => {
      const m = await admin<MembersResponse>("members")
      const lag = m.members.find((x) => x.id === fresh)?.lag
      return lag !== null && lag !== undefined && lag < 50
    }, { timeoutMs: 60_000, everyMs: 100 })
    const promoted = await admin<MembershipChangeResponse>("promote", { id: fresh })
    t.ok(promoted.members.some((m) => m.id === fresh && m.role === "voter"), `${fresh} promoted`)
    const removed = await admin<MembershipChangeResponse>("remove", { id: old })
    t.notOk(removed.members.some((m) => m.id === old), `${old} removed`)
    await cluster.stopNode(old)
    steps.push(`${old} -> ${fresh} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  }
  t.comment(steps.join("; "))
  const final = await admin<MembersResponse>("members")
  t.same(final.members.map((m) => [m.id, m.role]), [["n4", "voter"], ["n5", "voter"], ["n6", "voter"]], "only the new nodes are members")

  running = false
  stoppedAt = performance.now()
  await writer.stop()
  await producer
  await consumer
  t.same(writer.failed, [], "no client write failed")
  t.ok(writer.acked.size > 100, `writes went on throughout (${writer.acked.size} acknowledged)`)
  const stored = new Map<string, string>()
  for await (const page of client.scanAll({ prefix: "w" })) for (const item of page.items) stored.set(item.key, item.value ?? "")
  t.same([...writer.acked].filter(([k, v]) => stored.get(k) !== v).map(([k]) => k), [], "every acknowledged write reads back")
  t.same(jobErrors, [], "no enqueue failed and no job completed twice")
  // An ack whose reply was lost and whose retry met lease_lost did complete the job: the
  // cluster's own record is the judge of what the worker did not see.
  const notSeen = [...enqueued].filter((id) => !completed.has(id))
  const states = await Promise.all(notSeen.map(async (id) => `${id}: ${(await jobs.get(id)).state}`))
  t.same(states.filter((s) => !s.endsWith(": completed")), [], `every acknowledged enqueue completed (${enqueued.size}; ${notSeen.length} confirmed by the cluster after a lost ack reply)`)
  await client.close()
})

t.test("grow 3 -> 5 -> 7 and shrink back to 3 under a writer: every configuration takes writes, none fails", async (t) => {
  const { cluster, client } = await testCluster(t)
  const admin = <A>(op: string, body: unknown = {}) => client.call<A>(Subjects.admin(cluster.cluster, op), body)
  const writer = new ContinuousWriter(client)
  const voters = async () => (await admin<MembersResponse>("members")).members.filter((m) => m.role === "voter").map((m) => m.id)
  const grow = async (id: string) => {
    cluster.joinNode(id)
    await admin("add", { id })
    await admin("promote", { id })
  }
  for (const id of ["n4", "n5"]) await grow(id)
  t.same(await voters(), ["n1", "n2", "n3", "n4", "n5"], "five voters")
  const atFive = writer.acked.size
  for (const id of ["n6", "n7"]) await grow(id)
  t.same(await voters(), ["n1", "n2", "n3", "n4", "n5", "n6", "n7"], "seven voters")
  // n1 restarts with its old --peers n1,n2,n3: it says so, and follows the log.
  const warned = new Promise<string>((resolve) => {
    const off = cluster.onLine((id, line) => {
      if (id === "n1" && line.includes("differs from the configuration in the log")) {
        off()
        resolve(line)
      }
    })
  })
  await cluster.stopNode("n1")
  cluster.startNode("n1")
  t.match(await warned, /--peers n1,n2,n3 differs from the configuration in the log \(voters n1,n2,n3,n4,n5,n6,n7 .*\); following the log/)
  await until("n1 follows a leader again", async () => typeof (await cluster.status("n1", 500))?.leader === "string")
  // Seven voters survive three down: stop three and write on.
  for (const id of ["n5", "n6", "n7"]) await cluster.stopNode(id)
  const before = writer.acked.size
  await until("writes go on with four of seven", async () => writer.acked.size > before + 20, { timeoutMs: 30_000 })
  for (const id of ["n5", "n6", "n7"]) cluster.startNode(id)
  // Shrink back to n1-n3, the leader included wherever it is.
  for (const id of ["n7", "n6", "n5", "n4"]) {
    await admin("remove", { id })
    await cluster.stopNode(id)
  }
  t.same(await voters(), ["n1", "n2", "n3"], "three voters again")
  await writer.stop()
  t.ok(writer.acked.size > atFive, `writes went on throughout (${writer.acked.size})`)
  t.same(writer.failed, [], "no write failed")
  await client.close()
})
