/**
 * `archio node` as a process: a defect stops it cleanly with exit code 1 and its stack in the
 * log — in an actor (supervised), or anywhere else (caught at the process). The defect comes
 * from a preload (test/support/faults.mjs) the test triggers once the node serves.
 */
import t from "tap"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import * as StorageLayer from "../../bootstrap/storage.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

const repo = fileURLToPath(new URL("../..", import.meta.url))
const bin = join(repo, "bin", "archio.js")
const faults = join(repo, "test", "support", "faults.mjs")

const cases = [
  { fault: "escape", expect: [/uncaught exception, stopping the node: Error: a defect outside every actor/, /archio node n1: uncaught exception: a defect outside every actor; stopped/] },
  {
    fault: "gateway-clock",
    expect: [/actor gateway failed, stopping the node: Error: the clock failed inside the Gateway's sweep\n\s+at /, /archio node n1: actor gateway failed: the clock failed/]
  }
] as const

for (const c of cases) {
  t.test(`archio node: a defect (${c.fault}) stops the process cleanly with exit code 1`, async (t) => {
    const server = await natsServer(t)
    const nc = await natsClient(t, server.url)
    const data = join(await tempDir(t), "n1")
    const child = spawn(process.execPath, ["--import", faults, bin, "node", "--id", "n1", "--cluster", "c", "--nats", server.url, "--data", data], {
      env: { PATH: process.env.PATH ?? "", ARCHIO_FAULT: c.fault, _TAPJS_PROCESSINFO_COVERAGE_: "0" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let err = ""
    child.stderr.on("data", (b: Buffer) => (err += b.toString()))
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    t.teardown(() => {
      if (child.exitCode === null) child.kill("SIGKILL")
    })
    const serves = async (): Promise<boolean> => (await nc.request("archio.c.node.n1.admin.status", "", { timeout: 500 })).data.length > 0
    await until("the node to serve", serves, { timeoutMs: 30_000, everyMs: 100 })
    child.kill("SIGUSR2")
    const code = await exited
    t.equal(code, 1, "exit code 1")
    for (const pattern of c.expect) t.match(err, pattern)
    t.match(err, /stopping the node/, "it said it was stopping")
    const reopened = await Effect.runPromise(Effect.scoped(Effect.map(StorageLayer.make(data), (s) => s.db.status)))
    t.equal(reopened, "open", "its database was closed: another node may open it")
  })
}
