/**
 * Change events on `archio.<cluster>.events.kv.<key tokens>`: what a plain `nats sub` sees for
 * puts, txns, deletes and TTL expiry, and that a three-node cluster publishes each change once.
 */
import t from "tap"
import { Effect, Fiber } from "effect"
import { join } from "node:path"
import type { NatsConnection } from "@nats-io/transport-node"
import * as Subjects from "../../protocol/subjects.ts"
import { runNode } from "../../bootstrap/node.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { config, quiet, send, singleNode, type Body } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { sleep, until } from "../support/wait.ts"

type Event = Record<string, unknown> & { type: string; key: string; revision: number }

/** Collects the events on `subject` (with their subjects) until the test ends. */
const collect = async (nc: NatsConnection, subject: string): Promise<Array<{ subject: string; event: Event }>> => {
  const got: Array<{ subject: string; event: Event }> = []
  nc.subscribe(subject, { callback: (_e, m) => void got.push({ subject: m.subject, event: m.json<Event>() }) })
  await nc.flush()
  return got
}

const write = async (nc: NatsConnection, op: string, payload: unknown): Promise<Body> => {
  const r = await send(nc, op, JSON.stringify(payload))
  if (!r.body.ok) throw new Error(`${op} failed: ${JSON.stringify(r.body)}`)
  return r.body
}

t.test("a single node publishes every change on its key's subject, with the revision", async (t) => {
  const nc = await singleNode(t)
  const all = await collect(nc, "archio.c.events.kv.>")
  const users = await collect(nc, Subjects.kvPrefixEvents("c", "users/"))
  const one = await collect(nc, "archio.c.events.kv.users.42")
  const odd = await collect(nc, Subjects.kvKeyEvent("c", "a key.with*odd>chars/é"))

  const p1 = await write(nc, "put", { key: "users/42", value: "luffy" })
  const p2 = await write(nc, "put", { key: "users/42", value: "zoro" })
  const p3 = await write(nc, "put", { key: "a key.with*odd>chars/é", value: "x" })
  const tx = await write(nc, "txn", {
    compare: [],
    success: [
      { op: "put", key: "users/7", value: "nami" },
      { op: "del", key: "users/42" }
    ],
    failure: []
  })
  await write(nc, "del", { key: "users/never" }) // deletes nothing: no event
  const ttl = await write(nc, "put", { key: "users/tmp", value: "soon gone", ttl: 200 })
  // With no other write, the leader proposes an entry when the TTL is due, so the key expires
  // (and its event goes out) on time, not at the next write.
  await until("the expiry event", () => all.some((e) => e.event.type === "expire"), { timeoutMs: 3_000 })
  t.equal((await send(nc, "get", '{"key":"users/tmp"}')).code, "404", "gone for readers too")
  await write(nc, "put", { key: "tick", value: "1" })
  await until("the last put", () => all.some((e) => e.event.key === "tick"))
  t.same(
    all.map((e) => [e.event.type, e.event.key, e.event.revision]),
    [
      ["put", "users/42", p1["revision"]],
      ["put", "users/42", p2["revision"]],
      ["put", "a key.with*odd>chars/é", p3["revision"]],
      ["put", "users/7", tx["revision"]],
      ["del", "users/42", tx["revision"]],
      ["put", "users/tmp", ttl["revision"]],
      ["expire", "users/tmp", (ttl["revision"] as number) + 1],
      ["put", "tick", (ttl["revision"] as number) + 2]
    ],
    "every change once, in revision order; a delete of a missing key publishes nothing"
  )
  t.match(all[1]!.event, { type: "put", key: "users/42", value: "zoro", createRevision: p1["revision"], modRevision: p2["revision"], version: 2 })
  t.notOk("value" in all[4]!.event, "a delete carries no value")
  t.same(users.map((e) => e.event.key), ["users/42", "users/42", "users/7", "users/42", "users/tmp", "users/tmp"], "prefix subscription")
  t.same(one.map((e) => e.event.type), ["put", "put", "del"], "single-key subscription")
  t.same(odd.map((e) => e.event.key), ["a key.with*odd>chars/é"], "an escaped key has its own subject")
  t.equal(odd[0]!.subject, `archio.c.events.kv.~${Buffer.from("a key.with*odd>chars").toString("base64url")}.~${Buffer.from("é").toString("base64url")}`)

  // A scan's revision tells a watcher which events it already has.
  const scan = await send(nc, "scan", '{"prefix":"users/"}')
  t.equal(scan.body["revision"], (ttl["revision"] as number) + 2)
})

t.test("three nodes: each change is published once (by the leader)", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const nc = await natsClient(t, server.url)
  const peers = "n1,n2,n3"
  for (const id of ["n1", "n2", "n3"]) {
    const fiber = Effect.runFork(runNode(config({ NODE_ID: id, PEERS: peers, NATS_URL: server.url, DATA_DIR: join(dir, id), CLUSTER: "c" })).pipe(Effect.provide(quiet)))
    t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  }
  const events = await collect(nc, "archio.c.events.kv.>")
  await until("a leader to take a write", async () => (await send(nc, "put", '{"key":"boot","value":"1"}')).body.ok, { timeoutMs: 15_000, everyMs: 100 })
  const revisions: number[] = []
  for (let i = 0; i < 20; i++) revisions.push((await write(nc, "put", { key: `k/${i}`, value: String(i) }))["revision"] as number)
  await until("twenty events", () => events.filter((e) => e.event.key.startsWith("k/")).length >= 20)
  await sleep(300) // room for duplicates to show up, if any were sent
  t.same(
    events.filter((e) => e.event.key.startsWith("k/")).map((e) => e.event.revision),
    revisions,
    "one event per write, in order"
  )
})
