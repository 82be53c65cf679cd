/**
 * The key-value and job families of /metrics from the state machines alone: what each applied
 * transition counts, the key bytes kept as keys are written, replaced and expire, counters that
 * survive an installed snapshot replacing the state machines, and queue names escaped in labels.
 * test/gateway/jobMetrics.test.ts checks the same series on a real cluster.
 */
import t from "tap"
import * as Metrics from "../../actors/gateway/metrics.ts"
import { JobQueue, newJobChanges, startDelayBuckets, type JobCommand, type JobResult } from "../../actors/applier/jobQueue.ts"
import { KvState, newChanges, type KvCommand } from "../../actors/applier/kvState.ts"
import type { JobSpec } from "../../protocol/client.ts"
import { checkHistograms, parseExposition, value } from "../support/exposition.ts"

/** A state like the Applier's: kv and jobs sharing one revision, stepped by leader time. */
const state = () => {
  const kv = new KvState()
  const jobs = new JobQueue(kv)
  const changes = () => ({ ...newChanges(), ...newJobChanges() })
  const job = (time: number, cmd: JobCommand) => {
    const c = changes()
    kv.advanceTime(time, c)
    jobs.advanceTime(time, c)
    return jobs.apply(cmd, c) as JobResult & Record<string, unknown>
  }
  const write = (time: number, cmd: KvCommand) => {
    const c = changes()
    kv.advanceTime(time, c)
    jobs.advanceTime(time, c)
    return kv.apply(cmd, c)
  }
  return { kv, jobs, job, write }
}

/** A source whose state machines can be replaced, as an install does; `install` calls the listeners. */
const source = (first: ReturnType<typeof state>) => {
  const listeners: Array<(index: number) => void> = []
  const s = {
    current: first,
    get kv() {
      return s.current.kv
    },
    get jobs() {
      return s.current.jobs
    },
    onInstalled: (l: (index: number) => void) => void listeners.push(l),
    install: (next: ReturnType<typeof state>) => {
      s.current = next
      for (const l of listeners) l(0)
    }
  }
  return s
}

const render = (registry: Metrics.Registry) =>
  parseExposition(
    Metrics.render(registry, {
      id: "n1",
      cluster: "c",
      role: "leader",
      term: 1,
      leader: "n1",
      commitIndex: 1,
      appliedIndex: 1,
      firstIndex: 1,
      lastIndex: 1,
      leaderChanges: 1,
      logBaseIndex: 0,
      snapshot: null,
      admission: { held: {}, busy: {} }
    })
  )

const spec = (queue: string, extra: Partial<JobSpec> = {}): JobSpec => ({ queue, payload: null, ...extra })

t.test("key count and UTF-8 bytes follow puts, overwrites, deletes, txns and expiry", async (t) => {
  const s = state()
  const bytes = () => [...s.kv.records].reduce((n, [k, r]) => n + Buffer.byteLength(k) + Buffer.byteLength(r.value), 0)
  s.write(1, { op: "put", key: "a", value: "héllo" })
  t.equal(s.kv.bytes, 1 + 6, "é is two bytes")
  s.write(2, { op: "put", key: "a", value: "x" })
  s.write(3, { op: "put", key: "日本", value: "🙂", ttl: 10 })
  t.equal(s.kv.bytes, bytes())
  t.equal(s.kv.bytes, 2 + 6 + 4)
  s.write(4, { op: "cas", key: "b", value: "12345", expectedRevision: 0 })
  s.write(5, { op: "txn", compare: [], success: [{ op: "put", key: "c", value: "cc" }, { op: "del", key: "b" }], failure: [] })
  t.equal(s.kv.bytes, bytes())
  s.write(20, { op: "del", key: "a" })
  t.equal(s.kv.records.size, 1, "the TTL key expired at time 13, a deleted")
  t.equal(s.kv.bytes, 1 + 2)
  t.same(s.kv.writes, { put: 5, del: 2, expire: 1 })
  s.write(21, { op: "del", key: "missing" })
  t.same(s.kv.writes, { put: 5, del: 2, expire: 1 }, "deleting a missing key writes nothing")

  // A key whose TTL ran out but that no entry removed yet (it expires when time passes) is rewritten.
  const r = state()
  r.write(1, { op: "put", key: "k", value: "long value", ttl: 5 })
  r.kv.time = 10 // reads see it gone; the next entry's advanceTime would remove it
  r.kv.apply({ op: "put", key: "k", value: "v" }, { ...newChanges(), ...newJobChanges() })
  t.equal(r.kv.bytes, 2, "the hidden record's bytes were replaced, not added to")

  const restored = new KvState()
  restored.restore(s.kv.records, [], s.kv.revision, s.kv.time)
  t.equal(restored.bytes, s.kv.bytes, "rebuilt on restore")
})

t.test("every job transition counts once, in its queue; enqueue-to-start at first leases", async (t) => {
  const s = state()
  const registry = Metrics.make("0.0.0", undefined, source(s))
  const empty = render(registry)
  for (const name of ["archio_kv_keys", "archio_kv_bytes", "archio_kv_writes_total"]) t.ok(empty.types.has(name) && empty.helps.has(name), `${name} has HELP and TYPE from the start`)
  t.notOk([...empty.types.keys()].some((name) => name.startsWith("archio_jobs")), "no job family before the first queue (a histogram without series)")

  s.job(1000, { op: "jobs.enqueue", jobs: [spec("mail", { maxAttempts: 2, leaseMs: 100 }), spec("mail", { uniqueKey: "u" }), spec("mail", { delay: 5000 })], batch: true })
  s.job(1001, { op: "jobs.enqueue", jobs: [spec("mail", { uniqueKey: "u" }), spec("sms")], batch: true })
  const leased = s.job(1250, { op: "jobs.lease", queues: ["mail", "sms"], max: 10, workerId: "w" })["jobs"] as Array<{ id: string; token: number; queue: string }>
  t.equal(leased.length, 3, "two mail jobs and the sms job")
  const [flaky, unique, sms] = leased
  s.job(1260, { op: "jobs.ack", id: unique!.id, fence: unique!.token })
  s.job(1270, { op: "jobs.fail", id: sms!.id, fence: sms!.token, error: "no", retryable: false })
  // The flaky job's lease runs out at 1350; its retry is ready at once and leased again, then fails for good.
  const again = s.job(2000, { op: "jobs.lease", queues: ["mail"], max: 1, workerId: "w" })["jobs"] as Array<{ id: string; token: number }>
  t.equal(again[0]?.id, flaky!.id, "leased again after its lease expired")
  s.job(2001, { op: "jobs.fail", id: flaky!.id, fence: again[0]!.token, error: "again", retryable: true })
  t.equal(s.jobs.get(flaky!.id)!.state, "dead", "out of attempts")
  s.job(6500, { op: "jobs.lease", queues: ["mail"], max: 1, workerId: "w" })

  const e = render(registry)
  checkHistograms(t, e)
  const mail = { queue: "mail" }
  const sm = { queue: "sms" }
  t.equal(value(e, "archio_jobs_enqueued_total", mail), 3, "the unique key's second enqueue is not a new job")
  t.equal(value(e, "archio_jobs_enqueued_total", sm), 1)
  t.equal(value(e, "archio_jobs_leased_total", mail), 4)
  t.equal(value(e, "archio_jobs_completed_total", mail), 1)
  t.equal(value(e, "archio_jobs_failed_total", mail), 2, "the expired lease and the last fail")
  t.equal(value(e, "archio_jobs_lease_expired_total", mail), 1)
  t.equal(value(e, "archio_jobs_dead_total", mail), 1)
  t.equal(value(e, "archio_jobs_failed_total", sm), 1)
  t.equal(value(e, "archio_jobs_dead_total", sm), 1, "a fail without retry is dead at once")
  t.equal(value(e, "archio_jobs_lease_expired_total", sm), 0)
  t.same(
    Object.fromEntries(["scheduled", "ready", "leased", "completed", "failed", "dead", "cancelled"].map((st) => [st, value(e, "archio_jobs", { queue: "mail", state: st })])),
    { scheduled: 0, ready: 0, leased: 1, completed: 1, failed: 0, dead: 1, cancelled: 0 }
  )
  // First leases: two mail jobs 250 ms after their enqueue, the delayed one 500 ms after its run-at time (6000).
  t.equal(value(e, "archio_jobs_enqueue_to_start_seconds_count", mail), 3, "the retry's lease is not a start")
  t.equal(value(e, "archio_jobs_enqueue_to_start_seconds_sum", mail), 0.25 + 0.25 + 0.5)
  t.equal(value(e, "archio_jobs_enqueue_to_start_seconds_bucket", { queue: "mail", le: "0.1" }), 0)
  t.equal(value(e, "archio_jobs_enqueue_to_start_seconds_bucket", { queue: "mail", le: "0.25" }), 2, "le is inclusive")
  t.equal(value(e, "archio_jobs_enqueue_to_start_seconds_bucket", { queue: "mail", le: "0.5" }), 3)
  t.equal(value(e, "archio_jobs_enqueue_to_start_seconds_sum", sm), 0.249)
  t.equal(e.samples.filter((x) => x.name === "archio_jobs_enqueue_to_start_seconds_bucket" && x.labels["queue"] === "mail").length, startDelayBuckets.length + 1)
})

t.test("counters carry over when an installed snapshot replaces the state machines", async (t) => {
  const before = state()
  const src = source(before)
  const registry = Metrics.make("0.0.0", undefined, src)
  before.job(1, { op: "jobs.enqueue", jobs: [spec("q"), spec("q")], batch: true })
  before.write(2, { op: "put", key: "k", value: "v" })
  // No scrape between the writes and the install: the install itself adds them up.
  const after = state()
  after.kv.restore(before.kv.records, [], before.kv.revision, before.kv.time)
  src.install(after)
  before.job(3, { op: "jobs.enqueue", jobs: [spec("q")], batch: true }) // the old object no longer counts
  after.job(4, { op: "jobs.enqueue", jobs: [spec("q"), spec("other")], batch: true })
  after.write(5, { op: "put", key: "k2", value: "v" })
  const e = render(registry)
  t.equal(value(e, "archio_jobs_enqueued_total", { queue: "q" }), 3, "two before the install, one after")
  t.equal(value(e, "archio_jobs_enqueued_total", { queue: "other" }), 1)
  t.equal(value(e, "archio_kv_writes_total", { op: "put" }), 2)
  t.equal(value(e, "archio_kv_keys"), 2, "gauges read the state in effect")
  t.equal(value(e, "archio_jobs", { queue: "q", state: "ready" }), 1, "the installed state's jobs (the test restored none)")
})

t.test("queue names are escaped in labels; the exposition stays readable", async (t) => {
  const s = state()
  const registry = Metrics.make("0.0.0", undefined, source(s))
  const odd = 'a"b\\c\nd'
  s.job(1, { op: "jobs.enqueue", jobs: [spec(odd)], batch: true })
  const text = Metrics.render(registry, {
    id: "n1", cluster: "c", role: "leader", term: 1, leader: "n1", commitIndex: 1, appliedIndex: 1, firstIndex: 1, lastIndex: 1, leaderChanges: 0, logBaseIndex: 0, snapshot: null, admission: { held: {}, busy: {} }
  })
  t.ok(text.includes('archio_jobs_enqueued_total{queue="a\\"b\\\\c\\nd"} 1'), "quote, backslash and newline escaped")
  const e = parseExposition(text)
  t.equal(value(e, "archio_jobs", { queue: odd, state: "ready" }), 1, "and read back as the queue's name")
  checkHistograms(t, e)
})
