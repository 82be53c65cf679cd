/**
 * The shipped permission lists (ops/nats/permissions.conf) read as data: every endpoint of the
 * wire contract belongs to a role, each role gets exactly what README's Security section says,
 * and the files render for any cluster and pass `nats-server -t`. Plus the pure helpers of
 * bootstrap/secureNats.ts and bootstrap/tlsProbe.ts.
 */
import t from "tap"
import { spawnSync } from "node:child_process"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { nkeys } from "@nats-io/transport-node"
import { findNatsServer } from "../../bootstrap/natsServer.ts"
import {
  clientEnvironment,
  envFileText,
  forCluster,
  newCredentials,
  passwordFrom,
  roles,
  serverEnvironment,
  shippedDir,
  shippedFiles,
  withNkeys,
  withTls,
  writeServerConfig
} from "../../bootstrap/secureNats.ts"
import { adviceFor, tlsReason, verdictOf } from "../../bootstrap/tlsProbe.ts"
import { endpoints } from "../../protocol/client.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { tempDir } from "../support/tmp.ts"

const shipped = (file: string): Promise<string> => readFile(join(shippedDir, file), "utf8")

/** The quoted strings of the `[...]` that follows `start` in `text`. */
const listAfter = (text: string, start: string): Array<string> => {
  const from = text.indexOf(start)
  if (from === -1) throw new Error(`${start} not found`)
  const open = text.indexOf("[", from)
  const close = text.indexOf("]", open)
  return [...text.slice(open, close).matchAll(/"([^"]+)"/g)].map((m) => m[1]!)
}

/** NATS subject matching: `*` is one token, `>` one or more at the end. */
const matches = (pattern: string, subject: string): boolean => {
  const p = pattern.split(".")
  const s = subject.split(".")
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false
  }
  return p.length === s.length
}
const allowed = (patterns: ReadonlyArray<string>, subject: string): boolean => patterns.some((p) => matches(p, subject))

t.test("every endpoint belongs to a role, and each role gets what the README says", async (t) => {
  const text = await shipped("permissions.conf")
  const publish = {
    client: listAfter(text, "ARCHIO_CLIENT_PUBLISH ="),
    worker: listAfter(text, "ARCHIO_WORKER_PUBLISH ="),
    admin: listAfter(text, "ARCHIO_ADMIN_PUBLISH ="),
    node: listAfter(text, "publish: {")
  }
  const nodeSubscribe = listAfter(text, "subscribe: {")
  const service = (group: string, op: string) => `archio.dev.${group}.${op}`
  const clientOps = ["kv.get", "kv.scan", "kv.put", "kv.del", "kv.cas", "kv.txn", "jobs.enqueue", "jobs.enqueueBatch", "jobs.get", "jobs.list", "jobs.stats", "jobs.cancel", "jobs.retry"]
  const workerOps = ["jobs.lease", "jobs.ack", "jobs.ackBatch", "jobs.fail", "jobs.extend", "jobs.release"]
  for (const [group, ops] of Object.entries(endpoints)) {
    for (const op of Object.keys(ops)) {
      const name = `${group}.${op}`
      const subject = service(group, op)
      const who = (["client", "worker", "admin"] as const).filter((role) => allowed(publish[role], subject))
      t.ok(who.length > 0, `${name} belongs to a role (${who.join(", ")})`)
      t.equal(allowed(publish.client, subject), clientOps.includes(name), `${name}: client ${clientOps.includes(name) ? "may" : "may not"}`)
      t.equal(allowed(publish.worker, subject), workerOps.includes(name), `${name}: worker ${workerOps.includes(name) ? "may" : "may not"}`)
      t.equal(allowed(publish.admin, subject), !workerOps.includes(name), `${name}: admin ${workerOps.includes(name) ? "may not" : "may"}`)
      t.ok(allowed(nodeSubscribe, subject), `${name}: the nodes serve it`)
      t.notOk(allowed(publish.node, subject), `${name}: a node never requests it (it forwards on node subjects)`)
    }
  }
  // Straight to the leader: writes and enqueues for clients, the worker calls for workers.
  for (const op of ["kv.put", "kv.del", "kv.cas", "kv.txn", "jobs.enqueue", "jobs.enqueueBatch"]) t.ok(allowed(publish.client, Subjects.node("dev", "n1", op)), `client: node.<id>.${op}`)
  for (const op of workerOps) t.ok(allowed(publish.worker, Subjects.node("dev", "n1", op)), `worker: node.<id>.${op}`)
  t.ok(allowed(publish.admin, Subjects.node("dev", "n2", "admin.status")), "admin: node.<id>.admin.status")
  for (const role of ["client", "worker", "admin"] as const) {
    t.notOk(allowed(publish[role], Subjects.raft("dev", "n1", "append")), `${role} may not publish Raft`)
    t.notOk(allowed(publish[role], Subjects.node("dev", "n1", "readindex")), `${role} may not ask for a ReadIndex`)
    t.notOk(allowed(publish[role], Subjects.kvKeyEvent("dev", "a")), `${role} may not forge events`)
  }
  t.ok(publish.client.every((s) => publish.admin.includes(s)), "admin may do everything a client may")
  t.same(publish.node, ["archio.dev.raft.>", "archio.dev.node.>", "archio.dev.events.>"], "a node publishes Raft, node-to-node requests and events (answers go by allow_responses)")
  for (const list of [...Object.values(publish), nodeSubscribe]) {
    for (const s of list) t.ok(s.startsWith("archio.dev.") || s.startsWith("$SRV.") || s.startsWith("_INBOX_node."), `${s} is renamed with the cluster or is not Archio's`)
  }
})

t.test("the two kinds of users grant each role the same permissions", async (t) => {
  const strip = (text: string) =>
    [...text.matchAll(/permissions: (\$\w+|\{[^}]*\})/g)].map((m) => m[1])
  const passwords = await shipped("authorization.conf")
  const nkeys = await shipped("authorization-nkeys.conf")
  t.same(strip(nkeys), strip(passwords))
  t.equal(strip(passwords).length, 4)
  for (const role of roles) {
    t.match(passwords, `$ARCHIO_${role.toUpperCase()}_PASSWORD`)
    t.match(nkeys, `$ARCHIO_${role.toUpperCase()}_NKEY`)
    if (role !== "node") t.match(passwords, `"_INBOX_${role}.>"`, `${role} reads only its own inbox`)
  }
})

t.test("rendering: cluster name, TLS and nkeys switches", async (t) => {
  const permissions = await shipped("permissions.conf")
  const prod = forCluster(permissions, "prod")
  t.notMatch(prod, '"archio.dev.', "no subject of the cluster dev is left")
  const uncommented = (text: string) => text.split("\n").filter((line) => !line.startsWith("#")).join("\n")
  t.equal(uncommented(prod).split('"archio.prod.').length, uncommented(permissions).split('"archio.dev.').length, "every one is renamed")
  const sed = spawnSync("sh", ["-c", `sed 's/"archio\\.dev\\./"archio.prod./g'`], { input: permissions, encoding: "utf8" })
  t.equal(sed.stdout, prod, "the sed line the file's comment gives does the same")
  for (const file of ["single.conf", "cluster.conf"]) {
    const text = await shipped(file)
    t.match(withTls(text), /^include \.\/tls\.conf$/m, `${file}: TLS switched on`)
    t.match(withNkeys(text), /^include \.\/authorization-nkeys\.conf$/m, `${file}: nkeys switched on`)
  }
  t.throws(() => withTls("listen: 4222\n"), /no commented-out `include \.\/tls\.conf` line/)
  t.throws(() => withNkeys("listen: 4222\n"), /no `include \.\/authorization\.conf` line/)
})

t.test("nats-server accepts every shipped combination", { skip: findNatsServer() === undefined ? "nats-server is not installed" : false }, async (t) => {
  const credentials = newCredentials()
  const env = {
    ...process.env,
    ...serverEnvironment(credentials),
    ...Object.fromEntries(roles.map((r) => [`ARCHIO_${r.toUpperCase()}_NKEY`, nkeys.createUser().getPublicKey()])),
    ARCHIO_ROUTE_PASSWORD: "R0ute",
    ARCHIO_NATS_ROUTES: '["nats-route://route:R0ute@127.0.0.1:6222"]',
    ARCHIO_NATS_TLS_CERT: "/nonexistent/cert.pem",
    ARCHIO_NATS_TLS_KEY: "/nonexistent/key.pem",
    ARCHIO_NATS_TLS_CA: "/nonexistent/ca.pem"
  }
  const dir = await tempDir(t)
  for (const server of ["single.conf", "cluster.conf"] as const) {
    for (const nkeys of [false, true]) {
      const config = await writeServerConfig(join(dir, `${server}-${nkeys}`), { cluster: "prod-eu", server, nkeys })
      const run = spawnSync(findNatsServer()!, ["-t", "-c", config], { env, encoding: "utf8" })
      t.equal(run.status, 0, `${server}${nkeys ? " with nkeys" : ""}: ${run.stderr.trim()}`)
    }
    const withTlsConfig = await writeServerConfig(join(dir, `${server}-tls`), { cluster: "prod-eu", server, tls: true })
    const run = spawnSync(findNatsServer()!, ["-t", "-c", withTlsConfig], { env, encoding: "utf8" })
    t.match(run.stderr, "/nonexistent/cert.pem", `${server} with TLS reads the certificate from ARCHIO_NATS_TLS_CERT`)
  }
  const missing = spawnSync(findNatsServer()!, ["-t", "-c", await writeServerConfig(join(dir, "missing"), { cluster: "dev" })], {
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ARCHIO_"))),
    encoding: "utf8"
  })
  t.not(missing.status, 0, "a password that is not set stops the server")
  t.match(missing.stderr, /variable reference for 'ARCHIO_\w+_PASSWORD' .* can not be found/)
  t.same([...shippedFiles].sort(), ["authorization-nkeys.conf", "authorization.conf", "cluster.conf", "permissions.conf", "single.conf", "tls.conf"])
})

t.test("credentials: passwords nats-server reads as strings, one inbox per user, env files", async (t) => {
  let n = 0
  const counting = (below: number) => n++ % below
  const password = passwordFrom(counting)
  t.match(password, /^[A-Za-z][A-Za-z0-9]{31}$/)
  t.equal(passwordFrom(() => 0), `A${"A".repeat(31)}`, "deterministic given its picks")
  const credentials = newCredentials()
  for (const role of roles) t.match(credentials[role], { user: role, inboxPrefix: `_INBOX_${role}`, password: /^[A-Za-z][A-Za-z0-9]{31}$/ })
  t.same(Object.keys(serverEnvironment(credentials)), ["ARCHIO_NODE_PASSWORD", "ARCHIO_CLIENT_PASSWORD", "ARCHIO_WORKER_PASSWORD", "ARCHIO_ADMIN_PASSWORD"])
  const client = credentials.client
  t.same(clientEnvironment(client, "nats://h:1", "dev"), { NATS_URL: "nats://h:1", NATS_USER: "client", NATS_PASS: client.password, NATS_INBOX_PREFIX: "_INBOX_client" })
  t.match(clientEnvironment(client, "nats://h:1", "prod"), { CLUSTER: "prod" })
  t.equal(envFileText({ A: "1", B: "x" }), "A=1\nB=x\n")
})

t.test("TLS refusals read as a reason and advice", async (t) => {
  const alert = "801CA34CA67F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n"
  t.equal(tlsReason(alert), "sslv3 alert bad certificate")
  t.equal(tlsReason("unable to verify the first certificate"), "unable to verify the first certificate")
  t.same(verdictOf({ code: "ECONNREFUSED", message: "connect ECONNREFUSED" }), { kind: "unreachable" })
  t.same(verdictOf({ code: "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE", message: alert }), { kind: "refused", why: "sslv3 alert bad certificate" })
  t.match(adviceFor("tlsv13 alert certificate required"), "client certificate")
  t.match(adviceFor("unable to verify the first certificate"), "NATS_TLS_CA")
  t.match(adviceFor("the server does not offer TLS"), "tls block")
})
