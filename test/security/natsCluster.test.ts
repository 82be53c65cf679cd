/**
 * The shipped three-server configuration (ops/nats/cluster.conf): three nats-servers joined by
 * password-protected routes, each with the four roles, and three nodes each on its own server.
 * Raft and forwarded requests cross the routes with the `node` role's permissions (a follower
 * relays the leader's answer to a client on another server); a client is still fenced off Raft
 * on every server, and no server takes anonymous connections.
 */
import t from "tap"
import { connect, errors } from "@nats-io/transport-node"
import { randomInt } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, startNatsServer, type NatsServerHandle } from "../../bootstrap/natsServer.ts"
import { newCredentials, passwordFrom, serverEnvironment, writeServerConfig } from "../../bootstrap/secureNats.ts"
import { LocalCluster } from "../../ops/cluster.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { encodeRaftMessage } from "../../protocol/raftCodec.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { connectAs, envAs, optionsAs, serverErrors } from "../support/secureNats.ts"
import { tempDir } from "../support/tmp.ts"
import { sleep, until } from "../support/wait.ts"

const cluster = "routed"

t.test("three nats-servers from cluster.conf, a node on each", async (t) => {
  const dir = await tempDir(t, "archio-natscluster-")
  const config = await writeServerConfig(join(dir, "conf"), { cluster, server: "cluster.conf" })
  const credentials = newCredentials()
  const routePassword = passwordFrom(randomInt)
  const routePorts = [await freePort(), await freePort(), await freePort()]
  const routes = `[${routePorts.map((p) => `"nats-route://route:${routePassword}@127.0.0.1:${p}"`).join(", ")}]`
  const servers: Array<NatsServerHandle> = []
  t.teardown(() => Promise.all(servers.map((s) => s.stop())))
  for (const [i, routePort] of routePorts.entries()) {
    servers.push(
      await startNatsServer({
        args: ["-c", config, "-n", `nats-${i + 1}`, "--cluster", `nats://127.0.0.1:${routePort}`],
        env: { ...serverEnvironment(credentials), ARCHIO_ROUTE_PASSWORD: routePassword, ARCHIO_NATS_ROUTES: routes },
        logFile: join(dir, `nats-${i + 1}.log`)
      })
    )
  }
  const urls = servers.map((s) => s.url)

  // The nodes n1, n2, n3 on servers 1, 2, 3; the harness (as admin) on server 1.
  const data = await mkdtemp(join(tmpdir(), "archio-cluster-"))
  const started: { nodes?: LocalCluster } = {}
  t.teardown(async () => {
    await started.nodes?.stop()
    await rm(data, { recursive: true, force: true })
  })
  // start() waits for a leader and for every node to answer the harness on server 1: the
  // routes carry both.
  const nodes = await LocalCluster.start({
    natsUrl: urls[0]!,
    natsUrls: { n1: urls[0]!, n2: urls[1]!, n3: urls[2]! },
    dataRoot: data,
    cluster,
    env: { _TAPJS_PROCESSINFO_COVERAGE_: "0", ...envAs(credentials.node) },
    harness: optionsAs(credentials.admin)
  })
  started.nodes = nodes

  t.test("every server refuses anonymous connections", async (t) => {
    for (const url of urls) await t.rejects(connect({ servers: url, reconnect: false }), errors.AuthorizationError, url)
  })

  t.test("a client on each server writes and reads through the routes", async (t) => {
    const leader = await nodes.waitForLeader(10_000)
    for (const [i, url] of urls.entries()) {
      const nc = await connectAs(t, url, credentials.client)
      const client = new ArchioClient(nc, { cluster, inboxPrefix: credentials.client.inboxPrefix, deadlineMs: 15_000 })
      // Several writes on the service subject: the queue group hands some to followers, which
      // forward them to the leader and relay its answer to this client's inbox.
      for (let n = 0; n < 6; n++) {
        const key = `s${i}/k${n}`
        await nc.request(Subjects.kv(cluster, "put"), JSON.stringify({ key, value: String(n) }), { timeout: 5000 })
        t.equal((await client.get(key))?.value, String(n), `${key} via server ${i + 1}`)
      }
      // Straight to each follower: it forwards to the leader and relays the answer to our inbox.
      for (const follower of nodes.ids.filter((id) => id !== leader)) {
        const answer = await nc.request(Subjects.node(cluster, follower, "kv.put"), JSON.stringify({ key: `s${i}/via-${follower}`, value: "x" }), { timeout: 5000 })
        t.match(answer.json(), { ok: true, node: leader }, `server ${i + 1}: ${follower} relayed the leader's answer`)
      }
    }
  })

  t.test("a client cannot speak Raft on any server", async (t) => {
    const leader = await nodes.waitForLeader(10_000)
    const follower = nodes.ids.find((id) => id !== leader)!
    const term = (await nodes.status(follower))!.term
    const forged = encodeRaftMessage({ type: "append", from: leader, to: follower, term: term + 1000, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, round: 1, entries: [] })
    const subject = Subjects.raft(cluster, follower, "append")
    for (const url of urls) {
      const nc = await connectAs(t, url, credentials.client)
      const seen = serverErrors(nc)
      nc.publish(subject, forged)
      await nc.flush()
      await until(`the refusal on ${url}`, () => seen.includes(`Permissions Violation for Publish to "${subject}"`))
    }
    await sleep(300)
    for (const id of nodes.ids) t.ok((await nodes.status(id))!.term < term + 1000, `${id} never saw the forged term`)
    t.pass("refused on every server")
  })
})
