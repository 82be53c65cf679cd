/**
 * The tables of a comparison run (`jobs-vs-bullmq`, `kv-vs`): every system measured in turn in
 * each round, then per metric each system's median and range over the rounds, and the ratio
 * of Archio to each peer taken within each round.
 *
 * Runs minutes apart on this shared VM drift by up to ±30%; a ratio taken within one round,
 * systems a minute apart, cancels the slow drifts, so its median over rounds is the figure to
 * quote (sideBySide.ts makes the same argument for `side-by-side`). No cluster code here: the
 * tables' test loads none.
 */
import { defaultResultPath, writeResultFile } from "./results.ts"
import { median } from "./summary.ts"

/** What one figure measures, and which way is better. */
export interface Metric {
  /** e.g. "puts, 16 clients"; also the key figures are filed under. */
  readonly name: string
  /** e.g. "puts/s", "ms". */
  readonly unit: string
  readonly better: "higher" | "lower"
}

/** One system's figure for one metric in one round. */
export interface Figure {
  readonly metric: string
  readonly system: string
  readonly value: number
  /** Anything worth keeping beside the figure: latency percentiles, the CPU of each process. */
  readonly detail?: string
}

/** Whose figure is divided by whose: `of` / `to` (`of` is an Archio variant, `to` a peer). */
export interface Pair {
  readonly of: string
  readonly to: string
}

export interface Comparison {
  readonly title: string
  readonly metrics: ReadonlyArray<Metric>
  /** The systems in the order they are printed. */
  readonly systems: ReadonlyArray<string>
  readonly pairs: ReadonlyArray<Pair>
}

/** The figure of `system` for `metric` in one round, if it was measured. */
const valueIn = (round: ReadonlyArray<Figure>, metric: string, system: string): number | undefined =>
  round.find((f) => f.metric === metric && f.system === system)?.value

/** "1234" for rates, "1.23" for small figures such as milliseconds. */
export const figure = (x: number): string => (Math.abs(x) >= 100 ? String(Math.round(x)) : x.toFixed(2))

const pad = (s: string, n: number): string => s.padEnd(n)

/** The length of "<of> / <to>", to line the pairs' figures up. */
const pairLabelLength = (p: Pair): number => p.of.length + p.to.length + 3

/** One pair's ratio in each round where both systems were measured (rounds without both are left out). */
export const ratiosOf = (rounds: ReadonlyArray<ReadonlyArray<Figure>>, metric: string, pair: Pair): number[] =>
  rounds.flatMap((round) => {
    const a = valueIn(round, metric, pair.of)
    const b = valueIn(round, metric, pair.to)
    return a === undefined || b === undefined || b === 0 ? [] : [a / b]
  })

/** The ratio is in `of`'s favour: above 1 where higher is better, below 1 where lower is. */
export const ahead = (ratio: number, better: Metric["better"]): boolean => (better === "higher" ? ratio > 1 : ratio < 1)

/** The lines that report one round as soon as it is measured: each metric, each system's figure. */
export const roundLines = (c: Comparison, round: ReadonlyArray<Figure>, index: number): string[] => {
  const width = Math.max(0, ...c.pairs.map(pairLabelLength))
  const lines = [`round ${index} of ${c.title}:`]
  for (const m of c.metrics) {
    const measured = c.systems.flatMap((s) => {
      const v = valueIn(round, m.name, s)
      return v === undefined ? [] : [`${s} ${figure(v)}`]
    })
    if (measured.length === 0) continue
    lines.push(`  ${m.name} (${m.unit}): ${measured.join(", ")}`)
    for (const p of c.pairs) {
      const [r] = ratiosOf([round], m.name, p)
      if (r !== undefined) lines.push(`    ${pad(`${p.of} / ${p.to}`, width)}  ${r.toFixed(2)}`)
    }
  }
  return lines
}

/**
 * The summary over all rounds: per metric, each system's median (range) and its figure in
 * every round, then each pair's ratio in every round, their median, and in how many rounds
 * the Archio side was ahead.
 */
export const summaryLines = (c: Comparison, rounds: ReadonlyArray<ReadonlyArray<Figure>>): string[] => {
  const width = Math.max(...c.systems.map((s) => s.length), ...c.pairs.map(pairLabelLength))
  const lines = [`${c.title} over ${rounds.length} round(s):`]
  for (const m of c.metrics) {
    const rows: string[] = []
    for (const s of c.systems) {
      const values = rounds.flatMap((round) => {
        const v = valueIn(round, m.name, s)
        return v === undefined ? [] : [v]
      })
      if (values.length === 0) continue
      rows.push(
        `    ${pad(s, width)}  median ${figure(median(values))} (${figure(Math.min(...values))}-${figure(Math.max(...values))}); rounds: ${values.map(figure).join(" ")}`
      )
    }
    for (const p of c.pairs) {
      const ratios = ratiosOf(rounds, m.name, p)
      if (ratios.length === 0) continue
      const won = ratios.filter((r) => ahead(r, m.better)).length
      rows.push(
        `    ${pad(`${p.of} / ${p.to}`, width)}  median ${median(ratios).toFixed(2)}, ${p.of} ahead in ${won} of ${ratios.length}; rounds: ${ratios.map((r) => r.toFixed(2)).join(" ")}`
      )
    }
    if (rows.length > 0) lines.push(`  ${m.name} (${m.unit}, ${m.better} is better):`, ...rows)
  }
  return lines
}

/** What a comparison's JSON result file holds (results.ts writes it). */
export const resultDocument = (
  c: Comparison,
  rounds: ReadonlyArray<ReadonlyArray<Figure>>,
  run: { readonly command: string; readonly startedAt: string; readonly options: Readonly<Record<string, unknown>> }
) => ({
  command: run.command,
  title: c.title,
  startedAt: run.startedAt,
  finishedAt: new Date().toISOString(),
  options: run.options,
  metrics: c.metrics,
  rounds: rounds.map((figures, i) => ({ round: i + 1, figures })),
  summary: c.metrics.map((m) => ({
    metric: m.name,
    medians: Object.fromEntries(
      c.systems.flatMap((s) => {
        const values = rounds.flatMap((round) => {
          const v = valueIn(round, m.name, s)
          return v === undefined ? [] : [v]
        })
        return values.length === 0 ? [] : [[s, median(values)]]
      })
    ),
    ratios: c.pairs.flatMap((p) => {
      const ratios = ratiosOf(rounds, m.name, p)
      return ratios.length === 0 ? [] : [{ of: p.of, to: p.to, perRound: ratios, median: median(ratios), ahead: ratios.filter((r) => ahead(r, m.better)).length }]
    })
  }))
})

/** The parts asked for (`--parts`), all by default; exits on an unknown one. */
export const chooseParts = <P extends string>(asked: ReadonlyArray<string> | undefined, known: ReadonlyArray<P>): ReadonlyArray<P> => {
  if (asked === undefined) return known
  const unknown = asked.filter((p) => !(known as ReadonlyArray<string>).includes(p))
  if (unknown.length > 0) {
    console.error(`unknown part(s) ${unknown.join(", ")}; choose from: ${known.join(", ")}`)
    process.exit(2)
  }
  return known.filter((p) => asked.includes(p))
}

/**
 * Runs `rounds` rounds of `round` (which files each figure it measures with `add`), printing
 * each round's figures and ratios when it ends and the summary at the end, and rewriting the
 * JSON result file at `jsonPath` after every round, so an interrupted run keeps the rounds it
 * finished.
 */
export const runRounds = async (
  c: Comparison,
  run: { readonly command: string; readonly rounds: number; readonly jsonPath: string | undefined; readonly options: Readonly<Record<string, unknown>> },
  round: (index: number, add: (f: Figure) => void) => Promise<void>
): Promise<ReadonlyArray<ReadonlyArray<Figure>>> => {
  const startedAt = new Date().toISOString()
  const path = run.jsonPath ?? defaultResultPath(run.command, startedAt)
  const rounds: Figure[][] = []
  let written = ""
  for (let i = 1; i <= run.rounds; i++) {
    console.log(`--- round ${i} of ${run.rounds} of ${c.title}`)
    const figures: Figure[] = []
    rounds.push(figures)
    await round(i, (f) => figures.push(f))
    for (const line of roundLines(c, figures, i)) console.log(line)
    written = await writeResultFile(path, resultDocument(c, rounds, { command: run.command, startedAt, options: run.options }))
  }
  for (const line of summaryLines(c, rounds)) console.log(line)
  if (written !== "") console.log(`results written to ${written}`)
  return rounds
}
