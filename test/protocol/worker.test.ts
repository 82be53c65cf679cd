/**
 * The worker runtime and the typed job client against a real one-node cluster: batches up to
 * its concurrency, acks results, fails errors (retryable or not), keeps long jobs leased,
 * aborts a job whose lease is lost, and on stop releases what did not finish in the grace time.
 */
import t from "tap"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { NonRetryableError, Worker, type WorkerEvent } from "../../protocol/worker.ts"
import { singleNode } from "../support/node.ts"
import { sleep, until } from "../support/wait.ts"

t.test("worker runtime on one node", async (t) => {
  const nc = await singleNode(t)
  const client = new ArchioClient(nc, { cluster: "c" })
  const jobs = new JobsClient(client)

  t.test("runs up to its concurrency at once, acks results, fails errors", async (t) => {
    const ids: string[] = []
    for (let i = 0; i < 6; i++) ids.push((await jobs.enqueue({ queue: "conc", payload: i, maxAttempts: 1 })).id)
    let running = 0
    let most = 0
    const events: WorkerEvent[] = []
    const worker = new Worker(jobs, {
      queues: ["conc"],
      workerId: "w-conc",
      concurrency: 3,
      waitMs: 200,
      log: (e) => events.push(e),
      handler: async (payload) => {
        running++
        most = Math.max(most, running)
        await sleep(100)
        running--
        if (payload === 4) throw new Error("four is bad")
        if (payload === 5) throw new NonRetryableError("five is worse")
        return (payload as number) * 10
      }
    })
    worker.start()
    await until("six outcomes", () => worker.counts.acked + worker.counts.failed === 6)
    await worker.stop()
    t.equal(most, 3, "never more than the concurrency")
    t.same(worker.counts, { acked: 4, failed: 2, released: 0, lost: 0 })
    t.match(await jobs.get(ids[2]!), { state: "completed", result: 20 })
    t.match(await jobs.get(ids[4]!), { state: "dead", error: "four is bad" }, "maxAttempts 1: no retry left")
    t.match(events.filter((e) => e.type === "failed"), [
      { id: ids[4], retryable: true },
      { id: ids[5], retryable: false }
    ])
  })

  t.test("a long job keeps its lease; progress is recorded", async (t) => {
    const { id } = await jobs.enqueue({ queue: "long", payload: null })
    const worker = new Worker(jobs, {
      queues: ["long"],
      workerId: "w-long",
      leaseMs: 300,
      waitMs: 200,
      handler: async (_p, ctx) => {
        await ctx.progress({ step: 1 })
        await sleep(1000) // three lease lengths
        return "done"
      }
    })
    worker.start()
    await until("the ack", () => worker.counts.acked === 1)
    await worker.stop()
    t.match(await jobs.get(id), { state: "completed", attempts: 1, progress: { step: 1 } }, "one attempt: the lease never ran out")
  })

  t.test("a cancelled job's handler is aborted and not acked", async (t) => {
    const { id } = await jobs.enqueue({ queue: "cancel", payload: null })
    let aborted = false
    const worker = new Worker(jobs, {
      queues: ["cancel"],
      workerId: "w-cancel",
      leaseMs: 300,
      waitMs: 200,
      handler: (_p, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener("abort", () => {
            aborted = true
            resolve("too late")
          })
        })
    })
    worker.start()
    await until("the lease", async () => (await jobs.get(id)).state === "leased")
    await jobs.cancel(id)
    await until("the abort", () => aborted)
    await until("the lost lease", () => worker.counts.lost === 1)
    await worker.stop()
    t.match(await jobs.get(id), { state: "cancelled" })
    t.equal(worker.counts.acked, 0)
  })

  t.test("stop lets short jobs finish and releases the ones past the grace time", async (t) => {
    const quick = await jobs.enqueue({ queue: "stop", payload: "quick", priority: 1 })
    const slow = await jobs.enqueue({ queue: "stop", payload: "slow", maxAttempts: 1 })
    let started = 0
    const worker = new Worker(jobs, {
      queues: ["stop"],
      workerId: "w-stop",
      concurrency: 2,
      waitMs: 200,
      graceMs: 300,
      handler: async (payload, ctx) => {
        started++
        if (payload === "quick") return sleep(100).then(() => "ok")
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve))
        return "aborted"
      }
    })
    worker.start()
    await until("both started", () => started === 2)
    const stopping = Date.now()
    await worker.stop()
    t.ok(Date.now() - stopping >= 280, "waited for the grace time")
    t.same(worker.counts, { acked: 1, failed: 0, released: 1, lost: 0 })
    t.match(await jobs.get(quick.id), { state: "completed" })
    t.match(await jobs.get(slow.id), { state: "ready", attempts: 0 }, "released: ready again, its one attempt intact")
  })

  t.test("acks sent together are coalesced into few ackBatch requests, each answered alone", async (t) => {
    const { ids } = await jobs.enqueueBatch(Array.from({ length: 50 }, (_, n) => ({ queue: "coalesce", payload: n })))
    const leased = await jobs.lease({ queues: ["coalesce"], max: 50, workerId: "w-co" })
    t.equal(leased.length, 50)
    let requests = 0
    // The client sends straight to the leader's own subject when it knows the leader.
    const spy = nc.subscribe("archio.c.>", { callback: (_e, m) => void (m.subject.endsWith("jobs.ackBatch") && requests++) })
    await nc.flush()
    const results = await Promise.allSettled(leased.map((j, i) => jobs.ack(j.id, i === 7 ? j.token + 1 : j.token, i)))
    spy.unsubscribe()
    t.equal(results.filter((r) => r.status === "fulfilled").length, 49)
    t.match(results[7], { status: "rejected", reason: { code: "lease_lost" } }, "a stale token fails only its own ack")
    t.ok(requests >= 1 && requests <= 3, `50 acks in ${requests} requests`)
    t.match(await jobs.get(ids[3]!), { state: "completed", result: 3 })
  })

  t.test("the typed client covers every job call", async (t) => {
    const { ids } = await jobs.enqueueBatch([
      { queue: "typed", payload: 1 },
      { queue: "typed", payload: 2, uniqueKey: "u" },
      { queue: "typed", payload: 3, uniqueKey: "u" }
    ])
    t.equal(ids[1], ids[2], "unique key")
    const leased = await jobs.lease({ queues: ["typed"], max: 1, workerId: "typed" })
    t.equal(leased.length, 1)
    t.match(await jobs.extend(leased[0]!.id, leased[0]!.token, 10_000), { ok: true, leaseUntil: Number })
    t.match(await jobs.fail(leased[0]!.id, leased[0]!.token, "nope", false), { willRetry: false })
    t.match(await jobs.retry(leased[0]!.id), { ok: true })
    t.match(await jobs.stats("typed"), [{ queue: "typed", ready: 2 }])
    t.equal((await jobs.list("typed", { state: "ready" })).jobs.length, 2)
    await jobs.cancel(ids[0]!)
    await jobs.cancel(ids[1]!)
    t.match(await jobs.purge("typed"), { purged: 2 })
    await t.rejects(jobs.get(ids[0]!), { code: "not_found" })
    await t.rejects(jobs.ack("nope", 1), { code: "not_found" })
  })
})
