import t, { type Test } from "tap"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { pickHttpPorts, prefixFor } from "../../bootstrap/dev.ts"
import { canConnect, freePort } from "../../bootstrap/natsServer.ts"
import { devInProcess } from "../support/dev.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"
import * as net from "node:net"

const bin = fileURLToPath(new URL("../../bin/archio.js", import.meta.url))

// Every child pays the TypeScript loader's start-up (1-3 s on a busy machine); allow more than
// the default 120 s for the whole file.
t.setTimeout(300_000)

/** Three nodes and a nats-server take a while to start on a busy machine. */
const startup = { timeoutMs: 60_000, everyMs: 100 }

/** True while any process is left in process group `pgid`. */
const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Starts `archio dev` in its own process group (so the test can check that nothing is left
 * behind, and kill everything at teardown if a check fails), with `cwd` as its working folder.
 */
const startDev = (tt: Test, cwd: string, env: Record<string, string>) => {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NATS_|CLUSTER|NODE_ID|PEERS|DATA_DIR|HTTP_PORT)/.test(k)))
  // No coverage from children: they transpile with tsx, tap's own process with ts-node, and
  // V8 coverage merged by byte offset across the two would be wrong.
  const child = spawn(process.execPath, [bin, "dev"], {
    cwd,
    env: { ...clean, NO_COLOR: "1", _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true
  })
  let out = ""
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()))
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once("exit", (code, signal) => done({ code, signal })))
  const pgid = child.pid!
  tt.teardown(() => {
    if (groupAlive(pgid)) process.kill(-pgid, "SIGKILL")
  })
  return { child, pgid, out: () => out, exited }
}

t.test("prefixes are coloured only when asked", async (t) => {
  t.equal(prefixFor("n1", 0, false), "[n1] ")
  t.equal(prefixFor("n2", 1, true), "\x1b[35m[n2]\x1b[0m ")
})

t.test("HTTP ports: 8081 and up, a free port instead of a taken one", async (t) => {
  const base = await freePort()
  const blocker = net.createServer()
  await new Promise<void>((done) => blocker.listen(base + 1, () => done()))
  t.teardown(() => blocker.close())
  const ports = await pickHttpPorts(3, base)
  t.equal(ports[0], base)
  t.not(ports[1], base + 1, "the taken port is replaced")
  t.equal(ports.length, 3)
})

t.test("archio dev starts its own nats-server and three nodes, and SIGINT stops everything", async (t) => {
  const cwd = await tempDir(t)
  const port = await freePort()
  t.notOk(await canConnect("127.0.0.1", port, 200), "nothing listens at NATS_URL")
  const dev = startDev(t, cwd, { NATS_URL: `nats://127.0.0.1:${port}` })

  await until("the cluster to come up", () => dev.out().includes("Ctrl-C stops the cluster."), startup)
  const out = dev.out()
  t.match(out, `[dev] no NATS server answers at nats://127.0.0.1:${port}: starting nats-server on a free port`)
  const url = /answer on NATS at (nats:\/\/[0-9.:]+)/.exec(out)?.[1]
  t.ok(url !== undefined, "the NATS URL is printed")
  t.not(url, `nats://127.0.0.1:${port}`, "its own server, on another port")
  t.match(out, `nats req -s ${url} archio.dev.admin.status ''`, "says what to type next")
  t.match(out, `npx archio status --nats ${url}`)
  t.match(out, `npx archio kv put name luffy --nats ${url}`, "and how to write a key")
  t.match(out, /curl localhost:\d+\/health/, "and where HTTP answers")
  for (const id of ["n1", "n2", "n3"]) {
    t.match(out, new RegExp(`^\\[${id}\\] .*node ${id} ready`, "m"), `${id}'s lines are prefixed`)
    t.ok(existsSync(join(cwd, ".archio", id)), `${id}'s data is under ./.archio/${id}`)
  }
  t.ok(existsSync(join(cwd, ".archio", "nats-server.log")), "nats-server logs under ./.archio")

  const nc = await natsClient(t, url!)
  for (const id of ["n1", "n2", "n3"]) {
    const reply = await nc.request(`archio.dev.node.${id}.admin.status`, "", { timeout: 2000 })
    t.match(reply.json(), { ok: true, id, cluster: "dev", members: [{ id: "n1", role: "voter" }, { id: "n2", role: "voter" }, { id: "n3", role: "voter" }] }, `${id} answers on its own subject`)
  }
  t.match((await nc.request("archio.dev.admin.status", "", { timeout: 2000 })).json(), { ok: true, cluster: "dev" })
  await nc.close()

  process.kill(dev.child.pid!, "SIGINT")
  t.same(await dev.exited, { code: 0, signal: null }, "exit code 0")
  t.match(dev.out(), "[dev] stopping n1, n2, n3")
  t.match(dev.out(), "[dev] stopping nats-server")
  for (const id of ["n1", "n2", "n3"]) t.match(dev.out(), new RegExp(`^\\[${id}\\] .*stopped cleanly`, "m"), `${id} stopped cleanly`)
  await until("the process group to empty", () => !groupAlive(dev.pgid), { timeoutMs: 5000 })
  t.notOk(groupAlive(dev.pgid), "no leftover processes")
  t.notOk(await canConnect("127.0.0.1", Number(url!.split(":").pop()), 200), "its nats-server is gone")
})

t.test("archio dev, in process: uses a NATS server that answers, restarts a node that dies, leaves the server running", async (t) => {
  const cwd = await tempDir(t)
  const server = await natsServer(t)
  const env = { ...process.env, NATS_URL: server.url, CLUSTER: "other", _TAPJS_PROCESSINFO_COVERAGE_: "0" }
  const dev = devInProcess(t, [], { cwd, env })
  const { pids } = dev
  await until("the cluster to come up", () => dev.output().includes('cluster "other" is up'), startup)
  dev.notePids()
  // Three, or more when a node was moved off an HTTP port another test's cluster took meanwhile.
  t.ok(pids.length >= 3, `every node started (${pids.length} starts)`)
  for (const id of ["n1", "n2", "n3"]) t.match(dev.output(), `started ${id} (pid`, `${id} started`)
  t.match(dev.output(), `[dev] using the NATS server that answers at ${server.url}`)
  t.match(dev.output(), `npx archio status --nats ${server.url} --cluster other`)
  t.match(dev.output(), /\[dev\] n1: data \.archio\/n1, HTTP port \d+/)
  const nc = await natsClient(t, server.url)
  t.match((await nc.request("archio.other.node.n3.admin.status", "", { timeout: 2000 })).json(), { id: "n3", cluster: "other" })

  // A node that dies is reported and restarted.
  const n2Starts = (): number => dev.output().split("started n2").length - 1
  const startsBefore = n2Starts()
  const n2 = Number([...dev.output().matchAll(/started n2 \(pid (\d+)\)/g)].at(-1)?.[1])
  process.kill(n2, "SIGKILL")
  await until("the crash to be reported", () => dev.output().includes("[dev] n2 exited unexpectedly (signal SIGKILL); restarting it in 1 s"), startup)
  await until("n2 to be started again", () => n2Starts() === startsBefore + 1, startup)
  const again = Number([...dev.output().matchAll(/started n2 \(pid (\d+)\)/g)].at(-1)?.[1])
  pids.push(again)
  await until(
    "n2 to answer again",
    async () => (await nc.request("archio.other.node.n2.admin.status", "", { timeout: 500 })).json<{ uptimeMs: number }>().uptimeMs >= 0,
    startup
  )
  t.not(again, n2, "a new process")

  dev.stop()
  t.equal(await dev.done, 0)
  t.notMatch(dev.output(), "stopping nats-server")
  t.match(dev.output(), "[dev] stopped")
  for (const pid of pids.filter((p) => p !== n2)) {
    let gone = false
    try {
      process.kill(pid, 0)
    } catch {
      gone = true
    }
    t.ok(gone, `node pid ${pid} is gone`)
  }
  t.ok(await canConnect("127.0.0.1", server.port, 500), "the existing server still runs")
})
