/**
 * The one command-line parser every archio command uses: flags and arguments as parseArgs
 * splits them, the environment behind the flags, and every problem reported at once.
 */
import t from "tap"
import { integer, name, parseCommandLine, wantsHelp, type CommandShape, type Env } from "../../bootstrap/options.ts"

const table = {
  cluster: { flag: "--cluster", env: "CLUSTER", placeholder: "NAME", default: "dev", help: "cluster name" },
  port: { flag: "--http-port", env: "HTTP_PORT", legacy: ["KVSTORE_PORT", "PORT"], placeholder: "PORT", help: "port" },
  json: { flag: "--json", help: "print JSON" },
  color: { env: "NO_COLOR", help: "read from the environment only" }
} as const

const twoArgs: CommandShape = { path: "kv put", args: ["<key>", "<value|->"], minArgs: 2 }
const noArgs: CommandShape = { path: "node", args: [], minArgs: 0 }

const parse = (argv: ReadonlyArray<string>, env: Env = {}, shape: CommandShape = noArgs) => {
  const { line, problems } = parseCommandLine(argv, table, env, shape)
  return { args: line.args, cluster: line.get("cluster"), port: line.get("port"), color: line.get("color"), json: line.has("json"), problems }
}

t.test("--flag value, --flag=value and switches", async (t) => {
  t.match(parse(["--cluster", "a", "--http-port=8080", "--json"]), {
    cluster: { source: "--cluster", value: "a" },
    port: { source: "--http-port", value: "8080" },
    json: true,
    problems: []
  })
  t.same(parse(["--cluster="]).cluster, { source: "--cluster", value: "" }, "an empty flag value is still given (and checked by the command)")
  t.same(parse(["--http-port", "-1"]).port, { source: "--http-port", value: "-1" }, "a value may start with one dash")
  t.same(parse(["--json", "k"], {}, twoArgs).args, ["k"], "a switch never takes the next argument")
  t.equal(parse([]).json, false)
})

t.test("a repeated flag: the last one wins", async (t) => {
  t.same(parse(["--cluster", "a", "--cluster=b"]).cluster, { source: "--cluster", value: "b" })
  t.same(parse(["--json", "--json"]).problems, [])
})

t.test("unknown flags: each one named, in every spelling", async (t) => {
  t.same(parse(["--bogus", "--frob=1", "-x"]).problems, [
    'unknown flag "--bogus" (see archio node --help)',
    'unknown flag "--frob" (see archio node --help)',
    'unknown flag "-x" (see archio node --help)'
  ])
  t.same(parse(["-abc"]).problems, ['unknown flag "-abc" (see archio node --help)'], "a short group is one problem, as written")
  t.same(parse(["--no-color"]).problems, ['unknown flag "--no-color" (see archio node --help)'], "a variable-only setting has no flag")
  t.same(parse(["k", "-1"], {}, twoArgs).problems, ['unknown flag "-1" (put "--" before an argument that starts with "-"; see archio kv put --help)'])
  t.same(parse(["--bogus", "1"]).problems, ['unknown flag "--bogus" (see archio node --help)'], "its value is not counted as a stray argument")
})

t.test("missing values", async (t) => {
  t.same(parse(["--cluster"]).problems, ["--cluster needs a value (--cluster NAME)"])
  const stolen = parse(["--cluster", "--http-port", "80"])
  t.same(stolen.problems, ["--cluster needs a value (--cluster NAME)"], "a --flag is not taken as the value before it")
  t.same(stolen.port, { source: "--http-port", value: "80" }, "and is read as a flag")
  t.same(parse(["--cluster", "--json"]).json, true)
  t.same(parse(["--cluster", "--"], {}, twoArgs).problems, ["--cluster needs a value (--cluster NAME)", "missing <key> (usage: archio kv put <key> <value|-> [flags])"])
  t.same(parse(["--json=yes"]).problems, ['--json takes no value, got "yes"'])
})

t.test("arguments, - and --", async (t) => {
  t.match(parse(["k", "-"], {}, twoArgs), { args: ["k", "-"], problems: [] }, "- alone is an argument (standard input)")
  t.match(parse(["--json", "--", "-k", "--cluster"], {}, twoArgs), { args: ["-k", "--cluster"], json: true, problems: [] }, "after -- nothing is a flag")
  t.same(parse(["k", "--cluster", "c", "v"], {}, twoArgs).args, ["k", "v"], "flags may come between arguments")
  t.same(parse([], {}, twoArgs).problems, ["missing <key> (usage: archio kv put <key> <value|-> [flags])"])
  t.same(parse(["k"], {}, twoArgs).problems, ["missing <value|-> (usage: archio kv put <key> <value|-> [flags])"])
  t.same(parse(["a", "b", "c", "d"], {}, twoArgs).problems, [
    'unexpected argument "c" (usage: archio kv put <key> <value|-> [flags])',
    'unexpected argument "d" (usage: archio kv put <key> <value|-> [flags])'
  ])
  t.same(parse(["n1"]).problems, ['unexpected argument "n1" (usage: archio node [flags])'])
})

t.test("flags win over variables, variables over older names; empty variables count as unset", async (t) => {
  t.same(parse(["--http-port", "1"], { HTTP_PORT: "2", KVSTORE_PORT: "3" }).port, { source: "--http-port", value: "1" })
  t.same(parse([], { HTTP_PORT: "2", KVSTORE_PORT: "3", PORT: "4" }).port, { source: "HTTP_PORT", value: "2" })
  t.same(parse([], { KVSTORE_PORT: "3", PORT: "4" }).port, { source: "KVSTORE_PORT", value: "3" }, "older names in their order")
  t.same(parse([], { PORT: "4" }).port, { source: "PORT", value: "4" })
  t.same(parse([], { HTTP_PORT: "", PORT: "4" }).port, { source: "PORT", value: "4" }, "an empty variable is unset")
  t.equal(parse([], { HTTP_PORT: "" }).port, undefined)
  t.same(parse([], { NO_COLOR: "1" }).color, { source: "NO_COLOR", value: "1" })
  t.equal(parse([], { NO_COLOR: "" }).color, undefined)
  t.equal(parse([]).cluster, undefined, "a default is the command's to apply")
})

t.test("--help and -h win, except after --", async (t) => {
  t.ok(wantsHelp(["k", "--bogus", "-h"]))
  t.ok(wantsHelp(["--help"]))
  t.notOk(wantsHelp(["--", "-h"]))
  t.notOk(wantsHelp(["--helpful"]))
})

t.test("value checks name where the value came from", async (t) => {
  const problems: Array<string> = []
  t.equal(integer({ source: "--ttl", value: " 42 " }, 1, 100, problems), 42)
  t.equal(integer({ source: "--ttl", value: "0" }, 1, 100, problems), undefined)
  t.equal(integer({ source: "TTL", value: "1e3" }, 1, 10_000, problems), undefined)
  t.equal(name({ source: "--id", value: "n-1_a" }, "a node id", problems), "n-1_a")
  t.equal(name({ source: "NODE_ID", value: "a.b" }, "a node id", problems), undefined)
  t.same(problems, [
    '--ttl must be an integer from 1 to 100, got "0"',
    'TTL must be an integer from 1 to 10000, got "1e3"',
    'NODE_ID must be a node id made of letters, digits, _ or - (1 to 64 characters), got "a.b"'
  ])
})
