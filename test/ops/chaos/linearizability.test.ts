/**
 * The linearizability checker on small hand-made histories, each one either linearizable or
 * not for a reason we can name, plus random histories compared against a brute-force search.
 */
import t from "tap"
import { parseHistory, type HistoryEntry } from "../../../ops/chaos/history.ts"
import { checkOperations, checkRegisterHistory, type Model } from "../../../ops/chaos/linearizability.ts"

type Type = "ok" | "fail" | "info"

/** A history builder: times are plain numbers, `end` undefined = never completed. */
class H {
  readonly entries: HistoryEntry[] = []
  private id = 0

  private add(
    client: string,
    f: string,
    key: string,
    value: unknown,
    start: number,
    end: number | undefined,
    type: Type,
    result: unknown,
    extra: Record<string, unknown> = {}
  ): this {
    const id = this.id++
    this.entries.push({ type: "invoke", id, client, f, key, value: f === "read" ? null : value, time: start })
    if (end !== undefined) this.entries.push({ ...extra, type, id, client, f, key, value: f === "read" ? result : value, time: end })
    return this
  }

  /** `revision`: the key's mod revision the completion records (written, or read). */
  w(client: string, key: string, value: string, start: number, end: number | undefined, type: Type = "ok", revision?: number): this {
    return this.add(client, "write", key, value, start, end, type, undefined, revision === undefined ? {} : { revision })
  }

  r(client: string, key: string, result: string | null, start: number, end: number | undefined, type: Type = "ok", revision?: number): this {
    return this.add(client, "read", key, null, start, end, type, result, revision === undefined ? {} : { revision })
  }

  /** A `fail` cas is refused with `conflict`, as the chaos workload records it. */
  cas(client: string, key: string, from: string | null, to: string, start: number, end: number | undefined, type: Type = "ok", revision?: number): this {
    const extra = { ...(type === "fail" ? { error: "conflict" } : {}), ...(revision === undefined ? {} : { revision }) }
    return this.add(client, "cas", key, [from, to], start, end, type, undefined, extra)
  }

  /** A cas refused with `conflict`; `revision`: the key's mod revision the refusal reported. */
  refused(client: string, key: string, from: string | null, to: string, start: number, end: number, revision?: number): this {
    return this.cas(client, key, from, to, start, end, "fail", revision)
  }

  /** A cas refused for another reason (not an observation of the key). */
  rejected(client: string, key: string, from: string | null, to: string, start: number, end: number, error: string): this {
    return this.add(client, "cas", key, [from, to], start, end, "fail", undefined, { error })
  }
}

const valid = (h: H) => checkRegisterHistory(h.entries).valid

t.test("trivial histories", async (t) => {
  t.equal(valid(new H()), true, "an empty history is linearizable")
  t.equal(valid(new H().r("c1", "x", null, 0, 1)), true, "reading an absent key at the start")
  t.equal(valid(new H().w("c1", "x", "a", 0, 10).r("c2", "x", "a", 20, 30)), true, "a read after a write sees it")
  t.equal(valid(new H().r("c1", "x", "a", 0, 1)), false, "a read of a value nobody wrote")
})

t.test("stale read: after a write returned, a later read must not see the older value", async (t) => {
  const h = new H().w("c1", "x", "a", 0, 10).w("c1", "x", "b", 20, 30).r("c2", "x", "a", 40, 50)
  const report = checkRegisterHistory(h.entries)
  t.equal(report.valid, false)
  t.equal(report.violations.length, 1)
  const v = report.violations[0]!
  t.equal(v.key, "x")
  t.equal(v.deepest.blocked, 2, "the stale read is the operation that cannot be placed")
  t.match(v.explanation, /No order of the operations explains #2 c2 read → "a"/)
  t.match(v.explanation, /State after it: "b"/)
  // The same read, overlapping the second write, may see either value.
  t.equal(valid(new H().w("c1", "x", "a", 0, 10).w("c1", "x", "b", 20, 30).r("c2", "x", "a", 25, 50)), true, "concurrent with the write: old value ok")
  t.equal(valid(new H().w("c1", "x", "a", 0, 10).w("c1", "x", "b", 20, 30).r("c2", "x", "b", 25, 50)), true, "concurrent with the write: new value ok")
})

t.test("new-then-old inversion between two reads during one write", async (t) => {
  const base = () => new H().w("c1", "x", "a", 0, 10).w("c1", "x", "b", 20, 100)
  t.equal(valid(base().r("c2", "x", "b", 30, 40).r("c3", "x", "a", 50, 60)), false, "b then a, both inside the write: not linearizable")
  t.equal(valid(base().r("c2", "x", "a", 30, 40).r("c3", "x", "b", 50, 60)), true, "a then b is fine")
  t.equal(valid(base().r("c2", "x", "b", 30, 55).r("c3", "x", "a", 50, 60)), true, "overlapping reads may be ordered either way")
})

t.test("lost write: an acknowledged write that a later read does not see", async (t) => {
  t.equal(valid(new H().w("c1", "x", "a", 0, 10).r("c2", "x", null, 20, 30)), false, "absent after an acknowledged write")
  t.equal(valid(new H().w("c1", "x", "a", 0, 10).w("c2", "x", "b", 12, 18).r("c3", "x", "a", 20, 30)), false, "the later write vanished")
  t.equal(valid(new H().w("c1", "x", "a", 0, 10).w("c2", "x", "b", 5, 18).r("c3", "x", "a", 20, 30)), true, "concurrent writes: either may win")
})

t.test("failed operations did not happen", async (t) => {
  t.equal(valid(new H().w("c1", "x", "a", 0, 10, "fail").r("c2", "x", null, 20, 30)), true, "a failed write leaves the key absent")
  const h = new H().w("c1", "x", "a", 0, 10, "fail").r("c2", "x", "a", 20, 30)
  const report = checkRegisterHistory(h.entries)
  t.equal(report.valid, false, "reading the value of a failed write is a violation")
  t.match(report.violations[0]!.explanation, /write reported as failed/)
  t.equal(valid(new H().r("c1", "x", null, 0, 10, "fail").r("c2", "x", null, 20, 30, "info")), true, "failed and unknown reads say nothing")
})

t.test("compare-and-set races", async (t) => {
  const start = () => new H().w("c0", "x", "a", 0, 10)
  t.equal(valid(start().cas("c1", "x", "a", "b", 20, 30).cas("c2", "x", "a", "c", 22, 32)), false, "two concurrent cas from the same value cannot both succeed")
  t.equal(valid(start().cas("c1", "x", "a", "b", 20, 30).cas("c2", "x", "a", "c", 22, 32, "fail")), true, "one wins, the other fails")
  t.equal(valid(start().cas("c1", "x", "a", "b", 20, 30).cas("c2", "x", "b", "c", 22, 32).r("c3", "x", "c", 40, 50)), true, "chained cas a→b→c while concurrent")
  t.equal(valid(start().cas("c1", "x", "a", "b", 20, 30).cas("c2", "x", "b", "c", 5, 19)), false, "a cas cannot expect a value written only after it returned")
  t.equal(valid(start().cas("c1", "x", "z", "b", 20, 30)), false, "a cas from a value the key never had cannot succeed")
  t.equal(
    valid(start().cas("c1", "x", "a", "b", 20, 30).cas("c2", "x", "a", "c", 22, 32, "fail").r("c3", "x", "c", 40, 50)),
    false,
    "the losing cas's value must never be read"
  )
  t.equal(valid(new H().cas("c1", "x", null, "a", 0, 10).r("c2", "x", "a", 20, 30)), true, "cas from absent creates the key")
  t.equal(valid(new H().w("c0", "x", "z", 0, 5).cas("c1", "x", null, "a", 10, 20)), false, "cas from absent on an existing key cannot succeed")
})

t.test("a refused cas is an observation: the value was not the expected one", async (t) => {
  const start = () => new H().w("c0", "x", "a", 0, 10)
  t.equal(valid(start().w("c1", "x", "b", 20, 30).refused("c2", "x", "a", "c", 40, 50)), true, "refused after the expected value was overwritten")
  t.equal(valid(start().w("c1", "x", "b", 20, 60).refused("c2", "x", "a", "c", 30, 40)), true, "refused while an overwrite ran: it may come after it")
  t.equal(valid(new H().refused("c1", "x", "a", "b", 0, 10)), true, "refused expecting a value the key never had")
  t.equal(valid(start().refused("c1", "x", null, "b", 20, 30)), true, "refused to create a key that exists")
  t.equal(valid(start().rejected("c1", "x", "a", "b", 20, 30, "bad_request")), true, "a cas refused as a bad request says nothing about the key")

  const report = checkRegisterHistory(start().refused("c1", "x", "a", "b", 20, 30).entries)
  t.equal(report.valid, false, "refused although the key certainly held the expected value")
  const v = report.violations[0]!
  t.equal(v.deepest.blocked, 1, "the refusal is the operation that cannot be placed")
  t.match(v.explanation, /No order of the operations explains #1 c1 cas "a"→"b" fail \(conflict\)/)
  t.match(v.explanation, /It was refused \(conflict\): at some point while it ran, the value must have differed from "a"\./)
  t.match(v.explanation, /State after it: "a"/)
  t.equal(valid(new H().refused("c1", "x", null, "b", 0, 10)), false, "refused to create a key nobody had created")
  t.equal(
    valid(start().cas("c1", "x", "a", "b", 20, 30).refused("c2", "x", "b", "c", 40, 50).r("c3", "x", "b", 60, 70)),
    false,
    "refused expecting the value the key kept before and after"
  )
})

t.test("a refused cas that reports the key's revision names the value it saw", async (t) => {
  // a at revision 1, b at revision 2 (written while the refusal ran).
  const start = () => new H().w("c0", "x", "a", 0, 10, "ok", 1).w("c1", "x", "b", 20, 60, "ok", 2)
  t.equal(valid(start().refused("c2", "x", "a", "c", 30, 40, 2)), true, "revision 2: it saw b, after the overwrite")
  t.equal(valid(start().refused("c2", "x", "z", "c", 30, 40, 1)), true, "revision 1: it saw a, before the overwrite")
  t.equal(valid(start().refused("c2", "x", "z", "c", 70, 80, 1)), false, "revision 1 after b was acknowledged: a is gone")
  const report = checkRegisterHistory(start().refused("c2", "x", "a", "c", 30, 40, 1).entries)
  t.equal(report.valid, false, "revision 1 is a: refusing a cas that expected a is wrong")
  t.match(report.violations[0]!.explanation, /must have differed from "a" and been "a" \(revision 1 is that of #0 c0 write "a" ok/)
  t.same(report.refusedCas, { searched: 1, pinned: 1, leftOut: 0 })
  t.equal(valid(new H().refused("c1", "x", "z", "b", 0, 10, 0).w("c2", "x", "a", 20, 30, "ok", 1)), true, "revision 0: it saw the key absent")
  t.equal(valid(new H().w("c2", "x", "a", 0, 10, "ok", 1).refused("c1", "x", "z", "b", 20, 30, 0)), false, "revision 0 after a write returned")
  // Revision 7 claimed by no acknowledged write, or by two: it names nothing, only "not a".
  t.equal(valid(new H().w("c0", "x", "a", 0, 10, "ok", 1).w("c1", "x", "b", 20, 30, "info").refused("c2", "x", "a", "c", 40, 50, 7)), true, "an unknown write's revision")
  t.equal(
    valid(new H().w("c0", "x", "a", 0, 10, "ok", 7).w("c1", "x", "b", 20, 30, "ok", 7).refused("c2", "x", "z", "c", 5, 50, 7)),
    true,
    "two writes claiming one revision: ambiguous, so only the weak observation"
  )
  t.equal(
    valid(new H().w("c0", "x", "a", 0, 10, "ok", 7).r("c1", "x", "q", 20, 30, "ok", 7).refused("c2", "x", "z", "c", 40, 50, 7)),
    false,
    "a read claiming another value at that revision: not pinned (the read itself is the violation)"
  )
})

t.test("a timed-out write stays in when a refused cas may depend on it", async (t) => {
  const h = new H().w("c0", "x", "a", 0, 10).w("c1", "x", "b", 20, 30, "info").refused("c2", "x", "a", "c", 40, 50)
  const report = checkRegisterHistory(h.entries)
  t.equal(report.valid, true, "the unknown write alone explains the refusal")
  t.equal(report.prunedUnknown, 0, "so it is not left out")
  t.equal(report.keptUnknown, 1)
  t.equal(
    valid(new H().w("c0", "x", "a", 0, 10).refused("c2", "x", "a", "c", 12, 18).w("c1", "x", "b", 20, 30, "info")),
    false,
    "an unknown write called after the refusal returned cannot explain it"
  )
  t.equal(
    valid(new H().w("c0", "x", "a", 0, 10).w("c1", "x", "b", 20, undefined).refused("c2", "x", "a", "c", 40, 50)),
    true,
    "an unknown write with no completion recorded explains it too"
  )
  // Pruning stays where nothing can observe the unknown write.
  const refusedBefore = new H().w("c0", "x", "a", 0, 10).w("c1", "x", "q", 12, 18).refused("c2", "x", "z", "c", 20, 25).w("c3", "x", "b", 30, 40, "info")
  t.equal(checkRegisterHistory(refusedBefore.entries).prunedUnknown, 1, "a refusal that returned before the unknown write was called")
  const pinnedElsewhere = new H().w("c0", "x", "a", 0, 10, "ok", 1).w("c1", "x", "b", 20, 30, "info").refused("c2", "x", "z", "c", 40, 50, 1)
  const pinnedReport = checkRegisterHistory(pinnedElsewhere.entries)
  t.equal(pinnedReport.valid, true)
  t.equal(pinnedReport.prunedUnknown, 1, "a refusal that saw another value (by its revision)")
  const expectsIt = new H().w("c0", "x", "a", 0, 10).w("c1", "x", "b", 20, 30, "info").refused("c2", "x", "b", "c", 40, 50)
  t.equal(checkRegisterHistory(expectsIt.entries).prunedUnknown, 1, "a refusal that expected the unknown write's own value")
  const gone = new H().w("c0", "x", "a", 0, 10).w("c1", "x", "q", 12, 18).w("c3", "x", "b", 20, 30, "info").refused("c2", "x", "a", "c", 40, 50)
  const goneReport = checkRegisterHistory(gone.entries)
  t.equal(goneReport.prunedUnknown, 1, "a refusal whose expected value was certainly overwritten before it was called")
  t.same(goneReport.refusedCas, { searched: 0, pinned: 0, leftOut: 1 }, "is left out itself, as it fits anywhere")
  t.equal(
    valid(new H().w("c0", "x", "a", 0, 10).w("c1", "x", "b", 20, 30, "info").w("c2", "x", "q", 40, 50).r("c3", "x", "b", 60, 65).refused("c4", "x", "b", "c", 70, 80).r("c3", "x", "b", 85, 90)),
    false,
    "a timed-out write may set the expected value late: the refusal is not left out as certainly fitting"
  )
  t.equal(
    valid(new H().w("c0", "x", "a", 0, 10).w("c1", "x", "b", 20, 30, "info").refused("c2", "x", "a", "c", 40, 50).r("c3", "x", "a", 60, 70)),
    false,
    "the unknown write cannot both explain the refusal and be unseen by a later read"
  )
})

t.test("unknown outcomes (info) may or may not take effect, but only after their call", async (t) => {
  const base = () => new H().w("c0", "x", "a", 0, 10)
  t.equal(valid(base().w("c1", "x", "b", 20, 30, "info").r("c2", "x", "b", 100, 110)), true, "took effect (seen later)")
  t.equal(valid(base().w("c1", "x", "b", 20, 30, "info").r("c2", "x", "a", 100, 110)), true, "never took effect")
  t.equal(valid(base().w("c1", "x", "b", 20, undefined).r("c2", "x", "b", 1000, 1010)), true, "no completion recorded counts as unknown")
  t.equal(
    valid(base().w("c1", "x", "b", 20, 30, "info").r("c2", "x", "b", 100, 110).r("c3", "x", "a", 120, 130)),
    false,
    "once seen, an unknown write cannot un-happen"
  )
  t.equal(valid(base().w("c1", "x", "b", 50, 60, "info").r("c2", "x", "b", 20, 30)), false, "it cannot take effect before it was invoked")
  t.equal(valid(base().cas("c1", "x", "z", "b", 20, 30, "info").r("c2", "x", "b", 100, 110)), false, "an unknown cas from the wrong value cannot explain a read")
  t.equal(valid(base().cas("c1", "x", "a", "b", 20, 30, "info").r("c2", "x", "b", 100, 110)), true, "an unknown cas from the right value can")
  t.equal(
    valid(base().cas("c1", "x", "a", "b", 20, 30, "info").cas("c2", "x", "b", "c", 40, 50, "info").r("c3", "x", "c", 100, 110)),
    true,
    "a chain of unknown operations explains a read"
  )
  t.equal(
    valid(base().cas("c1", "x", "a", "b", 20, 30, "info").w("c2", "x", "q", 40, 50).cas("c3", "x", "b", "c", 60, 70, "info").r("c4", "x", "c", 100, 110)),
    false,
    "the chain is broken by an acknowledged write in between"
  )
  t.equal(
    valid(base().w("c1", "x", "b", 20, 30, "info").r("c2", "x", "b", 100, 110).w("c3", "x", "c", 120, 130).r("c4", "x", "b", 140, 150)),
    false,
    "an unknown write takes effect at most once"
  )
})

t.test("keys are checked independently; a violation names its key", async (t) => {
  const h = new H()
    .w("c1", "x", "a", 0, 10)
    .w("c2", "y", "p", 0, 10)
    .r("c1", "x", "a", 20, 30)
    .r("c2", "y", null, 20, 30)
  const report = checkRegisterHistory(h.entries)
  t.equal(report.valid, false)
  t.equal(report.keys, 2)
  t.same(
    report.violations.map((v) => v.key),
    ["y"]
  )
  t.equal(valid(new H().w("c1", "x", "a", 0, 10).r("c2", "y", "a", 20, 30)), false, "a value written to x is not readable on y")
})

t.test("counts and parsing of a JSON-lines history", async (t) => {
  const text = [
    '{"type":"meta","version":1,"seed":1}',
    '{"type":"invoke","id":0,"client":"c1","f":"write","key":"k","value":"v1","time":0}',
    '{"type":"nemesis","phase":"start","fault":"kill","time":5}',
    '{"type":"ok","id":0,"client":"c1","f":"write","key":"k","value":"v1","time":10,"revision":3,"node":"n1"}',
    '{"type":"invoke","id":1,"client":"c2","f":"cas","key":"k","value":["v0","v2"],"time":20}',
    '{"type":"fail","id":1,"client":"c2","f":"cas","key":"k","value":["v0","v2"],"time":30,"error":"conflict"}',
    '{"type":"invoke","id":2,"client":"c2","f":"read","key":"k","value":null,"time":40}',
    '{"type":"ok","id":2,"client":"c2","f":"read","key":"k","value":"v1","time":50}',
    '{"type":"invoke","id":3,"client":"c1","f":"write","key":"k","value":"v3","time":60}',
    ""
  ].join("\n")
  const report = checkRegisterHistory(parseHistory(text))
  t.equal(report.valid, true)
  t.same(report.counts, { ops: 4, ok: 2, fail: 1, info: 1, byF: { write: { ok: 1, fail: 0, info: 1 }, cas: { ok: 0, fail: 1, info: 0 }, read: { ok: 1, fail: 0, info: 0 } } })
  t.equal(report.prunedUnknown, 1, "the unobserved unknown write is left out")
  t.throws(() => parseHistory("{nope"), /history line 1: not JSON/)
  t.throws(() => parseHistory('{"type":"invoke","id":"x"}'), /history line 1/)
  t.throws(
    () => checkRegisterHistory(parseHistory('{"type":"ok","id":4,"client":"c","f":"read","key":"k","value":null,"time":1}')),
    /completes but was never invoked/
  )
  t.throws(
    () =>
      checkRegisterHistory([
        { type: "invoke", id: 0, client: "c", f: "incr", key: "k", value: 1, time: 0 },
        { type: "ok", id: 0, client: "c", f: "incr", key: "k", value: 1, time: 1 }
      ]),
    /knows read, write and cas/
  )
})

t.test("many unobserved timeouts stay cheap; the step budget gives 'unknown', not a wrong verdict", async (t) => {
  const h = new H()
  let time = 0
  for (let i = 0; i < 300; i++) {
    h.w("c1", "x", `v${i}`, time, time + 5)
    h.w(`t${i}`, "x", `lost${i}`, time + 1, time + 3, "info")
    h.r("c2", "x", `v${i}`, time + 6, time + 8)
    time += 10
  }
  const report = checkRegisterHistory(h.entries)
  t.equal(report.valid, true)
  t.equal(report.prunedUnknown, 300)
  t.ok(report.results[0]!.steps < 10_000, `few steps (${report.results[0]!.steps})`)

  // Twelve concurrent writes, then a read no order explains: the search must look hard.
  const hard = new H()
  for (let i = 0; i < 12; i++) hard.w(`c${i}`, "x", `v${i}`, 0, 100)
  hard.r("r", "x", "nope", 200, 210)
  t.equal(checkRegisterHistory(hard.entries, { maxSteps: 50 }).valid, "unknown", "gave up within the budget")
  t.equal(checkRegisterHistory(hard.entries).valid, false, "and finds the violation with a real budget")
})

t.test("the search works for other models too (a FIFO queue)", async (t) => {
  type Q = ReadonlyArray<number>
  type QI = { readonly f: "enq"; readonly v: number } | { readonly f: "deq"; readonly v: number | null }
  const queue: Model<Q, QI> = {
    init: [],
    step: (s, i) => (i.f === "enq" ? [...s, i.v] : i.v === (s[0] ?? null) ? s.slice(1) : undefined),
    hash: (s) => s.join(",")
  }
  const ok = checkOperations(queue, [
    { id: 0, call: 0, ret: 10, input: { f: "enq", v: 1 } },
    { id: 1, call: 5, ret: 15, input: { f: "enq", v: 2 } },
    { id: 2, call: 20, ret: 30, input: { f: "deq", v: 2 } },
    { id: 3, call: 40, ret: 50, input: { f: "deq", v: 1 } }
  ])
  t.equal(ok.result, "ok", "concurrent enqueues may be ordered 2, 1")
  if (ok.result === "ok") t.same(ok.linearization, [1, 0, 2, 3])
  const bad = checkOperations(queue, [
    { id: 0, call: 0, ret: 10, input: { f: "enq", v: 1 } },
    { id: 1, call: 20, ret: 30, input: { f: "enq", v: 2 } },
    { id: 2, call: 40, ret: 50, input: { f: "deq", v: 2 } }
  ])
  t.equal(bad.result, "violation", "sequential enqueues dequeue in order")
  t.throws(() => checkOperations(queue, [{ id: 0, call: 10, ret: 5, input: { f: "enq", v: 1 } }]), /returns \(5\) before it is called/)
})

// ---------------------------------------------------------------------------------------------
// Random histories against a brute-force search

/** A tiny seeded generator for the random tests. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) >>> 0
  let z = seed
  z = Math.imul(z ^ (z >>> 15), z | 1)
  z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
  return ((z ^ (z >>> 14)) >>> 0) / 4294967296
}

interface Raw {
  readonly f: "read" | "write" | "cas"
  readonly start: number
  readonly end: number
  readonly type: Type
  /** write: value; cas: [from, to]; read: result. */
  readonly v: string | null | readonly [string | null, string]
  /** Simulated runs: the key's mod revision the completion records, as the server reports it. */
  readonly revision?: number
}

/**
 * Tries every order (and every subset of unknown operations): the definition, slowly. A failed
 * cas is a refusal (the builder records `conflict`): it happened, and saw a value other than
 * its expected one.
 */
const bruteForce = (ops: ReadonlyArray<Raw>): boolean => {
  const refusal = (o: Raw) => o.f === "cas" && o.type === "fail"
  const live = ops.filter((o) => (o.type !== "fail" || refusal(o)) && !(o.f === "read" && o.type !== "ok"))
  const known = (o: Raw) => o.type !== "info"
  const done = new Array<boolean>(live.length).fill(false)
  const go = (state: string | null, placedKnown: number, mustPlace: number): boolean => {
    if (placedKnown === mustPlace) return true
    for (let i = 0; i < live.length; i++) {
      if (done[i]) continue
      const o = live[i]!
      // o may go next unless some unplaced completed operation returned before o was called.
      let blocked = false
      for (let j = 0; j < live.length && !blocked; j++) {
        if (j !== i && !done[j] && known(live[j]!) && live[j]!.end < o.start) blocked = true
      }
      if (blocked) continue
      let next: string | null | undefined
      if (o.f === "read") next = o.v === state ? state : undefined
      else if (o.f === "write") next = o.v as string
      else {
        const [from, to] = o.v as readonly [string | null, string]
        if (refusal(o)) next = from !== state ? state : undefined
        else next = from === state ? to : undefined
      }
      if (next === undefined) continue
      done[i] = true
      const found = go(next, placedKnown + (known(o) ? 1 : 0), mustPlace)
      done[i] = false
      if (found) return true
    }
    return false
  }
  return go(null, 0, live.filter(known).length)
}

const toHistory = (ops: ReadonlyArray<Raw>, withRevisions = true): H => {
  const h = new H()
  ops.forEach((o, i) => {
    const c = `c${i}`
    const end = o.end
    const revision = withRevisions ? o.revision : undefined
    if (o.f === "read") h.r(c, "k", o.v as string | null, o.start, end, o.type, revision)
    else if (o.f === "write") h.w(c, "k", o.v as string, o.start, end, o.type, revision)
    else h.cas(c, "k", (o.v as readonly [string | null, string])[0], (o.v as readonly [string | null, string])[1], o.start, end, o.type, revision)
  })
  return h
}

const randomOps = (rand: () => number, n: number, simulate: boolean): Raw[] => {
  const values = ["a", "b", "c"]
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rand() * xs.length)]!
  const spans = Array.from({ length: n }, () => {
    const start = Math.floor(rand() * 60)
    return { start, end: start + 1 + Math.floor(rand() * 25) }
  })
  const ops: Raw[] = []
  if (!simulate) {
    for (const { start, end } of spans) {
      const f = pick(["read", "write", "cas"] as const)
      const type = pick(["ok", "ok", "ok", "info", "fail"] as const)
      const v: Raw["v"] = f === "read" ? pick([null, ...values]) : f === "write" ? pick(values) : [pick([null, ...values]), pick(values)]
      ops.push({ f, start, end, type, v })
    }
    return ops
  }
  // A register run like the chaos workload's: every written value unique, each operation taking
  // effect at a random point inside its span (an unknown one maybe not at all).
  const spread = spans.map(({ start, end }) => ({ start: start * (n / 20), end: start * (n / 20) + (end - start) }))
  const points = spread.map((s, i) => ({ i, at: s.start + rand() * (s.end - s.start) })).sort((a, b) => a.at - b.at)
  let state: string | null = null
  // Mod revisions as the server numbers them; other keys' writes leave gaps.
  let revision = 0
  let lastRevision = 0
  const written: string[] = []
  const out = new Array<Raw>(n)
  for (const { i } of points) {
    const { start, end } = spread[i]!
    const f = pick(["read", "write", "cas"] as const)
    const lost = rand() < 0.15
    const apply = (v: string): void => {
      state = v
      revision = lastRevision = lastRevision + 1 + Math.floor(rand() * 3)
    }
    if (f === "read") {
      // A read of an absent key records no revision, as the workload's does.
      out[i] = { f, start, end, type: lost ? "info" : "ok", v: state, ...(lost || state === null ? {} : { revision }) }
    } else if (f === "write") {
      const v = `w${i}`
      written.push(v)
      // An unknown write may have happened (applied) or not (skipped).
      if (!lost || rand() < 0.5) apply(v)
      out[i] = { f, start, end, type: lost ? "info" : "ok", v, ...(lost ? {} : { revision }) }
    } else {
      const from = pick([null, state, state, state, ...written.slice(-3)])
      const to = `w${i}`
      written.push(to)
      const matches = from === state
      if (matches && (!lost || rand() < 0.5)) apply(to)
      out[i] = { f, start, end, type: lost ? "info" : matches ? "ok" : "fail", v: [from, to], ...(lost ? {} : { revision }) }
    }
  }
  return out
}

t.test("random small histories: the checker agrees with brute force", async (t) => {
  const rand = mulberry32(20261122)
  let agreeValid = 0
  let agreeInvalid = 0
  const disagreements: string[] = []
  for (let round = 0; round < 600; round++) {
    const ops = randomOps(rand, 3 + Math.floor(rand() * 5), round % 2 === 0)
    const expected = bruteForce(ops)
    const got = checkRegisterHistory(toHistory(ops).entries).valid
    if (got !== expected) disagreements.push(JSON.stringify(ops))
    else if (expected) agreeValid++
    else agreeInvalid++
  }
  t.same(disagreements, [], "no disagreement")
  t.ok(agreeValid > 100, `many linearizable cases (${agreeValid})`)
  t.ok(agreeInvalid > 100, `many non-linearizable cases (${agreeInvalid})`)
})

t.test("simulated register runs are always linearizable", async (t) => {
  const rand = mulberry32(7)
  let bad = 0
  let steps = 0
  let pinned = 0
  let open = 0
  for (let round = 0; round < 200; round++) {
    const ops = randomOps(rand, 30 + Math.floor(rand() * 170), true)
    // Half without revisions: refusals that name no value (older histories).
    const report = checkRegisterHistory(toHistory(ops, round % 2 === 0).entries)
    if (report.valid !== true) bad++
    steps = Math.max(steps, report.results[0]?.steps ?? 0)
    pinned += report.refusedCas.pinned
    open += report.refusedCas.searched - report.refusedCas.pinned
  }
  t.equal(bad, 0)
  t.ok(pinned > 500 && open > 500, `refusals searched both with a named value (${pinned}) and without (${open})`)
  t.ok(steps < 1_000_000, `searches stay small (at most ${steps} steps)`)
})
