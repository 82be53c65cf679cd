/**
 * `archio jobs`: usage errors (exit 2, nothing sent, stdin not read), then every command against
 * a real one-node cluster, in tables and --json, with the exit codes for not found, conflicts
 * and requests the cluster refuses; jobs are moved through their states by a real worker
 * client. Most runs go through `main(argv, terminal)` in this process, as the kv tests do; the
 * real program (bin/archio.js, a child process) is run for stdin, a missing job's exit code
 * and `stats --watch` stopped by SIGINT.
 */
import t, { type Test } from "tap"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { archio, main } from "../../bootstrap/cli.ts"
import { jobsCommands, jobsGroup } from "../../bootstrap/jobs/index.ts"
import { ago, span } from "../../bootstrap/jobs/output.ts"
import { freePort } from "../../bootstrap/natsServer.ts"
import type { Env } from "../../bootstrap/options.ts"
import type { Terminal } from "../../bootstrap/terminal.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { natsServer } from "../support/nats.ts"
import { singleNode } from "../support/node.ts"
import { until } from "../support/wait.ts"

// Child processes pay Node's start-up (1-3 s on a busy machine).
t.setTimeout(300_000)

interface Options {
  readonly env?: Env
  /** What standard input holds; without it, reading stdin fails the test. */
  readonly stdin?: string
  readonly signal?: AbortSignal
}

/** Starts `archio ...argv` in this process with captured output. */
const start = (argv: ReadonlyArray<string>, options: Options = {}) => {
  let out = ""
  let err = ""
  let reads = 0
  const terminal: Terminal = {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    env: options.env ?? {},
    stdin: () => {
      reads++
      return options.stdin === undefined ? Promise.reject(new Error("this test gives no stdin")) : Promise.resolve(options.stdin)
    },
    ...(options.signal === undefined ? {} : { signal: options.signal })
  }
  return { out: () => out, err: () => err, code: main(argv, terminal), stdinReads: () => reads }
}

const run = async (argv: ReadonlyArray<string>, options: Options = {}) => {
  const r = start(argv, options)
  const code = await r.code
  return { code, out: r.out(), err: r.err(), stdinReads: r.stdinReads() }
}

const bin = fileURLToPath(new URL("../../bin/archio.js", import.meta.url))

/** Runs the real `archio` program; killed at teardown if still running. */
const child = (tt: Test, args: ReadonlyArray<string>, stdin?: string) => {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(CLUSTER|NATS_|KV_)/.test(k)))
  // The child runs the esbuild bundle: its V8 coverage cannot be merged with this process's.
  const p = spawn(process.execPath, [bin, ...args], { env: { ...clean, _TAPJS_PROCESSINFO_COVERAGE_: "0" }, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] })
  let out = ""
  let err = ""
  p.stdout!.on("data", (b: Buffer) => (out += b.toString()))
  p.stderr!.on("data", (b: Buffer) => (err += b.toString()))
  if (stdin !== undefined) p.stdin!.end(stdin)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => p.once("exit", (code, signal) => done({ code, signal })))
  tt.teardown(() => {
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL")
  })
  return { p, out: () => out, err: () => err, exited }
}

const lines = (text: string): Array<string> => text.split("\n").filter((l) => l !== "")

const json = (text: string): Array<Record<string, unknown>> => lines(text).map((l) => JSON.parse(l) as Record<string, unknown>)

/** A table's rows as cells (split on runs of two or more spaces), header first. */
const cells = (text: string): Array<Array<string>> => lines(text).map((l) => l.split(/ {2,}/))

const help = (name: string): string => {
  const command = jobsCommands.find((c) => c.path === `jobs ${name}`)
  if (command === undefined) throw new Error(`no command jobs ${name}`)
  return command.help()
}

const verbs = ["enqueue", "get", "list", "stats", "retry", "cancel", "purge"]

t.test("help: archio jobs and every command", async (t) => {
  t.match(archio.help(), /\n {2}jobs +enqueue, get, list, stats, retry, cancel and purge jobs/, "archio --help lists jobs")
  for (const argv of [["jobs", "--help"], ["jobs", "help"]]) {
    const r = await run(argv)
    t.same({ code: r.code, out: r.out }, { code: 0, out: jobsGroup.help() }, argv.join(" "))
  }
  for (const name of verbs) {
    t.match(jobsGroup.help(), new RegExp(`\\n  ${name} `), `the group lists ${name}`)
    const r = await run(["jobs", name, "--help"])
    t.equal(r.code, 0)
    t.equal(r.out, help(name))
    t.match(r.out, `Usage: archio jobs ${name}`)
    t.match(r.out, "--json")
    t.match(r.out, "Connection flags (every jobs command; a flag wins over its variable):\n  --cluster NAME")
    t.match(r.out, "--timeout MS", "the connection flags of archio kv")
  }
  t.match(help("enqueue"), /--priority N[\s\S]*--delay DURATION[\s\S]*--run-at TIME[\s\S]*--max-attempts N[\s\S]*--backoff KIND:DELAY[\s\S]*--backoff-max[\s\S]*--backoff-jitter[\s\S]*--lease DURATION[\s\S]*--unique-key KEY[\s\S]*--retain DURATION/)
  t.match(help("list"), /--state STATE[\s\S]*--limit N[\s\S]*--cursor CURSOR[\s\S]*--all/)
  t.match(help("stats"), /--watch, -w[\s\S]*--interval DURATION/)
  t.match(help("purge"), /--state STATES[\s\S]*--older-than DURATION/)
  const none = await run(["jobs"])
  t.same({ code: none.code, err: none.err }, { code: 2, err: jobsGroup.help() })
  const unknown = await run(["jobs", "ls"])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /^archio jobs: unknown command "ls"\n\nUsage: archio jobs/)
})

t.test("ages and lengths of time for people", async (t) => {
  t.same([span(0), span(850), span(42_000), span(252_000), span(240_000), span(7_500_000), span(90_000_000)], ["0ms", "850ms", "42s", "4m12s", "4m", "2h5m", "1d1h"])
  const now = 1_800_000_000_000
  t.equal(ago(now - 3_000, now), "3s ago")
  t.equal(ago(now - 3_999, now), "3s ago")
  t.equal(ago(now + 300_000, now), "in 5m")
  t.equal(ago(now - 400, now), "just now")
  t.equal(ago(now + 999, now), "just now")
})

t.test("usage errors exit 2 with every problem at once, before connecting or reading stdin", async (t) => {
  // Nothing listens here: a command that got past its checks would fail with 1, not 2.
  const nats = ["--nats", `nats://127.0.0.1:${await freePort()}`]
  const cases: Array<[ReadonlyArray<string>, ReadonlyArray<string>]> = [
    [["enqueue"], ["missing <queue> (usage: archio jobs enqueue <queue> <payload|-> [flags])"]],
    [["enqueue", "q"], ["missing <payload|->"]],
    [["enqueue", "a.b", "1"], ['<queue> must be a queue name made of letters, digits, _ or - (1 to 64 characters), got "a.b"']],
    [["enqueue", "q", "hello"], ["the payload is not valid JSON", `(a string needs JSON quotes: '"hello"')`]],
    [["enqueue", "q", "{"], ["the payload is not valid JSON"]],
    [["enqueue", "q", "[".repeat(101) + "]".repeat(101)], ["the payload nests arrays and objects more than 100 deep"]],
    [["enqueue", "q", "1", "--priority", "1000001"], ['--priority must be an integer from -1000000 to 1000000, got "1000001"']],
    [["enqueue", "q", "1", "--priority", "high"], ['--priority must be an integer from -1000000 to 1000000, got "high"']],
    [["enqueue", "q", "1", "--delay", "soon"], ['--delay must be a duration such as 500ms, 30s, 5m, 2h or 1d (a bare number is milliseconds), got "soon"']],
    [["enqueue", "q", "1", "--delay", "5s", "--run-at", "2030-01-01T00:00:00Z"], ["--delay and --run-at cannot be combined: use one"]],
    [["enqueue", "q", "1", "--run-at", "tomorrow"], ['--run-at must be a time such as 2030-01-31T09:00:00Z or milliseconds since the epoch, got "tomorrow"']],
    [["enqueue", "q", "1", "--max-attempts", "0"], ['--max-attempts must be an integer from 1 to 1000, got "0"']],
    [["enqueue", "q", "1", "--backoff", "linear:1s"], ['--backoff must be fixed:DELAY or exponential:DELAY (for example exponential:1s), got "linear:1s"']],
    [["enqueue", "q", "1", "--backoff", "fixed:x"], ['--backoff delay must be a duration such as 500ms']],
    [["enqueue", "q", "1", "--backoff-max", "1m", "--backoff-jitter", "0.5"], ["--backoff-max only applies with --backoff", "--backoff-jitter only applies with --backoff"]],
    [["enqueue", "q", "1", "--backoff", "fixed:1s", "--backoff-jitter", "2"], ['--backoff-jitter must be a number from 0 to 1, got "2"']],
    [["enqueue", "q", "1", "--lease", "2h"], ['--lease must be a duration from 1ms to 1h such as 500ms, 30s, 5m, 2h or 1d (a bare number is milliseconds), got "2h"']],
    [["enqueue", "q", "1", "--retain", "91d"], ['--retain must be a duration from 0ms to 90d']],
    [["enqueue", "q", "1", "--unique-key", "a\u0000b"], ["the job is invalid: uniqueKey"]],
    [["enqueue", "q", "-", "--delay", "x", "--max-attempts", "y"], ["--delay must be a duration", "--max-attempts must be an integer"]],
    [["get"], ["missing <id> (usage: archio jobs get <id> [flags])"]],
    [["get", ""], ['<id> expected a non-empty string, got ""']],
    [["get", "7".repeat(129)], ["<id> is 129 bytes, over the 128-byte limit"]],
    [["get", "1", "2"], ['unexpected argument "2"']],
    [["get", "1", "--stale"], ['unknown flag "--stale" (see archio jobs get --help)']],
    [["list"], ["missing <queue>"]],
    [["list", "q", "--state", "done"], ['--state must be one of scheduled, ready, leased, completed, failed, dead or cancelled, got "done"']],
    [["list", "q", "--limit", "0"], ['--limit must be an integer from 1 to 1000, got "0"']],
    [["list", "q", "--limit"], ["--limit needs a value (--limit N)"]],
    [["list", "q", "--cursor", ""], ['--cursor must be the cursor a previous page printed, got ""']],
    [["list", "q", "--all=yes"], ['--all takes no value, got "yes"']],
    [["stats", "q", "--interval", "1s"], ["--interval only applies with --watch"]],
    [["stats", "--watch", "--interval", "50ms"], ['--interval must be a duration from 100ms to 1h']],
    [["stats", "a b"], ['[queue] must be a queue name']],
    [["retry"], ["missing <id>"]],
    [["cancel", "1", "--json=1"], ['--json takes no value, got "1"']],
    [["purge", "q", "--state", "completed,ready"], ['--state must list finished states (completed, dead or cancelled), comma-separated, got "ready"']],
    [["purge", "q", "--older-than", "-1s"], ['--older-than must be a duration']],
    [["purge"], ["missing <queue>"]],
    [["get", "1", "--timeout", "0"], ['--timeout must be an integer from 1 to 600000, got "0"']],
    [["list", "q", "--cluster", "a.b"], ["--cluster must be a cluster name"]]
  ]
  for (const [argv, messages] of cases) {
    const name = argv[0]!
    const r = await run(["jobs", ...argv, ...nats])
    const label = `archio jobs ${argv.join(" ").slice(0, 60)}`
    t.equal(r.code, 2, `${label}: exit 2`)
    t.equal(r.out, "", `${label}: nothing on stdout`)
    for (const m of messages) t.match(r.err, m, label)
    t.match(r.err, new RegExp(`^archio jobs ${name}: `), label)
    t.match(r.err, `Run "archio jobs ${name} --help" for the arguments, flags and variables.\n`, label)
    t.equal(r.stdinReads, 0, `${label}: stdin not read`)
  }
  const badStdin = await run(["jobs", "enqueue", "q", "-", ...nats], { stdin: "not json" })
  t.equal(badStdin.code, 2)
  t.equal(badStdin.stdinReads, 1)
  t.match(badStdin.err, "archio jobs enqueue: the payload is not valid JSON")
})

t.test("without a cluster: the client's error, exit 1", async (t) => {
  const server = await natsServer(t)
  const nobody = await run(["jobs", "stats", "--nats", server.url, "--cluster", "zz", "--timeout", "300"])
  t.equal(nobody.code, 1)
  t.equal(nobody.err, 'archio jobs stats: unavailable: no Archio node answers on archio.zz.jobs.stats: is the cluster running, and is its cluster name "zz"?\n')
  const asJson = await run(["jobs", "get", "1", "--json", "--nats", server.url, "--timeout", "300"])
  t.equal(asJson.code, 1)
  t.match(json(asJson.out), [{ ok: false, error: { code: "unavailable" } }])
})

t.test("against a one-node cluster", async (t) => {
  const nc = await singleNode(t)
  const url = `nats://${nc.getServer()}`
  const jobs = (argv: ReadonlyArray<string>, options: Options = {}) => run(["jobs", ...argv], { ...options, env: { NATS_URL: url, CLUSTER: "c", ...options.env } })
  const client = await ArchioClient.connect(url, { cluster: "c" })
  t.teardown(() => client.close())
  const worker = new JobsClient(client)
  /** Enqueues through the CLI and returns the new job's id. */
  const enqueue = async (tt: Test, argv: ReadonlyArray<string>): Promise<string> => {
    const r = await jobs(["enqueue", ...argv, "--json"])
    tt.equal(r.code, 0, `enqueue ${argv.join(" ")}: ${r.err}`)
    return String(json(r.out)[0]!["id"])
  }

  t.test("enqueue: human and --json, stdin, options, unique keys", async (t) => {
    const human = await jobs(["enqueue", "emails", '{"to":"a@b.c"}'])
    t.equal(human.code, 0)
    const m = /^enqueued job (\S+) on queue emails \(revision (\d+)\)\n$/.exec(human.out)
    t.ok(m, human.out)
    const id = m![1]!

    const asJson = await jobs(["enqueue", "emails", "42", "--json", "--priority", "-5"])
    t.equal(asJson.code, 0)
    const reply = json(asJson.out)
    t.equal(reply.length, 1)
    t.match(reply[0], { ok: true, id: String, existing: false, revision: Number, node: "n1" })
    t.same(Object.keys(reply[0]!).sort(), ["existing", "id", "node", "ok", "revision"], "the reply as the cluster sent it")

    const fromStdin = await jobs(["enqueue", "emails", "-", "--json"], { stdin: '{"from":"stdin"}\n' })
    t.equal(fromStdin.code, 0)
    t.equal(fromStdin.stdinReads, 1)
    const stdinId = String(json(fromStdin.out)[0]!["id"])
    const stored = json((await jobs(["get", stdinId, "--json"])).out)[0]!
    t.same((stored["job"] as Record<string, unknown>)["payload"], { from: "stdin" })

    const options = await enqueue(t, ["reports", '"text"', "--delay", "1h", "--max-attempts", "5", "--backoff", "exponential:1s", "--backoff-max", "1m", "--backoff-jitter", "0.2", "--lease", "90s", "--retain", "1d", "--unique-key", "daily"])
    const view = json((await jobs(["get", options, "--json"])).out)[0]!["job"] as Record<string, unknown>
    t.match(view, { state: "scheduled", payload: "text", maxAttempts: 5, priority: 0, uniqueKey: "daily", attempts: 0 })
    t.ok((view["runAt"] as number) - (view["createdAt"] as number) === 3_600_000, "--delay 1h is 3600000 ms after creation (leader time)")

    const again = await jobs(["enqueue", "reports", "{}", "--unique-key", "daily"])
    t.equal(again.code, 0)
    t.match(again.out, new RegExp(`^job ${options} of queue reports already holds unique key "daily": nothing enqueued \\(revision \\d+\\)\\n$`))
    t.match(json((await jobs(["enqueue", "reports", "{}", "--unique-key", "daily", "--json"])).out), [{ ok: true, id: options, existing: true }])

    const runAt = Date.parse("2030-01-31T09:00:00Z")
    const at = await enqueue(t, ["later", "1", "--run-at", "2030-01-31T09:00:00Z"])
    t.match(json((await jobs(["get", at, "--json"])).out), [{ job: { state: "scheduled", runAt } }])
    t.not(id, options)
  })

  t.test("get: one job's fields; a missing job is not_found, exit 1", async (t) => {
    const id = await enqueue(t, ["detail", '{"n":1}', "--priority", "7", "--unique-key", "d1"])
    const r = await jobs(["get", id])
    t.equal(r.code, 0)
    t.equal(r.err, "")
    const fields = Object.fromEntries(lines(r.out).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]))
    t.match(fields, { id, queue: "detail", state: "ready", attempts: "0 of 3", priority: "7", "unique key": "d1", payload: '{"n":1}' })
    t.match(fields["created"], /^(just now|\d+s ago) \(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/, "an age and the UTC time")
    t.notOk("error" in fields, "fields a job does not have are left out")
    t.match(r.out, /^id: {10}/, "labels are aligned")

    const asJson = await jobs(["get", id, "--json"])
    const reply = json(asJson.out)
    t.equal(reply.length, 1)
    t.match(reply[0], { ok: true, job: { id, queue: "detail", state: "ready", payload: { n: 1 }, priority: 7 }, consistency: "linearizable", node: "n1" })

    const missing = await jobs(["get", "999999"])
    t.same({ code: missing.code, out: missing.out, err: missing.err }, { code: 1, out: "", err: "archio jobs get: not found: job 999999 does not exist\n" })
    const missingJson = await jobs(["get", "999999", "--json"])
    t.equal(missingJson.code, 1)
    t.same(json(missingJson.out), [{ ok: false, error: { code: "not_found", message: "job 999999 does not exist" } }], "the cluster's error envelope as sent")
  })

  t.test("list, stats, retry, cancel and purge through a job's life", async (t) => {
    const q = "life"
    const ids: Array<string> = []
    for (let i = 0; i < 5; i++) ids.push(await enqueue(t, [q, JSON.stringify({ n: i }), "--max-attempts", "1"]))
    // A real worker: lease two, fail one for good, keep the other leased.
    const leased = await worker.lease({ queues: [q], max: 2, workerId: "w-test", leaseMs: 600_000 })
    t.same(leased.map((j) => j.id), ids.slice(0, 2))
    const failed = await worker.fail(leased[0]!.id, leased[0]!.token, "SMTP 451\nsecond line", true)
    t.equal(failed.willRetry, false, "one attempt allowed: dead")

    const table = await jobs(["list", q])
    t.equal(table.code, 0)
    t.equal(table.err, "")
    const rows = cells(table.out)
    t.same(rows[0], ["ID", "STATE", "ATTEMPTS", "PRIORITY", "CREATED", "UPDATED", "NOTE", "PAYLOAD"])
    t.same(rows.slice(1).map((r) => [r[0], r[1], r[2], r[3]]), [
      [ids[0], "dead", "1/1", "0"],
      [ids[1], "leased", "1/1", "0"],
      [ids[2], "ready", "0/1", "0"],
      [ids[3], "ready", "0/1", "0"],
      [ids[4], "ready", "0/1", "0"]
    ])
    t.match(rows[1]![4], /^(just now|\d+s ago)$/, "ages for people")
    t.equal(rows[1]![6], '"SMTP 451\\nsecond line"', "a dead job's error, quoted: it holds a newline")
    t.match(rows[2]![6], /^w-test, lease ends in (9m\d+s|10m)$/)
    t.equal(rows[3]!.at(-1), '{"n":2}')
    const header = lines(table.out)[0]!
    lines(table.out).slice(1).forEach((l, i) => t.ok(l.slice(header.indexOf("STATE")).startsWith(`${rows[i + 1]![1]} `), `row ${i + 1}: columns line up`))

    const dead = await jobs(["list", q, "--state", "dead", "--json"])
    t.equal(dead.code, 0)
    const page = json(dead.out)
    t.equal(page.length, 1)
    t.match(page[0], { ok: true, consistency: "linearizable", node: "n1" })
    t.same((page[0]!["jobs"] as Array<{ id: string; error: string }>).map((j) => [j.id, j.error]), [[ids[0], "SMTP 451\nsecond line"]])

    const first = await jobs(["list", q, "--limit", "2"])
    t.equal(lines(first.out).length, 3, "a header and two rows")
    const cursor = /add --cursor (\S+) for the next page, or --all\n$/.exec(first.err)?.[1]
    t.ok(cursor, `stderr says how to go on: ${first.err}`)
    const second = await jobs(["list", q, "--limit", "2", "--cursor", cursor!])
    t.same(cells(second.out).slice(1).map((r) => r[0]), ids.slice(2, 4))
    const all = await jobs(["list", q, "--limit", "2", "--all"])
    t.same({ code: all.code, err: all.err }, { code: 0, err: "" })
    t.same(cells(all.out).slice(1).map((r) => r[0]), ids, "every page, one table")
    const allJson = json((await jobs(["list", q, "--limit", "2", "--all", "--json"])).out)
    t.equal(allJson.length, 1, "one JSON object for every page")
    t.same((allJson[0]!["jobs"] as Array<{ id: string }>).map((j) => j.id), ids)
    t.notOk("cursor" in allJson[0]!)

    const none = await jobs(["list", q, "--state", "cancelled"])
    t.same({ code: none.code, out: none.out, err: none.err }, { code: 0, out: "", err: `no cancelled jobs in queue ${q}\n` })
    const refused = await jobs(["list", q, "--cursor", "abc"])
    t.equal(refused.code, 2, "a request the cluster refuses as malformed is bad usage")
    t.equal(refused.err, "archio jobs list: bad request: cursor: not a cursor from a jobs.list reply (send back the reply's cursor unchanged)\n")

    const stats = await jobs(["stats", q])
    t.equal(stats.code, 0)
    t.same(cells(stats.out), [
      ["QUEUE", "SCHEDULED", "READY", "LEASED", "FAILED", "DEAD", "COMPLETED", "CANCELLED", "OLDEST READY", "DONE/MIN", "FAILED/MIN"],
      [q, "0", "3", "1", "0", "1", "0", "0", cells(stats.out)[1]![8]!, "0", "1"]
    ])
    t.match(cells(stats.out)[1]![8], /^\d+(ms|s)$/, "how long the oldest ready job waited")
    const statsJson = json((await jobs(["stats", q, "--json"])).out)
    t.match(statsJson, [{ ok: true, queues: [{ queue: q, ready: 3, leased: 1, dead: 1, failedLastMinute: 1 }], time: Number, consistency: "linearizable", node: "n1" }])
    const every = await jobs(["stats"])
    t.ok(cells(every.out).some((r) => r[0] === q) && cells(every.out).some((r) => r[0] === "emails"), "every queue without an argument")

    // retry: a dead job comes back with fresh attempts; a ready one is a conflict.
    const retried = await jobs(["retry", ids[0]!])
    t.equal(retried.code, 0)
    t.match(retried.out, new RegExp(`^job ${ids[0]} is ready again \\(revision \\d+\\)\\n$`))
    t.match(json((await jobs(["get", ids[0]!, "--json"])).out), [{ job: { state: "ready", attempts: 0 } }])
    const notDead = await jobs(["retry", ids[2]!, "--json"])
    t.equal(notDead.code, 1)
    t.same(json(notDead.out), [
      { ok: false, error: { code: "conflict", message: `job ${ids[2]} is ready; only dead, failed or cancelled jobs can be retried`, detail: { state: "ready" } } }
    ])
    t.equal(notDead.err, `archio jobs retry: conflict: job ${ids[2]} is ready; only dead, failed or cancelled jobs can be retried\n`)

    // cancel: the leased job; its worker loses the lease.
    const cancelled = await jobs(["cancel", ids[1]!])
    t.same({ code: cancelled.code, err: cancelled.err }, { code: 0, err: "" })
    t.match(cancelled.out, new RegExp(`^cancelled job ${ids[1]} \\(revision \\d+\\)\\n$`))
    await t.rejects(worker.ack(leased[1]!.id, leased[1]!.token), { code: "lease_lost" })
    const twice = await jobs(["cancel", ids[1]!])
    t.same({ code: twice.code, out: twice.out, err: twice.err }, { code: 1, out: "", err: `archio jobs cancel: conflict: job ${ids[1]} is already cancelled\n` })
    t.match(json((await jobs(["cancel", ids[4]!, "--json"])).out), [{ ok: true, revision: Number, node: "n1" }])
    t.equal((await jobs(["cancel", "999999"])).code, 1)

    // purge: finished jobs only, by state.
    const onlyDead = await jobs(["purge", q, "--state", "dead"])
    t.match(onlyDead.out, new RegExp(`^purged 0 finished jobs of queue ${q} \\(revision \\d+\\)\\n$`), "no dead job left: the retry revived it")
    const purged = await jobs(["purge", q, "--state", "cancelled,completed", "--json"])
    t.match(json(purged.out), [{ ok: true, purged: 2, revision: Number, node: "n1" }])
    const gone = await jobs(["get", ids[1]!])
    t.same({ code: gone.code, err: gone.err }, { code: 1, err: `archio jobs get: not found: job ${ids[1]} does not exist\n` })
    const younger = await jobs(["purge", q, "--older-than", "1h"])
    t.match(younger.out, /^purged 0 finished jobs/)
    t.same(cells((await jobs(["list", q])).out).slice(1).map((r) => [r[0], r[1]]), [[ids[0], "ready"], [ids[2], "ready"], [ids[3], "ready"]])
  })

  t.test("stats --watch in this process: a block per round until stopped", async (t) => {
    const stop = new AbortController()
    const w = start(["jobs", "stats", "life", "--watch", "--interval", "100ms", "--json"], { signal: stop.signal, env: { NATS_URL: url, CLUSTER: "c" } })
    await until("two rounds", () => lines(w.out()).length >= 2)
    stop.abort()
    t.equal(await w.code, 0)
    for (const reply of json(w.out())) t.match(reply, { ok: true, queues: [{ queue: "life" }], time: Number })

    const text = new AbortController()
    const plain = start(["jobs", "stats", "--watch", "--interval", "100ms"], { signal: text.signal, env: { NATS_URL: url, CLUSTER: "c" } })
    await until("two blocks", () => (plain.out().match(/^--- /gm) ?? []).length >= 2)
    text.abort()
    t.equal(await plain.code, 0)
    t.match(plain.out(), /^--- \d{4}-\d\d-\d\dT[\d:.]+Z\nQUEUE {2,}SCHEDULED/)
  })

  t.test("the real program: stdin, a missing job's exit code, stats --watch stopped by SIGINT", async (t) => {
    const env = ["--nats", url, "--cluster", "c"]
    const piped = child(t, ["jobs", "enqueue", "piped", "-", ...env], '{"via":"pipe"}')
    t.same(await piped.exited, { code: 0, signal: null }, piped.err())
    const id = /^enqueued job (\S+) on queue piped/.exec(piped.out())?.[1]
    t.ok(id, piped.out())
    t.match(json((await jobs(["get", id!, "--json"])).out), [{ job: { queue: "piped", payload: { via: "pipe" } } }])

    const missing = child(t, ["jobs", "get", "999999", ...env])
    t.same(await missing.exited, { code: 1, signal: null })
    t.equal(missing.err(), "archio jobs get: not found: job 999999 does not exist\n")
    t.equal(missing.out(), "")

    const watch = child(t, ["jobs", "stats", "piped", "--watch", "--interval", "200ms", ...env])
    await until("two refreshes", () => (watch.out().match(/^--- /gm) ?? []).length >= 2, { timeoutMs: 30_000, everyMs: 50 })
    watch.p.kill("SIGINT")
    t.same(await watch.exited, { code: 0, signal: null }, "SIGINT stops it cleanly with exit 0")
    const blocks = watch.out().split(/^--- .*\n/m).filter((b) => b !== "")
    t.ok(blocks.length >= 2)
    for (const b of blocks) t.same(cells(b)[1]!.slice(0, 4), ["piped", "0", "1", "0"], "each block is the stats table")
    t.equal(watch.err(), "")
  })
})
