import t from "tap"
import {
  backoffDelay,
  defaultMaxAttempts,
  JobQueue,
  newJobChanges,
  type JobChanges,
  type JobCommand,
  type JobRecord,
  type JobResult
} from "../../../actors/applier/jobQueue.ts"
import type { JobSpec, QueueStats } from "../../../protocol/client.ts"

/** A job state machine over its own revision counter, stepped like the Applier does. */
const machine = () => {
  const rev = { revision: 0 }
  const jobs = new JobQueue(rev)
  const step = (time: number, cmd: JobCommand, changes: JobChanges = newJobChanges()) => {
    jobs.advanceTime(time, changes)
    return { r: jobs.apply(cmd, changes) as JobResult & Record<string, unknown>, changes }
  }
  const tick = (time: number) => step(time, { op: "jobs.tick" }).changes
  const enqueue = (time: number, ...specs: JobSpec[]) => step(time, { op: "jobs.enqueue", jobs: specs, batch: true }).r
  const lease = (time: number, queues: string[], max = 10, workerId = "w1") =>
    step(time, { op: "jobs.lease", queues, max, workerId }).r["jobs"] as Array<{ id: string; token: number; attempt: number; leaseUntil: number; payload: unknown }>
  return { rev, jobs, step, tick, enqueue, lease }
}

const spec = (queue: string, payload: unknown, extra: Partial<JobSpec> = {}): JobSpec => ({ queue, payload, ...extra })

t.test("enqueue: ids in order, one revision per entry, ready or scheduled by run time", async (t) => {
  const m = machine()
  const r = m.enqueue(1000, spec("q", 1), spec("q", 2, { delay: 500 }), spec("q", 3, { runAt: 900 }))
  t.same(r, { ok: true, revision: 1, ids: ["1", "2", "3"], existing: [false, false, false] })
  t.equal(m.jobs.get("1")!.state, "ready")
  t.equal(m.jobs.get("2")!.state, "scheduled")
  t.equal(m.jobs.get("2")!.runAt, 1500)
  t.equal(m.jobs.get("3")!.state, "ready", "a run time in the past is ready now")
  t.equal(m.jobs.get("1")!.maxAttempts, defaultMaxAttempts)
  const single = m.step(1001, { op: "jobs.enqueue", jobs: [spec("q", 4)], batch: false }).r
  t.same(single, { ok: true, revision: 2, id: "4", existing: false })
})

t.test("lease: priority first, FIFO within a priority, queues in the order asked", async (t) => {
  const m = machine()
  m.enqueue(1, spec("a", "low1"), spec("a", "high1", { priority: 5 }), spec("a", "low2"), spec("a", "high2", { priority: 5 }), spec("b", "b1", { priority: 100 }))
  t.same(m.lease(2, ["a", "b"], 3).map((j) => j.payload), ["high1", "high2", "low1"])
  t.same(m.lease(3, ["b", "a"], 5).map((j) => j.payload), ["b1", "low2"])
  t.same(m.lease(4, ["a", "b"], 5), [], "nothing left")
  const noop = m.step(5, { op: "jobs.lease", queues: ["a"], max: 1, workerId: "w" })
  t.equal(noop.changes.jobs.size, 0, "an empty lease changes nothing")
  t.equal(noop.r.revision, m.rev.revision, "and keeps the revision")
})

t.test("lease hands out increasing fencing tokens and counts attempts; ack with a stale token is refused", async (t) => {
  const m = machine()
  m.enqueue(0, spec("q", "x", { leaseMs: 100, maxAttempts: 3 }))
  const [first] = m.lease(10, ["q"])
  t.equal(first!.attempt, 1)
  t.equal(first!.leaseUntil, 110)
  // The lease runs out: the job is ready again (attempts remain) and leased to someone else.
  const expired = m.tick(110)
  t.equal(m.jobs.get("1")!.state, "ready")
  t.match([...expired.jobEvents.map((e) => e.state)], ["failed", "ready"])
  t.match(m.jobs.get("1")!.error, /lease expired/)
  const [second] = m.lease(120, ["q"], 1, "w2")
  t.ok(second!.token > first!.token, "a later lease has a larger token")
  t.equal(second!.attempt, 2)
  const stale = m.step(121, { op: "jobs.ack", id: "1", fence: first!.token })
  t.match(stale.r, { ok: false, code: "lease_lost" })
  t.equal(stale.changes.jobs.size, 0, "a refused ack changes nothing")
  const staleFail = m.step(122, { op: "jobs.fail", id: "1", fence: first!.token, error: "x", retryable: true })
  t.match(staleFail.r, { ok: false, code: "lease_lost" })
  const staleExtend = m.step(123, { op: "jobs.extend", id: "1", fence: first!.token })
  t.match(staleExtend.r, { ok: false, code: "lease_lost" })
  const ack = m.step(124, { op: "jobs.ack", id: "1", fence: second!.token, result: { done: true } })
  t.match(ack.r, { ok: true })
  t.match(m.jobs.get("1"), { state: "completed", result: { done: true }, finishedAt: 124 })
  t.notOk("workerId" in m.jobs.get("1")!, "a finished job holds no lease")
  t.match(m.step(125, { op: "jobs.ack", id: "1", fence: second!.token }).r, { ok: false, code: "lease_lost" }, "completes at most once")
  t.match(m.step(126, { op: "jobs.ack", id: "99", fence: 1 }).r, { ok: false, code: "not_found" })
})

t.test("ackBatch: each ack succeeds or fails alone, in one entry", async (t) => {
  const m = machine()
  m.enqueue(0, spec("q", 1), spec("q", 2), spec("q", 3))
  const [a, b, c] = m.lease(1, ["q"], 3)
  const { r, changes } = m.step(2, {
    op: "jobs.ackBatch",
    acks: [
      { id: a!.id, fence: a!.token, result: "A" },
      { id: b!.id, fence: b!.token + 100 },
      { id: "404", fence: 1 },
      { id: c!.id, fence: c!.token }
    ]
  })
  t.match(r, { ok: true, results: [{ ok: true }, { ok: false, code: "lease_lost" }, { ok: false, code: "not_found" }, { ok: true }] })
  t.match(m.jobs.get(a!.id), { state: "completed", result: "A" })
  t.equal(m.jobs.get(b!.id)!.state, "leased", "a refused ack changes nothing")
  t.equal(m.jobs.get(c!.id)!.state, "completed")
  t.same(changes.jobEvents.map((e) => [e.id, e.state]), [[a!.id, "completed"], [c!.id, "completed"]])
})

t.test("extend moves the lease end and keeps progress; the old end no longer expires it", async (t) => {
  const m = machine()
  m.enqueue(0, spec("q", "x", { leaseMs: 100 }))
  const [j] = m.lease(0, ["q"])
  const ext = m.step(50, { op: "jobs.extend", id: "1", fence: j!.token, leaseMs: 200, progress: { pct: 40 } })
  t.match(ext.r, { ok: true, leaseUntil: 250 })
  m.tick(100)
  t.equal(m.jobs.get("1")!.state, "leased", "the first lease end passed without effect")
  t.same(m.jobs.get("1")!.progress, { pct: 40 })
  m.tick(250)
  t.equal(m.jobs.get("1")!.state, "ready")
  t.same(m.lease(251, ["q"])[0]!.payload, "x")
})

t.test("release gives the job back at once without counting the attempt; the old token is dead", async (t) => {
  const m = machine()
  m.enqueue(0, spec("q", "x", { maxAttempts: 1 }))
  const [j] = m.lease(1, ["q"])
  t.match(m.step(2, { op: "jobs.release", id: "1", fence: j!.token }).r, { ok: true })
  t.match(m.jobs.get("1"), { state: "ready", attempts: 0 })
  t.notOk("workerId" in m.jobs.get("1")!)
  t.match(m.step(3, { op: "jobs.ack", id: "1", fence: j!.token }).r, { ok: false, code: "lease_lost" })
  const [again] = m.lease(4, ["q"])
  t.equal(again!.attempt, 1, "its one attempt is still there")
  t.match(m.step(5, { op: "jobs.release", id: "1", fence: j!.token }).r, { ok: false, code: "lease_lost" })
})

t.test("fail: retries with backoff, never early, then dead after max attempts", async (t) => {
  const m = machine()
  m.enqueue(0, spec("q", "x", { maxAttempts: 3, backoff: { type: "exponential", delay: 100 } }))
  let [j] = m.lease(0, ["q"])
  t.match(m.step(10, { op: "jobs.fail", id: "1", fence: j!.token, error: "boom", retryable: true }).r, { ok: true, willRetry: true, runAt: 110 })
  t.equal(m.jobs.get("1")!.state, "failed")
  m.tick(109)
  t.equal(m.jobs.get("1")!.state, "failed", "not ready a millisecond early")
  t.same(m.lease(109, ["q"]), [])
  m.tick(110)
  t.equal(m.jobs.get("1")!.state, "ready")
  ;[j] = m.lease(110, ["q"])
  t.match(m.step(120, { op: "jobs.fail", id: "1", fence: j!.token, error: "boom", retryable: true }).r, { willRetry: true, runAt: 320 }, "second wait doubles")
  m.tick(320)
  ;[j] = m.lease(320, ["q"])
  t.equal(j!.attempt, 3)
  t.match(m.step(330, { op: "jobs.fail", id: "1", fence: j!.token, error: "last", retryable: true }).r, { ok: true, willRetry: false })
  t.match(m.jobs.get("1"), { state: "dead", error: "last", attempts: 3 })
})

t.test("fail with retryable false goes dead at once; a fixed backoff of 0 retries at once", async (t) => {
  const m = machine()
  m.enqueue(0, spec("q", "a", { maxAttempts: 5 }), spec("q", "b", { maxAttempts: 5, backoff: { type: "fixed", delay: 0 } }))
  const [a, b] = m.lease(0, ["q"])
  m.step(1, { op: "jobs.fail", id: a!.id, fence: a!.token, error: "bad input", retryable: false })
  t.equal(m.jobs.get(a!.id)!.state, "dead")
  m.step(2, { op: "jobs.fail", id: b!.id, fence: b!.token, error: "flaky", retryable: true })
  t.equal(m.jobs.get(b!.id)!.state, "ready", "ready in the same entry")
})

t.test("backoff: fixed, exponential, cap, and deterministic jitter", async (t) => {
  t.equal(backoffDelay(undefined, 1, "1"), 0)
  t.equal(backoffDelay({ type: "fixed", delay: 50 }, 4, "1"), 50)
  t.same([1, 2, 3, 4].map((a) => backoffDelay({ type: "exponential", delay: 100 }, a, "1")), [100, 200, 400, 800])
  t.equal(backoffDelay({ type: "exponential", delay: 100, max: 300 }, 5, "1"), 300)
  const jittered = backoffDelay({ type: "exponential", delay: 1000, jitter: 0.5 }, 1, "7")
  t.ok(jittered >= 500 && jittered <= 1000, `within [500, 1000]: ${jittered}`)
  t.equal(backoffDelay({ type: "exponential", delay: 1000, jitter: 0.5 }, 1, "7"), jittered, "the same on every replica")
  t.not(backoffDelay({ type: "exponential", delay: 1000, jitter: 0.5 }, 1, "8"), jittered, "spread across jobs")
  t.equal(backoffDelay({ type: "exponential", delay: 1, max: 10 }, 5000, "1"), 10, "huge attempt counts do not overflow")
})

t.test("unique keys: a live job with the key is returned instead; a finished one frees the key", async (t) => {
  const m = machine()
  t.same(m.enqueue(0, spec("q", 1, { uniqueKey: "u" }), spec("q", 2, { uniqueKey: "u" }), spec("other", 3, { uniqueKey: "u" })), {
    ok: true,
    revision: 1,
    ids: ["1", "1", "2"],
    existing: [false, true, false]
  })
  const [j] = m.lease(1, ["q"])
  t.same(m.enqueue(2, spec("q", 4, { uniqueKey: "u" }))["ids"], ["1"], "still live while leased")
  m.step(3, { op: "jobs.ack", id: "1", fence: j!.token })
  t.same(m.enqueue(4, spec("q", 5, { uniqueKey: "u" })), { ok: true, revision: 4, ids: ["3"], existing: [false] })
})

t.test("cancel and retry", async (t) => {
  const m = machine()
  m.enqueue(0, spec("q", 1), spec("q", 2, { delay: 1000, uniqueKey: "k" }))
  const [j] = m.lease(0, ["q"])
  t.match(m.step(1, { op: "jobs.cancel", id: "2" }).r, { ok: true })
  t.equal(m.jobs.get("2")!.state, "cancelled")
  m.tick(1000)
  t.equal(m.jobs.get("2")!.state, "cancelled", "its old run time does not revive it")
  t.match(m.step(1001, { op: "jobs.cancel", id: "2" }).r, { ok: false, code: "conflict" })
  // Cancelling a leased job: the worker's ack then finds the lease lost.
  m.step(1002, { op: "jobs.cancel", id: "1" })
  t.match(m.step(1003, { op: "jobs.ack", id: "1", fence: j!.token }).r, { ok: false, code: "lease_lost" })
  // Retry brings a cancelled or dead job back with fresh attempts.
  t.match(m.step(1004, { op: "jobs.retry", id: "2" }).r, { ok: true })
  t.match(m.jobs.get("2"), { state: "ready", attempts: 0 })
  t.notOk("finishedAt" in m.jobs.get("2")!)
  t.same(m.enqueue(1005, spec("q", 9, { uniqueKey: "k" }))["ids"], ["2"], "the retried job holds its unique key again")
  t.match(m.step(1006, { op: "jobs.retry", id: "2" }).r, { ok: false, code: "conflict" }, "a ready job cannot be retried")
  t.match(m.step(1007, { op: "jobs.retry", id: "nope" }).r, { ok: false, code: "not_found" })
  t.match(m.step(1008, { op: "jobs.cancel", id: "nope" }).r, { ok: false, code: "not_found" })
})

t.test("retention and purge remove finished jobs; ids are never reused", async (t) => {
  const m = machine()
  m.enqueue(0, spec("q", 1, { retainMs: 100 }), spec("q", 2), spec("q", 3))
  const leased = m.lease(0, ["q"], 3)
  for (const j of leased) m.step(10, { op: "jobs.ack", id: j.id, fence: j.token })
  m.tick(109)
  t.ok(m.jobs.get("1"), "kept until its retention ends")
  const gone = m.tick(110)
  t.notOk(m.jobs.get("1"))
  t.equal(gone.jobs.get("1"), null, "its deletion is persisted")
  t.match(m.step(200, { op: "jobs.purge", queue: "q", states: ["completed"], olderThanMs: 1000 }).r, { ok: true, purged: 0 }, "too young")
  t.match(m.step(1010, { op: "jobs.purge", queue: "q", states: ["dead", "completed"], olderThanMs: 1000 }).r, { ok: true, purged: 2 })
  t.equal(m.jobs.jobs.size, 0)
  t.same(m.enqueue(1011, spec("q", 4))["ids"], ["4"])
  t.match(m.step(1012, { op: "jobs.purge", queue: "nope", states: ["dead"], olderThanMs: 0 }).r, { ok: true, purged: 0 })
})

t.test("list pages in enqueue order, filtered by state", async (t) => {
  const m = machine()
  for (let i = 0; i < 7; i++) m.enqueue(i, spec("q", i, i % 2 === 0 ? {} : { delay: 1000 }))
  const p1 = m.jobs.list("q", undefined, 0, 3)
  t.same(p1.jobs.map((j) => j.id), ["1", "2", "3"])
  const p2 = m.jobs.list("q", undefined, p1.next!, 3)
  t.same(p2.jobs.map((j) => j.id), ["4", "5", "6"])
  const p3 = m.jobs.list("q", undefined, p2.next!, 3)
  t.same(p3.jobs.map((j) => j.id), ["7"])
  t.equal(p3.next, undefined)
  t.same(m.jobs.list("q", "scheduled", 0, 10).jobs.map((j) => j.id), ["2", "4", "6"])
  t.same(m.jobs.list("none", undefined, 0, 10).jobs, [])
})

t.test("stats: counts by state, oldest ready age, enqueued, completed and failed in the last minute", async (t) => {
  const m = machine()
  m.enqueue(1000, spec("q", 1), spec("q", 2), spec("q", 3, { delay: 5000 }), spec("q", 4, { priority: 9 }))
  const [a, b] = m.lease(2000, ["q"], 2)
  m.step(3000, { op: "jobs.ack", id: a!.id, fence: a!.token })
  m.step(3000, { op: "jobs.fail", id: b!.id, fence: b!.token, error: "x", retryable: false })
  t.same(m.jobs.stats("q"), [
    { queue: "q", scheduled: 1, ready: 1, leased: 0, completed: 1, failed: 0, dead: 1, cancelled: 0, oldestReadyMs: 2000, enqueuedLastMinute: 4, completedLastMinute: 1, failedLastMinute: 1 }
  ])
  m.tick(70_000)
  t.match(m.jobs.stats(undefined), [{ queue: "q", enqueuedLastMinute: 0, completedLastMinute: 0, failedLastMinute: 0, scheduled: 0, ready: 2 }], "a minute later")
  t.same(m.jobs.stats("empty"), [
    { queue: "empty", scheduled: 0, ready: 0, leased: 0, completed: 0, failed: 0, dead: 0, cancelled: 0, oldestReadyMs: 0, enqueuedLastMinute: 0, completedLastMinute: 0, failedLastMinute: 0 }
  ])
})

t.test("stats: enqueuedLastMinute counts new jobs by leader time, and a purge does not take them back", async (t) => {
  const m = machine()
  m.enqueue(10_000, spec("q", 1), spec("q", 2, { uniqueKey: "u" }), spec("other", 3))
  // The unique key's job already exists: returned, not counted again. A delayed job counts when enqueued.
  m.enqueue(20_000, spec("q", 4, { uniqueKey: "u" }), spec("q", 5, { delay: 600_000 }))
  t.match(m.jobs.stats("q"), [{ enqueuedLastMinute: 3, ready: 2, scheduled: 1 }])
  t.match(m.jobs.stats("other"), [{ enqueuedLastMinute: 1 }], "per queue")
  const [j] = m.lease(21_000, ["q"], 1)
  m.step(21_000, { op: "jobs.ack", id: j!.id, fence: j!.token })
  m.step(22_000, { op: "jobs.purge", queue: "q", states: ["completed"], olderThanMs: 0 })
  t.match(m.jobs.stats("q"), [{ completed: 0, ready: 1, scheduled: 1, enqueuedLastMinute: 3 }], "the purged job stays counted as enqueued")
  m.tick(70_000)
  t.match(m.jobs.stats("q"), [{ enqueuedLastMinute: 1 }], "the enqueues at 10 s left the window (60 s of leader time up to 70 s)")
  m.tick(80_000)
  t.match(m.jobs.stats(undefined), [{ queue: "other", enqueuedLastMinute: 0 }, { queue: "q", enqueuedLastMinute: 0 }])
})

t.test("events: one per transition with the revision and leader time", async (t) => {
  const m = machine()
  const c1 = m.step(5, { op: "jobs.enqueue", jobs: [spec("q", 1), spec("q", 2, { delay: 10 })], batch: true }).changes
  t.same(c1.jobEvents.map((e) => [e.id, e.state, e.revision, e.time]), [["1", "ready", 1, 5], ["2", "scheduled", 1, 5]])
  const c2 = m.tick(15)
  t.same(c2.jobEvents.map((e) => [e.id, e.state, e.revision]), [["2", "ready", 2]])
  const [j] = m.lease(16, ["q"], 1)
  const c3 = m.step(17, { op: "jobs.ack", id: j!.id, fence: j!.token, result: 42 }).changes
  t.same(c3.jobEvents.map((e) => [e.id, e.state, e.result]), [["1", "completed", 42]])
})

/** Everything a replica would persist, in a form to compare. */
const dump = (jobs: JobQueue): JobRecord[] => [...jobs.jobs.values()].sort((a, b) => a.seq - b.seq)

t.test("a replica restored from its records and counters behaves exactly like one that never restarted", async (t) => {
  const live = machine()
  const stored = new Map<string, JobRecord>()
  const persist = (c: JobChanges) => {
    for (const [id, j] of c.jobs) {
      if (j === null) stored.delete(id)
      else stored.set(id, j)
    }
  }
  const run = (m: ReturnType<typeof machine>, time: number, cmd: JobCommand) => {
    const { r, changes } = m.step(time, cmd)
    persist(changes)
    return r
  }
  for (let i = 0; i < 20; i++) run(live, i, { op: "jobs.enqueue", jobs: [spec(i % 2 ? "a" : "b", i, { priority: i % 3, maxAttempts: 2, leaseMs: 50, delay: i % 4 === 0 ? 30 : 0 })], batch: true })
  const leased = run(live, 25, { op: "jobs.lease", queues: ["a", "b"], max: 6, workerId: "w" })["jobs"] as Array<{ id: string; token: number }>
  run(live, 26, { op: "jobs.ack", id: leased[0]!.id, fence: leased[0]!.token })
  run(live, 27, { op: "jobs.fail", id: leased[1]!.id, fence: leased[1]!.token, error: "e", retryable: true })
  run(live, 28, { op: "jobs.purge", queue: "a", states: ["completed"], olderThanMs: 0 })

  const restored = machine()
  restored.rev.revision = live.rev.revision
  restored.jobs.restore([...stored.values()].reverse(), live.jobs.counters(), 28)
  t.same(dump(restored.jobs), dump(live.jobs))
  // From here both get the same commands and must agree on every answer and every record.
  const script: Array<[number, JobCommand]> = [
    [40, { op: "jobs.lease", queues: ["b", "a"], max: 4, workerId: "w2" }],
    [80, { op: "jobs.tick" }],
    [90, { op: "jobs.lease", queues: ["a", "b"], max: 20, workerId: "w3" }],
    [95, { op: "jobs.enqueue", jobs: [spec("a", "new")], batch: false }]
  ]
  for (const [time, cmd] of script) t.same(restored.step(time, cmd).r, live.step(time, cmd).r, `${cmd.op} at ${time}`)
  t.same(dump(restored.jobs), dump(live.jobs))
  // The last minute's counts are not persisted: a restored replica counts from its restart.
  const lastMinuteless = (s: QueueStats) => ({ ...s, enqueuedLastMinute: 0, completedLastMinute: 0, failedLastMinute: 0 })
  t.same(restored.jobs.stats(undefined).map(lastMinuteless), live.jobs.stats(undefined).map(lastMinuteless))
})
