/**
 * Fuzzing every client endpoint over NATS on three real `archio node` processes: every subject of
 * the service (enumerated from the running service's `$SRV.INFO`, and checked against the
 * contract's endpoint table) and every one a node serves on its own `node.<id>.` subjects.
 *
 * Properties, with the protocol decoder of the endpoint as the oracle (answers.ts):
 *   - every request is answered within the time (no hang);
 *   - a payload the decoder refuses gets an error reply with exactly the decoder's code and
 *     message (stable, whichever node or subject), and a valid one a success or a stable code
 *     other than `internal`;
 *   - refused requests write nothing: every node's term, last index and commit index stay put;
 *   - afterwards every node process is up and a leader serves a put and a get.
 *
 * Seeds: see seed.ts (FUZZ_SEED replays, FUZZ_RUNS scales).
 */
import t from "tap"
import fc from "fast-check"
import { connect } from "node:net"
import { Either, type Schema } from "effect"
import * as Client from "../../protocol/client.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { testCluster } from "../support/cluster.ts"
import { natsClient } from "../support/nats.ts"
import { sleep } from "../support/wait.ts"
import { maxJsonDepth } from "../../protocol/limits.ts"
import { decoders, problemWith, readReply, tally } from "./answers.ts"
import { marks, moved, settledMarks, stillServes, type Marks } from "./clusterChecks.ts"
import { bytesOf, corpus, deep, requestPayload, validSamples, type NamedPayload } from "./payloads.ts"
import { FuzzRequest, send, type Target } from "./request.ts"
import { fuzzSetup } from "./seed.ts"

t.setTimeout(240_000)

const fuzz = fuzzSetup(t, "test/fuzz/endpoints.test.ts")

/** Longer than the Gateway's own request timeout (5 s): an answer later than this is a hang. */
const answerMs = 10_000

/** Requests whose valid form would change the cluster under the test (members, leader). */
const neverValid = new Set(["admin.add", "admin.promote", "admin.remove", "admin.transfer"])

/** Whether a valid request may be sent: it must not reshape the cluster nor park for long. */
const mayAccept = (op: string, request: unknown): boolean => {
  if (neverValid.has(op)) return false
  if (op === "jobs.lease") return ((request as { waitMs?: number }).waitMs ?? 0) <= 1_000
  return true
}

const sendable = (r: FuzzRequest): boolean => Either.isLeft(r.verdict) || mayAccept(r.target.op, r.verdict.right)

const schemaOf = (op: string): Schema.Schema<unknown, unknown, never> => {
  const [group, name] = op.split(".") as [keyof typeof Client.endpoints, string]
  return (Client.endpoints[group] as Record<string, { request: Schema.Schema<unknown, unknown, never> }>)[name]!.request
}

/** Sends `batch` at once; a list of what went wrong (empty when every answer was right). */
const sendAll = async (nc: Parameters<typeof send>[0], batch: ReadonlyArray<FuzzRequest>): Promise<ReadonlyArray<string>> => {
  const problems = await Promise.all(
    batch.map(async (r) => {
      const reply = await send(nc, r.target.subject, r.bytes, answerMs, r.forwardedBy)
      const problem = typeof reply === "string" ? reply : problemWith(reply, r.verdict)
      return problem === undefined ? undefined : `${String(r)}: ${problem}`
    })
  )
  return problems.filter((p): p is string => p !== undefined)
}

/** Sends every request, `width` at a time. */
const sendInChunks = async (nc: Parameters<typeof send>[0], all: ReadonlyArray<FuzzRequest>, width = 32): Promise<ReadonlyArray<string>> => {
  const problems: Array<string> = []
  for (let i = 0; i < all.length; i += width) problems.push(...(await sendAll(nc, all.slice(i, i + width))))
  return problems
}

/** One NATS publish over a plain socket, as a client in another language would: what the server says back. */
const rawPublish = (port: number, subject: string, size: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1")
    let said = ""
    let sent = false
    const done = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(said)
    }
    const timer = setTimeout(done, 5_000)
    socket.on("data", (chunk: Buffer) => {
      said += chunk.toString("latin1")
      if (!sent && said.includes("\r\n")) {
        sent = true
        // The server judges the size from the PUB line; the body follows only if it did not object.
        socket.write(`CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nPUB ${subject} _INBOX.raw ${size}\r\n`)
        setTimeout(() => {
          if (!socket.destroyed) socket.write(Buffer.concat([Buffer.alloc(size, 0x20), Buffer.from("\r\n")]))
        }, 500)
      }
      if (said.includes("-ERR")) done()
    })
    socket.on("error", done)
    socket.on("close", done)
  })

t.test("every client endpoint, fuzzed over NATS against three nodes", async (t) => {
  // Elections only when a leader is really gone: the checks below count a changed term as a write.
  const { cluster, client, nats } = await testCluster(t, { ELECTION_TICKS: "100" })
  const nc = await natsClient(t, nats.url)
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024
  const root = `${Subjects.root(cluster.cluster)}.`

  // The decoder, valid samples, random payloads and fixed corpus of every endpoint of the contract.
  const ops = [...decoders.keys()]
  const samples = new Map(ops.map((op) => [op, validSamples(schemaOf(op), fuzz.seed)]))
  const payloads = new Map(ops.map((op) => [op, requestPayload(schemaOf(op), samples.get(op)!, { maxPayload })]))
  const fixed = new Map(ops.map((op) => [op, corpus(schemaOf(op), samples.get(op)!, { maxPayload })]))
  const targets: Array<Target> = []
  /** `archio.<cluster>.node.`: a target on some node's own subjects. */
  const ownPrefix = Subjects.node(cluster.cluster, "", "").slice(0, -1)
  const isOwn = (target: Target): boolean => target.subject.startsWith(ownPrefix)
  // A node's own subjects decode with the same code as the service's: the big payloads (half a
  // megabyte and more) go to the service subjects only, which keeps the file within a minute.
  const corpusFor = (target: Target): ReadonlyArray<FuzzRequest> =>
    fixed
      .get(target.op)!
      .filter((p: NamedPayload) => p.bytes.length <= 64 * 1024 || !isOwn(target))
      .map((p) => new FuzzRequest(target, p.bytes))

  await t.test("the service's endpoints are exactly the contract's, and each node's own subjects are found", async (t) => {
    const info = (await nc.request(`$SRV.INFO.archio`, "", { timeout: 5_000 })).json<{ endpoints: Array<{ subject: string }> }>()
    const served = info.endpoints.map((e) => e.subject)
    const unknown = served.filter((s) => !s.startsWith(root) || !decoders.has(s.slice(root.length)))
    t.same(unknown, [], "every endpoint the service announces has a request schema in Client.endpoints (add it there, and it is fuzzed)")
    t.same(served.map((s) => s.slice(root.length)).sort(), [...ops].sort(), "and every endpoint of the contract is served")
    for (const subject of served) targets.push({ subject, op: subject.slice(root.length), verdict: decoders.get(subject.slice(root.length))! })
    // A node's own subjects (forwarded requests, clients that know the leader): those that answer.
    for (const id of cluster.ids) {
      for (const op of ops) {
        const subject = Subjects.node(cluster.cluster, id, op)
        const reply = await send(nc, subject, new TextEncoder().encode("["), 2_000)
        if (typeof reply !== "string") targets.push({ subject, op, verdict: decoders.get(op)! })
      }
    }
    const own = targets.filter(isOwn)
    t.ok(own.some((x) => x.op === "kv.put") && own.some((x) => x.op === "jobs.lease") && own.some((x) => x.op === "admin.status"), `node subjects found: ${own.length}`)
  })

  // Nothing may be written from here until the valid requests further down.
  const before: Marks = await settledMarks(cluster)

  await t.test("a fixed corpus of bad payloads on every subject: the decoder's error, nothing written", async (t) => {
    const requests = targets.flatMap((target) => corpusFor(target).filter((r) => Either.isLeft(r.verdict)))
    t.ok(requests.length > targets.length * 10, `${requests.length} invalid payloads`)
    t.same(await sendInChunks(nc, requests), [], "every answer is the decoder's error")
    t.ok(tally.busy * 10 < requests.length, `few answered busy instead (${tally.busy})`)
    t.same(moved(before, await marks(cluster)), [], "no node's log moved")
  })

  await t.test("random invalid payloads in concurrent batches: the decoder's error, nothing written", async (t) => {
    const invalid = fc
      .constantFrom(...targets)
      .chain((target) => payloads.get(target.op)!.map((bytes) => new FuzzRequest(target, bytes)))
      .filter((r) => Either.isLeft(r.verdict))
    let sent = 0
    await fc.assert(
      fc.asyncProperty(fc.array(invalid, { minLength: 1, maxLength: 10 }), async (batch) => {
        sent += batch.length
        const problems = await sendAll(nc, batch)
        if (problems.length > 0) throw new Error(problems.join("\n"))
        const changes = moved(before, await marks(cluster))
        if (changes.length > 0) throw new Error(`refused requests moved the log: ${changes.join("; ")}`)
      }),
      fuzz.parameters(100)
    )
    t.ok(sent > 0, `${sent} requests in ${fuzz.runs(100)} batches (seed ${fuzz.seed})`)
    // A write that an error answer raced ahead of would land now.
    await sleep(300)
    t.same(moved(before, await marks(cluster)), [], "still nothing written a moment later")
  })

  await t.test("bad payloads published without a reply subject, or with another endpoint's subject as the reply: ignored", async (t) => {
    // The answer to such a request goes to a service subject (a request without a reply: ignored),
    // a node's own subject, or a Raft subject (a frame the codec refuses): nothing may come of it.
    const replies = [...targets.map((x) => x.subject), ...cluster.ids.map((id) => Subjects.raft(cluster.cluster, id, "append"))]
    let published = 0
    // The service's subjects and one node's own: the same handlers serve every node.
    const some = targets.filter((x) => !isOwn(x) || x.subject.startsWith(Subjects.node(cluster.cluster, cluster.ids[0]!, "")))
    for (const [i, target] of some.entries()) {
      for (const r of corpusFor(target).filter((x) => Either.isLeft(x.verdict) && x.bytes.length <= 4 * 1024)) {
        nc.publish(target.subject, r.bytes)
        nc.publish(target.subject, r.bytes, { reply: replies[(i + published) % replies.length]! })
        published += 2
      }
      await nc.flush()
    }
    await sleep(300)
    t.same(moved(before, await marks(cluster)), [], `${published} publications: no node's log moved, every node answers`)
  })

  await t.test("after the bad input every node is up and the cluster serves", async (t) => {
    await stillServes(cluster, client, "fuzz/alive-1")
    t.not(moved(before, await settledMarks(cluster)).length, 0, "the write check is not blind: it sees the put just made")
  })

  // Found by the corpus ("payload: an array nested 10000 deep" on jobs.enqueue): JSON.parse took
  // it, the decoder let `payload` (any JSON) through, and JSON.stringify of the logged command
  // overflowed the stack in the Gateway, which stopped each node the request reached.
  await t.test("regression: a job payload, result or progress nested too deep is bad_request, not a stopped node", async (t) => {
    const leader = await cluster.waitForLeader(10_000)
    const enqueue = (depth: number) => bytesOf(`{"queue":"q","payload":${deep(depth, "array").text}}`)
    for (const subject of [Subjects.jobs(cluster.cluster, "enqueue"), Subjects.node(cluster.cluster, leader, "jobs.enqueue")]) {
      for (const depth of [5_000, maxJsonDepth + 1]) {
        const reply = await send(nc, subject, enqueue(depth), answerMs)
        t.match(typeof reply === "string" ? reply : readReply(reply), { code: "bad_request", body: { error: { message: /payload: arrays and objects nested more than 100 deep/ } } }, `${subject}, ${depth} deep`)
      }
    }
    const others = [
      [Subjects.jobs(cluster.cluster, "ack"), `{"id":"1","token":1,"result":${deep(5_000, "object").text}}`],
      [Subjects.jobs(cluster.cluster, "ackBatch"), `{"acks":[{"id":"1","token":1,"result":${deep(5_000, "array").text}}]}`],
      [Subjects.jobs(cluster.cluster, "extend"), `{"id":"1","token":1,"progress":${deep(5_000, "array").text}}`],
      [Subjects.jobs(cluster.cluster, "enqueueBatch"), `{"jobs":[{"queue":"q","payload":${deep(5_000, "array").text}}]}`]
    ] as const
    for (const [subject, text] of others) {
      const reply = await send(nc, subject, bytesOf(text), answerMs)
      t.match(typeof reply === "string" ? reply : readReply(reply), { code: "bad_request" }, subject)
    }
    const atTheCap = await send(nc, Subjects.jobs(cluster.cluster, "enqueue"), enqueue(maxJsonDepth), answerMs)
    t.match(typeof atTheCap === "string" ? atTheCap : readReply(atTheCap), { code: undefined, body: { ok: true } }, `${maxJsonDepth} deep is accepted`)
    await stillServes(cluster, client, "fuzz/alive-deep")
  })

  await t.test("random payloads, valid ones included: every answer in time, ok or a stable code", async (t) => {
    const fixedValid = targets.flatMap((target) => corpusFor(target).filter((r) => Either.isRight(r.verdict) && sendable(r)))
    t.same(await sendInChunks(nc, fixedValid), [], `${fixedValid.length} valid payloads of the corpus answered ok or with a stable code`)
    // Now and then with a forged forwarding header (a node's, or junk): still answered, never internal.
    const forwardedBy = fc.option(fc.constantFrom(...cluster.ids, "x", ""), { freq: 4, nil: undefined })
    const any = fc
      .tuple(fc.constantFrom(...targets), forwardedBy)
      .chain(([target, by]) => payloads.get(target.op)!.map((bytes) => new FuzzRequest(target, bytes, by)))
      .filter(sendable)
    let valid = 0
    await fc.assert(
      fc.asyncProperty(fc.array(any, { minLength: 1, maxLength: 10 }), async (batch) => {
        valid += batch.filter((r) => Either.isRight(r.verdict)).length
        const problems = await sendAll(nc, batch)
        if (problems.length > 0) throw new Error(problems.join("\n"))
      }),
      fuzz.parameters(60)
    )
    t.comment(`${valid} of the random requests were valid`)
    await stillServes(cluster, client, "fuzz/alive-2")
  })

  await t.test("payloads over NATS' max_payload never reach a node", async (t) => {
    const over = new Uint8Array(maxPayload + 1).fill(0x20)
    const reply = await send(nc, Subjects.kv(cluster.cluster, "put"), over, 2_000)
    t.match(reply, /max_payload/, "the client refuses to send it")
    const said = await rawPublish(nats.port, Subjects.kv(cluster.cluster, "put"), maxPayload + 1)
    t.match(said, /Maximum Payload/i, "a client that sends it anyway is cut off by the server")
    await stillServes(cluster, client, "fuzz/alive-3")
  })
})
