/**
 * The shipped NATS roles (ops/nats/single.conf) against a real nats-server and three real node
 * processes that connect as `node`: what a `client`, a `worker` and an `admin` may do; that a
 * client can neither speak Raft nor read other users' replies nor call admin subjects; that
 * `archio worker` and `archio kv` work with their credentials; that a node with a wrong password
 * stops at once with one clear line; and that no secret shows in logs, answers or metrics.
 */
import t from "tap"
import { connect, errors, type NatsConnection } from "@nats-io/transport-node"
import { spawn } from "node:child_process"
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { freePort } from "../../bootstrap/natsServer.ts"
import { binPath } from "../../ops/cluster.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { encodeRaftMessage } from "../../protocol/raftCodec.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { testCluster } from "../support/cluster.ts"
import { connectAs, envAs, optionsAs, secureServerStart, serverErrors } from "../support/secureNats.ts"
import { tempDir } from "../support/tmp.ts"
import { sleep, until } from "../support/wait.ts"
import { startWorker, writeHandler } from "../support/workers.ts"

const cluster = "sec"
const patiently = { timeoutMs: 30_000, everyMs: 50 }

/** Runs `archio ...args` to its end, with only `env`'s NATS settings; its exit code and output. */
const runArchio = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>, timeoutMs = 60_000) =>
  new Promise<{ code: number | null; out: string; err: string; ms: number }>((resolve) => {
    const started = performance.now()
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NATS_|CLUSTER|HTTP_)/.test(k)))
    const child = spawn(process.execPath, [binPath, ...args], { env: { ...clean, _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (b: Buffer) => (out += b.toString()))
    child.stderr.on("data", (b: Buffer) => (err += b.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, out, err, ms: performance.now() - started })
    })
  })

/** How a subscription on `subject` ends: the server's refusal, or "open" when it still runs after a round trip. */
const subscribing = async (nc: NatsConnection, subject: string): Promise<string> => {
  const sub = nc.subscribe(subject, { callback: () => undefined })
  await nc.flush()
  const closed = await Promise.race([sub.closed, sleep(100).then(() => "open" as const)])
  sub.unsubscribe()
  return closed instanceof Error ? closed.message : String(closed)
}

/** How a request on `subject` ends: the server's refusal, "answered", or what else went wrong. */
const requesting = async (nc: NatsConnection, subject: string, body = "{}"): Promise<string> => {
  try {
    await nc.request(subject, body, { timeout: 3000 })
    return "answered"
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
}

const refusedPublish = (subject: string) => `Permissions Violation for Publish to "${subject}"`
const refusedSubscription = (subject: string) => `Permissions Violation for Subscription to "${subject}"`

t.test("the shipped roles on a real cluster", async (t) => {
  const prepared = await secureServerStart(t, { cluster })
  const creds = prepared.credentials
  const httpPort = await freePort()
  const httpToken = "http-token-0123456789-abcdefghij"
  const { cluster: nodes, client: admin, nats, dir } = await testCluster(
    t,
    { ...envAs(creds.node), HTTP_TOKEN: httpToken },
    { cluster, nats: prepared.start, harness: optionsAs(creds.admin), envOf: { n1: { HTTP_PORT: String(httpPort) } } }
  )
  const asClient = await connectAs(t, nats.url, creds.client)
  const clientErrors = serverErrors(asClient)
  const client = new ArchioClient(asClient, { cluster, inboxPrefix: creds.client.inboxPrefix, deadlineMs: 10_000 })
  const asWorker = await connectAs(t, nats.url, creds.worker)
  const worker = new ArchioClient(asWorker, { cluster, inboxPrefix: creds.worker.inboxPrefix, deadlineMs: 10_000 })

  t.test("anonymous connections and wrong passwords are refused", async (t) => {
    await t.rejects(connect({ servers: nats.url, reconnect: false }), errors.AuthorizationError, "no credentials")
    await t.rejects(connect({ servers: nats.url, reconnect: false, user: "client", pass: "guess" }), errors.AuthorizationError, "a wrong password")
  })

  t.test("a client reads and writes keys, enqueues jobs and watches events", async (t) => {
    const seen: Array<string> = []
    const watch = asClient.subscribe(`${Subjects.kvEvents(cluster)}.>`, { callback: (_e, m) => void seen.push(m.subject) })
    await asClient.flush()
    const put = await client.put("users/42", "luffy")
    t.ok(put.revision > 0)
    t.equal((await client.get("users/42"))?.value, "luffy")
    t.equal((await client.scan({ prefix: "users/" })).items.length, 1)
    const jobs = new JobsClient(client)
    const { id } = await jobs.enqueue({ queue: "mail", payload: { to: "a@b.c" } })
    t.equal((await jobs.get(id)).state, "ready")
    t.equal(await requesting(asClient, "$SRV.PING.archio"), "answered", "service discovery ($SRV.PING)")
    const connected = await ArchioClient.connect(nats.url, { cluster, nats: optionsAs(creds.client) })
    t.teardown(() => connected.close())
    t.equal((await connected.get("users/42"))?.value, "luffy", "ArchioClient.connect takes its inbox prefix from the connection's options")
    await until("the change event", () => seen.includes(Subjects.kvKeyEvent(cluster, "users/42")))
    watch.unsubscribe()
    t.same(clientErrors, [], "nothing the client did so far was refused")
  })

  t.test("a client can neither publish nor subscribe on Raft subjects; the cluster is unaffected", async (t) => {
    const leader = await nodes.waitForLeader(10_000)
    const follower = nodes.ids.find((id) => id !== leader)!
    const before = (await nodes.status(follower))!
    // A forged AppendEntries from the leader with a far higher term: a follower that got it would
    // adopt the term (a term no election reaches in this test).
    const forgedTerm = before.term + 1000
    const forged = encodeRaftMessage({ type: "append", from: leader, to: follower, term: forgedTerm, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, round: 1, entries: [] })
    const subject = Subjects.raft(cluster, follower, "append")
    asClient.publish(subject, forged)
    asClient.publish(Subjects.raft(cluster, follower, "timeout_now"), encodeRaftMessage({ type: "timeout_now", from: leader, to: follower, term: forgedTerm }))
    await asClient.flush()
    await until("the refusal", () => clientErrors.includes(refusedPublish(subject)))
    t.equal(await subscribing(asClient, Subjects.raftInbox(cluster, leader)), refusedSubscription(Subjects.raftInbox(cluster, leader)), "reading a node's Raft inbox")
    t.equal(await subscribing(asClient, `archio.${cluster}.raft.>`), refusedSubscription(`archio.${cluster}.raft.>`), "reading every Raft subject")
    t.equal(await subscribing(asClient, `archio.${cluster}.kv.put`), refusedSubscription(`archio.${cluster}.kv.put`), "serving (stealing) the service's requests")
    asClient.publish(Subjects.jobEvent(cluster, "mail", "1", "completed"), "{}")
    await asClient.flush()
    await until("the forged event's refusal", () => clientErrors.includes(refusedPublish(Subjects.jobEvent(cluster, "mail", "1", "completed"))))
    await sleep(300)
    for (const id of nodes.ids) t.ok((await nodes.status(id))!.term < forgedTerm, `${id} never saw the forged term`)
    t.equal(await nodes.waitForLeader(10_000), leader, "the leader is unchanged")
    t.ok((await client.put("after", "still serving")).revision > 0, "the cluster keeps serving writes")
    t.ok(asClient.isClosed() === false, "the client's connection stays up (a refusal is not a disconnect)")

    // The control: the same forged message from a node's credentials does reach the follower,
    // so the refusal above is what protected it. The cluster then elects again.
    const asNode = await connectAs(t, nats.url, creds.node)
    asNode.publish(subject, forged)
    await asNode.flush()
    await until("the follower to take the forged term", async () => ((await nodes.status(follower))?.term ?? 0) >= forgedTerm, patiently)
    await asNode.close()
    await nodes.waitForLeader(30_000)
    t.ok((await client.put("after-control", "ok")).revision > 0, "the cluster serves again after the control")
  })

  t.test("a client cannot read other users' replies", async (t) => {
    for (const inbox of ["_INBOX_admin.>", "_INBOX_worker.>", "_INBOX_node.>", "_INBOX.>", ">"]) {
      t.equal(await subscribing(asClient, inbox), refusedSubscription(inbox), inbox)
    }
    t.equal(await subscribing(asClient, "_INBOX_client.anything"), "open", "its own inbox is readable")
    // Without its inbox prefix the typed client says why nothing can come back, at once.
    const noPrefix = await connectAs(t, nats.url, creds.client, { inboxPrefix: "_INBOX" })
    const lost = new ArchioClient(noPrefix, { cluster, deadlineMs: 10_000 })
    const started = performance.now()
    const e = await lost.get("users/42").catch((e: unknown) => e)
    t.match(e, { code: "forbidden", message: /refuses this client's replies on _INBOX\.archio\..*NATS_INBOX_PREFIX/ })
    t.ok(performance.now() - started < 5000, "fails fast, not at the deadline")
  })

  t.test("a client cannot call admin subjects", async (t) => {
    const leader = await nodes.waitForLeader(10_000)
    for (const subject of [
      Subjects.admin(cluster, "status"),
      Subjects.admin(cluster, "snapshot"),
      Subjects.admin(cluster, "remove"),
      Subjects.node(cluster, leader, "admin.status"),
      Subjects.node(cluster, leader, "readindex"),
      Subjects.jobs(cluster, "purge"),
      Subjects.jobs(cluster, "lease")
    ]) {
      t.equal(await requesting(asClient, subject), refusedPublish(subject), subject)
    }
    const started = performance.now()
    const e = await client.status().catch((e: unknown) => e)
    t.match(e, { code: "forbidden", message: /refuses this client's requests on archio\.sec\.admin\.status/ })
    t.ok(performance.now() - started < 5000, "the typed client fails fast")
  })

  t.test("a worker leases and reports on jobs but cannot write keys or enqueue", async (t) => {
    for (const subject of [Subjects.kv(cluster, "put"), Subjects.kv(cluster, "get"), Subjects.jobs(cluster, "enqueue"), Subjects.admin(cluster, "status")]) {
      t.equal(await requesting(asWorker, subject), refusedPublish(subject), subject)
    }
    await t.rejects(worker.put("k", "v"), { code: "forbidden", message: /refuses this client's requests on archio\.sec\.kv\.put/ })
    t.equal(await admin.get("k"), undefined, "nothing was written")
    t.equal(await subscribing(asWorker, `${Subjects.kvEvents(cluster)}.>`), refusedSubscription(`${Subjects.kvEvents(cluster)}.>`), "no events either")
    const leased = await new JobsClient(worker).lease({ queues: ["nothing-here"], max: 1, workerId: "w", waitMs: 0 })
    t.same(leased, [], "jobs.lease is the worker's")
  })

  t.test("an admin may do what a client may, and the admin subjects", async (t) => {
    t.ok((await admin.put("by-admin", "1")).revision > 0)
    const status = await admin.status()
    t.match(status, { role: /leader|follower/ })
    t.equal(await requesting(nodes.nc, Subjects.admin(cluster, "members")), "answered")
    t.equal(await subscribing(nodes.nc, `archio.${cluster}.raft.>`), refusedSubscription(`archio.${cluster}.raft.>`), "not the Raft subjects")
  })

  t.test("archio worker with worker credentials and archio kv with client credentials, end to end", async (t) => {
    const handler = await writeHandler(dir)
    const jobs = new JobsClient(client)
    const enqueued = await jobs.enqueueBatch([1, 2, 3].map((n) => ({ queue: "e2e", payload: { n } })))
    const w = startWorker(t, { id: "secure-1", natsUrl: nats.url, handler, queues: ["e2e"], args: ["--cluster", cluster], env: envAs(creds.worker) })
    await until("three acks", () => w.outcomes.filter((o) => o.event === "acked").length === 3, patiently)
    for (const id of enqueued.ids) t.equal((await jobs.get(id)).state, "completed", `job ${id} completed`)
    t.equal(await w.kill("SIGTERM"), 0)

    const asClientEnv = { NATS_URL: nats.url, CLUSTER: cluster, ...envAs(creds.client) }
    const put = await runArchio(["kv", "put", "cli", "works"], asClientEnv)
    t.equal(put.code, 0, put.err)
    const get = await runArchio(["kv", "get", "cli"], asClientEnv)
    t.equal(get.out.trim(), "works")
    const asWorkerEnv = { NATS_URL: nats.url, CLUSTER: cluster, ...envAs(creds.worker) }
    const denied = await runArchio(["kv", "put", "cli", "nope"], asWorkerEnv)
    t.equal(denied.code, 1)
    t.match(denied.err, /^archio kv put: forbidden: the NATS server refuses this client's requests on archio\.sec\.kv\.put/)
    const noPrefix = await runArchio(["kv", "get", "cli"], { NATS_URL: nats.url, CLUSTER: cluster, NATS_USER: "client", NATS_PASS: creds.client.password })
    t.equal(noPrefix.code, 1)
    t.match(noPrefix.err, /the inbox prefix _INBOX is not readable by user "client".*NATS_INBOX_PREFIX/)
    const status = await runArchio(["status"], { NATS_URL: nats.url, CLUSTER: cluster, ...envAs(creds.admin) })
    t.equal(status.code, 0, status.err)
    t.match(status.out, /leader/)
  })

  t.test("a node with a wrong password stops at start: one line, exit 1, no secret", async (t) => {
    const data = await tempDir(t)
    const wrong = "wrong-password-7f3a9c"
    const urlSecret = "secret-in-the-url-55e1"
    const withPass = await runArchio(["node", "--id", "n9", "--cluster", cluster, "--data", join(data, "a")], { NATS_URL: nats.url, NATS_USER: "node", NATS_PASS: wrong, NATS_INBOX_PREFIX: "_INBOX_node" })
    t.equal(withPass.code, 1)
    t.ok(withPass.ms < 20_000, `exits at once (${Math.round(withPass.ms)} ms), no crash loop`)
    const problems = withPass.err.split("\n").filter((l) => l.startsWith("archio node n9:"))
    t.same(problems, [`archio node n9: NATS at ${nats.url} refused user "node" (NATS_USER, NATS_PASS): Authorization Violation`])
    t.notMatch(withPass.out + withPass.err, wrong, "the password is not shown")
    const inUrl = nats.url.replace("nats://", `nats://node:${urlSecret}@`)
    const withUrl = await runArchio(["node", "--id", "n9", "--cluster", cluster, "--data", join(data, "b"), "--nats", inUrl], {})
    t.equal(withUrl.code, 1)
    t.match(withUrl.err, /archio node n9: NATS at nats:\/\/node:\*\*\*@127\.0\.0\.1:\d+ refused/)
    t.notMatch(withUrl.out + withUrl.err, urlSecret, "a password in the URL is not shown")
  })

  t.test("no secret in the nodes' logs, admin.status, metrics or refusals", async (t) => {
    const secrets = [creds.node.password, httpToken]
    const statuses = await Promise.all(nodes.ids.map((id) => nodes.status(id)))
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
    t.match(metrics, /archio_raft_term/, "the metrics are there")
    const unauthorized = await fetch(`http://127.0.0.1:${httpPort}/set`, { method: "PUT", headers: { authorization: `Bearer ${creds.node.password}` }, body: '{"key":"x","value":"y"}' })
    t.equal(unauthorized.status, 401)
    const refusal = await unauthorized.text()
    const raftStatus = await (await fetch(`http://127.0.0.1:${httpPort}/raft/status`, { headers: { authorization: `Bearer ${httpToken}` } })).text()
    const logDir = join(dir, "logs")
    const logs = (await Promise.all((await readdir(logDir)).map((f) => readFile(join(logDir, f), "utf8")))).join("\n")
    t.match(logs, /auth=user node inbox=_INBOX_node/, "the logs say who the node is")
    for (const [where, text] of [["logs", logs], ["admin.status", JSON.stringify(statuses)], ["metrics", metrics], ["a 401", refusal], ["/raft/status", raftStatus]] as const) {
      for (const secret of secrets) t.notOk(text.includes(secret), `${where} do not show ${secret === httpToken ? "the HTTP token" : "the node password"}`)
    }
  })
})
