/**
 * `read`: closed-loop gets from one Node process, linearizable (ReadIndex: the leader confirms
 * its lead with a heartbeat round; a follower asks the leader for the index) and stale (the
 * answering node's local copy), over keys written beforehand. Gets go to the service subject,
 * so the NATS queue group spreads them over the three nodes.
 */
import { closedLoop, levelLine, loadNote, withCluster, type BenchOptions } from "./common.ts"

const keyCount = 1000

export const readBench = async (o: BenchOptions): Promise<void> => {
  const levels = o.concurrency ?? [1, 16, 64, 256]
  const value = "x".repeat(o.valueBytes)
  await withCluster(async ({ client }) => {
    // Pre-write the keys, 16 at a time.
    await Promise.all(
      Array.from({ length: 16 }, async (_, c) => {
        for (let k = c; k < keyCount; k += 16) await client.put(`r${k}`, value)
      })
    )
    const key = (c: number, i: number) => `r${(c * 61 + i) % keyCount}`
    for (const consistency of ["linearizable", "stale"] as const) {
      console.log(`read (${consistency}): 3 nodes, ${keyCount} keys of ${value.length} bytes, ${o.seconds} s per level after ${o.warmup} s of warm-up, closed loop (${loadNote()})`)
      for (const concurrency of levels) {
        const r = await closedLoop(concurrency, o.seconds, async (c, i) => {
          const got = await client.get(key(c, i), { consistency })
          if (got === undefined || got.value.length !== value.length) throw new Error(`read ${key(c, i)}: ${JSON.stringify(got)}`)
        }, o)
        console.log(levelLine(concurrency, r, "gets"))
      }
    }
  }, o.nodeEnv)
}
