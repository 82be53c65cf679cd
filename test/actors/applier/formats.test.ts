/**
 * The bytes the log and the database hold are a contract: a node must replay the commands an
 * older version logged and load the records it stored. These tests pin them to literal JSON,
 * so a change to the types behind them that changes a byte fails here.
 */
import t, { type Test } from "tap"
import { Effect, Either, Exit, Layer, Scope } from "effect"
import * as Applier from "../../../actors/applier/applier.ts"
import { encodeCommand, type Command } from "../../../actors/applier/applier.ts"
import { Storage as StorageTag, type Sublevel } from "../../../actors/services/storage.ts"
import { jobWrites } from "../../../actors/gateway/jobRequests.ts"
import * as Storage from "../../../bootstrap/storage.ts"
import { EntryKind, type Entry } from "../../../protocol/raft.ts"
import { ManualTimers, testScope, testSupervisor, timersLayer } from "../../support/services.ts"

const text = new TextEncoder()
const untext = new TextDecoder()

/** A job request as a client might send it: fields in no particular order, a nested backoff. */
const enqueueRequest =
  '{"token":{"seq":1,"client":"c1"},"backoff":{"jitter":0.5,"delay":100,"type":"exponential","max":1000},' +
  '"payload":{"b":1,"a":[1,"x"]},"queue":"emails","priority":5,"uniqueKey":"u1","maxAttempts":4,"leaseMs":2000}'

const loggedEnqueue =
  '{"op":"jobs.enqueue","jobs":[{"queue":"emails","payload":{"b":1,"a":[1,"x"]},"priority":5,"maxAttempts":4,' +
  '"backoff":{"jitter":0.5,"delay":100,"type":"exponential","max":1000},"leaseMs":2000,"uniqueKey":"u1"}],' +
  '"batch":false,"token":{"seq":1,"client":"c1"}}'

const loggedTxn =
  '{"op":"txn","compare":[{"key":"k","target":"version","op":"==","value":0},{"key":"k","target":"value","op":"<","value":"b"}],' +
  '"success":[{"op":"put","key":"k","value":"v","ttl":60000},{"op":"del","key":"gone"}],"failure":[],"token":{"client":"c2","seq":7}}'

const storedJob =
  '{"id":"1","seq":1,"queue":"emails","payload":{"b":1,"a":[1,"x"]},"priority":5,"state":"ready","attempts":0,"maxAttempts":4,' +
  '"backoff":{"jitter":0.5,"delay":100,"type":"exponential","max":1000},"leaseMs":2000,"retainMs":604800000,"runAt":1001,' +
  '"createdAt":1001,"updatedAt":1001,"uniqueKey":"u1","token":0,"readySeq":1,"readyAt":1001}'

const jobEvent = '{"id":"1","queue":"emails","state":"ready","attempts":0,"revision":1,"time":1001}'

const storedKey = '{"value":"v","createRevision":2,"modRevision":2,"version":1,"expiresAt":61002}'

const storedSessions = {
  c1: '{"seq":1,"result":{"ok":true,"revision":1,"id":"1","existing":false},"lastSeen":1001}',
  c2: '{"seq":7,"result":{"ok":true,"succeeded":true,"revision":2},"lastSeen":1002}'
}

const entry = (index: number, data: string): Entry => ({ index, term: 1, kind: EntryKind.Command, time: 1_000 + index, data: text.encode(data) })

const memoryStores = async (t: Test) => {
  const scope = Effect.runSync(Scope.make())
  t.teardown(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return Effect.runPromise(Scope.extend(Storage.makeMemory, scope))
}

/** A running Applier over `stores`; `stop` runs its finalizer (the last write). */
const startApplier = async (t: Test, stores: Storage.StorageShape) => {
  const { layer } = await testSupervisor()
  const { scope, close } = testScope(t)
  const services = Layer.mergeAll(Layer.succeed(StorageTag, stores), timersLayer(new ManualTimers()), layer)
  const applier = await Effect.runPromise(Applier.make.pipe(Scope.extend(scope), Effect.provide(services)))
  applier.logStored(Number.MAX_SAFE_INTEGER)
  return { applier, stop: close }
}

const read = async (level: Sublevel<string, Uint8Array>, key: string): Promise<string | undefined> => {
  const raw = await level.get(key)
  return raw === undefined ? undefined : untext.decode(raw)
}

t.test("a decoded job request is logged as the same bytes", async (t) => {
  const command = jobWrites.enqueue(text.encode(enqueueRequest))
  if (Either.isLeft(command)) return t.fail(command.left.message)
  t.equal(untext.decode(encodeCommand(command.right)), loggedEnqueue)
})

t.test("logged commands apply to the same stored records, events and sessions", async (t) => {
  const stores = await memoryStores(t)
  const { applier, stop } = await startApplier(t, stores)
  const events: string[] = []
  applier.onApplied((b) => b.jobEvents.forEach((e) => events.push(JSON.stringify(e))))
  applier.offer([entry(1, loggedEnqueue), entry(2, loggedTxn)])
  await new Promise((resolve) => setTimeout(resolve, 10))
  await stop()

  t.same(events, [jobEvent], "the job event as published")
  t.equal(await read(stores.jobs, "1"), storedJob, "the job record")
  t.equal(await read(stores.kv, "k"), storedKey, "the key record")
  t.equal(await read(stores.sessions, "c1"), storedSessions.c1, "a job command's session")
  t.equal(await read(stores.sessions, "c2"), storedSessions.c2, "a kv command's session")
  t.equal(await read(stores.meta, "jobs.counters"), '{"nextSeq":2,"nextReadySeq":2,"nextToken":1}')
})

t.test("stored records load back: the job can be leased and the key read", async (t) => {
  const stores = await memoryStores(t)
  await stores.jobs.put("1", text.encode(storedJob))
  await stores.kv.put("k", text.encode(storedKey))
  for (const [client, session] of Object.entries(storedSessions)) await stores.sessions.put(client, text.encode(session))
  await stores.meta.put("jobs.counters", text.encode('{"nextSeq":2,"nextReadySeq":2,"nextToken":1}'))
  for (const [key, value] of [["applied", "2"], ["kv.revision", "2"], ["kv.time", "1002"]]) await stores.meta.put(key!, text.encode(value!))
  const { applier } = await startApplier(t, stores)

  t.equal(applier.kv.get("k")?.value, "v")
  t.equal(JSON.stringify(applier.jobs.get("1")), storedJob, "the record as stored")
  const outcomes: unknown[] = []
  const lease: Command = { op: "jobs.lease", queues: ["emails"], max: 1, workerId: "w1" }
  const retried: Command = JSON.parse(loggedEnqueue) as Command
  applier.waitFor(3, 1, (o) => outcomes.push(o))
  applier.waitFor(4, 1, (o) => outcomes.push(o))
  applier.offer([entry(3, JSON.stringify(lease)), entry(4, JSON.stringify(retried))])
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.match(outcomes[0], { ok: true, jobs: [{ id: "1", attempt: 1, token: 1, leaseUntil: 1003 + 2000 }] }, "the job leases with its own lease time")
  t.same(outcomes[1], { ok: true, revision: 1, id: "1", existing: false }, "a repeated token gets the stored answer")
})
