/**
 * `npm run bench -- snapshot [--keys 1000000] [--value-bytes 256] [--snapshot-threshold N]`
 *
 * Snapshots of a big state on a three-node cluster (SNAPSHOT_THRESHOLD of the nodes: the
 * product default unless `--snapshot-threshold`):
 *
 * 1. fill: `--keys` keys of `--value-bytes` bytes (incompressible), in `kv.txn` batches of 128
 *    puts, 8 batches in flight;
 * 2. snapshot: `admin.snapshot` on each node's own subject, one node at a time: the time of the
 *    request and the snapshot's size, MB/s = size / time;
 * 3. backup: `admin.backup` + `admin.backupChunk` on the leader until `done`: MB/s of the bytes
 *    read out (and whether their SHA-256 is the one the node reports);
 * 4. install: a follower is stopped, its data folder deleted and the node started again; the
 *    time from its start until its `admin.status` appliedIndex reaches the leader's commit index
 *    (it must install a snapshot: the leader's log was compacted in 2), with put latency on the
 *    leader (4 closed-loop clients overwriting keys) for 5 s before and during the install;
 * 5. follower restart: a follower stopped cleanly and started: time to its first answered
 *    `admin.status`, and to one whose appliedIndex has reached the leader's commit index;
 * 6. cluster restart: every node stopped cleanly and started: time to the first linearizable
 *    `kv.get` answered.
 *
 * After each phase: each node's RSS (/proc/<pid>/status VmRSS) and data folder size. During
 * each phase: the longest event-loop stall of each node, measured from the outside (StallProbe
 * in nodeStats.ts: `admin.status` every 5 ms, the slowest reply; an upper bound of the stall).
 * Prints a table and one JSON line.
 */
import { createHash } from "node:crypto"
import { connect } from "@nats-io/transport-node"
import type { LocalCluster, NodeStatus } from "../cluster.ts"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { latencyLine, loadNote, percentile, sleep, waitQuiet, withCluster, type BenchOptions } from "./common.ts"
import { dirBytes, mb, ms, rssBytes, StallProbe } from "./nodeStats.ts"
import { trailingEntries } from "../../actors/snapshotter/decisions.ts"
import { defaults } from "../../bootstrap/config.ts"
import { valueSource } from "./values.ts"

const txnOps = 128
const txnInFlight = 8

export const keyOf = (i: number): string => `bench/${String(i).padStart(9, "0")}`

interface Phase {
  readonly name: string
  readonly stallMs: Record<string, number>
  readonly rss: Record<string, number | undefined>
  readonly disk: Record<string, number>
}

/** One request to a node's own subject, answered or thrown. */
const ask = async <A>(cluster: LocalCluster, id: string, op: string, body: unknown, timeoutMs: number): Promise<A> => {
  const m = await cluster.nc.request(Subjects.node(cluster.cluster, id, op), JSON.stringify(body), { timeout: timeoutMs })
  const reply = m.json<A & { ok?: boolean; error?: { code: string; message: string } }>()
  if (reply.ok === false) throw new Error(`${op} on ${id}: ${reply.error?.code}: ${reply.error?.message}`)
  return reply
}

/** The status of the leader: the claimant of the highest term that another node follows too. */
const leaderStatus = async (cluster: LocalCluster): Promise<NodeStatus> => {
  const deadline = performance.now() + 60_000
  while (performance.now() < deadline) {
    const all = (await Promise.all(cluster.ids.map((id) => cluster.status(id, 1_000)))).filter((s) => s !== undefined)
    const leader = all.filter((s) => s.role === "leader").sort((a, b) => b.term - a.term)[0]
    if (leader !== undefined && all.some((s) => s.id !== leader.id && s.leader === leader.id && s.term === leader.term)) return leader
    await sleep(50)
  }
  throw new Error("no leader that another node follows within 60 s")
}

/**
 * Polls until node `id` answers admin.status with appliedIndex >= the leader's commit index; ms
 * since `from`, and a trace of the node's applied index / the leader's commit, once a second.
 */
const caughtUp = async (cluster: LocalCluster, id: string, from: number, timeoutMs: number): Promise<{ firstAnswer: number; caughtUp: number; trace: string[] }> => {
  let firstAnswer: number | undefined
  const trace: string[] = []
  let traced = 0
  const deadline = from + timeoutMs
  while (performance.now() < deadline) {
    const s = await cluster.status(id, 200)
    if (s !== undefined) {
      firstAnswer ??= performance.now() - from
      const leader = s.role === "leader" ? s : s.leader === null ? undefined : await cluster.status(s.leader, 1_000)
      const now = performance.now() - from
      if (now - traced >= 1_000) {
        traced = now
        const peer = (leader as { peers?: ReadonlyArray<{ id: string; nextIndex: number; matchIndex: number; state: string }> } | undefined)?.peers?.find((p) => p.id === id)
        trace.push(
          `${(now / 1000).toFixed(1)} s: applied ${s.appliedIndex} (term ${s.term}, base ${s.logBaseIndex ?? "?"}), leader ${leader?.id ?? "?"} commit ${leader?.commitIndex ?? "?"} base ${leader?.logBaseIndex ?? "?"}` +
            (peer === undefined ? "" : `, its progress: next ${peer.nextIndex} match ${peer.matchIndex} ${peer.state}`)
        )
      }
      if (leader !== undefined && s.appliedIndex >= leader.commitIndex) return { firstAnswer, caughtUp: now, trace }
    }
    await sleep(5)
  }
  throw new Error(`${id} did not catch up with the leader within ${timeoutMs / 1000} s: ${trace.slice(-5).join("; ")}`)
}

/** A linearizable `kv.get` of `key`, retried until one is answered (each try has the client's deadline). */
export const firstRead = async (client: ArchioClient, key: string, timeoutMs = 600_000): Promise<void> => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    try {
      await client.get(key, { consistency: "linearizable" })
      return
    } catch (e) {
      if (performance.now() > deadline) throw e
    }
  }
}

const fill = async (client: ArchioClient, keys: number, value: (i: number) => string): Promise<void> => {
  let next = 0
  let lastSaid = performance.now()
  await Promise.all(
    Array.from({ length: txnInFlight }, async () => {
      while (next < keys) {
        const from = next
        next = Math.min(keys, next + txnOps)
        const success = []
        for (let i = from; i < next; i++) success.push({ op: "put" as const, key: keyOf(i), value: value(i) })
        await client.txn({ success })
        if (performance.now() - lastSaid > 10_000) {
          lastSaid = performance.now()
          console.log(`  ... ${next} keys`)
        }
      }
    })
  )
}

/** Closed-loop puts over existing keys until `stop`; latencies of those started in each window. */
const putLoad = (client: ArchioClient, keys: number, value: (i: number) => string) => {
  let window: number[] = []
  let running = true
  let seq = 0
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      const i = (seq++ * 7919) % keys
      const t0 = performance.now()
      const w = window
      await client.put(keyOf(i), value(i + 1))
      w.push(performance.now() - t0)
    }
  })
  return {
    /** The latencies since the last call, ascending; starts a new window. */
    take(): number[] {
      const w = window
      window = []
      // A copy: puts under way still land in the old window.
      return [...w].sort((a, b) => a - b)
    },
    async stop(): Promise<void> {
      running = false
      await Promise.all(loops)
    }
  }
}

export const snapshotBench = async (o: BenchOptions): Promise<void> => {
  const keys = o.keys ?? 1_000_000
  const value = valueSource(o.valueBytes)
  const env = { ...o.nodeEnv, ...(o.snapshotThreshold === undefined ? {} : { SNAPSHOT_THRESHOLD: String(o.snapshotThreshold) }) }
  await withCluster(async ({ cluster, client, natsUrl }) => {
    const ids = cluster.ids
    const probeNc = await connect({ servers: natsUrl, noAsyncTraces: true, name: "archio-bench-stall-probe" })
    const probe = new StallProbe(probeNc, cluster.cluster, ids)
    const phases: Phase[] = []
    const endPhase = async (name: string): Promise<Phase> => {
      const stallMs = probe.take()
      const rss: Record<string, number | undefined> = {}
      const disk: Record<string, number> = {}
      for (const id of ids) {
        rss[id] = rssBytes(cluster.pid(id))
        disk[id] = await dirBytes(cluster.dataDir(id))
      }
      const p = { name, stallMs, rss, disk }
      phases.push(p)
      return p
    }
    let installs = 0
    cluster.onLine((_id, line) => {
      if (line.includes("installed a snapshot from")) installs++
    })
    const result: Record<string, unknown> = { bench: "snapshot", keys, valueBytes: o.valueBytes, snapshotThreshold: o.snapshotThreshold ?? "default" }
    try {
      console.log(
        `snapshot: 3 nodes, ${keys} keys of ${o.valueBytes} B (${mb(keys * o.valueBytes)} of values), SNAPSHOT_THRESHOLD ${o.snapshotThreshold ?? "default"} (${loadNote()})`
      )
      await waitQuiet()
      probe.start()

      // 1. fill
      const t0 = performance.now()
      await fill(client, keys, value)
      const fillMs = performance.now() - t0
      const leader0 = await leaderStatus(cluster)
      await cluster.waitForApplied(leader0.commitIndex, 120_000)
      await endPhase("fill")
      result["fill"] = { ms: Math.round(fillMs), keysPerSecond: Math.round(keys / (fillMs / 1000)), mbPerSecond: Math.round((keys * o.valueBytes) / 1e6 / (fillMs / 1000)) }
      console.log(`  fill: ${ms(fillMs)}, ${Math.round(keys / (fillMs / 1000))} keys/s (kv.txn of ${txnOps} puts, ${txnInFlight} in flight)`)

      // 2. snapshot, one node at a time
      const snapshots: Record<string, { ms: number; size: number; mbPerSecond: number; index: number; checksum: string }> = {}
      for (const id of ids) {
        await sleep(500)
        probe.take()
        const sent = performance.now()
        const r = await ask<{ index: number; size: number; checksum: string }>(cluster, id, "admin.snapshot", {}, 600_000)
        const took = performance.now() - sent
        snapshots[id] = { ms: Math.round(took), size: r.size, mbPerSecond: Math.round((r.size / 1e6 / (took / 1000)) * 10) / 10, index: r.index, checksum: r.checksum }
        await endPhase(`snapshot ${id}`)
        console.log(`  snapshot on ${id}: ${mb(r.size)} at index ${r.index} in ${ms(took)}: ${snapshots[id].mbPerSecond} MB/s`)
      }
      result["snapshot"] = snapshots

      // 3. backup read-out from the leader
      const leader = (await leaderStatus(cluster)).id
      await sleep(500)
      probe.take()
      try {
        const b0 = performance.now()
        const opened = await ask<{ session: string; index: number; chunkBytes: number }>(cluster, leader, "admin.backup", {}, 60_000)
        // The format's trailer is the SHA-256 of every byte before it: hash all but the last 32.
        const hash = createHash("sha256")
        let tail = Buffer.alloc(0)
        let offset = 0
        let reported: { size?: number; checksum?: string } = {}
        for (;;) {
          const chunk = await ask<{ data: string; done: boolean; size?: number; checksum?: string }>(cluster, leader, "admin.backupChunk", { session: opened.session, offset }, 60_000)
          const bytes = Buffer.concat([tail, Buffer.from(chunk.data, "base64")])
          offset += bytes.length - tail.length
          const keep = Math.min(32, bytes.length)
          hash.update(bytes.subarray(0, bytes.length - keep))
          tail = bytes.subarray(bytes.length - keep)
          if (chunk.done) {
            reported = chunk
            break
          }
        }
        const took = performance.now() - b0
        const digest = hash.digest("hex")
        const backup = {
          node: leader,
          index: opened.index,
          ms: Math.round(took),
          size: offset,
          mbPerSecond: Math.round((offset / 1e6 / (took / 1000)) * 10) / 10,
          checksumMatches: reported.checksum === digest && tail.toString("hex") === digest && reported.size === offset,
          sameAsSnapshot: snapshots[leader]?.index === opened.index ? snapshots[leader]?.checksum === digest : "other index"
        }
        result["backup"] = backup
        await endPhase("backup")
        console.log(
          `  backup from ${leader}: ${mb(offset)} in ${ms(took)}: ${backup.mbPerSecond} MB/s (chunks of ${opened.chunkBytes} B; checksum ${backup.checksumMatches ? "verified" : "MISMATCH"}; the same bytes as its snapshot at index ${opened.index}: ${backup.sameAsSnapshot})`
        )
      } catch (e) {
        result["backup"] = { error: e instanceof Error ? e.message : String(e) }
        console.log(`  backup: failed: ${e instanceof Error ? e.message : String(e)}`)
        await endPhase("backup")
      }

      // 4. a wiped follower installs a snapshot, under a put load on the leader
      const load = putLoad(client, keys, value)
      await sleep(5_000)
      // A node compacts to `trailing` entries behind a snapshot: the log must be longer than
      // that, or the wiped follower would catch up from the log alone.
      const trailing = trailingEntries(o.snapshotThreshold ?? defaults.snapshotThreshold)
      for (let s = await leaderStatus(cluster); s.lastIndex <= trailing + 100; s = await leaderStatus(cluster)) await sleep(500)
      const before = load.take()
      // Every node snapshots and compacts, so whichever leads during the install must send one.
      let compacted = { index: 0, size: 0 }
      for (const id of ids) compacted = await ask<{ index: number; size: number }>(cluster, id, "admin.snapshot", {}, 600_000)
      await endPhase("put load, before")
      const installsBefore = installs
      const lead = await leaderStatus(cluster)
      const follower = ids.find((id) => id !== lead.id)!
      const leaderBase = lead.logBaseIndex
      await cluster.stopNode(follower)
      probe.forget(follower)
      await cluster.wipe(follower)
      probe.take()
      const started = performance.now()
      const events: string[] = []
      let receiving: number | undefined
      let installedAt: number | undefined
      const unlisten = cluster.onLine((id, line) => {
        if (!/snapshot/.test(line) || line.includes("log compacted")) return
        const at = performance.now() - started
        events.push(`${ms(at).padStart(8)}  ${id}: ${line.replace(/^\S+\s+\S+\s+/, "").slice(0, 160)}`)
        if (id === follower && line.includes("receiving a snapshot")) receiving ??= at
        if (id === follower && line.includes("installed a snapshot from")) installedAt = at
      })
      cluster.startNode(follower)
      const install = await caughtUp(cluster, follower, started, 600_000)
      unlisten()
      const during = load.take()
      await load.stop()
      await endPhase(`install on ${follower}`)
      result["install"] = {
        node: follower,
        leader: lead.id,
        leaderSnapshot: compacted.index,
        leaderSnapshotBytes: compacted.size,
        leaderLogBase: leaderBase ?? null,
        installed: installs > installsBefore,
        firstAnswerMs: Math.round(install.firstAnswer),
        firstChunkMs: receiving === undefined ? null : Math.round(receiving),
        installedMs: installedAt === undefined ? null : Math.round(installedAt),
        caughtUpMs: Math.round(install.caughtUp),
        putsBefore: { count: before.length, p50: percentile(before, 50), p99: percentile(before, 99) },
        putsDuring: { count: during.length, p50: percentile(during, 50), p99: percentile(during, 99) }
      }
      console.log(
        `  install on wiped ${follower} (leader ${lead.id}, log base ${leaderBase ?? "?"}): caught up ${ms(install.caughtUp)} after its start (first admin.status answer after ${ms(install.firstAnswer)}); ${installs > installsBefore ? "installed a snapshot" : "NO snapshot installed (log replay)"}`
      )
      if (receiving !== undefined && installedAt !== undefined) {
        console.log(`    first snapshot chunk received ${ms(receiving)} after the start, installed ${ms(installedAt)} after it: ${ms(installedAt - receiving)} from first chunk to installed`)
      }
      for (const e of events) console.log(`    ${e}`)
      if (install.caughtUp > 5_000) for (const line of install.trace) console.log(`      ${line}`)
      console.log(`    puts on the leader, 4 clients, 5 s before: ${latencyLine(before)} (${before.length} puts)`)
      console.log(`    during the install:               ${latencyLine(during)} (${during.length} puts)`)

      // 5. follower restart
      await sleep(1_000)
      await cluster.stopNode(follower)
      probe.forget(follower)
      probe.take()
      const restarted = performance.now()
      cluster.startNode(follower)
      const restart = await caughtUp(cluster, follower, restarted, 600_000)
      await endPhase(`restart ${follower}`)
      result["followerRestart"] = { node: follower, firstAnswerMs: Math.round(restart.firstAnswer), caughtUpMs: Math.round(restart.caughtUp) }
      console.log(`  restart of ${follower}: first admin.status answer ${ms(restart.firstAnswer)} after its start, caught up after ${ms(restart.caughtUp)}`)

      // 6. cluster restart
      await sleep(1_000)
      await Promise.all(ids.map((id) => cluster.stopNode(id)))
      for (const id of ids) probe.forget(id)
      probe.take()
      const all = performance.now()
      for (const id of ids) cluster.startNode(id)
      await firstRead(client, keyOf(0))
      const readMs = performance.now() - all
      await endPhase("cluster restart")
      result["clusterRestart"] = { firstLinearizableReadMs: Math.round(readMs) }
      console.log(`  cluster restart: first linearizable kv.get answered ${ms(readMs)} after the starts`)
    } finally {
      probe.stop()
      await probeNc.close()
    }

    console.log("")
    console.log(`  per node after each phase: RSS, data folder, longest stall during the phase (slowest admin.status reply, polled every 5 ms: an upper bound of the node's event-loop stall)`)
    console.log(`  ${"phase".padEnd(20)}${ids.map((id) => `${id.padEnd(8)}${"RSS".padStart(10)}${"disk".padStart(11)}${"stall".padStart(9)}   `).join("")}`)
    for (const p of phases) {
      console.log(`  ${p.name.padEnd(20)}${ids.map((id) => `${"".padEnd(8)}${mb(p.rss[id]).padStart(10)}${mb(p.disk[id]).padStart(11)}${ms(p.stallMs[id]).padStart(9)}   `).join("")}`)
    }
    result["phases"] = phases
    console.log(JSON.stringify(result))
  }, env)
}
