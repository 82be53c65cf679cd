/**
 * `side-by-side`: `write-path` (one client), `write` and `write-etcd`, one after the other, for
 * `--rounds` rounds, then a summary per concurrency: each system's median and range, and the
 * ratio Archio/etcd within each round (its median, and in how many rounds Archio was ahead).
 *
 * Runs minutes apart on this shared VM differ by up to ±30%, more than most changes we measure;
 * a ratio taken within a round, a minute apart, cancels the slow drifts, and its median over
 * rounds is the figure to quote.
 */
import type { BenchOptions, Level } from "./common.ts"
import { percentile, rateOf } from "./common.ts"
import { etcdInstallHint, etcdWriteBench } from "./etcd.ts"
import { writePath } from "./floor.ts"
import { writeBench } from "./writes.ts"

interface Round {
  readonly floor: ReadonlyArray<Level>
  readonly archio: ReadonlyArray<Level>
  readonly etcd: ReadonlyArray<Level>
}

const rateAt = (levels: ReadonlyArray<Level>, concurrency: number): number | undefined => {
  const level = levels.find((l) => l.concurrency === concurrency)
  return level === undefined ? undefined : rateOf(level.result)
}

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const spread = (xs: ReadonlyArray<number>): string => {
  const sorted = [...xs].sort((a, b) => a - b)
  return `median ${Math.round(median(sorted))} (${Math.round(sorted[0]!)}-${Math.round(percentile(sorted, 100))})`
}

/** The summary lines for the rounds made (exported for its test). */
export const summarize = (rounds: ReadonlyArray<Round>, levels: ReadonlyArray<number>): string[] => {
  const lines = [`side by side over ${rounds.length} round(s), puts/s:`]
  for (const c of levels) {
    const archio = rounds.map((r) => rateAt(r.archio, c)).filter((x): x is number => x !== undefined)
    const etcd = rounds.map((r) => rateAt(r.etcd, c)).filter((x): x is number => x !== undefined)
    const ratios = rounds.flatMap((r) => {
      const a = rateAt(r.archio, c)
      const e = rateAt(r.etcd, c)
      return a === undefined || e === undefined ? [] : [a / e]
    })
    const floor = rounds.map((r) => rateAt(r.floor, c)).filter((x): x is number => x !== undefined)
    const parts = [`  ${String(c).padStart(3)} client(s): Archio ${archio.length > 0 ? spread(archio) : "-"}, etcd ${etcd.length > 0 ? spread(etcd) : "-"}`]
    if (floor.length > 0) parts.push(`write path ${spread(floor)}`)
    if (ratios.length > 0) {
      const ahead = ratios.filter((x) => x > 1).length
      parts.push(`Archio/etcd within a round: median ${median(ratios).toFixed(2)}, ahead in ${ahead} of ${ratios.length}`)
    }
    lines.push(parts.join("; "))
  }
  return lines
}

export const sideBySide = async (o: BenchOptions): Promise<void> => {
  const levels = o.concurrency ?? [1, 16, 64]
  const rounds: Round[] = []
  for (let i = 1; i <= o.rounds; i++) {
    console.log(`--- round ${i} of ${o.rounds}`)
    const floor = levels.includes(1) ? await writePath(o.seconds, o.warmup, o.valueBytes) : []
    const archio = await writeBench({ ...o, concurrency: levels })
    const etcd = await etcdWriteBench({ ...o, concurrency: levels })
    if (etcd === undefined) {
      console.log(`side-by-side needs etcd: ${etcdInstallHint}`)
      return
    }
    rounds.push({ floor, archio, etcd })
  }
  for (const line of summarize(rounds, levels)) console.log(line)
}
