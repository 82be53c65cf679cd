/**
 * The summary of `side-by-side` rounds (sideBySide.ts): each system's median and range per
 * concurrency, and the Archio/etcd ratio within each round.
 */
import { perSecond, type Level } from "./results.ts"

export interface Round {
  /** The write path with Archio's LevelDB log, and with a log file sized up front (floor.ts). */
  readonly floor: ReadonlyArray<Level>
  readonly floorPreallocated: ReadonlyArray<Level>
  readonly archio: ReadonlyArray<Level>
  readonly etcd: ReadonlyArray<Level>
}

const rateAt = (levels: ReadonlyArray<Level>, concurrency: number): number | undefined => {
  const level = levels.find((l) => l.concurrency === concurrency)
  return level === undefined ? undefined : perSecond(level.result)
}

/** The middle value; the mean of the middle two for an even count. */
export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const spread = (xs: ReadonlyArray<number>): string =>
  xs.length === 0 ? "-" : `median ${Math.round(median(xs))} (${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))})`

/** The summary lines for the rounds made. */
export const summarize = (rounds: ReadonlyArray<Round>, levels: ReadonlyArray<number>): string[] => {
  const lines = [`side by side over ${rounds.length} round(s), puts/s:`]
  for (const c of levels) {
    // One system's rate at this level in each round that measured it.
    const rates = (pick: (r: Round) => ReadonlyArray<Level>): number[] =>
      rounds.map((r) => rateAt(pick(r), c)).filter((x): x is number => x !== undefined)
    const ratios = rounds.flatMap((r) => {
      const a = rateAt(r.archio, c)
      const e = rateAt(r.etcd, c)
      return a === undefined || e === undefined ? [] : [a / e]
    })
    const floor = rates((r) => r.floor)
    const floorPreallocated = rates((r) => r.floorPreallocated)
    const parts = [`  ${String(c).padStart(3)} client(s): Archio ${spread(rates((r) => r.archio))}, etcd ${spread(rates((r) => r.etcd))}`]
    if (floor.length > 0) parts.push(`write path ${spread(floor)}`)
    if (floorPreallocated.length > 0) parts.push(`write path with a preallocated log ${spread(floorPreallocated)}`)
    if (ratios.length > 0) {
      const ahead = ratios.filter((x) => x > 1).length
      parts.push(`Archio/etcd within a round: median ${median(ratios).toFixed(2)}, ahead in ${ahead} of ${ratios.length}`)
    }
    lines.push(parts.join("; "))
  }
  return lines
}
