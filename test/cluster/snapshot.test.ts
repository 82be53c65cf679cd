/**
 * Snapshots and log compaction on three real node processes with a small SNAPSHOT_THRESHOLD: a
 * restart from snapshot + log, a wiped follower brought back by InstallSnapshot, and SIGKILLs
 * during snapshots and installs. After each, every acknowledged write reads back and the three
 * databases on disk hold the same state.
 */
import t, { type Test } from "tap"
import { Effect } from "effect"
import { loadState } from "../../actors/applier/applier.ts"
import { decodeJsonValue, metaKeys } from "../../actors/raft/storage.ts"
import * as Storage from "../../bootstrap/storage.ts"
import type { LocalCluster } from "../../ops/cluster.ts"
import { stateDigest } from "../../ops/stateDigest.ts"
import type { ArchioClient, KeyValue } from "../../protocol/archioClient.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { testCluster } from "../support/cluster.ts"
import { sleep, until } from "../support/wait.ts"

const threshold = 200
const env = { SNAPSHOT_THRESHOLD: String(threshold) }

/** What a node's database holds: applied index, state digest, compaction base, generation. */
interface DiskState {
  readonly applied: number
  readonly digest: string
  readonly keys: number
  readonly base: number
  readonly generation: number
}

/** Opens a stopped node's data dir and reads its current state generation. */
const readDisk = (dataDir: string): Promise<DiskState> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const storage = yield* Storage.make(dataDir)
        return yield* Effect.promise(async () => {
          const state = await loadState(storage)
          const base = await storage.meta.get(metaKeys.base)
          return {
            applied: state.applied,
            digest: `${state.applied} ${stateDigest(state.kv, state.jobs)}`,
            keys: state.kv.records.size,
            base: base === undefined ? 0 : decodeJsonValue<{ index: number }>(base).index,
            generation: storage.generation
          }
        })
      })
    )
  )

type Status = Record<string, unknown> & { role?: string; appliedIndex?: number; commitIndex?: number; firstIndex?: number }

const status = (client: ArchioClient, id: string): Promise<Status | undefined> =>
  client.status(id).then(
    (s) => s as Status,
    () => undefined
  )

/** Every node's admin.status in one line each, for failure messages. */
const describe = async (cluster: LocalCluster, client: ArchioClient): Promise<string> => {
  const lines = await Promise.all(
    cluster.ids.map(async (id) => {
      if (!cluster.isRunning(id)) return `${id}: not running`
      const s = await client.status(id).catch((e: unknown) => ({ error: String(e) }))
      return `${id}: ${JSON.stringify(s)}`
    })
  )
  return lines.join("\n")
}

/**
 * Waits until every running node has applied what the leader had committed when called;
 * returns the leader then.
 */
const healed = async (cluster: LocalCluster, client: ArchioClient, timeoutMs = 60_000): Promise<string> => {
  try {
    const leader = await cluster.waitForLeader(timeoutMs)
    const target = (await cluster.status(leader, 1000))?.commitIndex ?? 0
    await cluster.waitForApplied(target, timeoutMs)
    return await cluster.waitForLeader(timeoutMs)
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}; nodes:\n${await describe(cluster, client)}`)
  }
}

/**
 * Stops every node and returns what each holds on disk. First waits until all applied the same
 * index, then stops the followers and the leader last, so no entry commits after a node stopped.
 */
const stopAndRead = async (cluster: LocalCluster): Promise<Map<string, DiskState>> => {
  let leader = ""
  await until(
    "every node applied the leader's commit index",
    async () => {
      leader = await cluster.waitForLeader(5_000)
      const statuses = await Promise.all(cluster.ids.map((id) => cluster.status(id, 1000)))
      const commit = statuses.find((s) => s?.id === leader)?.commitIndex
      // Nothing in flight either: a new leader's first entry may be in every log, uncommitted.
      return commit !== undefined && statuses.every((s) => s !== undefined && s.appliedIndex === commit && s.commitIndex === commit && s.lastIndex === commit)
    },
    { timeoutMs: 60_000, everyMs: 100 }
  )
  await Promise.all(cluster.ids.filter((id) => id !== leader).map((id) => cluster.stopNode(id)))
  await cluster.stopNode(leader)
  const states = new Map<string, DiskState>()
  for (const id of cluster.ids) states.set(id, await readDisk(cluster.dataDir(id)))
  return states
}

const sameStates = (t: Test, states: Map<string, DiskState>): void => {
  const all = [...states.values()]
  const [first] = all
  t.ok(first !== undefined && first.keys > 0, `the states on disk are not empty (${first?.keys} keys at index ${first?.applied})`)
  t.ok(
    all.every((s) => s.digest === first!.digest),
    `the three nodes' states on disk are identical (${[...states].map(([id, s]) => `${id}: applied ${s.applied}, base ${s.base}, generation ${s.generation}`).join("; ")})`
  )
}

/** Lines each node logged, from now on. */
const recordLines = (t: Test, cluster: LocalCluster): Map<string, string[]> => {
  const lines = new Map<string, string[]>(cluster.ids.map((id) => [id, []]))
  t.teardown(cluster.onLine((id, line) => lines.get(id)!.push(line)))
  return lines
}

const compactionPattern = /snapshot at index (\d+) term \d+: \d+ bytes; log compacted to (\d+)/

t.test("a node restarted after compaction recovers from its snapshot and log", async (t) => {
  const { cluster, client } = await testCluster(t, env)
  const lines = recordLines(t, cluster)
  const keys = 100
  const rounds = 15
  // Each key written by one lane, round after round: the last value of key j is `r14-j`.
  const lanes = 5
  const started = performance.now()
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let r = 0; r < rounds; r++) for (let j = lane; j < keys; j += lanes) await client.put(`k${j}`, `r${r}-${j}`)
    })
  )
  const writeMs = performance.now() - started
  const leader = await cluster.waitForLeader(5_000)
  const follower = cluster.ids.find((id) => id !== leader)!
  await healed(cluster, client)
  const compactions = lines.get(follower)!.flatMap((l) => {
    const m = compactionPattern.exec(l)
    return m === null ? [] : [{ index: Number(m[1]), base: Number(m[2]) }]
  })
  t.ok(
    compactions.some((c) => c.base > 0),
    `${follower} took snapshots and compacted its log (${compactions.map((c) => `${c.index}->${c.base}`).join(", ")})`
  )
  const before = await status(client, follower)
  t.ok((before?.firstIndex ?? 0) > 1, `${follower}'s log starts past index 1 (firstIndex ${before?.firstIndex}, applied ${before?.appliedIndex})`)
  t.comment(`${rounds * keys} puts over ${keys} keys in ${writeMs.toFixed(0)} ms; ${follower} took ${compactions.length} snapshots`)

  await cluster.stopNode(follower)
  // Some writes while it is down, fewer than the trailing window: it catches up from the log.
  for (let j = 0; j < 20; j++) await client.put(`k${j}`, `after-${j}`)
  const target = (await cluster.status(leader, 1000))!.commitIndex
  const restartedAt = performance.now()
  cluster.startNode(follower)
  await until("the restarted node catches up", async () => ((await status(client, follower))?.appliedIndex ?? 0) >= target, { timeoutMs: 60_000, everyMs: 50 })
  const ready = lines.get(follower)!.map((l) => /ready in cluster .*: term \d+, log (\d+)\.\.(\d+), applied (\d+)/.exec(l)).findLast((m) => m !== null)
  t.ok(
    ready !== undefined && Number(ready[1]) > 1 && Number(ready[3]) >= Number(ready[1]) - 1,
    `${follower} started from its snapshot's state and the log after it (log ${ready?.[1]}..${ready?.[2]}, applied ${ready?.[3]})`
  )
  const after = await status(client, follower)
  t.ok((after?.appliedIndex ?? 0) >= target, `${follower} applied ${after?.appliedIndex} >= ${target} after its restart (${(performance.now() - restartedAt).toFixed(0)} ms)`)
  t.ok((after?.firstIndex ?? 0) > 1, `${follower} restarted with a compacted log (firstIndex ${after?.firstIndex})`)

  // Reads from the restarted node alone: the others stop, and the service's queue group is left with it.
  const others = cluster.ids.filter((id) => id !== follower)
  await until("all nodes applied the same index", async () => {
    const s = await Promise.all(cluster.ids.map((id) => cluster.status(id, 1000)))
    return s.every((x) => x !== undefined && x.appliedIndex === s[0]!.appliedIndex && x.appliedIndex >= target)
  })
  await Promise.all(others.filter((id) => id !== leader).map((id) => cluster.stopNode(id)))
  await cluster.stopNode(leader)
  let wrong = 0
  let elsewhere = 0
  for (let j = 0; j < keys; j++) {
    const got = await client.call<KeyValue & { node: string }>(Subjects.kv(cluster.cluster, "get"), { key: `k${j}`, consistency: "stale" })
    if (got.node !== follower) elsewhere++
    if (got.value !== (j < 20 ? `after-${j}` : `r${rounds - 1}-${j}`)) wrong++
  }
  t.equal(elsewhere, 0, `every read was served by ${follower}`)
  t.equal(wrong, 0, `all ${keys} keys read back from ${follower} with their last value`)
  // The leader handed leadership to the follower as it stopped, so only the follower holds the
  // new term's first entry: bring the others back, then stop them all followers first.
  for (const id of others) cluster.startNode(id)
  sameStates(t, await stopAndRead(cluster))
})

t.test("a wiped follower comes back by InstallSnapshot while every client write succeeds", async (t) => {
  const { cluster, client } = await testCluster(t, env)
  const lines = recordLines(t, cluster)
  const leader = await cluster.waitForLeader(5_000)
  const follower = cluster.ids.find((id) => id !== leader)!
  // Writers stop when the test ends, also when it fails part way (a closed connection fails every put at once).
  let stop = false
  t.teardown(() => {
    stop = true
  })
  let acked = 0
  let failed = 0
  const errors: string[] = []
  const last = new Map<string, string>()
  const writer = (async () => {
    for (let i = 0; !stop && !cluster.nc.isClosed(); i++) {
      const key = `k${i % 150}`
      try {
        await client.put(key, `v${i}`)
        last.set(key, `v${i}`)
        acked++
      } catch (e) {
        failed++
        errors.push(String(e))
      }
    }
  })()
  await until("writes past the threshold", () => acked >= threshold * 2, { timeoutMs: 30_000 })
  await cluster.stopNode(follower)
  await cluster.wipe(follower)
  // Enough for the leader to compact past everything the follower had.
  const base = async () => ((await status(client, leader))?.firstIndex ?? 0) - 1
  const targetBase = ((await status(client, leader))?.lastIndex as number) + threshold
  await until("the leader compacts past the wiped follower", async () => (await base()) > targetBase, { timeoutMs: 60_000, everyMs: 50 })
  const ackedWhileDown = acked
  const restartedAt = performance.now()
  cluster.startNode(follower)
  await until("the follower installs a snapshot", () => lines.get(follower)!.some((l) => l.includes("installed a snapshot")), { timeoutMs: 60_000, everyMs: 50 })
  const installMs = performance.now() - restartedAt
  await healed(cluster, client)
  await until("some writes after the install", () => acked >= ackedWhileDown + 200, { timeoutMs: 30_000 })
  stop = true
  await writer
  const installLine = lines.get(follower)!.find((l) => l.includes("installed a snapshot"))!
  t.match(installLine, /installed a snapshot from n\d at index \d+/, `${follower} installed a snapshot (${installLine.replace(/^\S+ \S+\s+/, "")})`)
  t.ok(lines.get(leader)!.some((l) => l.includes(`sending a snapshot at index`) && l.includes(`to ${follower}`)), `${leader} sent it the snapshot`)
  t.equal(failed, 0, `no client write failed (${acked} acknowledged)${errors.length > 0 ? `: ${errors.slice(0, 3).join("; ")}` : ""}`)
  t.comment(`${acked} writes acknowledged, ${failed} failed; install ${installMs.toFixed(0)} ms after the restart`)

  let wrong = 0
  for (const [k, v] of last) if ((await client.get(k))?.value !== v) wrong++
  t.equal(wrong, 0, `all ${last.size} keys read back with their last acknowledged value`)
  sameStates(t, await stopAndRead(cluster))
})

t.test("SIGKILLs during snapshots and installs lose no acknowledged write and leave one state", async (t) => {
  const { cluster, client } = await testCluster(t, env)
  const lines = recordLines(t, cluster)
  let installs = 0
  /** Nodes part way through receiving a snapshot, and when each last logged taking one. */
  const receivingNow = new Set<string>()
  const snapshotAt = new Map<string, number>()
  t.teardown(
    cluster.onLine((id, line) => {
      if (line.includes("receiving a snapshot")) receivingNow.add(id)
      if (line.includes("installed a snapshot from")) {
        installs++
        receivingNow.delete(id)
      }
      if (compactionPattern.test(line)) snapshotAt.set(id, performance.now())
    })
  )
  // A state of a few hundred kilobytes, so snapshots and installs take long enough to be hit.
  const filler = "x".repeat(1000)
  await Promise.all(
    Array.from({ length: 8 }, async (_, lane) => {
      for (let i = lane; i < 400; i += 8) await client.put(`fill/${i}`, filler)
    })
  )

  // Writers over their own keys; values carry the writer's sequence number.
  const writers = 4
  const keysPerWriter = 25
  // Writers stop when the test ends, also when it fails part way (a closed connection fails every put at once).
  let stop = false
  t.teardown(() => {
    stop = true
  })
  let acked = 0
  let failed = 0
  /** key -> sequence number of the last acknowledged put, and of the last attempted. */
  const lastAcked = new Map<string, number>()
  const lastTried = new Map<string, number>()
  const running = Array.from({ length: writers }, async (_, w) => {
    for (let seq = 0; !stop && !cluster.nc.isClosed(); seq++) {
      const key = `w${w}/k${seq % keysPerWriter}`
      lastTried.set(key, seq)
      try {
        await client.put(key, `w${w}-${seq}`)
        lastAcked.set(key, seq)
        acked++
      } catch {
        failed++ // unknown outcome: the value may or may not be there
      }
    }
  })

  const random = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(Math.random() * xs.length)]!
  /** Resolves with the next line from `id` (any node when undefined) that matches, or undefined after `ms`. */
  const nextLine = (pattern: RegExp, id: string | undefined, ms: number): Promise<string | undefined> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        off()
        resolve(undefined)
      }, ms)
      const off = cluster.onLine((from, line) => {
        if ((id === undefined || from === id) && pattern.test(line)) {
          clearTimeout(timer)
          off()
          resolve(`${from} ${line}`)
        }
      })
    })

  const started = performance.now()
  const kinds = new Map<string, number>()
  let caught = 0
  let kills = 0
  let interrupted = 0
  let nearSnapshot = 0
  const kill = async (id: string, kind: string): Promise<void> => {
    if (receivingNow.delete(id)) interrupted++
    if (performance.now() - (snapshotAt.get(id) ?? -Infinity) < 100) nearSnapshot++
    await cluster.kill(id)
    kills++
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  await until("writes under way", () => acked > 50, { timeoutMs: 10_000 })
  // Ten followers lose their disk; after each, one more kill: the reinstalling node as it
  // receives its snapshot, a node right after it logs a snapshot, or any node at a random moment.
  const thenKill = ["install", "snapshot", "random"] as const
  for (let round = 0; round < 10; round++) {
    const leader = await healed(cluster, client)
    const wiped = random(cluster.ids.filter((id) => id !== leader))
    await kill(wiped, "wiped follower")
    await cluster.wipe(wiped)
    const next = thenKill[round % 3]!
    const receiving = nextLine(/receiving a snapshot/, wiped, 30_000)
    cluster.startNode(wiped)
    if (next === "install") {
      const line = await receiving
      if (line !== undefined) caught++
      await sleep(Math.random() * 30)
      await kill(wiped, "during an install")
      cluster.startNode(wiped)
    } else {
      await healed(cluster, client)
      const line = next === "snapshot" ? await nextLine(compactionPattern, undefined, 5_000) : undefined
      if (line !== undefined) caught++
      else await sleep(Math.random() * 500)
      const victim = line?.split(" ")[0] ?? random(cluster.ids)
      await kill(victim, line === undefined ? "random moment" : "after a snapshot")
      cluster.startNode(victim)
    }
    await healed(cluster, client)
  }
  await healed(cluster, client)
  await sleep(1_000) // quiet period with the writers still going
  stop = true
  await Promise.all(running)
  await healed(cluster, client)
  const elapsed = performance.now() - started

  let lost = 0
  let strange = 0
  const examples: string[] = []
  for (const [key, seq] of lastAcked) {
    const w = key.slice(1, key.indexOf("/"))
    const got = await client.get(key)
    const m = got === undefined ? null : /^w(\d+)-(\d+)$/.exec(got.value)
    if (m === null || m[1] !== w) {
      strange++
      examples.push(`${key}: ${got?.value}`)
    } else if (Number(m[2]) < seq || Number(m[2]) > lastTried.get(key)!) {
      lost++
      examples.push(`${key}: ${got?.value}, last acknowledged ${seq}`)
    }
  }
  t.ok(acked > 500, `writes went on through the kills (${acked} acknowledged, ${failed} with unknown outcome)`)
  t.equal(kills, 20, "20 nodes were killed")
  t.ok(installs >= 10, `every wiped follower installed a snapshot (${installs} installs)`)
  t.equal(lost + strange, 0, `every acknowledged write reads back (${lastAcked.size} keys)${examples.length > 0 ? `: ${examples.slice(0, 5).join("; ")}` : ""}`)
  const states = await stopAndRead(cluster)
  sameStates(t, states)
  t.comment(
    `${acked} writes acknowledged, ${failed} unknown; ${kills} kills (${[...kinds].map(([k, n]) => `${n} ${k}`).join(", ")}; ${caught} on a caught log line; ${interrupted} in the middle of an install, ${nearSnapshot} within 100 ms of a snapshot); ${installs} installs; ${(elapsed / 1000).toFixed(1)} s`
  )
  t.comment(`snapshot lines: ${cluster.ids.map((id) => `${id} ${lines.get(id)!.filter((l) => compactionPattern.test(l)).length}`).join(", ")}`)
})
