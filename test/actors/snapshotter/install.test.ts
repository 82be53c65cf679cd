/**
 * The Snapshotter end to end inside one process (three nodes, real NATS, real classic-level): a
 * follower that lost its disk while the others compacted comes back by InstallSnapshot, holds
 * exactly their state, and goes on from the log.
 */
import t from "tap"
import { Effect, Fiber, Scope } from "effect"
import { rm } from "node:fs/promises"
import { join } from "node:path"
import { loadState } from "../../../actors/applier/applier.ts"
import { runNode } from "../../../bootstrap/node.ts"
import * as StorageLayer from "../../../bootstrap/storage.ts"
import { stateDigest } from "../../../ops/stateDigest.ts"
import { config, quiet, type Body } from "../../support/node.ts"
import { natsClient, natsServer } from "../../support/nats.ts"
import { testScope } from "../../support/services.ts"
import { tempDir } from "../../support/tmp.ts"
import { until } from "../../support/wait.ts"

t.test("a wiped follower installs the leader's snapshot and goes on from the log", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const dir = await tempDir(t)
  const ids = ["n1", "n2", "n3"]
  const fibers = new Map<string, Fiber.RuntimeFiber<never, unknown>>()
  const start = (id: string): void => {
    const c = config({ NODE_ID: id, PEERS: ids.join(","), NATS_URL: server.url, DATA_DIR: join(dir, id), CLUSTER: "c", SNAPSHOT_THRESHOLD: "40" })
    fibers.set(id, Effect.runFork(runNode(c).pipe(Effect.provide(quiet))))
  }
  const stop = async (id: string): Promise<void> => {
    await Effect.runPromise(Fiber.interrupt(fibers.get(id)!))
    fibers.delete(id)
  }
  t.teardown(async () => {
    for (const id of [...fibers.keys()]) await stop(id)
  })
  const ask = async (subject: string, body: unknown): Promise<Body> => (await nc.request(subject, JSON.stringify(body), { timeout: 5000 })).json<Body>()
  const status = (id: string): Promise<Body> => ask(`archio.c.node.${id}.admin.status`, {})
  const put = async (key: string, value: string): Promise<void> => {
    await until(`put ${key}`, async () => (await ask("archio.c.kv.put", { key, value }).catch(() => ({ ok: false }))).ok, { timeoutMs: 15_000, everyMs: 50 })
  }
  for (const id of ids) start(id)
  for (let i = 0; i < 120; i++) await put(`k${i % 30}`, `a${i}`)
  await stop("n3")
  await rm(join(dir, "n3"), { recursive: true, force: true })
  for (let i = 0; i < 200; i++) await put(`k${i % 30}`, `b${i}`)
  await until("the others compacted past what n3 could get from the log", async () => (await status("n1")).logBaseIndex as number > 0 && (await status("n2")).logBaseIndex as number > 0)
  start("n3")
  await until("n3 caught up", async () => {
    const [s1, s3] = await Promise.all([status("n1").catch(() => undefined), status("n3").catch(() => undefined)])
    return s1 !== undefined && s3 !== undefined && s3.appliedIndex === s1.appliedIndex && (s3.snapshot as { index: number } | null) !== null
  }, { timeoutMs: 20_000 })
  const s3 = await status("n3")
  t.ok((s3.logBaseIndex as number) > 0, "its log starts after a snapshot it received")
  await put("after", "install")
  await until("n3 applies what comes after from the log", async () => (await status("n3")).appliedIndex === (await status("n1")).appliedIndex)

  // Followers first: a leader stopped while the others run hands leadership over, and the new
  // leader's first entry would reach only the nodes still up.
  const leader = (await status("n1")).leader as string
  await until("every node applied the leader's commit", async () => {
    const all = await Promise.all(ids.map(status))
    const commit = all.find((s) => s.id === leader)!.commitIndex
    return all.every((s) => s.appliedIndex === commit)
  })
  for (const id of ids) if (id !== leader) await stop(id)
  await stop(leader)
  const digests: string[] = []
  for (const id of ids) {
    const { scope, close } = testScope(t)
    const storage = await Effect.runPromise(Scope.extend(StorageLayer.make(join(dir, id)), scope))
    const state = await loadState(storage)
    t.equal(state.kv.get("after")?.value, "install", `${id} holds the write made after the install`)
    t.equal(state.kv.get("k19")?.value, "b199", `${id} holds the last value of a key written while n3 was away`)
    digests.push(`${state.applied} ${stateDigest(state.kv, state.jobs)}`)
    await close()
  }
  t.equal(new Set(digests).size, 1, "all three nodes hold the same state at the same index")
})
