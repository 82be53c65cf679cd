// `npm run sim`: runs ops/sim/run.ts from one esbuild bundle rather than through tsx, whose
// module loading costs every worker process seconds and which names every closure it creates
// (keepNames): a measurable share of a simulated seed, where every message makes closures
// (BENCHMARKS.md, "Simulator"). The bundle is rebuilt on every start and lives in dist/, one
// level below the root like the sources, so their relative paths still resolve.
import { build } from "esbuild"
import { renameSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const bundle = join(root, "dist", "sim.mjs")
if (process.env.ARCHIO_SIM_BUNDLED !== "1") {
  // Built under a temporary name and renamed: the worker processes start while it is in place.
  const tmp = `${bundle}.${process.pid}.tmp`
  await build({
    absWorkingDir: root,
    entryPoints: ["ops/sim/run.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "error",
    outfile: tmp
  })
  renameSync(tmp, bundle)
  process.env.ARCHIO_SIM_BUNDLED = "1"
}
await import(pathToFileURL(bundle).href)
