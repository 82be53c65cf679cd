/**
 * Admission on its own, over the in-process responders the HTTP shim uses: places are taken and
 * given back exactly once per request, `busy` names the kind and the node, the byte bound holds
 * among writes and forwards, and a forwarded request moves from its kind to the forwards until
 * the leader's answer arrives.
 */
import t from "tap"
import * as Admission from "../../actors/gateway/admission.ts"
import { inProcess, type Responder } from "../../actors/gateway/responder.ts"
import { archioError, type ArchioError } from "../../protocol/errors.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { until } from "../support/wait.ts"

interface Answered {
  ok: unknown[]
  failed: ArchioError[]
}

const request = (bytes = 10): { r: Responder; answered: Answered } => {
  const answered: Answered = { ok: [], failed: [] }
  const r = inProcess(new Uint8Array(bytes), { ok: (b) => answered.ok.push(b), fail: (e) => answered.failed.push(e) })
  return { r, answered }
}

const bounds: Admission.Bounds = { writes: 2, reads: 1, leases: 1, forwards: 1, bytes: 100 }

t.test("a kind's bound: busy past it, the place back once the request is answered", async (t) => {
  const admission = Admission.make("n1", bounds)
  const a = request()
  const b = request()
  const c = request()
  const heldA = admission.admit("writes", a.r)!
  const heldB = admission.admit("writes", b.r)!
  t.ok(heldA && heldB, "two writes admitted")
  t.equal(admission.admit("writes", c.r), undefined, "the third is not")
  t.equal(c.answered.failed.length, 1)
  t.match(c.answered.failed[0], { code: "busy", detail: { node: "n1", waiting: "writes" }, message: /node n1 holds as many writes as it may \(2\); back off and retry/ })
  t.same(admission.held(), { writes: 2, reads: 0, leases: 0, forwards: 0 })
  t.same(admission.refused(), { writes: 1, reads: 0, leases: 0, forwards: 0 })
  t.ok(admission.admit("reads", request().r), "other kinds have their own places")

  heldA.ok({ ok: true })
  heldA.ok({ ok: true })
  heldA.fail(archioError("timeout", "late"))
  t.same(a.answered, { ok: [{ ok: true }], failed: [] }, "answered once")
  t.equal(admission.held().writes, 1, "its place given back once, however often it is answered")
  t.ok(admission.admit("writes", request().r), "so another write gets in")
  heldB.fail(archioError("conflict", "no"))
  t.equal(admission.held().writes, 1)
})

t.test("the byte bound among writes and forwards, and one request larger than it when nothing is held", async (t) => {
  const admission = Admission.make("n1", { ...bounds, writes: 10 })
  const big = admission.admit("writes", request(80).r)!
  t.ok(big)
  const over = request(30)
  t.equal(admission.admit("writes", over.r), undefined, "80 + 30 bytes is past 100")
  t.match(over.answered.failed[0], { code: "busy" })
  t.ok(admission.admit("writes", request(20).r), "80 + 20 fits")
  t.ok(admission.admit("reads", request(500).r), "reads carry no payload worth counting")
  const lone = Admission.make("n2", bounds)
  t.ok(lone.admit("writes", request(500).r), "a request larger than the byte bound gets in when nothing else is held")
  big.ok({})
})

t.test("a forwarded request moves to the forwards until the leader answers", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  // The "leader": answers what it is told to, when it is told to.
  const waiting: Array<(answer: string | null) => void> = []
  nc.subscribe("archio.c.node.n2.>", {
    callback: (_err, msg) => {
      waiting.push((answer) => void (answer !== null && msg.respond(new TextEncoder().encode(answer))))
    }
  })
  await nc.flush()
  const admission = Admission.make("n1", bounds)
  const first = request()
  const held = admission.admit("writes", first.r)!
  let settled = 0
  held.forward(nc, "archio.c.node.n2.kv.put", "n1", 2_000, undefined, () => settled++)
  t.same(admission.held(), { writes: 0, reads: 0, leases: 0, forwards: 1 }, "its write place is given back, a forward place taken")

  const second = request()
  admission.admit("writes", second.r)!.forward(nc, "archio.c.node.n2.kv.put", "n1", 2_000)
  t.match(second.answered.failed[0], { code: "busy", detail: { waiting: "forwards" } }, "no forward place left: busy, not forwarded")
  t.same(admission.held(), { writes: 0, reads: 0, leases: 0, forwards: 1 })

  await until("the leader got the forward", () => waiting.length === 1)
  waiting[0]!('{"ok":true,"revision":3}')
  await until("the answer was relayed", () => first.answered.ok.length === 1)
  t.same(first.answered.ok, [{ ok: true, revision: 3 }], "the leader's answer reached the client")
  t.equal(settled, 1, "settled once")
  t.same(admission.held(), { writes: 0, reads: 0, leases: 0, forwards: 0 }, "and the forward place is back")
  t.equal(waiting.length, 1, "the refused one never reached the leader")

  const third = request()
  admission.admit("leases", third.r)!.forward(nc, "archio.c.node.n2.jobs.lease", "n1", 300)
  await until("the lease forward timed out", () => third.answered.failed.length === 1, { timeoutMs: 5_000 })
  t.match(third.answered.failed[0], { code: "timeout" })
  t.same(admission.held(), { writes: 0, reads: 0, leases: 0, forwards: 0 }, "a forward that failed gives its place back too")
})
