/**
 * Mutual TLS with the shipped configuration (single.conf with `include ./tls.conf` switched on,
 * as ops/nats/README.md says): a CA, a server certificate and client certificates made here with
 * openssl. A connection without a client certificate, or with one from another CA, is refused
 * (and says why, at once); a node and a client with their certificates work.
 */
import t from "tap"
import { connect } from "@nats-io/transport-node"
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import type { NatsSettings } from "../../bootstrap/config.ts"
import { connectClient } from "../../bootstrap/nats.ts"
import { binPath } from "../../ops/cluster.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { testCluster } from "../support/cluster.ts"
import { connectAs, envAs, optionsAs, secureServerStart } from "../support/secureNats.ts"
import { tempDir } from "../support/tmp.ts"

const cluster = "tls"

const openssl = (dir: string, args: ReadonlyArray<string>): void => {
  const run = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" })
  if (run.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${run.stderr}`)
}

/** A key and a certificate `name`.pem signed by `ca` (or self-signed when `ca` is undefined). */
const certificate = (dir: string, name: string, subject: string, ca: string | undefined, extensions: string): void => {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}-key.pem`]
  if (ca === undefined) {
    openssl(dir, ["req", "-x509", ...ec, "-out", `${name}.pem`, "-days", "2", "-subj", subject])
    return
  }
  openssl(dir, ["req", ...ec, "-out", `${name}.csr`, "-subj", subject])
  spawnSync("sh", ["-c", `printf '${extensions}' > ${name}.ext`], { cwd: dir })
  openssl(dir, ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}-key.pem`, "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`])
}

const runArchio = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>) => {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NATS_|CLUSTER)/.test(k)))
  return spawnSync(process.execPath, [binPath, ...args], { env: { ...clean, _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env }, encoding: "utf8", timeout: 60_000 })
}

t.test("mutual TLS with the shipped configuration", async (t) => {
  const certs = await tempDir(t, "archio-certs-")
  certificate(certs, "ca", "/CN=archio test CA", undefined, "")
  certificate(certs, "server", "/CN=127.0.0.1", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n")
  certificate(certs, "client", "/CN=archio", "ca", "extendedKeyUsage=clientAuth\\n")
  certificate(certs, "other-ca", "/CN=another CA", undefined, "")
  certificate(certs, "stranger", "/CN=stranger", "other-ca", "extendedKeyUsage=clientAuth\\n")
  const file = (name: string) => join(certs, name)
  const prepared = await secureServerStart(t, {
    cluster,
    tlsEnv: { ARCHIO_NATS_TLS_CERT: file("server.pem"), ARCHIO_NATS_TLS_KEY: file("server-key.pem"), ARCHIO_NATS_TLS_CA: file("ca.pem") }
  })
  const creds = prepared.credentials
  const withCert = { caFile: file("ca.pem"), certFile: file("client.pem"), keyFile: file("client-key.pem") }
  const tlsEnv = { NATS_TLS_CA: withCert.caFile, NATS_TLS_CERT: withCert.certFile, NATS_TLS_KEY: withCert.keyFile }
  const { nats, client: admin } = await testCluster(t, { ...envAs(creds.node), ...tlsEnv }, {
    cluster,
    size: 1,
    nats: prepared.start,
    harness: { ...optionsAs(creds.admin), tls: withCert }
  })
  const url = nats.url.replace("nats://", "tls://")
  const settings = (tls: NatsSettings["tls"]): NatsSettings => ({
    servers: [url],
    user: creds.client.user,
    pass: creds.client.password,
    token: undefined,
    credsFile: undefined,
    nkeyFile: undefined,
    inboxPrefix: creds.client.inboxPrefix,
    tls
  })

  t.test("a node and a client with certificates work", async (t) => {
    t.ok((await admin.put("over", "tls")).revision > 0, "the node serves over TLS")
    const nc = await connectClient(settings(withCert), "archio-test")
    t.teardown(() => nc.close())
    t.equal(nc.info?.tls_required, true, "the server requires TLS")
    const client = new ArchioClient(nc, { cluster, inboxPrefix: creds.client.inboxPrefix })
    t.equal((await client.get("over"))?.value, "tls")
    const cli = runArchio(["kv", "get", "over", "--cluster", cluster, "--nats", url], { ...envAs(creds.client), ...tlsEnv })
    t.equal(cli.status, 0, cli.stderr)
    t.equal(cli.stdout.trim(), "tls", "archio kv with NATS_TLS_* variables")
  })

  t.test("without a client certificate, or with one from another CA, the connection is refused and says why", async (t) => {
    const noCert = { caFile: file("ca.pem"), certFile: undefined, keyFile: undefined }
    await t.rejects(connect({ servers: url, ...optionsAs(creds.client), tls: { caFile: noCert.caFile }, timeout: 2000, reconnect: false }), "nats.js alone: refused (a timeout)")
    const started = performance.now()
    await t.rejects(connectClient(settings(noCert), "archio-test"), {
      message: /^the NATS server at tls:\/\/127\.0\.0\.1:\d+ refuses our TLS connection \(.*\): the server wants a client certificate it trusts \(NATS_TLS_CERT, NATS_TLS_KEY\)$/
    })
    t.ok(performance.now() - started < 5000, "at once, not after a timeout")
    const stranger = { caFile: file("ca.pem"), certFile: file("stranger.pem"), keyFile: file("stranger-key.pem") }
    await t.rejects(connectClient(settings(stranger), "archio-test"), { message: /refuses our TLS connection .*client certificate it trusts/ })
    await t.rejects(connectClient(settings({ caFile: file("other-ca.pem"), certFile: withCert.certFile, keyFile: withCert.keyFile }), "archio-test"), {
      message: /refuses our TLS connection \(.*\): its certificate is not one NATS_TLS_CA vouches for/
    }, "a server certificate our CA did not sign")
    await t.rejects(connectAs(t, nats.url, creds.client, { timeout: 2000, reconnect: false }), "a plain connection: refused")
  })

  t.test("a node without a certificate stops at start with one line and exit 1", async (t) => {
    const data = await tempDir(t)
    const started = performance.now()
    const run = runArchio(["node", "--id", "n9", "--cluster", cluster, "--data", join(data, "n9"), "--nats", url], { ...envAs(creds.node), NATS_TLS_CA: file("ca.pem") })
    t.equal(run.status, 1)
    t.ok(performance.now() - started < 30_000, "no endless wait")
    t.same(
      run.stderr.split("\n").filter((l) => l.startsWith("archio node n9:")),
      [`archio node n9: the NATS server at ${url} refuses our TLS connection (sslv3 alert bad certificate): the server wants a client certificate it trusts (NATS_TLS_CERT, NATS_TLS_KEY)`]
    )
  })
})
