/**
 * The wire contract against a real node: every endpoint of the NATS service gets real
 * requests, and every reply body is decoded with its reply Schema from protocol/client.ts in
 * strict mode (a field the Schema does not describe is an error), error replies with
 * `ErrorBody` and a `Nats-Service-Error-Code` header that matches the code's status. A reply
 * the Gateway changes without its Schema, or an endpoint added without one, fails here.
 */
import t, { type Test } from "tap"
import { Effect, Fiber, Schema } from "effect"
import type { NatsConnection } from "@nats-io/transport-node"
import { join } from "node:path"
import { runNode } from "../../bootstrap/node.ts"
import * as Client from "../../protocol/client.ts"
import { statusOf, type ErrorCode } from "../../protocol/errors.ts"
import { maxValueBytes } from "../../protocol/limits.ts"
import { SnapshotDecoder } from "../../protocol/snapshotFormat.ts"
import { errorCodeHeader, errorHeader } from "../../protocol/reply.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { config, quiet, singleNode } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

type Table = typeof Client.endpoints
type Group = keyof Table
type Op<G extends Group> = keyof Table[G] & string
/** What an endpoint's reply Schema decodes to. */
type ReplyOf<G extends Group, O extends Op<G>> = Table[G][O] extends { readonly response: Schema.Schema<infer A, infer _I, never> } ? A : never

/** Strict: a field the Schema does not describe is an error; and every mismatch is listed, not just the first. */
const strictly = { onExcessProperty: "error", errors: "all" } as const

/** Every endpoint that answered, by `<group>.<op>`: with a success, and with an error. */
const answered = { ok: new Set<string>(), error: new Set<string>() }

interface RawReply {
  readonly body: unknown
  readonly status: string | undefined
  readonly errorText: string | undefined
}

const request = async (nc: NatsConnection, endpoint: string, payload: unknown): Promise<RawReply> => {
  const msg = await nc.request(`archio.c.${endpoint}`, typeof payload === "string" ? payload : JSON.stringify(payload), { timeout: 5_000 })
  return { body: msg.json<unknown>(), status: msg.headers?.get(errorCodeHeader) || undefined, errorText: msg.headers?.get(errorHeader) || undefined }
}

/** Decodes `body` with `schema`, strictly; a mismatch fails with what did not match. */
const decodeStrictly = <A, I>(t: Test, label: string, schema: Schema.Schema<A, I, never>, body: unknown): A => {
  try {
    const decoded = Schema.decodeUnknownSync(schema, strictly)(body)
    t.pass(label)
    return decoded
  } catch (e) {
    throw new Error(`${label}: ${e instanceof Error ? e.message : String(e)}\nbody: ${JSON.stringify(body)}`)
  }
}

/** A request that must succeed: no error headers, and the body is exactly the endpoint's reply Schema. */
const ok = async <G extends Group, O extends Op<G>>(t: Test, nc: NatsConnection, group: G, op: O, payload: unknown, why: string): Promise<ReplyOf<G, O>> => {
  const endpoint = `${group}.${op}`
  const reply = await request(nc, endpoint, payload)
  if (reply.status !== undefined) throw new Error(`${endpoint} (${why}) failed with ${reply.status}: ${JSON.stringify(reply.body)}`)
  // The table's entry for this endpoint, typed by what it decodes to.
  const { response } = Client.endpoints[group][op] as unknown as { readonly response: Schema.Schema<ReplyOf<G, O>, unknown, never> }
  answered.ok.add(endpoint)
  return decodeStrictly(t, `${endpoint} ${why}: the reply is exactly its Schema`, response, reply.body)
}

/** A request that must fail with `code`: the envelope is exactly `ErrorBody`, and the headers agree with its code. */
const fails = async (t: Test, nc: NatsConnection, endpoint: string, payload: unknown, code: ErrorCode, why: string): Promise<Client.ErrorBody> => {
  const reply = await request(nc, endpoint, payload)
  const body = decodeStrictly(t, `${endpoint} ${why}: the error is exactly ErrorBody`, Client.ErrorBody, reply.body)
  t.equal(body.error.code, code, `${endpoint} ${why}: ${code}`)
  t.equal(reply.status, String(statusOf(body.error.code)), `${endpoint} ${why}: ${errorCodeHeader} is the status of ${body.error.code}`)
  t.ok(reply.errorText !== undefined && reply.errorText.length > 0, `${endpoint} ${why}: ${errorHeader} says why`)
  answered.error.add(endpoint)
  return body
}

t.test("every endpoint's replies match protocol/client.ts, strictly", async (t) => {
  const nc = await singleNode(t)

  t.test("kv", async (t) => {
    const created = await ok(t, nc, "kv", "put", { key: "c/a", value: "1" }, "of a new key")
    const replaced = await ok(t, nc, "kv", "put", { key: "c/a", value: "2", ttl: 60_000, token: { client: "contract", seq: 1 } }, "over an existing key, with ttl and token")
    t.ok(replaced.revision > created.revision)
    await ok(t, nc, "kv", "put", { key: "c/a", value: "2", ttl: 60_000, token: { client: "contract", seq: 1 } }, "repeated with its token")
    await ok(t, nc, "kv", "get", { key: "c/a" }, "linearizable")
    await ok(t, nc, "kv", "get", { key: "c/a", consistency: "stale" }, "stale")
    await ok(t, nc, "kv", "cas", { key: "c/a", value: "3", expectedRevision: replaced.revision }, "with the current revision")
    await ok(t, nc, "kv", "cas", { key: "c/b", value: "1", expectedRevision: 0 }, "creating a key")
    await ok(t, nc, "kv", "cas", { key: "c/c", value: "1" }, "without expectedRevision (a put)")
    const page = await ok(t, nc, "kv", "scan", { prefix: "c/", limit: 2 }, "a first page")
    t.type(page.cursor, "string", "a first page has a cursor")
    await ok(t, nc, "kv", "scan", { prefix: "c/", cursor: page.cursor, keysOnly: true, consistency: "stale" }, "the last page, keys only")
    await ok(t, nc, "kv", "scan", { start: "c/a", end: "c/b" }, "a range")
    await ok(t, nc, "kv", "txn", { compare: [{ key: "c/b", target: "version", op: "==", value: 1 }], success: [{ op: "put", key: "c/d", value: "x" }, { op: "del", key: "c/c" }], failure: [] }, "that succeeds")
    await ok(t, nc, "kv", "txn", { compare: [{ key: "c/b", target: "value", op: "==", value: "no" }], success: [], failure: [] }, "that fails, writing nothing")
    await ok(t, nc, "kv", "del", { key: "c/d" }, "of a key")
    await ok(t, nc, "kv", "del", { key: "c/never" }, "of a missing key")

    for (const op of ["put", "get", "del", "cas", "scan", "txn"]) await fails(t, nc, `kv.${op}`, { key: "k", misspelt: 1 }, "bad_request", "with an unknown field")
    await fails(t, nc, "kv.put", "{not json", "bad_request", "not JSON")
    const missing = await fails(t, nc, "kv.get", { key: "c/never" }, "not_found", "of a missing key")
    t.type(missing.error.detail?.["revision"], "number", "not_found says at which revision")
    await fails(t, nc, "kv.cas", { key: "c/a", value: "4", expectedRevision: 1 }, "conflict", "with a stale revision")
    await fails(t, nc, "kv.put", { key: "k", value: "x".repeat(maxValueBytes + 1) }, "too_large", "with a value over the limit")
    await fails(t, nc, "kv.scan", { prefix: "c/", cursor: "not-a-cursor!" }, "bad_request", "with a forged cursor")
    await fails(t, nc, "kv.txn", { compare: [], success: [{ op: "put", key: "k", value: "1" }, { op: "del", key: "k" }], failure: [] }, "bad_request", "naming a key twice")
  })

  t.test("jobs", async (t) => {
    const one = await ok(t, nc, "jobs", "enqueue", { queue: "contract", payload: { n: 1 }, priority: 5, uniqueKey: "u1", backoff: { type: "fixed", delay: 10 } }, "a job")
    await ok(t, nc, "jobs", "enqueue", { queue: "contract", payload: { n: 2 }, uniqueKey: "u1" }, "matching a live unique key")
    const later = await ok(t, nc, "jobs", "enqueue", { queue: "contract", payload: null, delay: 60_000, token: { client: "contract", seq: 2 } }, "delayed, with a token")
    const batch = await ok(t, nc, "jobs", "enqueueBatch", { jobs: [{ queue: "contract", payload: 3 }, { queue: "contract", payload: 4, maxAttempts: 1 }] }, "two jobs")

    const leased = await ok(t, nc, "jobs", "lease", { queues: ["contract"], workerId: "w1", max: 3, leaseMs: 30_000 }, "three ready jobs")
    t.equal(leased.jobs.length, 3, "the three ready jobs")
    t.equal(leased.jobs[0]!.id, one.id, "the priority one first")
    await ok(t, nc, "jobs", "lease", { queues: ["contract-empty"], workerId: "w1" }, "with nothing ready")
    await ok(t, nc, "jobs", "lease", { queues: ["contract-empty"], workerId: "w1", waitMs: 50 }, "waiting in vain")
    const [first, second, third] = leased.jobs
    await ok(t, nc, "jobs", "get", { id: first!.id }, "of a leased job")
    await ok(t, nc, "jobs", "extend", { id: first!.id, token: first!.token, leaseMs: 40_000, progress: { step: 1 } }, "with progress")
    await ok(t, nc, "jobs", "ack", { id: first!.id, token: first!.token, result: { done: true } }, "of a leased job")
    await ok(t, nc, "jobs", "get", { id: first!.id }, "of a completed job")
    const retrying = await ok(t, nc, "jobs", "fail", { id: second!.id, token: second!.token, error: "flaky" }, "with attempts left")
    t.equal(retrying.willRetry, true)
    await ok(t, nc, "jobs", "get", { id: second!.id }, "of a failed job")
    const dead = await ok(t, nc, "jobs", "fail", { id: third!.id, token: third!.token, error: "fatal", retryable: false }, "not retryable")
    t.equal(dead.willRetry, false)
    await ok(t, nc, "jobs", "retry", { id: third!.id }, "of a dead job")
    const again = await ok(t, nc, "jobs", "lease", { queues: ["contract"], workerId: "w2", max: 2 }, "after a retry")
    const [x, y] = again.jobs
    await ok(t, nc, "jobs", "release", { id: x!.id, token: x!.token }, "of a leased job")
    const [z] = (await ok(t, nc, "jobs", "lease", { queues: ["contract"], workerId: "w3" }, "of the released job")).jobs
    const acks = await ok(t, nc, "jobs", "ackBatch", { acks: [{ id: y!.id, token: y!.token, result: 1 }, { id: z!.id, token: z!.token + 1 }, { id: "999999", token: 1 }] }, "one good, one stale, one unknown")
    t.match(acks.results, [{ ok: true }, { ok: false, code: "lease_lost" }, { ok: false, code: "not_found" }])
    t.same(batch.existing, [false, false], "a batch of new jobs")
    await ok(t, nc, "jobs", "cancel", { id: later.id }, "of a scheduled job")
    const page = await ok(t, nc, "jobs", "list", { queue: "contract", limit: 2 }, "a first page")
    t.type(page.cursor, "string", "a first page has a cursor")
    await ok(t, nc, "jobs", "list", { queue: "contract", cursor: page.cursor, state: "completed" }, "by state, from a cursor")
    await ok(t, nc, "jobs", "stats", {}, "of every queue")
    await ok(t, nc, "jobs", "stats", { queue: "contract" }, "of one queue")
    for (const op of Object.keys(Client.endpoints.jobs)) await fails(t, nc, `jobs.${op}`, { misspelt: 1 }, "bad_request", "with an unknown field")
    await fails(t, nc, "jobs.get", { id: "999999" }, "not_found", "of an unknown job")
    await fails(t, nc, "jobs.ack", { id: z!.id, token: z!.token + 1 }, "lease_lost", "with a stale token")
    await fails(t, nc, "jobs.cancel", { id: first!.id }, "conflict", "of a finished job")
    await fails(t, nc, "jobs.enqueue", { queue: "q", payload: "x".repeat(600 * 1024) }, "too_large", "over the request limit")
    await ok(t, nc, "jobs", "purge", { queue: "contract", states: ["completed", "cancelled"], olderThanMs: 0 }, "of finished jobs")
  })

  t.test("admin", async (t) => {
    const status = await ok(t, nc, "admin", "status", "", "of the leader")
    t.match(status, { id: "n1", cluster: "c", role: "leader", leader: "n1", logBaseIndex: 0, logBaseTerm: 0 })
    await ok(t, nc, "admin", "status", {}, "asked with {}")
    t.same(status.members, [{ id: "n1", role: "voter", matchIndex: status.lastIndex, lag: 0 }], "admin.status lists the members from the leader's view")
    const members = await ok(t, nc, "admin", "members", "", "of a one-node cluster")
    t.match(members, { leader: "n1", node: "n1", term: status.term, members: [{ id: "n1", role: "voter", lag: 0 }] })
    await ok(t, nc, "admin", "members", {}, "asked with {}")
    await fails(t, nc, "admin.members", { id: "n1" }, "bad_request", "a field it does not know")

    const snap = await ok(t, nc, "admin", "snapshot", "", "of the node that answers")
    t.match(snap, { node: "n1", checksum: /^[0-9a-f]{64}$/ })
    t.ok(snap.index >= status.appliedIndex && snap.term >= 1 && snap.size > 0, "a snapshot of the applied state")
    const later = await ok(t, nc, "admin", "status", "", "after a snapshot")
    t.same(later.snapshot, { index: snap.index, term: snap.term, size: snap.size, time: snap.time }, "admin.status reports the last snapshot")
    await ok(t, nc, "admin", "snapshot", {}, "asked with {}")
    await fails(t, nc, "admin.snapshot", { now: true }, "bad_request", "a field it does not know")

    // Three values of ~200 KB: a state over two chunks of 256 KiB.
    const big = (i: number) => String(i).repeat(200_000)
    for (let i = 0; i < 3; i++) await ok(t, nc, "kv", "put", { key: `backup/big${i}`, value: big(i) }, `of a big value ${i}`)
    await ok(t, nc, "kv", "put", { key: "backup/small", value: "s" }, "of a small value")
    const opened = await ok(t, nc, "admin", "backup", "", "of the node that answers")
    t.match(opened, { session: /^n1:\d+$/, node: "n1", chunkBytes: 262_144 })
    await fails(t, nc, "admin.backup", { full: true }, "bad_request", "a field it does not know")

    const chunk = (offset: number, why: string) => ok(t, nc, "admin", "backupChunk", { session: opened.session, offset }, why)
    const decoder = new SnapshotDecoder()
    const first = await chunk(0, "the first chunk")
    t.match(first, { offset: 0, done: false, node: "n1" })
    const bytes = Buffer.from(first.data, "base64")
    t.equal(bytes.length, opened.chunkBytes, "a whole chunk")
    t.same(Buffer.from((await chunk(0, "the first chunk again (a retry)")).data, "base64"), bytes, "a retry gets the same bytes")
    const wrong = await fails(t, nc, "admin.backupChunk", { session: opened.session, offset: 5 }, "conflict", "at an offset it is not at")
    t.equal(wrong.error.detail?.["offset"], bytes.length, "conflict says which offset comes next")
    decoder.push(bytes)
    let offset = bytes.length
    let last = first
    while (!last.done) {
      last = await chunk(offset, `the chunk at ${offset}`)
      t.equal(last.offset, offset)
      const data = Buffer.from(last.data, "base64")
      decoder.push(data)
      offset += data.length
    }
    decoder.end()
    t.ok(decoder.done, "the chunks make one whole, verified snapshot")
    t.equal(last.size, offset, "the last chunk says the whole size")
    t.equal(last.checksum, decoder.digest, "and the checksum the trailer holds")
    t.match(decoder.header, { index: opened.index, term: opened.term, cluster: "c", members: ["n1"] })
    const kv = new Map(decoder.takeRecords().filter((r) => r.section === "kv").map((r) => [r.key, JSON.parse(Buffer.from(r.value).toString("utf8")) as { value: string }]))
    for (let i = 0; i < 3; i++) t.equal(kv.get(`backup/big${i}`)?.value, big(i), `backup/big${i} is in the backup`)
    t.equal(kv.get("backup/small")?.value, "s", "backup/small is in the backup")
    t.same(await chunk(last.offset, "the last chunk again"), last, "the last chunk can be asked again")
    t.match(await chunk(offset, "past the end"), { offset, data: "", done: true, size: offset, checksum: last.checksum })
    await fails(t, nc, "admin.backupChunk", { session: "n1:999999", offset: 0 }, "not_found", "of an unknown session")
    await fails(t, nc, "admin.backupChunk", { session: "no-session", offset: 0 }, "bad_request", "with something that is not a session id")
    await fails(t, nc, "admin.backupChunk", { session: opened.session, offset: -1 }, "bad_request", "with a negative offset")

    // A one-node cluster has no one to hand leadership to: admin.transfer's successes are
    // decoded strictly in test/gateway/transfer.test.ts, on three nodes.
    const alone = await fails(t, nc, "admin.transfer", "", "bad_request", "with no other voter")
    t.match(alone.error.message, /node n1 leads alone: there is no other voter/)
    t.match((await fails(t, nc, "admin.transfer", { id: "n1" }, "bad_request", "to the leader itself")).error.message, /node n1 already leads/)
    t.match((await fails(t, nc, "admin.transfer", { id: "n9" }, "bad_request", "to a node that is not a member")).error.message, /node n9 is not a voting member \(the voters are n1\)/)
    await fails(t, nc, "admin.transfer", { id: "n 1" }, "bad_request", "to something that is not a node id")
    await fails(t, nc, "admin.transfer", { to: "n2" }, "bad_request", "a field it does not know")

    // Membership on a one-node cluster: a learner that is not running can be added and removed;
    // promoting it needs it caught up (test/gateway/membership.test.ts does that on real nodes).
    t.match(await ok(t, nc, "admin", "add", { id: "n2" }, "a learner"), { changed: true, members: [{ id: "n1", role: "voter" }, { id: "n2", role: "learner" }] })
    t.match((await fails(t, nc, "admin.promote", { id: "n2" }, "unavailable", "a learner that never answered")).error, { message: /learner n2 is not caught up/, detail: { reason: "lagging" } })
    t.match(await ok(t, nc, "admin", "remove", { id: "n2" }, "the learner"), { changed: true, members: [{ id: "n1", role: "voter" }] })
    t.match(await ok(t, nc, "admin", "remove", { id: "n2" }, "again: nothing to do"), { changed: false })
    t.match((await fails(t, nc, "admin.remove", { id: "n1" }, "bad_request", "the last voter")).error.message, /n1 is the last voter/)
    t.match((await fails(t, nc, "admin.add", { id: "n1" }, "bad_request", "a voter")).error.message, /already a voter/)
    t.match((await fails(t, nc, "admin.promote", { id: "n9" }, "bad_request", "a node that is no learner")).error.message, /n9 is not a learner/)
    await fails(t, nc, "admin.add", {}, "bad_request", "with no id")
  })

  t.test("no endpoint was left out", async (t) => {
    const info = (await nc.request("$SRV.INFO.archio", "", { timeout: 5_000 })).json<{ endpoints: Array<{ subject: string }> }>()
    const served = info.endpoints.map((e) => e.subject.replace(/^archio\.c\./, "")).sort()
    const described = Object.entries(Client.endpoints).flatMap(([group, ops]) => Object.keys(ops).map((op) => `${group}.${op}`)).sort()
    t.same(served, described, "the service serves exactly the endpoints protocol/client.ts describes")
    t.same(
      [...answered.ok].sort(),
      described.filter((e) => e !== "admin.transfer" && e !== "admin.promote"),
      "each answered a success here (admin.transfer and admin.promote need a second live node)"
    )
    await fails(t, nc, "admin.status", { verbose: true }, "bad_request", "a field it does not know")
    t.same([...answered.error].sort(), described, "each endpoint answered an error here")
  })
})

t.test("admin.status with a follower: the leader's peers and the follower's view match StatusResponse", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const nc = await natsClient(t, server.url)
  for (const id of ["n1", "n2"]) {
    const fiber = Effect.runFork(runNode(config({ NODE_ID: id, PEERS: "n1,n2", NATS_URL: server.url, DATA_DIR: join(dir, id), CLUSTER: "c" })).pipe(Effect.provide(quiet)))
    t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  }
  const status = async (id: string): Promise<{ role?: string; peers?: Array<{ state?: string }> }> =>
    (await nc.request(`archio.c.node.${id}.admin.status`, "", { timeout: 2_000 })).json()
  let leaderId = ""
  await until("a leader replicating to its follower", async () => {
    for (const id of ["n1", "n2"]) {
      const s = await status(id)
      if (s.role === "leader" && s.peers?.[0]?.state === "replicate") leaderId = id
    }
    return leaderId !== ""
  }, { timeoutMs: 15_000, everyMs: 100 })
  const followerId = leaderId === "n1" ? "n2" : "n1"

  const leader = decodeStrictly(t, "the leader's admin.status: the reply is exactly its Schema", Client.StatusResponse, await status(leaderId))
  t.match(leader, { role: "leader", members: [{ id: "n1", role: "voter" }, { id: "n2", role: "voter" }], peers: [{ id: followerId, state: "replicate" }] })
  const own = leader.members.find((m) => m.id === leaderId)
  t.same(own, { id: leaderId, role: "voter", matchIndex: leader.lastIndex, lag: 0 }, "the leader's own match is its last index")
  const peer = leader.members.find((m) => m.id === followerId)
  t.equal(peer?.matchIndex, leader.peers?.[0]?.matchIndex, "a follower's match index is the leader's progress for it")
  t.equal(peer?.lag, leader.lastIndex - (peer?.matchIndex ?? 0), "lag = the leader's last index - match index")
  const follower = decodeStrictly(t, "the follower's admin.status: the reply is exactly its Schema", Client.StatusResponse, await status(followerId))
  t.match(follower, { role: "follower", leader: leaderId })
  t.notOk("peers" in follower, "a follower reports no peers")
  t.same(
    follower.members,
    ["n1", "n2"].map((id) => ({ id, role: "voter", matchIndex: null, lag: null })),
    "a follower lists each member's role only (no match index or lag)"
  )
})

t.test("admin.members on three nodes: the leader's view from any node; alone, a node answers from its own", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const nc = await natsClient(t, server.url)
  const ids = ["n1", "n2", "n3"]
  const fibers = new Map<string, Fiber.RuntimeFiber<never, unknown>>()
  for (const id of ids) {
    const fiber = Effect.runFork(runNode(config({ NODE_ID: id, PEERS: ids.join(","), NATS_URL: server.url, DATA_DIR: join(dir, id), CLUSTER: "c" })).pipe(Effect.provide(quiet)))
    fibers.set(id, fiber)
    t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  }
  const members = async (endpoint: string): Promise<Client.MembersResponse | undefined> => {
    const reply = await request(nc, endpoint, "").catch(() => undefined)
    return reply === undefined || reply.status !== undefined ? undefined : decodeStrictly(t, `${endpoint}: the reply is exactly MembersResponse`, Client.MembersResponse, reply.body)
  }
  await until("a leader that answers writes", async () => (await request(nc, "kv.put", { key: "boot", value: "1" })).status === undefined, {
    timeoutMs: 15_000,
    everyMs: 100
  })
  for (let i = 0; i < 5; i++) await request(nc, "kv.put", { key: `k${i}`, value: "v" })
  let view: Client.MembersResponse | undefined
  await until("every member caught up with the leader", async () => {
    view = await members("admin.members")
    return view !== undefined && view.members.every((m) => m.lag === 0)
  }, { timeoutMs: 15_000, everyMs: 100 })
  const leaderId = view!.leader!
  t.equal(view!.node, leaderId, "any node: the leader answers (a follower forwards)")
  t.same(view!.members.map((m) => [m.id, m.role]), ids.map((id) => [id, "voter"]), "every configured member, a voter, in order")
  const leaderStatus = decodeStrictly(t, "the leader's status", Client.StatusResponse, (await request(nc, `node.${leaderId}.admin.status`, "")).body)
  t.ok(view!.members.every((m) => m.matchIndex !== null && m.matchIndex <= leaderStatus.lastIndex && m.matchIndex >= 6), "match indexes from the leader's view")

  for (const id of ids) {
    const own = await members(`node.${id}.admin.members`)
    t.equal(own?.node, leaderId, `on ${id}'s own subject: the leader's view`)
    t.equal(own?.leader, leaderId)
    t.same(own?.members.map((m) => m.id), ids)
    t.equal(own?.members.find((m) => m.id === leaderId)?.lag, 0, "the leader's own lag is 0")
  }

  // Stop the leader and one follower: the node left knows no leader and answers alone.
  const survivor = ids.find((id) => id !== leaderId)!
  for (const id of ids.filter((id) => id !== survivor)) await Effect.runPromise(Fiber.interrupt(fibers.get(id)!))
  let alone: Client.MembersResponse | undefined
  await until("the survivor to know no leader", async () => {
    alone = await members(`node.${survivor}.admin.members`)
    return alone !== undefined && alone.leader === null
  }, { timeoutMs: 15_000, everyMs: 100 })
  t.equal(alone!.node, survivor, "answered by the node asked")
  t.same(alone!.members, ids.map((id) => ({ id, role: "voter", matchIndex: null, lag: null })), "without a leader's view: roles only")
  const anyNode = await members("admin.members")
  t.equal(anyNode?.node, survivor, "the shared subject too")
})
