#!/usr/bin/env node
// The `archio` command. Our sources are TypeScript. Loading them through tsx costs seconds of CPU
// per process start, which on a busy machine turns a node restart into many seconds; so we run
// one esbuild bundle of them instead (a fraction of that; BENCHMARKS.md, "Process start"),
// rebuilt here whenever a source it was built from changed. The bundle lives in dist/, one level
// below the root like every source file, so their `../package.json`-style paths still resolve.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bundle = join(root, "dist", "archio.mjs")
const manifest = join(root, "dist", "archio.inputs.json")

/** Size and mtime of each file, so an edit, a checkout or a deletion all count as a change. */
const fingerprint = (files) =>
  Object.fromEntries(
    files.map((file) => {
      try {
        const s = statSync(join(root, file))
        return [file, `${s.size}:${s.mtimeMs}`]
      } catch {
        return [file, "missing"]
      }
    })
  )

const isFresh = () => {
  try {
    const recorded = JSON.parse(readFileSync(manifest, "utf8"))
    const now = fingerprint(Object.keys(recorded))
    return Object.keys(recorded).every((file) => recorded[file] === now[file])
  } catch {
    return false
  }
}

const build = async () => {
  const { build } = await import("esbuild")
  const result = await build({
    absWorkingDir: root,
    entryPoints: ["bootstrap/cli.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    sourcemap: "linked",
    metafile: true,
    logLevel: "error",
    outfile: bundle,
    // Kept in memory and written below under temporary names, so the bundle names its map
    // by its final name.
    write: false
  })
  // Rename is atomic: processes starting together each build, and none reads half a file.
  const place = (file, contents) => {
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, contents)
    renameSync(tmp, file)
  }
  const output = (suffix) => result.outputFiles.find((f) => f.path.endsWith(suffix)).contents
  place(`${bundle}.map`, output(".mjs.map"))
  place(bundle, output(".mjs"))
  place(manifest, JSON.stringify(fingerprint([...Object.keys(result.metafile.inputs), "package.json"])))
}

let entry = pathToFileURL(bundle).href
if (!isFresh()) {
  try {
    mkdirSync(dirname(bundle), { recursive: true })
    await build()
  } catch (error) {
    // A read-only install, say: run the sources through tsx, slower but the same program.
    process.stderr.write(`archio: cannot build ${bundle} (${error?.message ?? error}); loading the TypeScript sources instead\n`)
    const { register } = await import("tsx/esm/api")
    register()
    entry = pathToFileURL(join(root, "bootstrap", "cli.ts")).href
  }
}
// A worker's handler may be TypeScript; tsx's loader only costs when a .ts file is imported.
// The handler comes as `--handler FILE`, `--handler=FILE` or WORKER_HANDLER, as the worker reads it.
const handlerIndex = process.argv.indexOf("--handler")
const handler =
  (handlerIndex > 0 ? process.argv[handlerIndex + 1] : undefined) ??
  process.argv.find((arg) => arg.startsWith("--handler="))?.slice("--handler=".length) ??
  process.env.WORKER_HANDLER ??
  ""
if (!entry.endsWith(".ts") && /\.[cm]?ts$/.test(handler)) {
  const { register } = await import("tsx/esm/api")
  register()
}
// Stack traces name bundle lines; NODE_OPTIONS=--enable-source-maps maps them to the TypeScript
// (dist/archio.mjs.map), at ~0.3 s more per start, which is why it is not on by default.
const { main } = await import(entry)
const code = await main(process.argv.slice(2))
process.exit(code)
