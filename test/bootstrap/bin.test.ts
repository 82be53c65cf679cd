/**
 * bin/archio.js runs an esbuild bundle of the sources and must rebuild it whenever a source it
 * was built from changes; a stale bundle would run old code without a word.
 */
import t from "tap"
import { execFile } from "node:child_process"
import { readFileSync, statSync, utimesSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const root = fileURLToPath(new URL("../..", import.meta.url))
const bin = join(root, "bin", "archio.js")
const bundle = join(root, "dist", "archio.mjs")
const run = promisify(execFile)
const archio = (...args: Array<string>) => run(process.execPath, [bin, ...args], { env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: "0" } })

t.test("the bundle records its sources and is rebuilt when one of them changes", async (t) => {
  t.equal((await archio("--version")).stdout.trim(), JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version)
  const inputs = Object.keys(JSON.parse(readFileSync(join(root, "dist", "archio.inputs.json"), "utf8")) as Record<string, string>)
  for (const file of ["bootstrap/cli.ts", "bootstrap/node.ts", "actors/raft/core.ts", "bootstrap/dev.ts", "bootstrap/workerCommand.ts", "package.json"]) {
    t.ok(inputs.includes(file), `${file} is a recorded input`)
  }

  const before = statSync(bundle).mtimeMs
  await archio("--version")
  t.equal(statSync(bundle).mtimeMs, before, "nothing changed: the bundle is reused")

  // A touched source (as a checkout or an edit leaves it) makes the next start rebuild.
  const source = join(root, "actors", "raft", "core.ts")
  const { atime, mtime } = statSync(source)
  const later = new Date(mtime.getTime() + 1000)
  utimesSync(source, atime, later)
  t.teardown(() => utimesSync(source, atime, mtime))
  await archio("--version")
  t.ok(statSync(bundle).mtimeMs > before, "rebuilt after a source changed")
})
