/**
 * `write`: closed-loop clients from one Node process, each sending its next put when the last
 * was acknowledged; prints throughput and p50/p99/p999 latency per concurrency.
 * `failover`: kills the leader with SIGKILL while a client writes, and measures the time from
 * the kill to the next acknowledged write; the killed node is restarted before the next round.
 */
import { closedLoop, fmt, levelLine, loadNote, percentile, withCluster, type BenchOptions, type ClusterRun, type Level } from "./common.ts"

export const writeBench = async (o: BenchOptions): Promise<Level[]> => {
  const levels = o.concurrency ?? [1, 16, 64]
  const value = "x".repeat(o.valueBytes)
  return withCluster(async ({ client }) => {
    const measured: Level[] = []
    console.log(`write: ${o.nodes ?? 3} nodes, ${value.length}-byte values, ${o.seconds} s per level after ${o.warmup} s of warm-up, closed loop, fsync on every member (${loadNote()})`)
    for (const concurrency of levels) {
      const r = await closedLoop(concurrency, o.seconds, (c, i) => client.put(`c${c}-${i % 1000}`, value), o)
      console.log(levelLine(concurrency, r, "puts"))
      measured.push({ concurrency, result: r })
    }
    return measured
  }, o.nodeEnv, o.nodes)
}

/**
 * A plain NATS client's put on the service subject, as `nats req` would send it, retried after
 * 5 ms on any failure (no responders, `unavailable`, a lost reply) until one is acknowledged.
 */
const plainPutUntilOk = async (nc: ClusterRun["cluster"]["nc"], key: string): Promise<void> => {
  const body = new TextEncoder().encode(JSON.stringify({ key, value: "v" }))
  for (;;) {
    try {
      const m = await nc.request("archio.dev.kv.put", body, { timeout: 500 })
      if (m.string().startsWith('{"ok":true')) return
    } catch {
      // no responders or no reply in time: retry
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

export const failoverBench = async (o: BenchOptions): Promise<void> => {
  await withCluster(async ({ cluster, client }) => {
    console.log(`failover: ${o.nodes ?? 3} nodes, ${o.kills} leader kills; the typed client and a plain NATS request on the service subject, both from the kill (${loadNote()})`)
    const gaps: number[] = []
    const plainGaps: number[] = []
    for (let k = 0; k < o.kills; k++) {
      const leader = await cluster.waitForLeader(30_000)
      for (let i = 0; i < 20; i++) await client.put(`pre-${i}`, "v")
      // Followers take writes off the service subjects once a leader is settled (writeRouting.ts).
      await new Promise((resolve) => setTimeout(resolve, 600))
      await cluster.kill(leader)
      const killed = performance.now()
      await Promise.all([
        client.put(`after-${k}`, "v").then(() => gaps.push(performance.now() - killed)),
        plainPutUntilOk(cluster.nc, `plain-after-${k}`).then(() => plainGaps.push(performance.now() - killed))
      ])
      cluster.startNode(leader)
      // Let the restarted node catch up before the next round.
      const s = await cluster.status(await cluster.waitForLeader(30_000))
      if (s !== undefined) await cluster.waitForApplied(s.commitIndex, 30_000)
      console.log(
        `  kill ${String(k + 1).padStart(2)}: leader ${leader}, next acknowledged write after ${fmt(gaps[gaps.length - 1]!)} (typed), ${fmt(plainGaps[plainGaps.length - 1]!)} (plain)`
      )
    }
    for (const [name, g] of [
      ["typed client", gaps],
      ["plain request", plainGaps]
    ] as const) {
      g.sort((a, b) => a - b)
      console.log(`failover over ${o.kills} leader kills, ${name}: median ${fmt(percentile(g, 50))}, worst ${fmt(g[g.length - 1]!)}, best ${fmt(g[0]!)}`)
    }
  }, o.nodeEnv, o.nodes)
}
