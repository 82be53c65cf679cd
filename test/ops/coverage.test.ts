import t from "tap"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { check, floors, main, type Summary } from "../../ops/coverage.ts"
import { tempDir } from "../support/tmp.ts"

const totals = (pct: number | "Unknown", covered = 80, total = 100) => ({ total, covered, pct })
const summary = (lines: number, branches: number): Summary => ({
  total: { lines: totals(lines), statements: totals(lines), functions: totals(100), branches: totals(branches) },
  "/a.ts": {},
  "/b.ts": {}
})

t.test("check: passes at the floors, fails below any of them", async (t) => {
  const good = check(summary(floors.lines, floors.branches))
  t.ok(good.ok)
  t.equal(good.lines[0], "coverage over 2 source files:")
  t.match(good.lines[1], new RegExp(`^ok {3}lines\\s+${floors.lines}\\.00%\\s+\\(80/100, floor ${floors.lines}%\\)$`))
  const bad = check(summary(100, floors.branches - 0.01))
  t.notOk(bad.ok)
  t.ok(bad.lines.some((l) => l.startsWith("FAIL branches")))
  t.notOk(check({ total: { ...summary(90, 90).total, functions: totals("Unknown") } }).ok, "unknown counts as 0")
})

t.test("main: reads the summary file, exits 1 below the floor or when it is missing", async (t) => {
  const dir = await tempDir(t)
  const good = join(dir, "good.json")
  const bad = join(dir, "bad.json")
  const broken = join(dir, "broken.json")
  await writeFile(good, JSON.stringify(summary(99, 99)))
  await writeFile(bad, JSON.stringify(summary(50, 80)))
  await writeFile(broken, JSON.stringify({ files: 1 }))
  const out: Array<string> = []
  const write = process.stdout.write
  const writeErr = process.stderr.write
  const results: Array<number> = []
  process.stderr.write = ((s: string) => out.push(s) > 0) as typeof process.stderr.write
  process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write
  try {
    results.push(main(["--summary", good]), main(["--summary", bad]), main(["--summary", join(dir, "none.json")]), main(["--summary", broken]), main(["--summary"]))
  } finally {
    process.stdout.write = write
    process.stderr.write = writeErr
  }
  t.same(results, [0, 1, 1, 1, 2])
  t.ok(out.some((l) => l.includes("below the floor")))
  t.ok(out.some((l) => l.includes("run tap first")))
  t.ok(out.some((l) => l.includes('has no "total" section')))
})
