/** `archio worker`: its usage errors, one in-process run against a real node, and TypeScript handlers. */
import t from "tap"
import { spawn } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { main } from "../../bootstrap/cli.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { natsServer } from "../support/nats.ts"
import { singleNode } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"
import { writeHandler } from "../support/workers.ts"

const bin = fileURLToPath(new URL("../../bin/archio.js", import.meta.url))

const run = async (argv: ReadonlyArray<string>, env: Record<string, string> = {}, signal?: AbortSignal) => {
  let out = ""
  let err = ""
  const code = await main(["worker", ...argv], { out: (s) => void (out += s), err: (s) => void (err += s), env, ...(signal === undefined ? {} : { signal }) })
  return { code, out, err }
}

t.test("help and usage errors", async (t) => {
  const help = await run(["--help"])
  t.equal(help.code, 0)
  for (const flag of ["--queue", "--handler", "--concurrency", "--lease-ms", "--wait-ms", "--grace-ms", "--worker-id", "--nats", "--cluster"]) t.match(help.out, flag)
  const dir = await tempDir(t)
  const handler = await writeHandler(dir)
  const cases: Array<[ReadonlyArray<string>, RegExp]> = [
    [[], /--queue \(or WORKER_QUEUES\) is required[\s\S]*--handler \(or WORKER_HANDLER\) is required/],
    [["--queue", "a.b", "--handler", handler], /--queue must be a queue name/],
    [["--queue", "q", "--handler", handler, "--concurrency", "0"], /--concurrency must be an integer from 1 to 1000/],
    [["--queue", "q", "--handler", handler, "--wait-ms", "x"], /--wait-ms must be an integer/],
    [["--queue", "q", "--handler", handler, "--bogus", "1"], /unknown flag "--bogus"/],
    [["--queue", "q", "--handler", join(dir, "missing.mjs")], /cannot load handler/]
  ]
  for (const [argv, message] of cases) {
    const r = await run(argv)
    t.equal(r.code, 2, argv.join(" "))
    t.match(r.err, message)
  }
  const notFn = join(dir, "not-a-function.mjs")
  await writeFile(notFn, "export default 42\n")
  const r = await run(["--queue", "q", "--handler", notFn])
  t.equal(r.code, 2)
  t.match(r.err, /must export a function/)
  const env = await run([], { WORKER_QUEUES: "q", WORKER_HANDLER: notFn })
  t.match(env.err, /must export a function/, "settings also come from the environment")
})

t.test("runs jobs until stopped, printing one JSON line per outcome, and exits 0", async (t) => {
  const nc = await singleNode(t)
  const url = `nats://${nc.getServer()}`
  const jobs = new JobsClient(new ArchioClient(nc, { cluster: "c" }))
  const dir = await tempDir(t)
  const handler = await writeHandler(dir)
  const a = await jobs.enqueue({ queue: "cli", payload: { n: 7 } })
  const b = await jobs.enqueue({ queue: "cli", payload: { fail: true }, maxAttempts: 1 })
  const stop = new AbortController()
  const running = run(["--queue", "cli", "--handler", handler, "--nats", url, "--cluster", "c", "--wait-ms", "200", "--worker-id", "w-cli"], {}, stop.signal)
  await until("both jobs to finish", async () => (await jobs.get(b.id)).state === "dead" && (await jobs.get(a.id)).state === "completed", { everyMs: 50 })
  stop.abort()
  const r = await running
  t.equal(r.code, 0)
  const lines = r.out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
  t.match(lines, [
    { event: "acked", id: a.id, token: Number },
    { event: "failed", id: b.id, error: "asked to fail", retryable: true }
  ])
  t.match(r.err, /taking jobs from cli with concurrency 1[\s\S]*stopped \(1 acked, 1 failed, 0 released, 0 lost\)/)
  t.match(await jobs.get(a.id), { result: 7 })
})

t.test("bin/archio.js loads a TypeScript handler however it is given", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  await writeFile(join(dir, "package.json"), '{"type":"module"}\n')
  const handler = join(dir, "handler.ts")
  await writeFile(handler, "export default async (payload: unknown): Promise<unknown> => payload\n")
  const forms: Array<[string, ReadonlyArray<string>, Record<string, string>]> = [
    ["--handler FILE", ["--handler", handler], {}],
    ["--handler=FILE", [`--handler=${handler}`], {}],
    ["WORKER_HANDLER", [], { WORKER_HANDLER: handler }]
  ]
  await Promise.all(
    forms.map(async ([label, args, env]) => {
      // No coverage from the child: it runs the esbuild bundle, tap's process its own loader.
      const child = spawn(process.execPath, [bin, "worker", "--queue", "q", "--nats", server.url, "--wait-ms", "100", ...args], {
        env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: "0", ...env },
        stdio: ["ignore", "ignore", "pipe"]
      })
      t.teardown(() => void child.kill("SIGKILL"))
      let err = ""
      child.stderr!.on("data", (b: Buffer) => (err += b.toString()))
      const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
      await until(`the worker (${label}) to start`, () => err.includes("taking jobs from q") || child.exitCode !== null, { timeoutMs: 30_000, everyMs: 50 })
      t.notMatch(err, "cannot load handler", label)
      child.kill("SIGTERM")
      t.equal(await exited, 0, `${label}: stops cleanly`)
    })
  )
})
