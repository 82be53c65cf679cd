/**
 * `cas`: closed-loop read-modify-write. Each client owns one key and loops: read its mod
 * revision (`get`, linearizable), then `cas` with that revision. Counts successes and
 * conflicts (on an owned key a conflict would mean a read older than the client's own last
 * write, or a retried write applied twice: both bugs), and gives the latency of the cas
 * alone and of the whole get+cas cycle.
 */
import { closedLoop, latencyLine, levelLine, loadNote, withCluster, type BenchOptions } from "./common.ts"
import { ArchioError } from "../../protocol/errors.ts"

export const casBench = async (o: BenchOptions): Promise<void> => {
  const levels = o.concurrency ?? [1, 16, 64]
  const value = "x".repeat(o.valueBytes)
  await withCluster(async ({ client }) => {
    const maxLevel = Math.max(...levels)
    await Promise.all(Array.from({ length: maxLevel }, (_, c) => client.put(`cas-${c}`, value)))
    console.log(`cas: 3 nodes, ${value.length}-byte values, one key per client, get then cas, ${o.seconds} s per level after ${o.warmup} s of warm-up (${loadNote()})`)
    for (const concurrency of levels) {
      // Per measurement: a disturbed window is measured again, and only the one kept counts.
      const tallies: Array<{ ok: number; conflicts: number; cas: number[] }> = []
      const r = await closedLoop(concurrency, o.seconds, async (c, _i, attempt) => {
        const t = (tallies[attempt] ??= { ok: 0, conflicts: 0, cas: [] })
        const key = `cas-${c}`
        const rec = await client.get(key)
        const t0 = performance.now()
        try {
          await client.cas(key, value, rec?.modRevision ?? 0)
          t.ok++
        } catch (e) {
          if (!(e instanceof ArchioError && e.code === "conflict")) throw e
          t.conflicts++
        }
        t.cas.push(performance.now() - t0)
      }, o)
      const t = tallies[r.attempt]!
      t.cas.sort((a, b) => a - b)
      console.log(levelLine(concurrency, r, "get+cas cycles", `\n      ${t.ok} succeeded, ${t.conflicts} conflicts; cas alone ${latencyLine(t.cas)}`))
    }
  }, o.nodeEnv)
}
