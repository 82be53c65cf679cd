/** The TCP fault proxy: forwards, cuts (resets and refuses), delays in order, heals. */
import t, { type Test } from "tap"
import * as net from "node:net"
import { FaultProxy } from "../../../ops/chaos/proxy.ts"
import { until } from "../../support/wait.ts"

/** An echo server on a free port, closed when the test ends. */
const echoServer = async (t: Test): Promise<number> => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
    s.on("error", () => undefined)
    s.pipe(s)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return (server.address() as net.AddressInfo).port
}

const proxyTo = async (t: Test, port: number): Promise<FaultProxy> => {
  const proxy = await FaultProxy.start({ targetPort: port, name: "test" })
  t.teardown(() => proxy.stop())
  return proxy
}

/** A client that collects what it receives and reports how the connection ended. */
const client = (port: number) => {
  const socket = net.connect({ host: "127.0.0.1", port })
  let received = ""
  const ended = new Promise<string>((resolve) => {
    socket.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"))
    socket.on("close", () => resolve("closed"))
  })
  socket.on("data", (d: Buffer) => (received += d.toString()))
  const connected = new Promise<void>((r) => socket.once("connect", () => r()))
  return { socket, connected, ended, received: () => received }
}

/** Local sockets answer at once; look every 5 ms, as one check times the proxy to within 100 ms. */
const soon = { timeoutMs: 2_000, everyMs: 5 }
/** With delays and jitter on the way there and back. */
const slowly = { timeoutMs: 3_000, everyMs: 5 }

t.test("forwards both ways", async (t) => {
  const proxy = await proxyTo(t, await echoServer(t))
  const c = client(proxy.port)
  await c.connected
  c.socket.write("hello")
  await until("the echo through the proxy", () => c.received() === "hello", soon)
  t.equal(c.received(), "hello", "echo came back through the proxy")
  t.equal(proxy.stats.accepted, 1)
  t.equal(proxy.stats.open, 1)
  c.socket.destroy()
})

t.test("cut resets open connections and refuses new ones until heal", async (t) => {
  const proxy = await proxyTo(t, await echoServer(t))
  const c = client(proxy.port)
  await c.connected
  c.socket.write("a")
  await until("the first echo", () => c.received() === "a", soon)
  proxy.cut()
  t.match(await c.ended, /ECONNRESET|closed/, "the open connection is dropped")
  t.equal(proxy.stats.reset, 1)

  const refused = client(proxy.port)
  refused.socket.write("lost")
  t.match(await refused.ended, /ECONNRESET|closed|EPIPE/, "a new connection is refused")
  t.equal(refused.received(), "", "nothing crosses a cut")
  t.equal(proxy.stats.refused, 1)
  t.equal(proxy.state.mode, "cut")

  proxy.heal()
  const again = client(proxy.port)
  await again.connected
  again.socket.write("back")
  await until("the echo after heal", () => again.received() === "back", soon)
  t.equal(again.received(), "back", "after heal it forwards again")
  again.socket.destroy()
})

t.test("delay holds every chunk, keeps the order, and heal removes it", async (t) => {
  const proxy = await proxyTo(t, await echoServer(t))
  const c = client(proxy.port)
  await c.connected
  proxy.delay(150)
  const sent = performance.now()
  for (let i = 0; i < 20; i++) c.socket.write(`${i},`)
  const expected = Array.from({ length: 20 }, (_, i) => `${i},`).join("")
  await until("all twenty chunks", () => c.received().length >= expected.length, slowly)
  t.equal(c.received(), expected, "everything arrives, in order")
  const took = performance.now() - sent
  t.ok(took >= 280, `the round trip crossed the proxy twice with 150 ms each (${took.toFixed(0)} ms)`)

  proxy.delay(100, 100)
  c.socket.write("x")
  c.socket.write("y")
  await until("x and y", () => c.received().length >= expected.length + 2, slowly)
  t.equal(c.received(), `${expected}xy`, "jitter never reorders")

  proxy.heal()
  const before = c.received().length
  const start = performance.now()
  c.socket.write("z")
  await until("z", () => c.received().length === before + 1, soon)
  t.ok(performance.now() - start < 100, "no delay after heal")
  c.socket.destroy()
})

t.test("closing either side closes the other", async (t) => {
  const proxy = await proxyTo(t, await echoServer(t))
  const c = client(proxy.port)
  await c.connected
  await until("the pair to open", () => proxy.stats.open === 1, soon)
  c.socket.end()
  await until("the pair to close", () => proxy.stats.open === 0, soon)
  t.equal(proxy.stats.open, 0, "the pair is gone")
})
