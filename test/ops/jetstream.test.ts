/**
 * The JetStream peer of `kv-vs` (ops/bench/jetstream.ts): its cluster configuration, a real
 * three-server `nats-server -js` cluster holding an R3 KV bucket that answers direct gets, and
 * what Ctrl-C leaves of such a cluster (ops/bench/cleanup.ts): nothing.
 */
import t from "tap"
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { connect } from "@nats-io/transport-node"
import { jetstreamManager } from "@nats-io/jetstream"
import { canConnect, findNatsServer } from "../../bootstrap/natsServer.ts"
import { bucketLeader, createBucket, jetStreamConfig, jetStreamServers, withJetStreamKv } from "../../ops/bench/jetstream.ts"

t.test("each server's config: its own name, ports and store folder, routes to the other two", async (t) => {
  const servers = jetStreamServers("/tmp/x", [
    { client: 4101, route: 6101 },
    { client: 4102, route: 6102 },
    { client: 4103, route: 6103 }
  ])
  t.same(
    servers.map((s) => s.storeDir),
    ["/tmp/x/js1/store", "/tmp/x/js2/store", "/tmp/x/js3/store"]
  )
  t.equal(
    jetStreamConfig(servers[1]!, servers),
    [
      "server_name: js2",
      "listen: 127.0.0.1:4102",
      "jetstream {",
      '  store_dir: "/tmp/x/js2/store"',
      "}",
      "cluster {",
      "  name: archio-bench",
      "  listen: 127.0.0.1:6102",
      "  routes: [",
      "    nats-route://127.0.0.1:6101",
      "    nats-route://127.0.0.1:6103",
      "  ]",
      "}",
      ""
    ].join("\n")
  )
})

t.test("three servers hold an R3 bucket: a put through the leader's server is read by a direct get through another", { skip: findNatsServer() === undefined ? "nats-server is not installed" : false }, async (t) => {
  let dirs: string[] = []
  await withJetStreamKv(async ({ kv, nc, leader, cluster, version }) => {
    dirs = cluster.servers.map((s) => s.storeDir)
    t.same(dirs.filter((d) => existsSync(d)).length, 3, "one store folder per server")
    t.match(version, /^nats-server \d+\.\d+/)
    t.ok(["js1", "js2", "js3"].includes(leader), `the stream leader is one of ours (${leader})`)
    t.equal(nc.info?.server_name, leader, "the client is on the stream leader's server")
    const info = await (await jetstreamManager(nc)).streams.info("KV_bench")
    t.equal(info.config.num_replicas, 3, "three replicas")
    t.equal(info.config.allow_direct, true, "direct gets allowed")
    t.equal(info.cluster?.replicas?.length, 2, "two followers besides the leader")
    t.equal(await bucketLeader(nc, "bench"), leader)

    const revision = await kv.put("k1", "hello")
    t.ok(revision > 0)
    const otherUrl = cluster.urls[cluster.servers.findIndex((s) => s.name !== leader)]!
    const other = await connect({ servers: otherUrl, noAsyncTraces: true, noRandomize: true, name: "archio-test" })
    try {
      const bucket = await createBucket(other, "bench", 3)
      // A direct get may be answered by a replica that has not applied the put yet.
      let got = await bucket.get("k1")
      for (let i = 0; i < 50 && got === null; i++) {
        await new Promise((r) => setTimeout(r, 20))
        got = await bucket.get("k1")
      }
      t.equal(got?.string(), "hello", "the value put through the leader's server is read through another")
      t.equal(got?.revision, revision)
    } finally {
      await other.close()
    }
  })
  t.same(
    dirs.filter((d) => existsSync(d)),
    [],
    "stopping removes every store folder"
  )
})

const benchDir = fileURLToPath(new URL("../../ops/bench/", import.meta.url))

t.test("Ctrl-C in the middle of a run stops the three servers, removes their folders and kills any other child", { skip: findNatsServer() === undefined ? "nats-server is not installed" : false }, async (t) => {
  const dir = t.testdir({
    "run.ts": [
      `import { spawn } from "node:child_process"`,
      `import { withStop } from ${JSON.stringify(join(benchDir, "cleanup.ts"))}`,
      `import { startJetStreamCluster } from ${JSON.stringify(join(benchDir, "jetstream.ts"))}`,
      `const cluster = await startJetStreamCluster(3)`,
      // A child nobody registered a stop for: the last resort kills it.
      `const stray = spawn("sleep", ["600"], { stdio: "ignore" })`,
      `await withStop(cluster.stop, async () => {`,
      `  console.log(JSON.stringify({ ports: cluster.servers.map((s) => s.clientPort), dirs: cluster.servers.map((s) => s.storeDir), stray: stray.pid }))`,
      `  setInterval(() => {}, 1000)`,
      `  await new Promise(() => {})`,
      `})`,
      ``
    ].join("\n")
  })
  const child = spawn(process.execPath, ["--import", "tsx", join(dir, "run.ts")], { env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: "0" }, stdio: ["ignore", "pipe", "pipe"] })
  t.teardown(() => {
    child.kill("SIGKILL")
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve)
    void exited.then((code) => reject(new Error(`the run exited (${code}) before it started its cluster`)))
  })
  const started = JSON.parse(first) as { ports: number[]; dirs: string[]; stray: number }
  t.same(await Promise.all(started.ports.map((p) => canConnect("127.0.0.1", p))), [true, true, true], "three servers up")
  child.kill("SIGINT")
  t.equal(await exited, 130, "exits as interrupted")
  t.same(await Promise.all(started.ports.map((p) => canConnect("127.0.0.1", p))), [false, false, false], "no server left listening")
  t.same(
    started.dirs.filter((d) => existsSync(d)),
    [],
    "their folders removed"
  )
  let strayAlive = true
  for (let i = 0; i < 50 && strayAlive; i++) {
    strayAlive = existsSync(`/proc/${started.stray}`) && !readFileSync(`/proc/${started.stray}/stat`, "utf8").includes(") Z ")
    if (strayAlive) await new Promise((r) => setTimeout(r, 20))
  }
  t.notOk(strayAlive, "the unregistered child was killed")
})
