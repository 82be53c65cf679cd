/**
 * `npm run bench -- memory [--puts 2000000] [--value-bytes 256] [--snapshot-threshold N]`
 *
 * Do disk, memory and restart time follow the state rather than the history? Three nodes
 * (SNAPSHOT_THRESHOLD: the product default unless `--snapshot-threshold`); 64 closed-loop
 * clients put values over 10,000 keys, cycling, `--puts` puts in all. Checkpoints after 10,000
 * puts and then every ~10% of the run: each node's data folder size and RSS
 * (/proc/<pid>/status VmRSS), and the put rate since the last one. At the end, each node's
 * figures as ratios to its 10,000-put ones (target: within 2x); then one follower is stopped
 * and started (time to its first answered `admin.status`, and to one whose appliedIndex has
 * reached the leader's commit index, from when it can serve linearizable reads itself), and
 * then the whole cluster (time from the starts to the first linearizable `kv.get` answered;
 * target 2 s). Prints a table and one JSON line.
 */
import type { LocalCluster } from "../cluster.ts"
import { loadNote, sleep, waitQuiet, withCluster, type BenchOptions } from "./common.ts"
import { dirBytes, mb, ms, rssBytes } from "./nodeStats.ts"
import { defaults } from "../../bootstrap/config.ts"
import { firstRead } from "./snapshot.ts"
import { valueSource } from "./values.ts"

const keySpace = 10_000
const clients = 64
const first = 10_000

interface Checkpoint {
  readonly puts: number
  readonly seconds: number
  /** Puts per second since the checkpoint before. */
  readonly rate: number
  /** Of the first node (n1). */
  readonly disk: Record<string, number>
  readonly rss: Record<string, number | undefined>
  readonly appliedIndex: number | undefined
}

const keyOf = (i: number): string => `mem/${String(i % keySpace).padStart(5, "0")}`

/** Polls until node `id` answers admin.status, and until its appliedIndex reaches the leader's commit index; ms since `from`. */
const nodeReady = async (cluster: LocalCluster, id: string, from: number): Promise<{ firstAnswer: number; caughtUp: number }> => {
  let firstAnswer: number | undefined
  while (performance.now() - from < 300_000) {
    const s = await cluster.status(id, 200)
    if (s !== undefined) {
      firstAnswer ??= performance.now() - from
      const leader = s.role === "leader" ? s : s.leader === null ? undefined : await cluster.status(s.leader, 1_000)
      if (leader !== undefined && s.appliedIndex >= leader.commitIndex) return { firstAnswer, caughtUp: performance.now() - from }
    }
    await sleep(5)
  }
  throw new Error(`${id} did not catch up within 300 s`)
}

export const memoryBench = async (o: BenchOptions): Promise<void> => {
  const total = Math.max(o.puts ?? 2_000_000, first)
  const value = valueSource(o.valueBytes)
  const env = { ...o.nodeEnv, ...(o.snapshotThreshold === undefined ? {} : { SNAPSHOT_THRESHOLD: String(o.snapshotThreshold) }) }
  await withCluster(async ({ cluster, client }) => {
    const ids = cluster.ids
    console.log(
      `memory: 3 nodes, ${total} puts of ${o.valueBytes} B over ${keySpace} keys, ${clients} closed-loop clients, SNAPSHOT_THRESHOLD ${o.snapshotThreshold ?? `${defaults.snapshotThreshold} (the default)`} (${loadNote()})`
    )
    let snapshots = 0
    cluster.onLine((_id, line) => {
      if (line.includes("snapshot at index")) snapshots++
    })
    // Checkpoints: after `first` puts, then every ~10% of the run.
    const marks = [first, ...Array.from({ length: 10 }, (_, k) => Math.round((total * (k + 1)) / 10)).filter((m) => m > first)]
    const checkpoints: Checkpoint[] = []
    await waitQuiet()
    const start = performance.now()
    let lastAt = start
    let lastPuts = 0
    let issued = 0
    let done = 0
    const checkpoint = async (): Promise<void> => {
      const now = performance.now()
      const disk: Record<string, number> = {}
      const rss: Record<string, number | undefined> = {}
      for (const id of ids) {
        disk[id] = await dirBytes(cluster.dataDir(id))
        rss[id] = rssBytes(cluster.pid(id))
      }
      const n1 = await cluster.status(ids[0]!, 1_000)
      const c = { puts: done, seconds: Math.round((now - start) / 100) / 10, rate: Math.round((done - lastPuts) / ((now - lastAt) / 1000)), disk, rss, appliedIndex: n1?.appliedIndex }
      checkpoints.push(c)
      lastAt = now
      lastPuts = done
      console.log(
        `  ${String(c.puts).padStart(9)} puts  ${String(c.seconds).padStart(6)} s  ${String(c.rate).padStart(6)} puts/s   ${ids.map((id) => `${id} disk ${mb(disk[id]).padStart(9)} RSS ${mb(rss[id]).padStart(9)}`).join("   ")}`
      )
    }
    // Loops stop at each mark; the checkpoint is taken with no put in flight.
    for (const mark of marks) {
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (issued < mark) {
            const i = issued++
            await client.put(keyOf(i), value(i))
            done++
          }
        })
      )
      await checkpoint()
    }
    const base = checkpoints[0]!
    const end = checkpoints[checkpoints.length - 1]!
    const ratios: Record<string, { disk: number | undefined; rss: number | undefined; peakDisk: number | undefined; peakRss: number | undefined }> = {}
    const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? undefined : Math.round((a / b) * 100) / 100)
    const peak = (xs: ReadonlyArray<number | undefined>) => xs.reduce<number | undefined>((m, x) => (x === undefined ? m : Math.max(m ?? x, x)), undefined)
    for (const id of ids) {
      ratios[id] = {
        disk: ratio(end.disk[id], base.disk[id]),
        rss: ratio(end.rss[id], base.rss[id]),
        peakDisk: ratio(peak(checkpoints.map((c) => c.disk[id])), base.disk[id]),
        peakRss: ratio(peak(checkpoints.map((c) => c.rss[id])), base.rss[id])
      }
    }
    const within = Object.values(ratios).every((r) => r.disk !== undefined && r.disk <= 2 && r.rss !== undefined && r.rss <= 2)
    console.log(
      `  at the end, as ratios to ${first} puts (target within 2x): ${ids.map((id) => `${id} disk ${ratios[id]!.disk ?? "?"}x, RSS ${ratios[id]!.rss ?? "?"}x`).join("; ")}: ${within ? "within 2x" : "NOT within 2x"}`
    )
    console.log(`  the largest over all checkpoints: ${ids.map((id) => `${id} disk ${ratios[id]!.peakDisk ?? "?"}x, RSS ${ratios[id]!.peakRss ?? "?"}x`).join("; ")}`)
    console.log(`  snapshots the nodes logged: ${snapshots}`)

    // One follower, then the whole cluster, stopped cleanly and started.
    await sleep(1_000)
    const leader = await cluster.waitForLeader(30_000)
    const follower = ids.find((id) => id !== leader)!
    await cluster.stopNode(follower)
    const t0 = performance.now()
    cluster.startNode(follower)
    const one = await nodeReady(cluster, follower, t0)
    console.log(`  restart of ${follower} (follower): first admin.status answer ${ms(one.firstAnswer)} after its start, applied the leader's commit index after ${ms(one.caughtUp)} (target 2 s)`)
    await sleep(1_000)
    await Promise.all(ids.map((id) => cluster.stopNode(id)))
    const t1 = performance.now()
    for (const id of ids) cluster.startNode(id)
    await firstRead(client, keyOf(0))
    const whole = performance.now() - t1
    console.log(`  cluster restart: first linearizable kv.get answered ${ms(whole)} after the starts (target 2 s)`)
    const rssAfter: Record<string, number | undefined> = {}
    for (const id of ids) rssAfter[id] = rssBytes(cluster.pid(id))
    console.log(
      JSON.stringify({
        bench: "memory",
        puts: total,
        keys: keySpace,
        valueBytes: o.valueBytes,
        snapshotThreshold: o.snapshotThreshold ?? "default",
        snapshots,
        checkpoints,
        ratios,
        withinTwoX: within,
        followerRestart: { node: follower, firstAnswerMs: Math.round(one.firstAnswer), caughtUpMs: Math.round(one.caughtUp) },
        clusterRestart: { firstLinearizableReadMs: Math.round(whole), rssAfter }
      })
    )
  }, env)
}
