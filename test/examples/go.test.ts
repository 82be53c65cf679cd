/**
 * "Any language, proven": examples/go is built with Debian's Go and NATS client (offline, GOPATH
 * mode, as examples/go/README.md says) and run against a real three-node cluster, where it must
 * put, get, cas, txn, watch, enqueue, lease and ack on the plain NATS subjects and exit 0. What
 * it says it did is then read back with the typed client, so a program that printed the right
 * lines without doing the work would fail here too.
 */
import t from "tap"
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { testCluster } from "../support/cluster.ts"
import { natsServer } from "../support/nats.ts"
import { tempDir } from "../support/tmp.ts"

const exampleDir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "examples", "go")

/** Where Debian's packages put Go and the NATS client's sources (golang-github-nats-io-go-nats-dev). */
const debianGoPath = "/usr/share/gocode"

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (file: string, args: ReadonlyArray<string>, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> =>
  new Promise((resolvePromise) => {
    execFile(file, args, { ...options, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      // execFile's error carries the exit code; a spawn failure (no such file) has a string code.
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
      resolvePromise({ code, stdout, stderr: error !== null && code === -1 ? `${stderr}${error.message}` : stderr })
    })
  })

/** `go` on the PATH, else Debian's own path to it. */
const findGo = (): string | undefined =>
  (process.env["PATH"] ?? "").split(":").map((d) => join(d, "go")).find((p) => p !== "go" && existsSync(p)) ??
  (existsSync("/usr/lib/go/bin/go") ? "/usr/lib/go/bin/go" : undefined)

/** Builds examples/go into `outDir` offline, the way examples/go/README.md tells a reader to. */
const buildExample = async (outDir: string): Promise<string> => {
  const go = findGo()
  if (go === undefined || !existsSync(join(debianGoPath, "src/github.com/nats-io/nats.go"))) {
    throw new Error(
      "the Go example needs Go and its NATS client: sudo apt-get install golang-go golang-github-nats-io-go-nats-dev (.ci/run installs them)"
    )
  }
  const out = join(outDir, "archio-example")
  const built = await run(go, ["build", "-o", out, "."], {
    cwd: exampleDir,
    env: {
      ...process.env,
      GO111MODULE: "off",
      GOPATH: debianGoPath,
      GOPROXY: "off",
      GOFLAGS: "",
      GOTOOLCHAIN: "local",
      GOCACHE: join(outDir, "gocache")
    }
  })
  if (built.code !== 0) throw new Error(`go build failed (exit ${built.code}):\n${built.stdout}${built.stderr}`)
  return out
}

/** Built once for every test here, into a folder removed when the file's tests end. */
let built: Promise<string> | undefined
const example = (): Promise<string> => (built ??= tempDir(t, "archio-go-").then(buildExample))

t.test("the Go example puts, cas-es, runs a txn, watches, enqueues, leases and acks against a real three-node cluster", async (t) => {
  const { nats, cluster, client } = await testCluster(t)
  const key = "examples/go greeting"
  const queue = "go-example-test"

  const result = await run(await example(), ["-nats", nats.url, "-cluster", cluster.cluster, "-key", key, "-queue", queue])
  t.equal(result.code, 0, `the example exits 0\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`)
  t.equal(result.stderr, "", "and says nothing on stderr")

  const lines = result.stdout.trimEnd().split("\n")
  const expected: ReadonlyArray<[string, RegExp]> = [
    ["connects", /^connected to nats:\/\/127\.0\.0\.1:\d+, cluster "dev"$/],
    ["puts", /^put examples\/go greeting = "hello": revision \d+ \(node n\d\)$/],
    ["reads it back", /^get examples\/go greeting = "hello": mod revision \d+, version 1 \(linearizable, node n\d\)$/],
    ["cas-es it", /^cas examples\/go greeting = "hello again" if at revision \d+: revision \d+$/],
    ["sees a stale cas refused", /^cas examples\/go greeting if at revision \d+: refused, conflict \(the key is at revision \d+\)$/],
    ["runs a txn", /^txn if examples\/go greeting is at revision \d+: put examples\/go greeting and examples\/go greeting-txn, succeeded, revision \d+$/],
    // "go greeting" holds a space, so its subject token is "~" and the base64url of its bytes.
    ["subscribes to the key's events", /^watch examples\/go greeting on archio\.dev\.events\.kv\.examples\.~Z28gZ3JlZXRpbmc$/],
    ["sees the put's event", /^event put examples\/go greeting = "watched" at revision \d+$/],
    ["enqueues", /^enqueue job \S+ on queue go-example-test: revision \d+$/],
    ["leases", /^lease job \S+: attempt 1, fencing token \d+, lease until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/],
    ["sees a stale token refused", /^ack job \S+ with token \d+: refused, lease_lost$/],
    ["acks with the fencing token", /^ack job \S+ with token \d+: revision \d+$/],
    ["reads the job back completed", /^job \S+ is completed after 1 attempt\(s\)$/],
    ["finishes", /^done: every answer was as expected$/]
  ]
  t.equal(lines.length, expected.length, `one line per step:\n${result.stdout}`)
  expected.forEach(([what, pattern], i) => t.match(lines[i] ?? "", pattern, `it ${what}`))

  // What it printed, checked against the cluster itself.
  const value = await client.get(key)
  t.equal(value?.value, "watched", "the key holds the value of the example's last put")
  t.equal((await client.get(`${key}-txn`))?.value, "written with it", "the txn's second put is there")
  const jobId = /^enqueue job (\S+) /.exec(lines[8] ?? "")?.[1]
  t.ok(jobId !== undefined, "the example printed its job's id")
  const job = await new JobsClient(client).get(jobId ?? "")
  t.equal(job.state, "completed", "the job the example acked is completed")
  t.equal(job.queue, queue, "on the example's queue")
  t.same(job.result, { sent: true }, "with the result it acked")
  const leased = /^lease job \S+: attempt 1, fencing token (\d+),/.exec(lines[9] ?? "")?.[1]
  const stale = /^ack job \S+ with token (\d+): refused/.exec(lines[10] ?? "")?.[1]
  const acked = /^ack job \S+ with token (\d+): revision/.exec(lines[11] ?? "")?.[1]
  t.equal(acked, leased, "it acked with the lease's fencing token")
  t.not(stale, leased, "and the refused ack used another one")
})

t.test("the Go example fails with one clear line when no node answers", async (t) => {
  const nats = await natsServer(t)
  const result = await run(await example(), ["-nats", nats.url, "-cluster", "nobody", "-timeout", "500ms"])
  t.equal(result.code, 1, "it exits 1")
  t.match(result.stderr, /^archio-example: kv\.put on archio\.nobody\.kv\.put: nats: no responders available for request \(gave up after 500ms\)\n$/, "naming the call, the subject and why")
})

t.test("the Go example refuses bad usage with exit 2 before connecting", async (t) => {
  const result = await run(await example(), ["-nats", "nats://127.0.0.1:1", "-cluster", "a.b"])
  t.equal(result.code, 2, "it exits 2")
  t.match(result.stderr, /-cluster must be 1-64 letters, digits, _ or -, got "a\.b"/, "naming the flag and the value")
})
