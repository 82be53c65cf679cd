/**
 * How every archio command runs (help, usage errors, exit codes) and how its help is rendered
 * from its option tables, on a made-up command the way `archio snapshot` would be added.
 */
import t from "tap"
import { Either } from "effect"
import { defineCommand, defineGroup } from "../../bootstrap/command.ts"
import { ConfigError, integer } from "../../bootstrap/options.ts"
import type { Terminal } from "../../bootstrap/terminal.ts"

const restoreOptions = {
  from: { flag: "--from", env: "SNAPSHOT_FILE", legacy: ["OLD_SNAPSHOT_FILE"], placeholder: "FILE", default: "required", help: "the snapshot to read" },
  limit: { flag: "--limit", placeholder: "N", default: "10", help: "at most this many" },
  force: { flag: "--force", help: "overwrite what is there" }
} as const

const connection = { cluster: { flag: "--cluster", env: "CLUSTER", placeholder: "NAME", default: "dev", help: "cluster name" } } as const

const runs: Array<unknown> = []
let checks = 0

const restore = defineCommand({
  path: "snapshot restore",
  summary: "restore a snapshot",
  args: ["<node>"],
  description: "Restores a snapshot onto <node>.",
  options: [
    { title: "Flags", options: restoreOptions },
    { title: "Connection", options: connection }
  ],
  examples: ["archio snapshot restore n1 --from ./s.snap"],
  check: (line) => {
    checks++
    const problems: Array<string> = []
    const from = line.get("from")
    if (from === undefined) problems.push("--from (or SNAPSHOT_FILE) is required")
    const limit = line.get("limit")
    const max = limit === undefined ? 10 : integer(limit, 1, 100, problems)
    if (problems.length > 0 || from === undefined || max === undefined) return Either.left(new ConfigError({ problems }))
    return Either.right({ node: line.args[0], from: from.value, max, force: line.has("force"), cluster: line.get("cluster")?.value ?? "dev" })
  },
  run: async (settings, terminal) => {
    runs.push(settings)
    terminal.out("restored\n")
    return settings.force ? 0 : 1
  }
})

const snapshot = defineGroup({
  path: "snapshot",
  summary: "save and restore snapshots",
  description: "Saves and restores snapshots.",
  commands: [restore],
  notes: "Every command takes --cluster.",
  options: [{ title: "Connection", options: connection }]
})

const run = async (argv: ReadonlyArray<string>, env: Terminal["env"] = {}) => {
  let out = ""
  let err = ""
  const code = await snapshot.run(argv, { out: (s) => void (out += s), err: (s) => void (err += s), env })
  return { code, out, err }
}

t.test("a command's help comes from its tables", async (t) => {
  t.equal(
    restore.help(),
    `Usage: archio snapshot restore <node> [flags]

Restores a snapshot onto <node>.

Flags:
  --from FILE     the snapshot to read
                  (env SNAPSHOT_FILE, OLD_SNAPSHOT_FILE; required)
  --limit N       at most this many
                  (default 10)
  --force         overwrite what is there
  --help, -h      show this help

Connection:
  --cluster NAME  cluster name
                  (env CLUSTER; default dev)

Examples:
  archio snapshot restore n1 --from ./s.snap
`
  )
  for (const argv of [["restore", "--help"], ["restore", "n1", "--bogus", "-h"], ["restore", "-h", "--", "x"]]) {
    const r = await run(argv)
    t.same(r, { code: 0, out: restore.help(), err: "" }, argv.join(" "))
  }
})

t.test("a group lists its commands and passes the rest of argv on", async (t) => {
  t.equal(
    snapshot.help(),
    `Usage: archio snapshot <command> [arguments] [flags]

Saves and restores snapshots.

Commands:
  restore <node>  restore a snapshot
  help            show this help

Every command takes --cluster.

Connection:
  --cluster NAME  cluster name
                  (env CLUSTER; default dev)
  --help, -h      show this help
`
  )
  t.same(await run([]), { code: 2, out: "", err: snapshot.help() })
  for (const word of ["help", "--help", "-h"]) t.same(await run([word]), { code: 0, out: snapshot.help(), err: "" })
  t.same(await run(["frob"]), { code: 2, out: "", err: `archio snapshot: unknown command "frob"\n\n${snapshot.help()}` })

  runs.length = 0
  const ok = await run(["restore", "n1", "--force", "--from=./a.snap"], { CLUSTER: "c", SNAPSHOT_FILE: "./ignored.snap" })
  t.same(ok, { code: 0, out: "restored\n", err: "" })
  t.same(runs, [{ node: "n1", from: "./a.snap", max: 10, force: true, cluster: "c" }])
  const fromEnv = await run(["restore", "n1"], { SNAPSHOT_FILE: "", OLD_SNAPSHOT_FILE: "./old.snap" })
  t.equal(fromEnv.code, 1, "the command's own exit code")
  t.match(runs[1], { from: "./old.snap", force: false })
})

t.test("usage errors: every problem at once, then where help is; exit 2 and nothing run", async (t) => {
  runs.length = 0
  checks = 0
  const syntax = await run(["restore", "--limit", "--force", "--bogus", "-x"])
  t.same(syntax, {
    code: 2,
    out: "",
    err: [
      "archio snapshot restore: --limit needs a value (--limit N)",
      'archio snapshot restore: unknown flag "--bogus" (see archio snapshot restore --help)',
      'archio snapshot restore: unknown flag "-x" (put "--" before an argument that starts with "-"; see archio snapshot restore --help)',
      'Run "archio snapshot restore --help" for the arguments, flags and variables.',
      ""
    ].join("\n")
  })
  t.equal(checks, 0, "a malformed command line is not checked further")

  const values = await run(["restore", "n1", "--limit", "0"])
  t.equal(values.code, 2)
  t.equal(
    values.err,
    'archio snapshot restore: --from (or SNAPSHOT_FILE) is required\narchio snapshot restore: --limit must be an integer from 1 to 100, got "0"\nRun "archio snapshot restore --help" for the arguments, flags and variables.\n'
  )
  t.same(runs, [], "nothing ran")

  t.match((await run(["restore"])).err, "archio snapshot restore: missing <node> (usage: archio snapshot restore <node> [flags])")
})

t.test("two options with one flag are a bug in the tables", async (t) => {
  t.throws(
    () =>
      defineCommand({
        path: "x",
        summary: "",
        description: "",
        options: [
          { title: "A", options: { a: { flag: "--same", help: "" } } },
          { title: "B", options: { b: { flag: "--same", help: "" } } }
        ],
        check: () => Either.right(undefined),
        run: async () => 0
      }),
    /archio x: two options use --same/
  )
})
