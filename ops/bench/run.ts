/**
 * Benchmarks against a real three-node cluster on this machine (real fsync, private nats-server):
 *
 *   npm run bench -- write [--seconds 10] [--concurrency 1,16,64] [--value-bytes 256]
 *   npm run bench -- failover [--kills 20]
 *   npm run bench -- disk | transport      (the machine's floor: fsync and NATS hop costs)
 *
 * `write`: closed-loop clients from one Node process, each sending its next put when the last
 * was acknowledged; prints throughput and p50/p99/p999 latency per concurrency.
 * `failover`: kills the leader with SIGKILL while a client writes, and measures the time from
 * the kill to the next acknowledged write; the killed node is restarted before the next round.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { LocalCluster } from "../cluster.ts"
import { startNatsServer } from "../natsServer.ts"
import { ArchioClient } from "../../protocol/archioClient.ts"
import { disk, transport } from "./floor.ts"

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "1,16,64" },
    "value-bytes": { type: "string", default: "256" },
    kills: { type: "string", default: "20" }
  }
})

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const fmt = (ms: number): string => `${ms.toFixed(2)} ms`

const withCluster = async <A>(run: (cluster: LocalCluster, client: ArchioClient) => Promise<A>): Promise<A> => {
  const nats = await startNatsServer()
  const dir = await mkdtemp(join(tmpdir(), "archio-bench-"))
  const cluster = await LocalCluster.start({ natsUrl: nats.url, dataRoot: dir, logDir: join(dir, "logs") })
  const client = new ArchioClient(cluster.nc, { deadlineMs: 30_000 })
  try {
    return await run(cluster, client)
  } finally {
    await cluster.stop()
    await nats.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

const writeBench = async (): Promise<void> => {
  const seconds = Number(values.seconds)
  const levels = values.concurrency.split(",").map(Number)
  const value = "x".repeat(Number(values["value-bytes"]))
  await withCluster(async (_cluster, client) => {
    // Warm up the JIT and the leader's caches.
    for (let i = 0; i < 200; i++) await client.put(`warm-${i % 16}`, value)
    console.log(`write: 3 nodes, ${value.length}-byte values, ${seconds} s per level, closed loop, fsync on every member`)
    for (const concurrency of levels) {
      const latencies: number[] = []
      const end = performance.now() + seconds * 1000
      await Promise.all(
        Array.from({ length: concurrency }, async (_, c) => {
          for (let i = 0; performance.now() < end; i++) {
            const t0 = performance.now()
            await client.put(`c${c}-${i % 1000}`, value)
            latencies.push(performance.now() - t0)
          }
        })
      )
      latencies.sort((a, b) => a - b)
      console.log(
        `  concurrency ${String(concurrency).padStart(3)}: ${Math.round(latencies.length / seconds)
          .toString()
          .padStart(6)} puts/s  p50 ${fmt(percentile(latencies, 50))}  p99 ${fmt(percentile(latencies, 99))}  p999 ${fmt(percentile(latencies, 99.9))}`
      )
    }
  })
}

const failoverBench = async (): Promise<void> => {
  const kills = Number(values.kills)
  await withCluster(async (cluster, client) => {
    const gaps: number[] = []
    for (let k = 0; k < kills; k++) {
      const leader = await cluster.waitForLeader(30_000)
      for (let i = 0; i < 20; i++) await client.put(`pre-${i}`, "v")
      await cluster.kill(leader)
      const killed = performance.now()
      await client.put(`after-${k}`, "v")
      gaps.push(performance.now() - killed)
      cluster.startNode(leader)
      await cluster.waitForLeader(30_000)
      // Let the restarted node catch up before the next round.
      const s = await cluster.status((await cluster.waitForLeader(30_000)))
      if (s !== undefined) await cluster.waitForApplied(s.commitIndex, 30_000)
      console.log(`  kill ${String(k + 1).padStart(2)}: leader ${leader}, next acknowledged write after ${fmt(gaps[gaps.length - 1]!)}`)
    }
    gaps.sort((a, b) => a - b)
    console.log(
      `failover over ${kills} leader kills: median ${fmt(percentile(gaps, 50))}, worst ${fmt(gaps[gaps.length - 1]!)}, best ${fmt(gaps[0]!)}`
    )
  })
}

const benches: Record<string, () => Promise<void>> = { write: writeBench, failover: failoverBench, disk, transport }
const which = positionals.length === 0 ? ["write", "failover"] : positionals
for (const name of which) {
  const bench = benches[name]
  if (bench === undefined) {
    console.error(`unknown benchmark "${name}"; choose from: ${Object.keys(benches).join(", ")}`)
    process.exit(2)
  }
  await bench()
}
