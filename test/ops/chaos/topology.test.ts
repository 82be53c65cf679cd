/**
 * The NATS mesh: three real nats-servers routed through fault proxies. A cut link really stops
 * messages between two servers (also in a bridge, where a third server still sees both), heal
 * brings them back, and a restarted server comes back on its ports and rejoins.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node"
import t from "tap"
import { NatsMesh } from "../../../ops/chaos/topology.ts"
import { tempDir } from "../../support/tmp.ts"
import { sleep, until } from "../../support/wait.ts"

t.test("cut, bridge, heal and restart on a real three-server mesh", async (t) => {
  const dir = await tempDir(t)
  const mesh = await NatsMesh.start({ size: 3, logDir: `${dir}/logs` })
  t.teardown(() => mesh.stop())
  t.same(await Promise.all([0, 1, 2].map((i) => mesh.routeCount(i))), [2, 2, 2], "a full mesh of routes")

  const ncs: NatsConnection[] = []
  for (let i = 0; i < 3; i++) ncs.push(await connect({ servers: mesh.url(i), ignoreClusterUpdates: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 }))
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close().catch(() => undefined))))
  const got = new Set<string>()
  for (let i = 0; i < 3; i++) ncs[i]!.subscribe(`to.${i}`, { callback: (_e, m) => void got.add(`${m.string()}->${i}`) })
  await Promise.all(ncs.map((nc) => nc.flush()))

  /** Which server pairs can reach each other now, as "a->b" (0-based). */
  const reach = async (): Promise<string[]> => {
    got.clear()
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) if (a !== b) ncs[a]!.publish(`to.${b}`, `${a}`)
    await Promise.all(ncs.map((nc) => nc.flush().catch(() => undefined)))
    await sleep(300) // room for the messages that should not arrive
    return [...got].sort()
  }
  /**
   * `reach()` once it shows `expected` (routes, interest and cuts take a moment to spread), or
   * its last answer when `timeoutMs` runs out, for the caller's assertion to show.
   */
  const reachSettled = async (expected: ReadonlyArray<string>, timeoutMs = 5_000): Promise<string[]> => {
    let last: string[] = []
    const settled = async () => {
      last = await reach()
      return last.join() === expected.join()
    }
    await until(`reach to be ${expected.join(" ")}`, settled, { timeoutMs }).catch(() => undefined)
    return last
  }
  const everyone = ["0->1", "0->2", "1->0", "1->2", "2->0", "2->1"]
  t.same(await reachSettled(everyone), everyone, "every server reaches every other")

  mesh.cut(0, 2)
  const bridge = ["0->1", "1->0", "1->2", "2->1"]
  t.same(await reachSettled(bridge), bridge, "bridge: s1 and s3 cannot talk, s2 talks to both")
  // Flapping another link makes the servers gossip again; the dead advertised address keeps
  // them from dialling around the proxy.
  mesh.cut(0, 1)
  await sleep(200)
  mesh.heal(0, 1)
  await sleep(2500) // room for the routes to re-form, and for a wrong one around the proxy to appear
  t.same(await reach(), bridge, "still a bridge after routes re-formed")
  t.same(mesh.cutLinks(), ["0-2"])

  mesh.cut(0, 2)
  mesh.heal(0, 2)
  t.same(mesh.cutLinks(), ["0-2"], "cuts are counted: one heal lifts one cut")
  mesh.heal(0, 2)
  t.ok(await mesh.waitForRoutes(10_000), "routes come back after heal")
  t.same(await reachSettled(everyone), everyone, "healed")

  mesh.cut(0, 1)
  mesh.cut(0, 2)
  t.same(await reachSettled(["1->2", "2->1"]), ["1->2", "2->1"], "s1 isolated")
  mesh.healAll()
  t.ok(await mesh.waitForRoutes(10_000))

  const port = mesh.servers[1]!.clientPort
  await mesh.stopServer(1, "SIGKILL")
  t.notOk(mesh.isUp(1))
  await mesh.startServer(1)
  t.equal(mesh.servers[1]!.clientPort, port, "same client port after restart")
  t.ok(await mesh.waitForRoutes(10_000), "the restarted server rejoins")
  t.same(await reachSettled(everyone, 10_000), everyone, "and its clients reconnected to it")

  mesh.delay(0, 1, 200, 0)
  const sent = performance.now()
  const reply = new Promise<number>((resolve) => ncs[1]!.subscribe("probe", { max: 1, callback: () => resolve(performance.now() - sent) }))
  await ncs[1]!.flush()
  await sleep(400) // the subscription's interest crosses the delayed link; no client sees when
  const sentAt = performance.now()
  ncs[0]!.publish("probe", "x")
  const took = (await reply) - (sentAt - sent)
  t.ok(took >= 180, `a delayed link holds messages (${took.toFixed(0)} ms)`)
  mesh.undelay(0, 1, 200, 0)
})
