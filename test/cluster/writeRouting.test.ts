/**
 * Writes on the shared service subjects go to the leader alone once it is settled
 * (actors/gateway/writeRouting.ts), and killing the leader under a plain NATS client's load
 * loses no acknowledged write: the followers take the write subjects back when they lose it.
 */
import t from "tap"
import type { NatsConnection } from "@nats-io/transport-node"
import { testCluster } from "../support/cluster.ts"
import { sleep, until } from "../support/wait.ts"

interface EndpointStats {
  readonly name: string
  readonly num_requests: number
}
interface Stats {
  readonly metadata: Record<string, string>
  readonly endpoints: ReadonlyArray<EndpointStats>
}

/** `$SRV.STATS.archio` from every running instance: node id -> endpoint -> requests (replies gathered for `ms`). */
const statsOnce = async (nc: NatsConnection, expected: number, ms: number): Promise<Map<string, Map<string, number>>> => {
  const out = new Map<string, Map<string, number>>()
  const inbox = nc.subscribe(`_INBOX.stats.${Math.random().toString(36).slice(2)}`)
  const collecting = (async () => {
    for await (const m of inbox) {
      const s = m.json<Stats>()
      out.set(s.metadata["node"]!, new Map(s.endpoints.map((e) => [e.name, e.num_requests])))
      if (out.size === expected) break
    }
  })()
  nc.publish("$SRV.STATS.archio", new Uint8Array(0), { reply: inbox.getSubject() })
  await Promise.race([collecting, sleep(ms)])
  inbox.unsubscribe()
  return out
}

/** The same from every one of `expected` instances, asking again until all have answered. */
const statsByNode = async (nc: NatsConnection, expected: number): Promise<Map<string, Map<string, number>>> => {
  let got = new Map<string, Map<string, number>>()
  await until(`${expected} nodes to answer $SRV.STATS`, async () => (got = await statsOnce(nc, expected, 1_000)).size === expected, { timeoutMs: 20_000 })
  return got
}

const encode = (x: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(x))

/** One plain request on the service subject, as `nats req` would send it: the reply's text or the failure. */
const plainPut = async (nc: NatsConnection, key: string, value: string): Promise<{ ok: boolean; text: string }> => {
  try {
    const m = await nc.request("archio.dev.kv.put", encode({ key, value }), { timeout: 1_000 })
    const text = m.string()
    return { ok: text.startsWith('{"ok":true'), text }
  } catch (e) {
    return { ok: false, text: String(e) }
  }
}

t.test("a settled leader alone takes plain writes on the service subject; followers still answer reads", async (t) => {
  const { cluster, client } = await testCluster(t)
  const leader = await cluster.waitForLeader(10_000)
  await client.put("warm", "up")
  const followers = cluster.ids.filter((id) => id !== leader)
  // Followers let go of the write endpoints once the leader has been known for a while: wait
  // until a few plain puts in a row all land on the leader.
  let probe = 0
  await until(
    "followers to stop taking puts",
    async () => {
      const start = await statsByNode(cluster.nc, 3)
      for (let i = 0; i < 10; i++) await plainPut(cluster.nc, `probe-${probe++}`, "x")
      const end = await statsByNode(cluster.nc, 3)
      return followers.every((f) => end.get(f)?.get("kv-put") === start.get(f)?.get("kv-put"))
    },
    { timeoutMs: 30_000, everyMs: 200 }
  )
  const before = await statsByNode(cluster.nc, 3)
  for (let i = 0; i < 60; i++) {
    const r = await plainPut(cluster.nc, `plain-${i}`, `v${i}`)
    t.ok(r.ok, `plain put ${i} acknowledged`, { text: r.text })
  }
  for (let i = 0; i < 30; i++) {
    const m = await cluster.nc.request("archio.dev.kv.get", encode({ key: `plain-${i}` }), { timeout: 2_000 })
    t.match(m.string(), `"value":"v${i}"`, `plain linearizable get ${i} reads the write`)
  }
  const after = await statsByNode(cluster.nc, 3)
  const delta = (id: string, endpoint: string): number => (after.get(id)?.get(endpoint) ?? 0) - (before.get(id)?.get(endpoint) ?? 0)
  t.equal(delta(leader, "kv-put"), 60, "the leader took every plain put itself")
  for (const f of followers) t.equal(delta(f, "kv-put"), 0, `follower ${f} took no put`)
  const gets = followers.reduce((n, f) => n + delta(f, "kv-get"), 0)
  t.ok(gets > 0, `followers still answer gets on the service subject (${gets} of 30)`)
})

t.test("killing the leader under plain-client load loses no acknowledged write; the followers take writes again", async (t) => {
  const { cluster, client } = await testCluster(t)
  const leader = await cluster.waitForLeader(10_000)
  await client.put("warm", "up")
  await sleep(1_500)
  const acked = new Map<string, string>()
  let stop = false
  let killedAt = Infinity
  // The first write acknowledged among those sent after the kill: how long the cluster took writes
  // from nobody (requests in flight at the dead leader are lost and wait out their own timeout).
  let firstAfterKill = Infinity
  const loop = async (c: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const key = `c${c}-${i}`
      const sentAt = performance.now()
      const r = await plainPut(cluster.nc, key, `v${i}`)
      if (r.ok) {
        acked.set(key, `v${i}`)
        if (sentAt >= killedAt) firstAfterKill = Math.min(firstAfterKill, performance.now())
      } else await sleep(5)
    }
  }
  const loops = Array.from({ length: 8 }, (_, c) => loop(c))
  await until("200 acknowledged plain puts", () => acked.size >= 200, { timeoutMs: 20_000 })
  await cluster.kill(leader)
  killedAt = performance.now()
  const ackedAtKill = acked.size
  await until("200 more acknowledged plain puts after the kill", () => acked.size >= ackedAtKill + 200, { timeoutMs: 20_000 })
  stop = true
  await Promise.all(loops)
  t.comment(`the first plain put sent after the kill was acknowledged ${(firstAfterKill - killedAt).toFixed(0)} ms after it`)
  const newLeader = await cluster.waitForLeader(10_000)
  t.not(newLeader, leader, "another node leads")
  let missing = 0
  for (const [k, v] of acked) if ((await client.get(k))?.value !== v) missing++
  t.equal(missing, 0, `all ${acked.size} acknowledged plain writes are readable after the kill`)
})
