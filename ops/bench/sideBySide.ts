/**
 * `side-by-side`: `write-path` (one client, both kinds of log), `write` and `write-etcd`, one after the other, for
 * `--rounds` rounds, then a summary per concurrency: each system's median and range, and the
 * ratio Archio/etcd within each round (its median, and in how many rounds Archio was ahead).
 *
 * Runs minutes apart on this shared VM differ by up to ±30%, more than most changes we measure;
 * a ratio taken within a round, a minute apart, cancels the slow drifts, and its median over
 * rounds is the figure to quote.
 */
import type { BenchOptions } from "./common.ts"
import { etcdInstallHint, etcdWriteBench } from "./etcd.ts"
import { writePaths } from "./floor.ts"
import { summarize, type Round } from "./summary.ts"
import { writeBench } from "./writes.ts"

export const sideBySide = async (o: BenchOptions): Promise<void> => {
  const levels = o.concurrency ?? [1, 16, 64]
  const rounds: Round[] = []
  for (let i = 1; i <= o.rounds; i++) {
    console.log(`--- round ${i} of ${o.rounds}`)
    const floor = levels.includes(1) ? await writePaths(o.seconds, o.warmup, o.valueBytes) : { leveldb: [], preallocated: [] }
    const archio = await writeBench({ ...o, concurrency: levels })
    const etcd = await etcdWriteBench({ ...o, concurrency: levels })
    if (etcd === undefined) {
      console.log(`side-by-side needs etcd: ${etcdInstallHint}`)
      return
    }
    rounds.push({ floor: floor.leveldb, floorPreallocated: floor.preallocated, archio, etcd })
  }
  for (const line of summarize(rounds, levels)) console.log(line)
}
