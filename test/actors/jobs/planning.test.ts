/**
 * The JobWorker's pure decisions: which parked lease requests to propose a lease for, and how
 * many jobs each may claim (`planLeases`), and when a job timer is worth a tick (`tickDue`).
 */
import t from "tap"
import { Schema } from "effect"
import { planLeases, readyOnApply, tickDue, type ParkedLease } from "../../../actors/jobs/jobWorker.ts"
import type { Responder } from "../../../actors/gateway/responder.ts"
import { LeaseRequest } from "../../../protocol/client.ts"

/** Planning decides and never answers: a responder that fails the test if it is used. */
const untouchable: Responder = {
  data: new Uint8Array(),
  forwardedBy: undefined,
  done: false,
  ok: () => {
    throw new Error("planning answered a request")
  },
  fail: () => {
    throw new Error("planning failed a request")
  },
  forward: () => {
    throw new Error("planning forwarded a request")
  }
}

/** A parked request from `workerId` for `queues`, decoded as the Gateway would. */
const parked = (
  workerId: string,
  queues: ReadonlyArray<string>,
  options: { readonly max?: number; readonly claimed?: Record<string, number> } = {}
): ParkedLease => ({
  req: Schema.decodeUnknownSync(LeaseRequest)({ workerId, queues, ...(options.max === undefined ? {} : { max: options.max }) }),
  r: untouchable,
  deadline: 1_000,
  claimed: options.claimed === undefined ? null : new Map(Object.entries(options.claimed))
})

/** Ready jobs per queue minus those claimed by leases in flight, as the shell computes it. */
const budgetOf = (free: Record<string, number>): Map<string, number> => new Map(Object.entries(free))

/** Each plan as [workerId, [queue, claimed] in claim order], for exact comparison. */
const shown = (plans: ReturnType<typeof planLeases>) => plans.map(({ p, claim }) => [p.req.workerId, [...claim]])

t.test("planLeases: the oldest parked request is served first", async (t) => {
  const old = parked("old", ["q"])
  const young = parked("young", ["q"])
  t.same(shown(planLeases([old, young], budgetOf({ q: 1 }))), [["old", [["q", 1]]]], "one free job goes to the request parked first")
  t.same(shown(planLeases([young, old], budgetOf({ q: 1 }))), [["young", [["q", 1]]]], "the order is the parking order, not the name")
  t.same(shown(planLeases([old, young], budgetOf({ q: 2 }))), [["old", [["q", 1]]], ["young", [["q", 1]]]], "enough for both: both, oldest first")
})

t.test("planLeases: a request takes from its queues in its own order", async (t) => {
  t.same(
    shown(planLeases([parked("w", ["b", "a"], { max: 3 })], budgetOf({ a: 5, b: 2 }))),
    [["w", [["b", 2], ["a", 1]]]],
    "all of its first queue, the rest from the next"
  )
  t.same(
    shown(planLeases([parked("w", ["a", "b"], { max: 3 })], budgetOf({ a: 5, b: 2 }))),
    [["w", [["a", 3]]]],
    "its first queue alone when that is enough"
  )
  t.same(
    shown(planLeases([parked("w", ["empty", "unknown", "a"], { max: 2 })], budgetOf({ empty: 0, a: 5 }))),
    [["w", [["a", 2]]]],
    "queues with nothing free (or not in the budget) are passed over, not claimed at 0"
  )
})

t.test("planLeases: never more than ready minus in flight", async (t) => {
  const budget = budgetOf({ q: 3 })
  t.same(shown(planLeases([parked("w", ["q"], { max: 10 })], budget)), [["w", [["q", 3]]]], "max 10 with 3 free claims 3")
  t.equal(budget.get("q"), 0, "and the budget is spent")

  t.same(planLeases([parked("w", ["q"], { max: 10 })], budgetOf({ q: 0 })), [], "nothing free: no lease proposed")
  const overdrawn = budgetOf({ q: -2 })
  t.same(planLeases([parked("w", ["q"], { max: 10 })], overdrawn), [], "more in flight than ready (jobs taken meanwhile): none")
  t.equal(overdrawn.get("q"), -2, "an overdrawn budget is left as it is")

  const many = [1, 2, 3, 4, 5].map((i) => parked(`w${i}`, ["q"], { max: 2 }))
  const plans = planLeases(many, budgetOf({ q: 7 }))
  const claimed = plans.reduce((sum, { claim }) => sum + (claim.get("q") ?? 0), 0)
  t.equal(claimed, 7, "five requests for two each share seven free jobs without going over")
  t.same(shown(plans).map(([w]) => w), ["w1", "w2", "w3", "w4"], "the fifth gets nothing and no plan")
})

t.test("planLeases: a request whose lease is in flight is skipped", async (t) => {
  const busy = parked("busy", ["q"], { max: 5, claimed: { q: 1 } })
  const idle = parked("idle", ["q"], { max: 1 })
  const budget = budgetOf({ q: 2 })
  t.same(shown(planLeases([busy, idle], budget)), [["idle", [["q", 1]]]], "only the request with nothing in flight")
  t.equal(budget.get("q"), 1, "the busy request took nothing from the budget")
  t.same([...busy.claimed!], [["q", 1]], "its claim in flight is untouched")
})

t.test("planLeases: one budget shared across requests and queues", async (t) => {
  const budget = budgetOf({ a: 3, b: 5 })
  t.same(
    shown(planLeases([parked("first", ["a"], { max: 2 }), parked("second", ["a", "b"], { max: 2 }), parked("third", ["a"], { max: 1 })], budget)),
    [
      ["first", [["a", 2]]],
      ["second", [["a", 1], ["b", 1]]]
    ],
    "what the first takes from a is gone for the second, which tops up from b; the third finds a empty"
  )
  t.same(Object.fromEntries(budget), { a: 0, b: 4 }, "the budget shows what is left")
})

t.test("planLeases: max defaults to 1", async (t) => {
  t.same(shown(planLeases([parked("w", ["q"])], budgetOf({ q: 5 }))), [["w", [["q", 1]]]])
})

t.test("tickDue: a tick when a timer is due, after the slack, with none in flight", async (t) => {
  t.equal(tickDue(undefined, 1_000, 0, false), false, "no timer: no tick")
  t.equal(tickDue(1_001, 1_000, 0, false), false, "a timer in the future: not yet")
  t.equal(tickDue(1_000, 1_000, 0, false), true, "due now with no slack")
  t.equal(tickDue(500, 1_000, 0, false), true, "overdue")

  // Entries carry the time of the last Raft tick, so a tick proposed right at the due time
  // could still be stamped before it: wait the slack too.
  t.equal(tickDue(1_000, 1_004, 5, false), false, "due, but within the slack")
  t.equal(tickDue(1_000, 1_005, 5, false), true, "due plus the slack has passed")

  t.equal(tickDue(1_000, 1_005, 5, true), false, "a tick already in flight: not another")
  t.equal(tickDue(0, 1_000_000, 0, true), false, "not even when long overdue")
  t.equal(tickDue(undefined, 1_000, 0, true), false)
})

t.test("readyOnApply: jobs ready the moment their enqueue applies, per queue", async (t) => {
  t.same(
    readyOnApply([
      { queue: "a", payload: 1 },
      { queue: "a", payload: 2, delay: 0 },
      { queue: "b", payload: 3 },
      { queue: "a", payload: 4, delay: 10 },
      { queue: "c", payload: 5, runAt: 1 }
    ]),
    new Map([
      ["a", 2],
      ["b", 1]
    ]),
    "no delay and no run time: ready on apply"
  )
  t.same(readyOnApply([]), new Map())
})
