import t from "tap"
import { isNoResponders, isTimeout, type BusMessage } from "../../../protocol/bus.ts"
import { Network } from "../../../ops/sim/network.ts"
import { World } from "../../../ops/sim/world.ts"

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (m: BusMessage): string => new TextDecoder().decode(m.data)

/** The outcome of a request, caught as it happens (the world runs before the test looks). */
const outcome = (p: Promise<BusMessage>): Promise<{ readonly reply?: BusMessage; readonly error?: unknown }> =>
  p.then(
    (reply) => ({ reply }),
    (error: unknown) => ({ error })
  )

const setup = () => {
  const world = new World(7)
  const net = new Network(world)
  return { world, net }
}

t.test("subjects, wildcards and queue groups deliver as NATS does", async (t) => {
  const { world, net } = setup()
  const a = net.connect("a")
  const b = net.connect("b")
  const got: string[] = []
  a.subscribe("x.y", { callback: (_e, m) => got.push(`a x.y ${text(m)}`) })
  a.subscribe("x.*", { callback: (_e, m) => got.push(`a x.* ${m.subject}`) })
  b.subscribe("x.>", { callback: (_e, m) => got.push(`b x.> ${m.subject}`) })
  b.subscribe("*.y.*", { callback: (_e, m) => got.push(`b *.y.* ${m.subject}`) })
  const queue: string[] = []
  for (const host of ["q1", "q2", "q3"]) net.connect(host).subscribe("work", { queue: "g", callback: () => queue.push(host) })
  const p = net.connect("p")
  p.publish("x.y", bytes("1"))
  p.publish("x.y.z", bytes("2"))
  p.publish("a.y.b", bytes("3"))
  for (let i = 0; i < 30; i++) p.publish("work", bytes(String(i)))
  await world.run(10)
  t.same(got.sort(), ["a x.* x.y", "a x.y 1", "b *.y.* a.y.b", "b *.y.* x.y.z", "b x.> x.y", "b x.> x.y.z"].sort())
  t.equal(queue.length, 30, "each message of a queue group reaches exactly one member")
  t.equal(new Set(queue).size, 3, "spread over the members")
})

t.test("request and reply, no-responders, timeouts, and a partition", async (t) => {
  const { world, net } = setup()
  const server = net.connect("s")
  server.subscribe("echo", { callback: (_e, m) => server.publish(m.reply!, bytes(`re ${text(m)}`)) })
  const client = net.connect("c")
  const replied = outcome(client.request("echo", bytes("hi"), { timeout: 100 }))
  const nobody = outcome(client.request("nobody", bytes("hi"), { timeout: 100 }))
  await world.run(20)
  const r = await replied
  t.equal(r.reply === undefined ? undefined : text(r.reply), "re hi")
  t.ok(isNoResponders((await nobody).error), "no subscriber: no-responders, at once")
  net.partition(new Map([["s", 1]]))
  const cut = outcome(client.request("echo", bytes("hi"), { timeout: 100 }))
  await world.run(40)
  t.ok(isNoResponders((await cut).error), "a responder on the far side of a partition is not seen")
  net.heal()
  server.subscribe("silent", { callback: () => {} })
  const slow = outcome(client.request("silent", bytes("hi"), { timeout: 100 }))
  await world.run(200)
  t.ok(isTimeout((await slow).error), "no answer in time: a timeout")
})

t.test("loss, duplication, and a killed connection", async (t) => {
  const { world, net } = setup()
  const r = net.connect("r")
  let n = 0
  r.subscribe("s", { callback: () => n++ })
  const p = net.connect("p")
  net.dropRate = 1
  p.publish("s", bytes("lost"))
  await world.run(10)
  t.equal(n, 0, "dropped")
  net.dropRate = 0
  net.dupRate = 1
  p.publish("s", bytes("twice"))
  await world.run(20)
  t.equal(n, 2, "duplicated")
  net.dupRate = 0
  net.maxDelayMs = 50
  p.publish("s", bytes("in flight"))
  r.kill()
  await world.run(100)
  t.equal(n, 2, "a message in flight to a dead process is lost")
  t.throws(() => r.publish("s", bytes("x")), "a dead connection cannot publish")
  t.ok(r.isClosed())
})
