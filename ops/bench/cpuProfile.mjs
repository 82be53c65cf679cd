// Preload for `npm run bench -- ... --profile-dir DIR`: `--cpu-prof` is not allowed in
// NODE_OPTIONS, so nodes and workers get `--import` of this file instead. It starts the V8
// profiler through the inspector and writes DIR/<id>-<pid>.cpuprofile when the process exits
// (archio node and archio worker exit through process.exit on SIGTERM). V8 names no arrow
// function, so frames of our own sources are mapped back through the source maps (the bundle's
// dist/archio.mjs.map, or tsx's; enabled here) to their original file and line before writing.
// Open the file in Chrome DevTools, or print the top N functions by self time and our own
// functions by total time, optionally for the samples after the first S seconds only, with
//   node ops/bench/cpuProfile.mjs summary FILE [N] [--skip S | --last S]
import { Session } from "node:inspector"
import { findSourceMap } from "node:module"
import { readFileSync, writeFileSync, mkdirSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const dir = process.env.ARCHIO_CPU_PROF_DIR

/** The original file, line and text of a frame of our sources (via the bundle's or tsx's source map), else undefined. */
const original = (frame, lines) => {
  if (!frame.url.startsWith("file://") || frame.url.includes("/node_modules/")) return undefined
  const entry = findSourceMap(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber)
  if (entry === undefined || entry.originalLine === undefined) return undefined
  // The bundle's map names each TypeScript source; tsx's maps name the file they came from.
  const source = entry.originalSource ?? frame.url
  const file = source.startsWith("file://") ? fileURLToPath(source) : resolve(dirname(fileURLToPath(frame.url)), source)
  let text = lines.get(file)
  if (text === undefined) {
    try {
      text = readFileSync(file, "utf8").split("\n")
    } catch {
      text = []
    }
    lines.set(file, text)
  }
  return { url: pathToFileURL(file).href, line: entry.originalLine, column: entry.originalColumn, text: (text[entry.originalLine] ?? "").trim().slice(0, 70) }
}

if (process.argv[2] === "summary") {
  // summary FILE [N] [--skip S] [--last S]: the samples after the first S seconds / of the last S.
  const args = process.argv.slice(3)
  const flag = (name) => {
    const i = args.indexOf(name)
    if (i === -1) return undefined
    const v = Number(args[i + 1])
    args.splice(i, 2)
    return v
  }
  const skip = flag("--skip")
  const last = flag("--last")
  const prof = JSON.parse(readFileSync(args[0], "utf8"))
  const top = Number(args[1] ?? 40)
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const times = []
  let t = prof.startTime
  for (const d of prof.timeDeltas) times.push((t += d))
  const from = skip !== undefined ? prof.startTime + skip * 1e6 : last !== undefined ? prof.endTime - last * 1e6 : -Infinity
  const keyOf = (f) => {
    const where = `${f.url.replace(/^.*\/(node_modules|work\/main)\//, "")}:${f.lineNumber + 1}`
    return `${f.functionName || "(anonymous)"} ${where}${f.sourceText ? `  ${f.sourceText}` : ""}`
  }
  const self = new Map()
  const total = new Map()
  let n = 0
  prof.samples.forEach((id, i) => {
    if (times[i] < from) return
    n++
    const k = keyOf(byId.get(id).callFrame)
    self.set(k, (self.get(k) ?? 0) + 1)
    const seen = new Set()
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at).callFrame
      if (!f.sourceText) continue // inclusive time only for our own sources
      const key = keyOf(f)
      if (seen.has(key)) continue
      seen.add(key)
      total.set(key, (total.get(key) ?? 0) + 1)
    }
  })
  const print = (title, m) => {
    console.log(title)
    for (const [k, c] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((c / n) * 100).toFixed(1).padStart(5)}%  ${k}`)
  }
  console.log(`${n} samples (${((n * (prof.timeDeltas.reduce((a, b) => a + b, 0) / prof.samples.length)) / 1e6).toFixed(1)} s)`)
  print("self time by function:", self)
  print("total time (with callees) of our own functions:", total)
} else if (dir !== undefined && dir !== "") {
  process.setSourceMapsEnabled(true)
  const session = new Session()
  session.connect()
  session.post("Profiler.enable")
  session.post("Profiler.setSamplingInterval", { interval: 250 })
  session.post("Profiler.start")
  process.on("exit", () => {
    const argv = process.argv
    const at = argv.indexOf("--id") === -1 ? argv.indexOf("--worker-id") : argv.indexOf("--id")
    const label = at === -1 ? "proc" : argv[at + 1]
    // An in-process session answers synchronously, so this runs to the end inside "exit".
    session.post("Profiler.stop", (err, res) => {
      if (err) return
      const lines = new Map()
      for (const node of res.profile.nodes) {
        const o = original(node.callFrame, lines)
        if (o === undefined) continue
        node.callFrame.url = o.url
        node.callFrame.lineNumber = o.line
        node.callFrame.columnNumber = o.column
        node.callFrame.sourceText = o.text
      }
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `${label}-${process.pid}.cpuprofile`), JSON.stringify(res.profile))
    })
  })
}
