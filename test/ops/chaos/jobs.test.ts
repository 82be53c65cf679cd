/**
 * The jobs checker on small hand-made histories: clean ones (with lost leases, unknown
 * enqueues, retries, paged final reads) pass; each kind of violation (lost, doubled or invented
 * jobs, double acks, acks from stale leases, completions seen twice on the event stream,
 * stragglers) is reported for the reason it was built with.
 */
import t from "tap"
import { HistoryRecorder, pairOps, parseHistory, type Completion, type HistoryEntry } from "../../../ops/chaos/history.ts"
import { JobsWorkload } from "../../../ops/chaos/jobs.ts"
import { checkJobsHistory, finalState, type FinalJob, type JobsViolationKind } from "../../../ops/chaos/jobsChecker.ts"
import { makeWorkload, parseChaosArgs } from "../../../ops/chaos/run.ts"

/** A jobs history builder; times tick by one per entry. */
class H {
  private t = 0
  readonly rec = new HistoryRecorder(() => ++this.t)

  get entries(): HistoryEntry[] {
    return this.rec.entries
  }

  enqueue(client: string, ps: string[], type: Completion, ids?: string[]): this {
    const done = this.rec.invoke(client, "enqueue", "chaos", ps, ps.length > 1 ? { batch: true } : {})
    done(type, ps, type === "ok" ? { ids: ids ?? [] } : { error: type === "fail" ? "bad_request" : "timeout" })
    return this
  }

  /** An enqueue that never completed (the history ended first). */
  pending(client: string, ps: string[]): this {
    this.rec.invoke(client, "enqueue", "chaos", ps)
    return this
  }

  worker(worker: string, event: string, id: string, token: number): this {
    this.rec.append({ type: "worker", worker, event, id, token, time: ++this.t })
    return this
  }

  event(id: string, state: string, attempts: number, revision: number): this {
    this.rec.append({ type: "job-event", id, state, attempts, revision, time: ++this.t })
    return this
  }

  /** The final read, in pages of `pageSize`. */
  final(jobs: FinalJob[], pageSize = 1000): this {
    let cursor: string | null = null
    for (let at = 0; at === 0 || at < jobs.length; at += pageSize) {
      const page = jobs.slice(at, at + pageSize)
      const next = at + pageSize < jobs.length ? page[page.length - 1]!.id : null
      this.rec.invoke("final", "list", "chaos", cursor)("ok", page, { cursor: next })
      cursor = next
    }
    return this
  }
}

const done = (id: string, p: string, token: number, attempt = 1, attempts = attempt): FinalJob => ({ id, state: "completed", p, attempts, result: { p, token, attempt, worker: "w1" } })

const kinds = (h: H): JobsViolationKind[] => checkJobsHistory(h.entries).violations.map((v) => v.kind)

/** A clean history: three producers, a batch, unknown enqueues, a lease lost and re-leased. */
const clean = (): H =>
  new H()
    .enqueue("p1", ["p1-1"], "ok", ["1"])
    .enqueue("p2", ["p2-1", "p2-2"], "ok", ["2", "3"])
    .enqueue("p3", ["p3-1"], "info") // applied after all (job 4)
    .enqueue("p3", ["p3-2"], "info") // never applied
    .pending("p1", ["p1-2"]) // never completed, never applied
    .event("1", "leased", 1, 10)
    .worker("w1", "acked", "1", 1)
    .event("1", "completed", 1, 11)
    .event("2", "leased", 1, 12)
    .event("2", "failed", 1, 13) // w2's lease ran out
    .event("2", "leased", 2, 14)
    .worker("w3", "acked", "2", 4)
    .worker("w2", "lost", "2", 2) // w2 woke up late: refused
    .event("2", "completed", 2, 15)
    .worker("w1", "acked", "3", 3)
    .worker("w1", "lost", "3", 3) // an ack retried after the first took effect: refused, fine
    // job 4's ack reply was lost (worker killed): no acked line, still completed
    .final([done("1", "p1-1", 1), done("2", "p2-1", 4, 2), done("3", "p2-2", 3), done("4", "p3-1", 5)])

t.test("a clean history is valid", async (t) => {
  const r = checkJobsHistory(clean().entries)
  t.same(r.violations, [])
  t.equal(r.valid, true)
  t.equal(r.safe, true)
  t.equal(r.live, true)
  t.match(r.counts, {
    enqueueOps: { ok: 2, fail: 0, info: 3 },
    payloads: { ok: 3, info: 3 },
    unknownApplied: 1,
    unknownNotApplied: 2,
    finalJobs: 4,
    finalByState: { completed: 4 },
    leaseChecked: 4,
    workerLines: { acked: 3, lost: 2 },
    events: { leased: 3, completed: 2, failed: 1 }
  })
})

t.test("the history survives JSON lines, and the workload's summary lines say what was checked", async (t) => {
  const entries = parseHistory(clean().entries.map((e) => JSON.stringify(e)).join("\n"))
  const result = new JobsWorkload().check(entries)
  t.equal(result.valid, true)
  t.match(result.lines.join("\n"), /enqueues\s+5 \(ok 2, fail 0, info 3\) carrying 6 jobs; of 3 unknown ones 1 exist/)
  t.match(result.lines.join("\n"), /final\s+4 jobs: completed 4; lease of the accepted ack checked on 4/)
  t.match(result.lines.join("\n"), /checker\s+no violation/)
})

t.test("1. acknowledged enqueues: lost, moved, doubled and invented jobs", async (t) => {
  const base = () => new H().enqueue("p1", ["p1-1"], "ok", ["1"]).enqueue("p1", ["p1-2"], "ok", ["2"])
  t.same(kinds(base().final([done("1", "p1-1", 1)])), ["lost"], "an acknowledged job missing at the end")
  const lost = checkJobsHistory(base().final([done("1", "p1-1", 1)]).entries)
  t.equal(lost.valid, false)
  t.match(lost.violations[0]!.explanation, /lost: payload p1-2 was acknowledged as job 2 by p1 enqueue \["p1-2"\] \(op 1, invoked t=/)
  t.same(kinds(base().final([done("1", "p1-1", 1), done("2", "p1-9", 2)])), ["lost", "phantom"], "job 2 holds another payload, which nobody sent")
  t.same(kinds(base().final([done("1", "p1-1", 1), done("2", "p1-2", 2), done("3", "p1-2", 3)])), ["duplicate"], "one enqueue made two jobs")
  t.same(
    kinds(new H().enqueue("p1", ["p1-1"], "info").final([done("1", "p1-1", 1), done("2", "p1-1", 2)])),
    ["duplicate"],
    "a retried unknown enqueue must not make two jobs either"
  )
  t.same(kinds(base().enqueue("p2", ["p2-1"], "fail").final([done("1", "p1-1", 1), done("2", "p1-2", 2), done("3", "p2-1", 3)])), ["phantom"], "a failed enqueue's job exists")
  t.same(
    kinds(new H().enqueue("p1", ["p1-1", "p1-2"], "ok", ["1"]).final([done("1", "p1-1", 1)])),
    ["lost", "lost"],
    "a batch acknowledged with fewer ids than jobs (the batch, and its job without an id)"
  )
})

t.test("2. acks: twice, for a job not completed, or not the ack that took effect", async (t) => {
  const one = () => new H().enqueue("p1", ["p1-1"], "ok", ["1"])
  const twice = one().worker("w1", "acked", "1", 1).worker("w2", "acked", "1", 2)
  t.same(kinds(twice.final([done("1", "p1-1", 2, 2)])), ["double-ack"])
  t.match(checkJobsHistory(twice.entries).violations[0]!.explanation, /job 1 was acknowledged complete 2 times:\n {2}w1 acked job 1 token 1 .*\n {2}w2 acked job 1 token 2/)
  t.equal(checkJobsHistory(one().worker("w1", "acked", "1", 1).worker("w2", "acked", "1", 2).entries).valid, false, "a double ack needs no final state")
  t.same(
    kinds(one().worker("w1", "acked", "1", 1).final([{ id: "1", state: "ready", p: "p1-1", attempts: 1 }])),
    ["ack-not-completed", "not-completed"],
    "acked, then ready again"
  )
  t.same(kinds(new H().enqueue("p1", ["p1-1"], "info").worker("w1", "acked", "1", 1).final([])), ["ack-not-completed"], "acked, then gone")
  t.same(kinds(one().worker("w1", "acked", "1", 1).final([done("1", "p1-1", 3)])), ["ack-mismatch"], "the ok ack is not the one whose result is stored")
  t.same(kinds(one().final([{ ...done("1", "p1-1", 1), result: { p: "p1-7", token: 1, attempt: 1 } }])), ["ack-mismatch"], "completed with another job's result")
})

t.test("3. acks from stale leases", async (t) => {
  const one = () => new H().enqueue("p1", ["p1-1"], "ok", ["1"])
  // Leased with token 1 (attempt 1), expired, leased with token 2 (attempt 2); w1's late ack with token 1 accepted.
  const byAttempts = one().worker("w1", "acked", "1", 1).final([done("1", "p1-1", 1, 1, 2)])
  t.same(kinds(byAttempts), ["stale-ack"], "the accepted ack's attempt is not the job's last")
  t.match(checkJobsHistory(byAttempts.entries).violations[0]!.explanation, /the accepted ack came from the lease of attempt 1 \(token 1\), but the job records 2 attempts/)
  // The same, with a release between the leases (the attempt count went back): the worker holding the newer lease says so.
  const byToken = one().worker("w1", "acked", "1", 1).worker("w2", "lost", "1", 2).final([done("1", "p1-1", 1, 1, 1)])
  t.same(kinds(byToken), ["stale-ack"], "a later lease of the job was reported")
  t.match(checkJobsHistory(byToken.entries).violations[0]!.explanation, /a later lease of the job existed:\n {2}w2 lost job 1 token 2/)
  t.same(kinds(one().worker("w2", "released", "1", 2).final([done("1", "p1-1", 1, 1, 1)])), ["stale-ack"], "any outcome line with a newer token counts")
  t.same(kinds(one().worker("w2", "lost", "1", 1).final([done("1", "p1-1", 2, 2, 2)])), [], "an older lease losing is how fencing should look")
  t.same(
    kinds(one().event("1", "completed", 2, 20).final([done("1", "p1-1", 1, 1, 1)])),
    ["stale-ack"],
    "the completion event counts more attempts than the accepted ack's lease"
  )
  const unchecked = checkJobsHistory(one().final([{ id: "1", state: "completed", p: "p1-1", attempts: 1, result: 42 }]).entries)
  t.equal(unchecked.valid, true, "a result without the lease identity cannot be checked, and is not a violation")
  t.equal(unchecked.counts.leaseChecked, 0)
})

t.test("the event stream: completed twice, leased after completion", async (t) => {
  const one = () => new H().enqueue("p1", ["p1-1"], "ok", ["1"])
  t.same(kinds(one().event("1", "completed", 1, 10).event("1", "completed", 1, 10).final([done("1", "p1-1", 1)])), [], "one event seen by two subscribers")
  t.same(kinds(one().event("1", "completed", 1, 10).event("1", "completed", 2, 14).final([done("1", "p1-1", 1)])), ["completed-twice"])
  t.same(kinds(one().event("1", "completed", 1, 10).event("1", "leased", 2, 12).final([done("1", "p1-1", 1)])), ["leased-after-completed"])
  t.same(kinds(one().event("1", "leased", 1, 9).event("1", "completed", 1, 10).final([done("1", "p1-1", 1)])), [])
})

t.test("4. liveness: stragglers are reported apart from safety", async (t) => {
  const h = new H()
    .enqueue("p1", ["p1-1", "p1-2", "p1-3"], "ok", ["1", "2", "3"])
    .final([done("1", "p1-1", 1), { id: "2", state: "leased", p: "p1-2", attempts: 4 }, { id: "3", state: "dead", p: "p1-3", attempts: 3, error: "lease expired" }])
  const r = checkJobsHistory(h.entries)
  t.equal(r.valid, false)
  t.equal(r.safe, true)
  t.equal(r.live, false)
  t.same(r.stragglers.map((j) => j.id), ["2", "3"])
  t.same(kinds(h), ["not-completed"])
  t.match(r.violations[0]!.explanation, /liveness: 2 of 3 jobs not completed .* \(leased 1, dead 1\); first: 2 leased attempts 4; 3 dead attempts 3 "lease expired"/)
  t.match(new JobsWorkload().check(h.entries).lines.join("\n"), /liveness\s+2 jobs not completed/)
})

t.test("the final state: pages, retries, and an incomplete read", async (t) => {
  const jobs = Array.from({ length: 5 }, (_, i) => done(String(i + 1), `p1-${i + 1}`, i + 1))
  const base = () => new H().enqueue("p1", jobs.map((j) => j.p!), "ok", jobs.map((j) => j.id))
  const paged = base().final(jobs, 2)
  t.equal(pairOps(paged.entries).filter((o) => o.f === "list").length, 3, "three pages")
  t.same(finalState(pairOps(paged.entries))?.map((j) => j.id), ["1", "2", "3", "4", "5"])
  t.equal(checkJobsHistory(paged.entries).valid, true)

  // A page that timed out, then the read started over.
  const retried = base()
  retried.rec.invoke("final", "list", "chaos", null)("ok", jobs.slice(0, 2), { cursor: "2" })
  retried.rec.invoke("final", "list", "chaos", "2")("info", null, { error: "timeout" })
  retried.final(jobs, 2)
  t.same(finalState(pairOps(retried.entries))?.length, 5)

  // The read gave up after the first page.
  const cut = base()
  cut.rec.invoke("final", "list", "chaos", null)("ok", jobs.slice(0, 2), { cursor: "2" })
  const r = checkJobsHistory(cut.entries)
  t.equal(r.finalComplete, false)
  t.equal(r.valid, "unknown", "no final state: cannot decide")
  t.equal(r.live, undefined)
  t.match(new JobsWorkload().check(cut.entries).lines.join("\n"), /the final state could not be read completely/)
  cut.worker("w1", "acked", "1", 1).worker("w2", "acked", "1", 2)
  t.equal(checkJobsHistory(cut.entries).valid, false, "a double ack is a violation with or without it")
  t.equal(checkJobsHistory(new H().entries).valid, "unknown", "an empty history has no final state either")
})

t.test("--workload jobs and both; a combined history is checked part by part", async (t) => {
  const jobs = parseChaosArgs(["--workload", "jobs", "--producers", "2", "--workers", "4", "--lease-ms", "1500", "--no-worker-kill"])
  t.ok("options" in jobs)
  if ("options" in jobs) t.match(jobs.options, { workload: "jobs", producers: 2, workers: 4, leaseMs: 1500, workerKill: false })
  const both = parseChaosArgs(["--workload", "both"])
  t.match("options" in both && both.options, { workload: "both", workerKill: true })
  const register = parseChaosArgs([])
  t.match("options" in register && register.options, { workload: "register" })
  const bad = parseChaosArgs(["--workload", "queues"])
  t.match("errors" in bad && bad.errors.join("\n"), /--workload: one of register, jobs, both/)

  t.equal(makeWorkload("jobs").name, "jobs")
  t.equal(makeWorkload("register").name, "register")
  const combined = makeWorkload("both")
  t.equal(combined.name, "register+jobs")
  const h = clean()
  h.rec.invoke("c1", "write", "r0-0", "c1-1")("ok", "c1-1")
  h.rec.invoke("c2", "read", "r0-0", null)("ok", "c1-1")
  const good = combined.check(h.entries)
  t.equal(good.valid, true, good.violations.join("\n"))
  t.match(good.lines.join("\n"), /\[register\] valid[\s\S]*\[jobs\] valid/)
  h.rec.invoke("c3", "read", "r0-0", null)("ok", "c9-9")
  h.worker("w1", "acked", "1", 7)
  const badBoth = combined.check(h.entries)
  t.equal(badBoth.valid, false)
  t.match(badBoth.violations.join("\n"), /\[register\][\s\S]*\[jobs\] job 1 was acknowledged complete 2 times/)
})
