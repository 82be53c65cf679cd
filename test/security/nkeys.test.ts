/**
 * The shipped roles with nkeys instead of passwords (single.conf switched to
 * authorization-nkeys.conf, as ops/nats/README.md says): the server knows public keys only, each
 * process signs with its seed file (--nats-nkey / NATS_NKEY). A node and a client work; the
 * client keeps a client's permissions; an unknown key and a file that holds no seed are refused
 * with a clear line that never shows the seed.
 */
import t from "tap"
import { nkeyAuthenticator, nkeys } from "@nats-io/transport-node"
import { join } from "node:path"
import type { NatsSettings } from "../../bootstrap/config.ts"
import { connectClient } from "../../bootstrap/nats.ts"
import { roles, writePrivateFile, writeServerConfig, type Role } from "../../bootstrap/secureNats.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { testCluster } from "../support/cluster.ts"
import { tempDir } from "../support/tmp.ts"

const cluster = "keys"

interface Key {
  readonly publicKey: string
  readonly seed: string
  readonly file: string
}

/** A user nkey, its seed written to `<dir>/<name>.nk` (mode 0600). */
const newKey = async (dir: string, name: string): Promise<Key> => {
  const pair = nkeys.createUser()
  const seed = new TextDecoder().decode(pair.getSeed())
  const file = join(dir, `${name}.nk`)
  await writePrivateFile(file, `${seed}\n`)
  return { publicKey: pair.getPublicKey(), seed, file }
}

const settingsWith = (url: string, nkeyFile: string, inboxPrefix: string): NatsSettings => ({
  servers: [url],
  user: undefined,
  pass: undefined,
  token: undefined,
  credsFile: undefined,
  nkeyFile,
  inboxPrefix,
  tls: undefined
})

t.test("the shipped roles with nkeys", async (t) => {
  const dir = await tempDir(t, "archio-nkeys-")
  const keys = {} as Record<Role, Key>
  for (const role of roles) keys[role] = await newKey(dir, role)
  const config = await writeServerConfig(join(dir, "conf"), { cluster, nkeys: true })
  const serverEnv = Object.fromEntries(roles.map((role) => [`ARCHIO_${role.toUpperCase()}_NKEY`, keys[role].publicKey]))
  const { nats, client: admin } = await testCluster(t, { NATS_NKEY: keys.node.file, NATS_INBOX_PREFIX: "_INBOX_node" }, {
    cluster,
    size: 1,
    nats: { args: ["-c", config], env: serverEnv },
    harness: { authenticator: nkeyAuthenticator(new TextEncoder().encode(keys.admin.seed)), inboxPrefix: "_INBOX_admin" }
  })

  t.test("a node and a client sign with their seeds; the client keeps a client's permissions", async (t) => {
    t.ok((await admin.put("signed", "yes")).revision > 0, "the node (nkey node) serves the admin (nkey admin)")
    const nc = await connectClient(settingsWith(nats.url, keys.client.file, "_INBOX_client"), "archio-test")
    t.teardown(() => nc.close())
    const client = new ArchioClient(nc, { cluster, inboxPrefix: "_INBOX_client", deadlineMs: 5000 })
    t.equal((await client.get("signed"))?.value, "yes")
    await t.rejects(client.status(), { message: /refuses this client's requests on archio\.keys\.admin\.status/ }, "no admin subjects")
    await t.rejects(nc.request(Subjects.raft(cluster, "n1", "append"), "x", { timeout: 2000 }), { message: /Permissions Violation for Publish/ }, "no Raft")
  })

  t.test("an unknown key and a file without a seed are refused, without showing the seed", async (t) => {
    const stranger = await newKey(dir, "stranger")
    await t.rejects(connectClient(settingsWith(nats.url, stranger.file, "_INBOX_client"), "archio-test"), {
      message: `NATS at ${nats.url} refused the nkey in ${stranger.file} (NATS_NKEY): Authorization Violation`
    })
    const notASeed = join(dir, "public.nk")
    await writePrivateFile(notASeed, `${keys.client.publicKey}\n`)
    const e = await connectClient(settingsWith(nats.url, notASeed, "_INBOX_client"), "archio-test").catch((e: unknown) => e)
    t.match(e, { message: `the NATS nkey file ${notASeed} (NATS_NKEY) does not hold a user nkey seed (a line starting with SU)` })
    t.notMatch(String(e), keys.client.publicKey, "the file's contents are not shown")
  })
})
