import t, { type Test } from "tap"
import { Cause, Effect } from "effect"
import { spawn, type ChildProcess } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { archio as topLevel, main } from "../../bootstrap/cli.ts"
import { parseConfig } from "../../bootstrap/config.ts"
import { loggerLayer } from "../../bootstrap/logging.ts"
import { freePort } from "../../bootstrap/natsServer.ts"
import { nodeCommand, runNodeProcess } from "../../bootstrap/nodeCommand.ts"
import type { Env } from "../../bootstrap/options.ts"
import { statusCommand } from "../../bootstrap/statusCommand.ts"
import * as Storage from "../../bootstrap/storage.ts"
import type { Terminal } from "../../bootstrap/terminal.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

const bin = fileURLToPath(new URL("../../bin/archio.js", import.meta.url))

// Every child pays Node's and effect's start-up (1-3 s on a busy machine); allow more than
// the default 120 s for the whole file.
t.setTimeout(300_000)

interface Run {
  readonly child: ChildProcess
  readonly out: () => string
  readonly err: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts `archio ...args`; killed at teardown if still running. */
const archio = (tt: Test, args: ReadonlyArray<string>, env: Record<string, string> = {}, stdin: "ignore" | "pipe" = "ignore"): Run => {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(NODE_ID|CLUSTER|NATS_|PEERS|DATA_DIR|HTTP_PORT|PORT|KVSTORE_PORT|RAFT_|LOG_LEVEL)/.test(k))
  )
  // Child processes run the esbuild bundle while tap's own process uses ts-node: merging their
  // V8 coverage by byte offset would be wrong, so children do not report coverage.
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...clean, _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env },
    stdio: [stdin, "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()))
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once("exit", (code, signal) => done({ code, signal }))
  )
  tt.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  })
  return { child, out: () => out, err: () => err, exited }
}

/** Child processes start slowly on a busy machine. */
const startup = { timeoutMs: 20_000, everyMs: 100 }

/** Runs `main` in this process with captured output. */
const run = async (argv: ReadonlyArray<string>, env: Env = {}) => {
  let out = ""
  let err = ""
  const terminal: Terminal = { out: (s) => void (out += s), err: (s) => void (err += s), env }
  const code = await main(argv, terminal)
  return { code, out, err }
}

t.test("usage: help, version, unknown commands and bad flags", async (t) => {
  const usage = topLevel.help()
  const help = await run(["--help"])
  t.equal(help.code, 0)
  t.equal(help.out, usage)
  t.equal((await run(["help"])).out, usage)
  t.match((await run(["-h"])).out, /Usage: archio <command>/)

  const none = await run([])
  t.equal(none.code, 2)
  t.equal(none.err, usage)

  const unknown = await run(["frobnicate"])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /^archio: unknown command "frobnicate"\n\nUsage/)

  const version = await run(["--version"])
  t.equal(version.code, 0)
  t.match(version.out, /^\d+\.\d+\.\d+\n$/)
  t.equal((await run(["-v"])).out, version.out)

  const nodeHelp = await run(["node", "--help"])
  t.equal(nodeHelp.code, 0)
  t.equal(nodeHelp.out, nodeCommand.help())
  t.equal((await run(["node", "-h"])).out, nodeCommand.help())

  const badFlag = await run(["node", "--id", "n1", "--frob", "x"])
  t.equal(badFlag.code, 2)
  t.equal(badFlag.err, 'archio node: unknown flag "--frob" (see archio node --help)\nRun "archio node --help" for the flags and variables.\n')

  const badEnv = await run(["node", "--id", "n1"], { HTTP_PORT: "80a" })
  t.equal(badEnv.code, 2)
  t.match(badEnv.err, 'archio node: HTTP_PORT must be an integer from 1 to 65535, got "80a"')

  const statusHelp = await run(["status", "-h"])
  t.equal(statusHelp.code, 0)
  t.equal(statusHelp.out, statusCommand.help())

  const statusBad = await run(["status", "--timeout", "x"])
  t.equal(statusBad.code, 2)
  t.match(statusBad.err, 'archio status: --timeout must be an integer from 1 to 600000, got "x"')

  const devHelp = await run(["dev", "--help"])
  t.equal(devHelp.code, 0)
  t.match(devHelp.out, /Usage: archio dev/)

  const devBad = await run(["dev", "--nodes", "5"])
  t.equal(devBad.code, 2)
  t.equal(devBad.err, 'archio dev: unknown flag "--nodes" (see archio dev --help)\nRun "archio dev --help" for the flags and variables.\n')
})

t.test("bin/archio.js: exit codes of the real command", async (t) => {
  const help = archio(t, ["--help"])
  const unknown = archio(t, ["frobnicate"])
  const badEnv = archio(t, ["node", "--id", "n1"], { HTTP_PORT: "80a" })
  t.same(await help.exited, { code: 0, signal: null })
  t.equal(help.out(), topLevel.help())
  t.equal((await unknown.exited).code, 2)
  t.match(unknown.err(), 'archio: unknown command "frobnicate"')
  t.equal((await badEnv.exited).code, 2)
  t.match(badEnv.err(), 'archio node: HTTP_PORT must be an integer from 1 to 65535, got "80a"')
})

t.test("archio status --node, in process: JSON from a node, clear errors otherwise", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  nc.subscribe("archio.s.node.n1.admin.status", { callback: (_e, m) => void m.respond(JSON.stringify({ ok: true, id: "n1" })) })
  nc.subscribe("archio.s.node.n2.admin.status", { callback: (_e, m) => void m.respond("not json") })
  nc.subscribe("archio.s.node.n3.admin.status", { callback: () => undefined })
  await nc.flush()
  const ok = await run(["status", "--cluster", "s", "--node", "n1"], { NATS_URL: server.url })
  t.equal(ok.code, 0, ok.err)
  t.equal(ok.out, '{\n  "ok": true,\n  "id": "n1"\n}\n', "pretty-printed JSON")
  const raw = await run(["status", "--cluster", "s", "--node", "n2", "--nats", server.url])
  t.equal(raw.out, "not json\n", "a reply that is not JSON is printed as it came")
  const silent = await run(["status", "--cluster", "s", "--node", "n3", "--nats", server.url, "--timeout", "300"])
  t.equal(silent.code, 1)
  t.equal(silent.err, "archio status: no answer on archio.s.node.n3.admin.status within 300 ms\n")
  const nobody = await run(["status", "--nats", server.url])
  t.equal(nobody.code, 1)
  t.match(
    nobody.err,
    `archio status: no archio node answers on archio.dev.admin.members or archio.dev.admin.status at ${server.url}: is the cluster running, and is its cluster name "dev"?`
  )
  const creds = await run(["status", "--nats", server.url, "--nats-creds", "/nonexistent/x.creds"])
  t.equal(creds.code, 1)
  t.match(creds.err, "archio status: cannot read the NATS creds file /nonexistent/x.creds")
})

t.test("runNodeProcess, in process: SIGTERM stops it with code 0; a second signal is only noted", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const parsed = parseConfig(["--id", "n1", "--nats", server.url, "--data", join(dir, "n1"), "--log-level", "error"], {})
  if (parsed._tag === "Left") throw new Error(parsed.left.message)
  const nc = await natsClient(t, server.url)
  const listeners = process.listenerCount("SIGTERM") + process.listenerCount("SIGINT")
  let err = ""
  const done = runNodeProcess(parsed.right, { out: () => undefined, err: (s) => void (err += s), env: {} })
  await until("the node to answer", async () => (await nc.request("archio.dev.node.n1.admin.status", "", { timeout: 300 }), true), startup)
  process.emit("SIGTERM", "SIGTERM")
  process.emit("SIGINT", "SIGINT")
  t.equal(await done, 0)
  t.equal(err, "")
  t.equal(process.listenerCount("SIGTERM") + process.listenerCount("SIGINT"), listeners, "signal handlers removed")

  const taken = join(dir, "n2")
  const second = parseConfig(["--id", "n2", "--nats", server.url, "--data", taken, "--log-level", "none"], {})
  if (second._tag === "Left") throw new Error(second.left.message)
  let err2 = ""
  const code = await Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(Storage.make(taken), () =>
        Effect.promise(() => runNodeProcess(second.right, { out: () => undefined, err: (s) => void (err2 += s), env: {} }))
      )
    )
  )
  t.equal(code, 1)
  t.match(err2, `archio node n2: data dir ${taken} is in use by another archio node (already open in this process)`)
})

t.test("the log line format", async (t) => {
  const lines: Array<string> = []
  const write = process.stderr.write
  process.stderr.write = ((chunk: string) => {
    lines.push(chunk)
    return true
  }) as typeof process.stderr.write
  try {
    await Effect.runPromise(
      Effect.logWarning("careful", 42).pipe(
        Effect.annotateLogs("node", "n1"),
        Effect.zipRight(Effect.logDebug("hidden")),
        Effect.zipRight(Effect.logError("boom", Cause.fail("why"))),
        Effect.provide(loggerLayer("info"))
      )
    )
  } finally {
    process.stderr.write = write
  }
  t.equal(lines.length, 2, "debug is below the level")
  t.match(lines[0], /^\d{4}-\d\d-\d\dT[0-9:.]+Z WARN {2}careful 42 node=n1\n$/)
  t.match(lines[1], /ERROR boom\nError: why/)
})

t.test("archio node answers admin.status, refuses a second node on its data dir, and stops cleanly on SIGTERM", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const data = join(dir, "n1")
  const node = archio(t, ["node", "--id", "n1", "--peers", "n1,n2,n3", "--data", data], { NATS_URL: server.url, CLUSTER: "test" })
  const nc = await natsClient(t, server.url)
  const ask = async (subject: string): Promise<Record<string, unknown> | undefined> => {
    try {
      return (await nc.request(subject, "", { timeout: 500 })).json<Record<string, unknown>>()
    } catch {
      return undefined
    }
  }
  await until("the node to answer", async () => (await ask("archio.test.admin.status")) !== undefined, startup)
  const status = await ask("archio.test.admin.status")
  t.match(status, { ok: true, id: "n1", cluster: "test", members: [{ id: "n1", role: "voter" }, { id: "n2", role: "voter" }, { id: "n3", role: "voter" }] })
  t.match(await ask("archio.test.node.n1.admin.status"), { ok: true, id: "n1" }, "per-node subject")

  const cli = archio(t, ["status", "--nats", server.url, "--cluster", "test"])
  const cliNode = archio(t, ["status", "--node", "n1"], { NATS_URL: server.url, CLUSTER: "test" })
  const cliMissing = archio(t, ["status", "--nats", server.url, "--cluster", "test", "--node", "n9", "--timeout", "500"])
  const wrongCluster = archio(t, ["status", "--nats", server.url])
  const second = archio(t, ["node", "--id", "n1", "--data", data, "--nats", server.url])
  // One of three members running: the table shows it, and says what is wrong (exit 1).
  t.equal((await cli.exited).code, 1, cli.err())
  t.match(cli.out(), /^cluster test: no single leader; 1 of 3 members answer\nNODE /)
  t.match(cli.out(), /\nn1 +(follower|precandidate|candidate) +voter +\d+ /)
  t.match(cli.out(), "\nproblem: no leader: writes and linearizable reads fail until one is elected\n")
  t.match(cli.out(), "\nproblem: n2 does not answer: nothing answers on archio.test.node.n2.admin.status\n")
  t.equal((await cliNode.exited).code, 0, cliNode.err())
  t.match(JSON.parse(cliNode.out()), { id: "n1" })
  t.equal((await cliMissing.exited).code, 1)
  t.match(cliMissing.err(), "archio status: node n9 does not answer on archio.test.node.n9.admin.status")
  t.equal((await wrongCluster.exited).code, 1)
  t.match(wrongCluster.err(), "no archio node answers on archio.dev.admin.members or archio.dev.admin.status at")

  t.equal((await second.exited).code, 1)
  t.match(second.err(), `archio node n1: data dir ${data} is in use by another archio node`)
  t.notMatch(second.err(), /\n\s+at /, "no stack trace")

  node.child.kill("SIGTERM")
  t.same(await node.exited, { code: 0, signal: null })
  t.match(node.err(), /SIGTERM: shutting down/)
  t.match(node.err(), /stopped cleanly/)
  const reopened = await Effect.runPromise(
    Effect.scoped(Effect.map(Storage.make(data), (s) => s.db.status))
  )
  t.equal(reopened, "open", "the database was closed and opens again")
})

t.test("archio status without a server says so", async (t) => {
  const port = await freePort()
  const result = await run(["status", "--nats", `nats://127.0.0.1:${port}`])
  t.equal(result.code, 1)
  t.match(result.err, `archio status: cannot connect to NATS at nats://127.0.0.1:${port}`)
})

t.test("a node still waiting for NATS stops promptly on SIGINT", async (t) => {
  const port = await freePort()
  const dir = await tempDir(t)
  const node = archio(t, ["node", "--id", "n1", "--nats", `nats://127.0.0.1:${port}`, "--data", join(dir, "n1")])
  await until("the node to start connecting", () => node.err().includes("connecting to NATS"), startup)
  const started = Date.now()
  node.child.kill("SIGINT")
  t.same(await node.exited, { code: 0, signal: null })
  t.ok(Date.now() - started < 5000, "no hang")
})

t.test("a supervised node stops when its launcher goes away (stdin closes)", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const node = archio(t, ["node", "--id", "n1", "--nats", server.url, "--data", join(dir, "n1")], { ARCHIO_SUPERVISED: "1" }, "pipe")
  await until("the node to be ready", () => node.err().includes("ready"), startup)
  node.child.stdin!.end()
  t.same(await node.exited, { code: 0, signal: null })
  t.match(node.err(), /launcher exited: shutting down/)
})

t.test("a node that cannot authenticate exits 1 with the server's reason", async (t) => {
  const server = await natsServer(t, { args: ["--user", "u", "--pass", "p"] })
  const dir = await tempDir(t)
  const node = archio(t, ["node", "--id", "n1", "--data", join(dir, "n1")], { NATS_URL: server.url, NATS_USER: "u", NATS_PASS: "wrong" })
  t.equal((await node.exited).code, 1)
  t.match(node.err(), /archio node n1: NATS at nats:\/\/127\.0\.0\.1:\d+ refused user "u" \(NATS_USER, NATS_PASS\)/)
  t.match(node.err(), /Authorization Violation/)
  t.notMatch(node.err(), /wrong/, "the password is not printed")
})
