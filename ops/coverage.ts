/**
 * Coverage floor for `npm test`. tap 21 knows only "100% or fail" and "anything goes", so
 * `.taprc` sets `allow-incomplete-coverage` and writes a json-summary report; this script reads
 * it, prints the totals, and fails below the floors. The floors sit a little under what the
 * suite measures today: raise them as tests grow, never lower them to make a build pass.
 *
 *   node --import tsx ops/coverage.ts [--summary .tap/report/coverage-summary.json]
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

/**
 * What the whole suite measured when these were set, less about two points: a change that
 * lands untested code shows, and noise between runs does not fail a build (BENCHMARKS.md has
 * no figures for this; `npm test` prints them).
 */
export const floors = { lines: 96, statements: 96, functions: 94, branches: 89 } as const
export type Metric = keyof typeof floors

interface Totals {
  readonly total: number
  readonly covered: number
  readonly pct: number | "Unknown"
}

export type Summary = { readonly total: Readonly<Record<Metric, Totals>> } & Readonly<Record<string, unknown>>

export const defaultSummaryPath = ".tap/report/coverage-summary.json"

/** The lines to print and whether every metric meets its floor. */
export const check = (summary: Summary, limits: Readonly<Record<Metric, number>> = floors): { ok: boolean; lines: Array<string> } => {
  const lines: Array<string> = []
  let ok = true
  const files = Object.keys(summary).filter((k) => k !== "total").length
  for (const metric of Object.keys(limits) as Array<Metric>) {
    const totals = summary.total[metric]
    const pct = typeof totals.pct === "number" ? totals.pct : 0
    const pass = pct >= limits[metric]
    if (!pass) ok = false
    lines.push(
      `${pass ? "ok  " : "FAIL"} ${metric.padEnd(10)} ${pct.toFixed(2).padStart(6)}%  (${totals.covered}/${totals.total}, floor ${limits[metric]}%)`
    )
  }
  lines.unshift(`coverage over ${files} source files:`)
  return { ok, lines }
}

export const main = (argv: ReadonlyArray<string>): number => {
  const at = argv.indexOf("--summary")
  const path = at === -1 ? defaultSummaryPath : argv[at + 1]
  if (path === undefined) {
    process.stderr.write("coverage: --summary needs a file\n")
    return 2
  }
  let summary: Summary
  try {
    summary = JSON.parse(readFileSync(path, "utf8")) as Summary
  } catch (e) {
    process.stderr.write(
      `coverage: cannot read ${path} (${e instanceof Error ? e.message : String(e)}); run tap first (npm run tap) with coverage-report json-summary\n`
    )
    return 1
  }
  if (typeof summary.total !== "object" || summary.total === null) {
    process.stderr.write(`coverage: ${path} has no "total" section\n`)
    return 1
  }
  const result = check(summary)
  for (const line of result.lines) process.stdout.write(`${line}\n`)
  if (!result.ok) process.stderr.write("coverage: below the floor (see ops/coverage.ts)\n")
  return result.ok ? 0 : 1
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) process.exit(main(process.argv.slice(2)))
