/**
 * `archio dev --secure`: its own nats-server with the shipped configuration, fresh credentials
 * for each role in .archio/secure/ (mode 0600) printed once with the URL, anonymous connections
 * refused, nodes connected as `node`, and each role's file usable as it is by `archio` commands.
 */
import t from "tap"
import { connect, errors } from "@nats-io/transport-node"
import { spawnSync } from "node:child_process"
import { readFile, stat } from "node:fs/promises"
import { join } from "node:path"
import { canConnect } from "../../bootstrap/natsServer.ts"
import { roles } from "../../bootstrap/secureNats.ts"
import { binPath } from "../../ops/cluster.ts"
import { devInProcess } from "../support/dev.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

t.setTimeout(240_000)

/** The environment without any NATS or cluster setting of the caller's. */
const cleanEnv = (): Record<string, string> =>
  Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !/^(NATS_|CLUSTER|NODE_ID|PEERS|DATA_DIR|HTTP_)/.test(e[0])))

/** `KEY=value` lines as variables. */
const parseEnvFile = (text: string): Record<string, string> =>
  Object.fromEntries(text.trim().split("\n").map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]))

const archio = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>, cwd: string) =>
  spawnSync(process.execPath, [binPath, ...args], { cwd, env: { ...cleanEnv(), _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env }, encoding: "utf8", timeout: 60_000 })

t.test("--secure refuses NATS settings meant for another server", async (t) => {
  const cwd = await tempDir(t)
  const run = archio(["dev", "--secure"], { NATS_URL: "nats://127.0.0.1:1", NATS_USER: "me" }, cwd)
  t.equal(run.status, 2)
  t.match(run.stderr, "archio dev: --secure starts its own nats-server with generated credentials, so NATS_URL, NATS_USER cannot be used with it: unset them")
})

t.test("archio dev --secure: roles, credentials, anonymous refused, and each role's file works", async (t) => {
  // In process, as the launcher it is (the nodes are child processes either way).
  const cwd = await tempDir(t)
  const dev = devInProcess(t, ["--secure"], { cwd, env: { ...cleanEnv(), NO_COLOR: "1", _TAPJS_PROCESSINFO_COVERAGE_: "0" } })
  await until("the cluster to come up", () => dev.output().includes("Ctrl-C stops the cluster."), { timeoutMs: 90_000, everyMs: 100 })
  dev.notePids()

  const url = /answer on NATS at (nats:\/\/127\.0\.0\.1:\d+); anonymous connections are refused/.exec(dev.output())?.[1]
  t.ok(url !== undefined, "the URL is printed, and that anonymous connections are refused")
  t.not(url, "nats://127.0.0.1:4222", "its own server, never the shared one")
  t.match(dev.output(), "--secure: starting nats-server with .archio/secure/single.conf (ops/nats/single.conf)")

  const secure = join(cwd, ".archio", "secure")
  t.equal((await stat(secure)).mode & 0o777, 0o700, ".archio/secure is the owner's only")
  const files: Record<string, Record<string, string>> = {}
  for (const role of roles) {
    const file = join(secure, `${role}.env`)
    t.equal((await stat(file)).mode & 0o777, 0o600, `${role}.env is mode 0600`)
    const env = parseEnvFile(await readFile(file, "utf8"))
    files[role] = env
    t.match(env, { NATS_URL: url, NATS_USER: role, NATS_INBOX_PREFIX: `_INBOX_${role}` }, `${role}.env connects as ${role}`)
    t.match(env["NATS_PASS"], /^[A-Za-z][A-Za-z0-9]{31}$/, `${role}'s password is generated`)
    t.match(dev.output(), new RegExp(`^\\[dev\\]   ${role} +user ${role} +password ${env["NATS_PASS"]}  inbox prefix _INBOX_${role}  \\.archio/secure/${role}\\.env`, "m"), `${role}'s credentials are printed`)
  }
  t.equal(new Set(roles.map((r) => files[r]!["NATS_PASS"])).size, 4, "four different passwords")
  t.equal((await stat(join(secure, "http.env"))).mode & 0o777, 0o600, "http.env is mode 0600")
  const httpToken = parseEnvFile(await readFile(join(secure, "http.env"), "utf8"))["HTTP_TOKEN"]!
  for (const id of ["n1", "n2", "n3"]) t.match(dev.output(), new RegExp(`^\\[${id}\\] .*auth=user node inbox=_INBOX_node`, "m"), `${id} connects as node`)
  const nodeLines = dev.output().split("\n").filter((line) => /^\[n\d\]/.test(line)).join("\n")
  for (const secret of [...roles.map((r) => files[r]!["NATS_PASS"]!), httpToken]) t.notOk(nodeLines.includes(secret), "no secret in the nodes' logs")

  await t.rejects(connect({ servers: url!, reconnect: false }), errors.AuthorizationError, "anonymous connections are refused")

  const put = archio(["kv", "put", "name", "luffy"], files["client"]!, cwd)
  t.equal(put.status, 0, `client.env writes: ${put.stderr}`)
  t.equal(archio(["kv", "get", "name"], files["client"]!, cwd).stdout.trim(), "luffy", "client.env reads")
  const status = archio(["status"], files["admin"]!, cwd)
  t.equal(status.status, 0, `admin.env sees the cluster: ${status.stderr}`)
  const refused = archio(["kv", "put", "name", "zoro"], files["worker"]!, cwd)
  t.equal(refused.status, 1, "worker.env may not write keys")
  t.match(refused.stderr, "refuses this client's requests on archio.dev.kv.put")

  const httpPort = /localhost:(\d+)\/set/.exec(dev.output())?.[1]
  t.equal((await fetch(`http://127.0.0.1:${httpPort}/set`, { method: "PUT", body: '{"key":"h","value":"1"}' })).status, 401, "the HTTP shim wants the token")
  const authorized = await fetch(`http://127.0.0.1:${httpPort}/set`, { method: "PUT", headers: { authorization: `Bearer ${httpToken}` }, body: '{"key":"h","value":"1"}' })
  t.equal(authorized.status, 200, "and takes the printed one")

  dev.stop()
  t.equal(await dev.done, 0, "a stop is clean")
  for (const pid of dev.pids) t.throws(() => process.kill(pid, 0), `node pid ${pid} is gone`)
  t.notOk(await canConnect("127.0.0.1", Number(url!.split(":").pop()), 200), "its nats-server is gone")
})
