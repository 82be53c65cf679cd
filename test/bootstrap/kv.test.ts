/**
 * `archio kv`, in process through `main(argv, terminal)`: usage errors (exit 2, nothing sent), and
 * every subcommand against a real one-node cluster in human and --json output, with the exit
 * codes for not found (get) and conflict (cas), stdin input, and watch stopped by an AbortSignal.
 */
import t, { type Test } from "tap"
import { archio, main } from "../../bootstrap/cli.ts"
import type { Terminal } from "../../bootstrap/terminal.ts"
import { kvCommands, kvGroup } from "../../bootstrap/kv/index.ts"
import type { Env } from "../../bootstrap/options.ts"
import { freePort } from "../../bootstrap/natsServer.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { singleNode } from "../support/node.ts"
import { until } from "../support/wait.ts"

interface Options {
  readonly env?: Env
  /** What standard input holds; without it, reading stdin fails the test. */
  readonly stdin?: string
  readonly signal?: AbortSignal
}

interface Running {
  readonly out: () => string
  readonly err: () => string
  readonly code: Promise<number>
  readonly stdinReads: () => number
}

/** Starts `archio ...argv` in this process with captured output. */
const start = (argv: ReadonlyArray<string>, options: Options = {}): Running => {
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

const kvUsage = kvGroup.help()

const kvHelp = (name: string): string => {
  const command = kvCommands.find((c) => c.path === `kv ${name}`)
  if (command === undefined) throw new Error(`no command kv ${name}`)
  return command.help()
}

const lines = (text: string): Array<string> => text.split("\n").filter((l) => l !== "")

const json = (text: string): Array<Record<string, unknown>> => lines(text).map((l) => JSON.parse(l) as Record<string, unknown>)

t.test("help: archio kv and every subcommand", async (t) => {
  t.match(archio.help(), /\n {2}kv +get, put, del, cas, scan, txn and watch keys/, "archio --help lists kv")
  for (const argv of [["kv", "--help"], ["kv", "-h"], ["kv", "help"]]) {
    const r = await run(argv)
    t.equal(r.code, 0, argv.join(" "))
    t.equal(r.out, kvUsage)
  }
  for (const name of ["get", "put", "del", "cas", "scan", "txn", "watch"]) {
    t.match(kvUsage, new RegExp(`\\n  ${name} `), `usage lists ${name}`)
    const r = await run(["kv", name, "--help"])
    t.equal(r.code, 0)
    t.equal(r.out, kvHelp(name))
    t.match(r.out, `Usage: archio kv ${name}`)
    t.match(r.out, "--json")
    t.match(r.out, "--nats URLS", "connection flags are listed")
    t.match(r.out, "Examples:")
    t.equal((await run(["kv", name, "extra", "-h"])).out, kvHelp(name), "-h wins over other arguments")
  }
  t.match(kvHelp("scan"), /--prefix PREFIX[\s\S]*--start KEY[\s\S]*--end KEY[\s\S]*--limit N[\s\S]*--all[\s\S]*--keys-only[\s\S]*--stale/)
  t.match(kvHelp("cas"), "--expect REVISION")
  t.match(kvHelp("put"), "--ttl MS")
  t.match(kvHelp("watch"), /--prefix[\s\S]*--initial/)

  const none = await run(["kv"])
  t.equal(none.code, 2)
  t.equal(none.err, kvUsage)
  const unknown = await run(["kv", "frob"])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /^archio kv: unknown command "frob"\n\nUsage: archio kv/)
})

t.test("usage errors exit 2 with every problem at once, before connecting or reading stdin", async (t) => {
  // No NATS answers here: a command that got past its checks would fail with 1, not 2.
  const nats = ["--nats", `nats://127.0.0.1:${await freePort()}`]
  const cases: Array<[ReadonlyArray<string>, ReadonlyArray<string>]> = [
    [["get"], ["missing <key> (usage: archio kv get <key> [flags])"]],
    [["get", "a", "b"], ['unexpected argument "b" (usage: archio kv get <key> [flags])']],
    [["get", ""], ['<key> expected a non-empty string, got ""']],
    [["get", "a\u0000b"], ["<key> must not contain NUL"]],
    [["get", "k".repeat(1025)], ["<key> is 1025 bytes, over the 1024-byte limit"]],
    [["get", "-x"], ['unknown flag "-x" (put "--" before an argument that starts with "-"']],
    [["put", "k", "-1"], ['unknown flag "-1" (put "--" before an argument that starts with "-"']],
    [["put", "k", "v", "--ttl", "--json"], ["--ttl needs a value (--ttl MS)"]],
    [["get", "k", "--stale=yes"], ['--stale takes no value, got "yes"']],
    [["get", "k", "--bogus", "v"], ['unknown flag "--bogus" (see archio kv get --help)']],
    [["get", "k", "--node", "n1"], ['unknown flag "--node"']],
    [["put", "k"], ["missing <value|-> (usage: archio kv put <key> <value|-> [flags])"]],
    [["put", "k", "v", "--ttl", "0"], ['--ttl must be an integer from 1 to 9007199254740991, got "0"']],
    [["put", "k", "v", "--ttl", "soon"], ['--ttl must be an integer from 1 to 9007199254740991, got "soon"']],
    [["put", "k", "v", "--ttl"], ["--ttl needs a value (--ttl MS)"]],
    [["put", "k", "v".repeat(256 * 1024 + 1)], ["<value> is 262145 bytes, over the 262144-byte limit"]],
    [["del"], ["missing <key>"]],
    [["del", "a", "b"], ['unexpected argument "b"']],
    [["cas", "k", "v"], ["--expect is required: the key's current modRevision"]],
    [["cas", "k", "v", "--expect", "-1"], ['--expect must be an integer from 0 to 9007199254740991, got "-1"']],
    [["cas", "k"], ["missing <value|->"]],
    [["scan", "--prefix", "a", "--start", "b"], ["--prefix cannot be combined with --start or --end: use one form"]],
    [["scan", "--limit", "0"], ['--limit must be an integer from 1 to 1000, got "0"']],
    [["scan", "--limit", "1001"], ['--limit must be an integer from 1 to 1000, got "1001"']],
    [["scan", "--cursor", ""], ['--cursor must be the cursor a previous page printed, got ""']],
    [["scan", "--prefix", "a\u0000"], ["--prefix must not contain NUL"]],
    [["scan", "users/"], ['unexpected argument "users/" (usage: archio kv scan [flags])']],
    [["scan", "--all=yes"], ['--all takes no value, got "yes"']],
    [["txn", "{"], ["the txn is not valid JSON:"]],
    [["txn", "[1]"], ['the txn must be a JSON object {"compare":[...],"success":[...],"failure":[...]}, got [1]']],
    [["txn", '{"success":[{"op":"put","key":"k"}]}'], ["the txn is invalid: success[0]"]],
    [["txn", '{"compare":[{"key":"k","target":"mod","op":"~","value":1}]}'], ["the txn is invalid: compare[0]"]],
    [["txn", '{"sucess":[]}'], ['the txn is invalid: ', 'sucess']],
    [["txn", '{"token":{"client":"x","seq":1}}'], ["the txn must not carry a token"]],
    [["txn", "{}", "{}"], ['unexpected argument "{}"']],
    [["watch"], ["missing KEY (or --prefix [PREFIX] to watch keys by prefix"]],
    [["watch", ""], ['KEY expected a non-empty string, got ""']],
    [["watch", "a", "b", "--prefix"], ['unexpected argument "b"']],
    [["get", "k", "--nats", "foo://x"], ["--nats must be a comma-separated list of nats://host:port or tls://host:port URLs"]],
    [["get", "k", "--cluster", "a b"], ['--cluster must be a cluster name made of letters, digits, _ or - (1 to 64 characters), got "a b"']],
    [["get", "k", "--timeout", "0"], ['--timeout must be an integer from 1 to 600000, got "0"']],
    [["get", "k", "--nats-user", "u"], ["--nats-user is set but NATS_PASS (or --nats-pass) is not"]],
    [["put", "k", "-", "--ttl", "x", "--cluster", "a.b"], ['--ttl must be an integer', '--cluster must be a cluster name']]
  ]
  for (const [argv, messages] of cases) {
    const name = argv[0]!
    const r = await run(["kv", ...argv, ...(argv.includes("--nats") ? [] : nats)])
    const label = `archio kv ${argv.join(" ").slice(0, 60)}`
    t.equal(r.code, 2, `${label}: exit 2`)
    t.equal(r.out, "", `${label}: nothing on stdout`)
    for (const m of messages) t.match(r.err, m, label)
    t.match(r.err, new RegExp(`^archio kv ${name}: `), label)
    const helpLists = name === "scan" ? "the flags and variables" : "the arguments, flags and variables"
    t.match(r.err, `Run "archio kv ${name} --help" for ${helpLists}.\n`, label)
    t.equal(r.stdinReads, 0, `${label}: stdin not read`)
  }
  const env = await run(["kv", "get", "k"], { env: { KV_TIMEOUT_MS: "x", CLUSTER: "ok" } })
  t.equal(env.code, 2)
  t.match(env.err, 'archio kv get: KV_TIMEOUT_MS must be an integer from 1 to 600000, got "x"')

  const badStdin = await run(["kv", "txn", ...nats], { stdin: "not json" })
  t.equal(badStdin.code, 2)
  t.match(badStdin.err, "archio kv txn: the txn is not valid JSON")
  t.equal(badStdin.stdinReads, 1)
})

t.test("without a cluster: clear runtime errors, exit 1", async (t) => {
  const port = await freePort()
  const noServer = await run(["kv", "get", "k", "--nats", `nats://127.0.0.1:${port}`])
  t.equal(noServer.code, 1)
  t.match(noServer.err, `archio kv get: cannot connect to NATS at nats://127.0.0.1:${port}`)

  const server = await natsServer(t)
  const nobody = await run(["kv", "put", "k", "v", "--nats", server.url, "--cluster", "zz", "--timeout", "300"])
  t.equal(nobody.code, 1)
  t.equal(nobody.err, 'archio kv put: unavailable: no Archio node answers on archio.zz.kv.put: is the cluster running, and is its cluster name "zz"?\n')
  const nobodyJson = await run(["kv", "get", "k", "--json", "--timeout", "300"], { env: { NATS_URL: server.url } })
  t.equal(nobodyJson.code, 1)
  t.match(json(nobodyJson.out), [{ ok: false, error: { code: "unavailable" } }])

  const creds = await run(["kv", "get", "k", "--nats", server.url, "--nats-creds", "/nonexistent/x.creds"])
  t.equal(creds.code, 1)
  t.match(creds.err, "archio kv get: cannot read the NATS creds file /nonexistent/x.creds")
})

t.test("watch --initial against a scripted cluster: events during the read wait; those it already shows are dropped", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const event = (e: Record<string, unknown> & { key: string }) => nc.publish(Subjects.kvKeyEvent("f", e.key), JSON.stringify(e))
  const scans: Array<Record<string, unknown>> = []
  nc.subscribe("archio.f.kv.scan", {
    callback: (_e, m) => {
      const q = m.json<Record<string, unknown>>()
      scans.push(q)
      if (q["cursor"] === undefined) {
        // Published while the watcher reads, so they reach it before this reply does.
        event({ type: "put", key: "p/a", revision: 9, value: "old" }) // the read shows it: dropped
        nc.publish("archio.f.events.kv.p.x", "not json") // ignored
        event({ type: "put", key: "p/y" }) // not an event (no revision): ignored
        event({ type: "put", key: "p/b", revision: 11, value: "new" }) // after the first page: printed
        const item = { key: "p/a", value: "old", createRevision: 9, modRevision: 9, version: 1 }
        m.respond(JSON.stringify({ ok: true, items: [item], cursor: "cC9h", revision: 10, consistency: "linearizable", node: "n1" }))
      } else {
        const item = { key: "p/b", value: "new", createRevision: 11, modRevision: 11, version: 1 }
        m.respond(JSON.stringify({ ok: true, items: [item], revision: 12, consistency: "linearizable", node: "n1" }))
      }
    }
  })
  await nc.flush()
  const stop = new AbortController()
  const w = start(["kv", "watch", "--prefix", "p/", "--initial", "--nats", server.url, "--cluster", "f"], { signal: stop.signal })
  await until("the watch to start", () => w.err().includes("watching"))
  event({ type: "del", key: "p/a", revision: 13 })
  event({ type: "put", key: "q/a", revision: 14, value: "other prefix" })
  await until("four lines", () => lines(w.out()).length >= 4)
  t.same(lines(w.out()), ["current\t9\tp/a\told", "current\t11\tp/b\tnew", "put\t11\tp/b\tnew", "del\t13\tp/a"])
  t.same(scans, [{ prefix: "p/", limit: 1000 }, { prefix: "p/", limit: 1000, cursor: "cC9h" }], "the read follows cursors")

  // The server goes away: stderr says so, and stopping still works (exit 0).
  await server.stop()
  await until("the disconnect notice", () => w.err().includes("disconnected from NATS"))
  stop.abort()
  t.equal(await w.code, 0)
  t.match(w.err(), "archio kv watch: disconnected from NATS; reconnecting (changes meanwhile will not be seen)\n")
})

t.test("against a one-node cluster", async (t) => {
  const nc = await singleNode(t)
  const url = `nats://${nc.getServer()}`
  const kv = (tt: Test, argv: ReadonlyArray<string>, options: Options = {}) => {
    void tt
    return run(["kv", ...argv], { ...options, env: { NATS_URL: url, CLUSTER: "c", ...options.env } })
  }

  t.test("put, get, del: human and --json", async (t) => {
    const put = await kv(t, ["put", "users/42", "luffy"])
    t.equal(put.code, 0)
    t.match(put.out, /^revision \d+\n$/)
    const rev = Number(/revision (\d+)/.exec(put.out)![1])

    const get = await kv(t, ["get", "users/42"])
    t.same({ code: get.code, out: get.out, err: get.err }, { code: 0, out: "luffy\n", err: "" })
    const getJson = await kv(t, ["get", "users/42", "--json"])
    t.equal(getJson.code, 0)
    t.match(json(getJson.out), [{ ok: true, key: "users/42", value: "luffy", createRevision: rev, modRevision: rev, version: 1, consistency: "linearizable", node: "n1" }])
    const stale = await kv(t, ["get", "--stale", "--json", "users/42"])
    t.match(json(stale.out), [{ value: "luffy", consistency: "stale" }], "flags may come before the key")

    const putJson = await kv(t, ["put", "users/42", "zoro", "--json"])
    t.equal(putJson.code, 0)
    t.match(json(putJson.out), [{ ok: true, key: "users/42", revision: rev + 1, prevRevision: rev }])

    // A value from stdin is kept byte for byte; people see it once with its own newline.
    const fromStdin = await kv(t, ["put", "notes/a", "-"], { stdin: "line one\nline two\n" })
    t.equal(fromStdin.code, 0)
    t.equal(fromStdin.stdinReads, 1)
    t.equal((await kv(t, ["get", "notes/a"])).out, "line one\nline two\n")
    t.match(json((await kv(t, ["get", "notes/a", "--json"])).out), [{ value: "line one\nline two\n" }])
    t.equal((await kv(t, ["put", "--", "dash/k", "-v"])).code, 0, "after -- a value may start with -")
    t.equal((await kv(t, ["get", "dash/k"])).out, "-v\n")

    const del = await kv(t, ["del", "users/42"])
    t.equal(del.code, 0)
    t.match(del.out, /^deleted "users\/42" \(revision \d+\)\n$/)
    const again = await kv(t, ["del", "users/42", "--json"])
    t.equal(again.code, 0, "deleting a missing key is not an error")
    t.match(json(again.out), [{ ok: true, key: "users/42", deleted: false }])
    const againHuman = await kv(t, ["del", "users/42"])
    t.match(againHuman.out, /^key "users\/42" not found; nothing deleted \(revision \d+\)\n$/)

    const missing = await kv(t, ["get", "users/42"])
    t.same({ code: missing.code, out: missing.out, err: missing.err }, { code: 1, out: "", err: 'archio kv get: key "users/42" not found\n' })
    const missingJson = await kv(t, ["get", "users/42", "--json"])
    t.equal(missingJson.code, 1)
    t.same(json(missingJson.out), [{ ok: false, error: { code: "not_found", message: 'key "users/42" not found' } }])

    const ttl = await kv(t, ["put", "session/x", "s", "--ttl", "60000", "--json"])
    t.equal(ttl.code, 0)
    t.match(json((await kv(t, ["get", "session/x", "--json"])).out), [{ value: "s" }])
  })

  t.test("cas: create only if absent, then by revision; a conflict exits 1 with the current revision", async (t) => {
    const create = await kv(t, ["cas", "lock/a", "me", "--expect", "0"])
    t.equal(create.code, 0)
    const rev = Number(/^revision (\d+)\n$/.exec(create.out)![1])

    const taken = await kv(t, ["cas", "lock/a", "you", "--expect", "0"])
    t.same({ code: taken.code, out: taken.out }, { code: 1, out: "" })
    t.equal(taken.err, `archio kv cas: conflict: key "lock/a" already exists (revision ${rev})\n`)

    const stale = await kv(t, ["cas", "lock/a", "you", "--expect", String(rev + 100), "--json"])
    t.equal(stale.code, 1)
    t.same(json(stale.out), [{ ok: false, error: { code: "conflict", message: `key "lock/a" is at revision ${rev}, not ${rev + 100}`, detail: { revision: rev } } }])
    t.match(stale.err, `archio kv cas: conflict: key "lock/a" is at revision ${rev}, not ${rev + 100}`)

    const swap = await kv(t, ["cas", "lock/a", "-", "--expect", String(rev), "--json"], { stdin: "you" })
    t.equal(swap.code, 0)
    t.match(json(swap.out), [{ ok: true, revision: rev + 1 }])
    t.equal((await kv(t, ["get", "lock/a"])).out, "you\n")
  })

  t.test("scan: prefix, range, pages, --all, keys only, and quoting", async (t) => {
    for (const [k, v] of [["s/a", "1"], ["s/b", "2"], ["s/c", "3"], ["s/d", "tab\there"], ["t/a", "x"]]) {
      t.equal((await kv(t, ["put", k!, v!])).code, 0)
    }
    const all = await kv(t, ["scan", "--prefix", "s/"])
    t.same({ code: all.code, out: all.out, err: all.err }, { code: 0, out: 's/a\t1\ns/b\t2\ns/c\t3\ns/d\t"tab\\there"\n', err: "" })

    const range = await kv(t, ["scan", "--start", "s/b", "--end", "s/d", "--keys-only"])
    t.equal(range.out, "s/b\ns/c\n")

    const page = await kv(t, ["scan", "--prefix", "s/", "--limit", "2"])
    t.equal(page.code, 0)
    t.equal(page.out, "s/a\t1\ns/b\t2\n")
    const cursor = /add --cursor (\S+) for the next page, or --all\n$/.exec(page.err)?.[1]
    t.ok(cursor, `stderr says how to go on: ${page.err}`)
    const next = await kv(t, ["scan", "--prefix", "s/", "--limit", "2", "--cursor", cursor!])
    t.equal(next.out, 's/c\t3\ns/d\t"tab\\there"\n')
    t.equal(next.err, "", "the last page says nothing more")

    const pages = await kv(t, ["scan", "--prefix", "s/", "--limit", "1", "--all", "--keys-only"])
    t.same({ code: pages.code, out: pages.out, err: pages.err }, { code: 0, out: "s/a\ns/b\ns/c\ns/d\n", err: "" })

    const pageJson = await kv(t, ["scan", "--prefix", "s/", "--limit", "3", "--json"])
    const [p] = json(pageJson.out)
    t.match(p, { ok: true, items: [{ key: "s/a", value: "1", version: 1 }, { key: "s/b" }, { key: "s/c" }], cursor: String, consistency: "linearizable" })

    const allJson = await kv(t, ["scan", "--prefix", "s/", "--limit", "1", "--all", "--json", "--stale"])
    const merged = json(allJson.out)
    t.equal(merged.length, 1, "one JSON object for all pages")
    t.match(merged[0], { ok: true, revision: Number, consistency: "stale" })
    t.same((merged[0]!["items"] as Array<{ key: string; value: string }>).map((i) => [i.key, i.value]), [["s/a", "1"], ["s/b", "2"], ["s/c", "3"], ["s/d", "tab\there"]])
    t.notOk("cursor" in merged[0]!)

    const nothing = await kv(t, ["scan", "--prefix", "nope/"])
    t.same({ code: nothing.code, out: nothing.out, err: nothing.err }, { code: 0, out: "", err: "no keys match\n" })
    const nothingAll = await kv(t, ["scan", "--prefix", "nope/", "--all"])
    t.same({ code: nothingAll.code, out: nothingAll.out, err: nothingAll.err }, { code: 0, out: "", err: "no keys match\n" })

    const badCursor = await kv(t, ["scan", "--cursor", "!!"])
    t.equal(badCursor.code, 2, "the cluster refusing a request as malformed is bad usage")
    t.match(badCursor.err, "archio kv scan: bad request: cursor: not a cursor from a kv.scan reply")
  })

  t.test("txn: from an argument or stdin, either branch, human and --json", async (t) => {
    const claim = JSON.stringify({
      compare: [{ key: "job/owner", target: "create", op: "==", value: 0 }],
      success: [
        { op: "put", key: "job/owner", value: "w1" },
        { op: "put", key: "job/state", value: "running" }
      ],
      failure: []
    })
    const first = await kv(t, ["txn", claim])
    t.equal(first.code, 0)
    t.match(first.out, /^succeeded: every compare held; ran the success branch \(revision \d+\)\n$/)
    t.equal((await kv(t, ["get", "job/state"])).out, "running\n")

    const second = await kv(t, ["txn", "--json"], { stdin: claim })
    t.equal(second.code, 0, "a failed compare is not an error")
    t.equal(second.stdinReads, 1)
    t.match(json(second.out), [{ ok: true, succeeded: false, revision: Number }])
    const third = await kv(t, ["txn", "-"], { stdin: claim })
    t.match(third.out, /^failed: a compare did not hold; ran the failure branch \(revision \d+\)\n$/)

    // Lists left out count as empty.
    const onlySuccess = await kv(t, ["txn", '{"success":[{"op":"del","key":"job/owner"}]}', "--json"])
    t.match(json(onlySuccess.out), [{ ok: true, succeeded: true }])
    t.equal((await kv(t, ["get", "job/owner"])).code, 1)

    const dup = await kv(t, ["txn", '{"success":[{"op":"del","key":"a"},{"op":"del","key":"a"}]}'])
    t.equal(dup.code, 2)
    t.match(dup.err, 'archio kv txn: bad request: success: key "a" appears more than once')
  })

  t.test("watch: events for a prefix until stopped; --initial prints the current keys first", async (t) => {
    t.equal((await kv(t, ["put", "w/old", "before"])).code, 0)
    const stop = new AbortController()
    const w = start(["kv", "watch", "--prefix", "w/", "--nats", url, "--cluster", "c"], { signal: stop.signal })
    await until("the watch to start", () => w.err().includes("watching"))
    t.match(w.err(), 'archio kv watch: watching keys starting with "w/" on archio.c.events.kv.w.> (Ctrl-C to stop)\n')

    const put = await kv(t, ["put", "w/a", "one"])
    const rev = Number(/revision (\d+)/.exec(put.out)![1])
    t.equal((await kv(t, ["put", "x/a", "elsewhere"])).code, 0)
    t.equal((await kv(t, ["put", "w", "not under w/"])).code, 0)
    t.equal((await kv(t, ["del", "w/a"])).code, 0)
    await until("two events", () => lines(w.out()).length >= 2)
    stop.abort()
    t.equal(await w.code, 0, "exits 0 when stopped")
    t.same(lines(w.out()), [`put\t${rev}\tw/a\tone`, `del\t${rev + 3}\tw/a`], "only keys under the prefix, no initial state")

    // A prefix that ends inside a segment listens wider and filters by key.
    const stop2 = new AbortController()
    const narrow = start(["kv", "watch", "w/a", "--prefix", "--initial", "--json"], { signal: stop2.signal, env: { NATS_URL: url, CLUSTER: "c" } })
    await until("the second watch to start", () => narrow.err().includes("watching"))
    t.match(narrow.err(), "on archio.c.events.kv.w.>")
    t.equal((await kv(t, ["put", "w/ab", "yes"])).code, 0)
    t.equal((await kv(t, ["put", "w/b", "no"])).code, 0)
    t.equal((await kv(t, ["put", "w/a", "again"])).code, 0)
    await until("two events", () => lines(narrow.out()).length >= 2)
    stop2.abort()
    t.equal(await narrow.code, 0)
    t.match(json(narrow.out()), [
      { type: "put", key: "w/ab", value: "yes", version: 1 },
      { type: "put", key: "w/a", value: "again" }
    ])

    // --initial: the current keys, then only newer changes.
    const stop3 = new AbortController()
    const initial = start(["kv", "watch", "--prefix", "w/", "--initial", "--nats", url, "--cluster", "c"], { signal: stop3.signal })
    await until("the third watch to start", () => initial.err().includes("watching"))
    const seen = lines(initial.out())
    t.same(seen.map((l) => l.split("\t")[0]), ["current", "current", "current", "current"], seen.join(" | "))
    t.same(seen.map((l) => l.split("\t")[2]), ["w/a", "w/ab", "w/b", "w/old"], "in key order")
    t.match(seen[0], /^current\t\d+\tw\/a\tagain$/)
    t.equal((await kv(t, ["del", "w/old"])).code, 0)
    await until("the delete", () => lines(initial.out()).length >= 5)
    stop3.abort()
    t.equal(await initial.code, 0)
    t.match(lines(initial.out())[4], /^del\t\d+\tw\/old$/)
  })

  t.test("watch: one key, --json, with its current value", async (t) => {
    t.equal((await kv(t, ["put", "one/k", "v0"])).code, 0)
    t.equal((await kv(t, ["put", "one/kk", "other key"])).code, 0)
    const stop = new AbortController()
    const w = start(["kv", "watch", "one/k", "--initial", "--json", "--nats", url, "--cluster", "c"], { signal: stop.signal })
    await until("the watch to start", () => w.err().includes("watching"))
    t.match(w.err(), 'watching "one/k" on archio.c.events.kv.one.k ')
    t.equal((await kv(t, ["put", "one/kk", "still other"])).code, 0)
    const put = await kv(t, ["put", "one/k", "v1", "--json"])
    const rev = json(put.out)[0]!["revision"]
    t.equal((await kv(t, ["del", "one/k"])).code, 0)
    await until("three lines", () => lines(w.out()).length >= 3)
    stop.abort()
    t.equal(await w.code, 0)
    const events = json(w.out())
    t.match(events, [
      { type: "current", key: "one/k", value: "v0", version: 1, revision: Number },
      { type: "put", key: "one/k", value: "v1", revision: rev, version: 2 },
      { type: "del", key: "one/k" }
    ])
    t.equal(events.length, 3)

    const absent = new AbortController()
    absent.abort()
    const none = await run(["kv", "watch", "nobody/here", "--initial", "--nats", url, "--cluster", "c"], { signal: absent.signal })
    t.same({ code: none.code, out: none.out }, { code: 0, out: "" }, "an absent key prints no current line; an aborted signal stops at once")
  })
})
