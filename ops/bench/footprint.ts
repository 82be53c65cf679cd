/**
 * `npm run bench -- footprint [--keys 1000000] [--jobs 1000000] [--value-bytes 256] [--payload-bytes 200]
 *                             [--settle 30] [--heap-snapshot DIR] [--json FILE]`
 *
 * Issue 22's memory target: a node holding 1,000,000 keys of 256 B and 1,000,000 ready jobs of
 * 200-byte payloads stays under 1.5 GB of RSS. The state machine keeps its whole state in
 * memory (like etcd's index), so what a key or a job costs in RAM decides how big a state a
 * node can hold; this bench measures it as a user would meet it: three nodes with the product's
 * defaults (SNAPSHOT_THRESHOLD included), every write committed on a majority and synced.
 *
 * 1. idle: each node's figures once the cluster is up and quiet;
 * 2. keys: `--keys` distinct keys (`k/0000000`...) of `--value-bytes` incompressible bytes, in
 *    `kv.txn`s of 128 puts (the most one txn takes, as etcd's default), 16 in flight: how one
 *    loads keys fast. Figures when every node has applied them, and again after `--settle` s;
 * 3. jobs: `--jobs` ready jobs over 4 queues, each payload `{"d":"..."}` of `--payload-bytes`
 *    bytes of JSON, in `jobs.enqueueBatch`es of 500, 8 in flight; nobody leases them. Figures
 *    as after the keys.
 *
 * Each node's figures: RSS (/proc/<pid>/status VmRSS), split into the process's own memory
 * (RssAnon) and pages of mapped files (RssFile: LevelDB reads its table files through mmap, and
 * those pages count in RSS until the kernel needs them back), and its peak (VmHWM); the V8 heap
 * in use and the ArrayBuffers outside it (LevelDB's and other native allocations show in RSS
 * only); the size of its data folder, the log entries it holds in memory and its last snapshot.
 * Nothing is forced (no GC, no snapshot): the settle pause lets the node do what it does. Bytes
 * per key = (RSS after the keys settled - RSS idle) / keys; per job = (RSS after the jobs
 * settled - RSS after the keys settled) / jobs.
 *
 * Neither `admin.status` nor /metrics reports the V8 heap, and the bench changes no shipped
 * code: the nodes get a preload (NODE_OPTIONS `--import` of a data: URL, below) that writes
 * `process.memoryUsage()` to a file every second. `--heap-snapshot DIR` also starts the nodes
 * with `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` and, at the end, has the node with
 * the largest RSS write a V8 heap snapshot there (open it in Chrome DevTools, Memory tab).
 *
 * Prints a table and writes the result as JSON to `--json FILE` (by default
 * .archio/bench/footprint-<time>.json).
 */
import { readFileSync } from "node:fs"
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import type { LocalCluster, NodeStatus } from "../cluster.ts"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { maxTxnOps } from "../../protocol/limits.ts"
import { defaults } from "../../bootstrap/config.ts"
import { withStop } from "./cleanup.ts"
import { cpuMeter, loadNote, sleep, waitQuiet, withCluster, type BenchOptions } from "./common.ts"
import { dirBytes, mb, ms } from "./nodeStats.ts"
import { defaultResultPath, writeResultFile } from "./results.ts"
import { footprintArgs, keyName, parseProcStatus, payloadSource, perItem, targetRss, type FootprintArgs, type ProcMemory } from "./footprintParts.ts"
import { valueSource } from "./values.ts"

const txnInFlight = 16
const jobBatch = 500
const batchesInFlight = 8
const queues = 4
// --- The nodes' memory, from the outside and from the preload ----------------------------------

/** What the preload writes: `process.memoryUsage()` and V8's heap spaces in use, at `at` (ms since the epoch). */
export interface HeapReading {
  readonly at: number
  readonly rss: number
  readonly heapTotal: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
  /** Bytes in use per V8 heap space (old_space, large_object_space, ...). */
  readonly spaces: Readonly<Record<string, number>>
}

/**
 * The preload, as NODE_OPTIONS: every second, a node (a process started with `--id`) writes its
 * memory to `$ARCHIO_FOOTPRINT_DIR/<id>.json` (through a rename, so a reader never sees half).
 * A data: URL, so the node's code and files stay as shipped.
 */
const probeOption = (): string => {
  const code = `import { renameSync, writeFileSync } from "node:fs"
import { getHeapSpaceStatistics } from "node:v8"
const at = process.argv.indexOf("--id")
const dir = process.env.ARCHIO_FOOTPRINT_DIR
if (at > 0 && dir) {
  const file = dir + "/" + process.argv[at + 1] + ".json"
  const write = () => {
    try {
      const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]))
      writeFileSync(file + ".tmp", JSON.stringify({ at: Date.now(), ...process.memoryUsage(), spaces }))
      renameSync(file + ".tmp", file)
    } catch {}
  }
  write()
  setInterval(write, 1000).unref()
}
`
  return `--import=data:text/javascript;base64,${Buffer.from(code).toString("base64")}`
}

const procMemory = (pid: number | undefined): ProcMemory => {
  try {
    if (pid !== undefined) return parseProcStatus(readFileSync(`/proc/${pid}/status`, "utf8"))
  } catch {
    // not running (or not Linux)
  }
  return { rss: undefined, peak: undefined, anon: undefined, file: undefined }
}

/** Node `id`'s preload reading written at or after `notBefore` (waits up to 5 s for one), or undefined. */
const heapOf = async (probeDir: string, id: string, notBefore: number): Promise<HeapReading | undefined> => {
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await sleep(100)) {
    try {
      const r = JSON.parse(readFileSync(join(probeDir, `${id}.json`), "utf8")) as HeapReading
      if (r.at >= notBefore) return r
    } catch {
      // not written yet
    }
  }
  return undefined
}

/** admin.status as this bench reads it: NodeStatus and the keys the node holds. */
interface FootprintStatus extends NodeStatus {
  readonly kv?: { readonly keys: number; readonly bytes: number }
}

export interface NodeFigures {
  readonly rss: number | undefined
  readonly peakRss: number | undefined
  readonly rssAnon: number | undefined
  readonly rssFile: number | undefined
  readonly heapUsed: number | undefined
  readonly heapTotal: number | undefined
  /** Memory of ArrayBuffers and other objects V8 tracks outside its heap. */
  readonly external: number | undefined
  readonly spaces: Readonly<Record<string, number>> | undefined
  readonly disk: number
  readonly keys: number | undefined
  /** Log entries held in memory: lastIndex - logBaseIndex. */
  readonly logEntries: number | undefined
  readonly snapshotIndex: number | undefined
}

export interface Sample {
  readonly phase: string
  /** Seconds since the cluster was up. */
  readonly at: number
  readonly nodes: Readonly<Record<string, NodeFigures>>
}

const sampleNodes = async (cluster: LocalCluster, probeDir: string, phase: string, since: number): Promise<Sample> => {
  const asked = Date.now()
  const nodes: Record<string, NodeFigures> = {}
  for (const id of cluster.ids) {
    const heap = await heapOf(probeDir, id, asked)
    const mem = procMemory(cluster.pid(id))
    const s = (await cluster.status(id, 5_000)) as FootprintStatus | undefined
    nodes[id] = {
      rss: mem.rss,
      peakRss: mem.peak,
      rssAnon: mem.anon,
      rssFile: mem.file,
      heapUsed: heap?.heapUsed,
      heapTotal: heap?.heapTotal,
      external: heap?.external,
      spaces: heap?.spaces,
      disk: await dirBytes(cluster.dataDir(id)),
      keys: s?.kv?.keys,
      logEntries: s === undefined ? undefined : s.lastIndex - (s.logBaseIndex ?? 0),
      snapshotIndex: s?.snapshot?.index
    }
  }
  return { phase, at: Math.round((performance.now() - since) / 100) / 10, nodes }
}

/** Waits until every node has applied what the leader has committed. */
const settleApplied = async (cluster: LocalCluster): Promise<void> => {
  const leader = await cluster.waitForLeader(60_000)
  const s = await cluster.status(leader, 5_000)
  if (s === undefined) throw new Error(`leader ${leader} did not answer admin.status`)
  await cluster.waitForApplied(s.commitIndex, 600_000)
}

// --- The loads ------------------------------------------------------------------------------

/** `count` items in chunks of `chunk`, `inFlight` chunks at a time; `send(from, to)` sends items [from, to). Says how far it got every 10 s. */
const inChunks = async (count: number, chunk: number, inFlight: number, what: string, send: (from: number, to: number) => Promise<unknown>): Promise<void> => {
  let next = 0
  let done = 0
  let said = performance.now()
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const from = next
        const to = Math.min(count, from + chunk)
        next = to
        await send(from, to)
        done += to - from
        if (performance.now() - said > 10_000) {
          said = performance.now()
          console.log(`  ... ${done} ${what}`)
        }
      }
    })
  )
}

const loadKeys = (client: ArchioClient, keys: number, valueBytes: number): Promise<void> => {
  const value = valueSource(valueBytes)
  return inChunks(keys, maxTxnOps, txnInFlight, "keys", (from, to) =>
    client.txn({ success: Array.from({ length: to - from }, (_, k) => ({ op: "put" as const, key: keyName(from + k, keys), value: value(from + k) })) })
  )
}

const queueOf = (batch: number): string => `footprint-${batch % queues}`

const loadJobs = (jobs: JobsClient, count: number, payloadBytes: number): Promise<void> => {
  const payload = payloadSource(payloadBytes)
  return inChunks(count, jobBatch, batchesInFlight, "jobs", (from, to) =>
    jobs.enqueueBatch(Array.from({ length: to - from }, (_, k) => ({ queue: queueOf(from / jobBatch), payload: payload(from + k) })))
  )
}

// --- Heap snapshot --------------------------------------------------------------------------

/** Has node `id` write a heap snapshot into `dir` (SIGUSR2); resolves with its path once written and the node answers again. */
const heapSnapshot = async (cluster: LocalCluster, id: string, dir: string): Promise<{ path: string; bytes: number; ms: number }> => {
  const before = new Set(await readdir(dir))
  const t0 = performance.now()
  await cluster.signal(id, "SIGUSR2")
  for (let lastSize = -1; performance.now() - t0 < 1_800_000; await sleep(1_000)) {
    const file = (await readdir(dir)).find((f) => f.endsWith(".heapsnapshot") && !before.has(f))
    if (file === undefined) continue
    const size = (await stat(join(dir, file))).size
    // Node writes the file while the node's thread is stopped: done once it answers and the size holds.
    if (size > 0 && size === lastSize && (await cluster.status(id, 2_000)) !== undefined) return { path: join(dir, file), bytes: size, ms: performance.now() - t0 }
    lastSize = size
  }
  throw new Error(`${id} wrote no heap snapshot into ${dir} within 30 min`)
}

// --- The table ------------------------------------------------------------------------------

const kb = (bytes: number | undefined): string => (bytes === undefined ? "?" : `${bytes} B`)

const tableLines = (samples: ReadonlyArray<Sample>, ids: ReadonlyArray<string>): string[] => {
  const head = `  ${"phase".padEnd(14)}${"node".padEnd(6)}${"RSS".padStart(11)}${"anon".padStart(11)}${"file".padStart(11)}${"peak RSS".padStart(11)}${"heapUsed".padStart(11)}${"external".padStart(11)}${"disk".padStart(11)}${"log entries".padStart(13)}${"snapshot".padStart(10)}`
  const lines = [head]
  for (const s of samples) {
    for (const id of ids) {
      const n = s.nodes[id]!
      lines.push(
        `  ${(id === ids[0] ? s.phase : "").padEnd(14)}${id.padEnd(6)}${mb(n.rss).padStart(11)}${mb(n.rssAnon).padStart(11)}${mb(n.rssFile).padStart(11)}${mb(n.peakRss).padStart(11)}${mb(n.heapUsed).padStart(11)}${mb(n.external).padStart(11)}${mb(n.disk).padStart(11)}${String(n.logEntries ?? "?").padStart(13)}${String(n.snapshotIndex ?? "-").padStart(10)}`
      )
    }
  }
  return lines
}

/** Per node, bytes per item between two samples: RSS (and its anonymous part), heapUsed, external, disk. */
const perItemOf = (after: Sample, before: Sample, count: number, ids: ReadonlyArray<string>) =>
  Object.fromEntries(
    ids.map((id) => {
      const a = after.nodes[id]!
      const b = before.nodes[id]!
      return [id, { rss: perItem(a.rss, b.rss, count), rssAnon: perItem(a.rssAnon, b.rssAnon, count), heapUsed: perItem(a.heapUsed, b.heapUsed, count), external: perItem(a.external, b.external, count), disk: perItem(a.disk, b.disk, count) }]
    })
  )

const perItemLine = (what: string, figures: ReturnType<typeof perItemOf>, ids: ReadonlyArray<string>): string =>
  `  per ${what}: ${ids.map((id) => `${id} RSS ${kb(figures[id]!.rss)} (anon ${kb(figures[id]!.rssAnon)}), heapUsed ${kb(figures[id]!.heapUsed)}, external ${kb(figures[id]!.external)}, disk ${kb(figures[id]!.disk)}`).join("; ")}`

// --- The bench ------------------------------------------------------------------------------

export const footprintBench = async (o: BenchOptions, argv: ReadonlyArray<string> = process.argv.slice(2)): Promise<void> => {
  let args: FootprintArgs
  try {
    args = footprintArgs(argv)
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e))
    process.exit(2)
  }
  const keys = o.keys ?? 1_000_000
  const { jobs, payloadBytes, settleSeconds, heapSnapshotDir } = args
  const startedAt = new Date().toISOString()
  const probeDir = await mkdtemp(join(tmpdir(), "archio-footprint-"))
  const nodeOptions = [o.nodeEnv?.["NODE_OPTIONS"], probeOption(), ...(heapSnapshotDir === undefined ? [] : ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${heapSnapshotDir}`])]
  const env = {
    ...o.nodeEnv,
    NODE_OPTIONS: nodeOptions.filter((x) => x !== undefined).join(" "),
    ARCHIO_FOOTPRINT_DIR: probeDir,
    ...(o.snapshotThreshold === undefined ? {} : { SNAPSHOT_THRESHOLD: String(o.snapshotThreshold) })
  }
  if (heapSnapshotDir !== undefined) await mkdir(heapSnapshotDir, { recursive: true })
  const loadAtStart = loadavg()
  // The probe's folder goes at the end, and on Ctrl-C (cleanup.ts).
  await withStop(() => rm(probeDir, { recursive: true, force: true }), async () => {
    const result = await withCluster(async ({ cluster, client }) => {
      const ids = cluster.ids
      const up = performance.now()
      console.log(
        `footprint: 3 nodes, ${keys} keys of ${o.valueBytes} B, then ${jobs} ready jobs of ${payloadBytes}-byte payloads; SNAPSHOT_THRESHOLD ${o.snapshotThreshold ?? `${defaults.snapshotThreshold} (the default)`}; settle ${settleSeconds} s (${loadNote()}, ${cpus().length} CPUs)`
      )
      const snapshots: Record<string, number> = Object.fromEntries(ids.map((id) => [id, 0]))
      cluster.onLine((id, line) => {
        if (line.includes("snapshot at index") && line.includes("log compacted")) snapshots[id] = (snapshots[id] ?? 0) + 1
      })
      const samples: Sample[] = []
      const take = async (phase: string): Promise<Sample> => {
        const s = await sampleNodes(cluster, probeDir, phase, up)
        samples.push(s)
        console.log(`  ${phase} (${s.at} s): ${ids.map((id) => `${id} RSS ${mb(s.nodes[id]!.rss)}, heapUsed ${mb(s.nodes[id]!.heapUsed)}`).join("; ")}`)
        return s
      }
      await waitQuiet()
      const idle = await take("idle")

      // Keys.
      let cpu = cpuMeter()
      let t0 = performance.now()
      await loadKeys(client, keys, o.valueBytes)
      const keysMs = performance.now() - t0
      const keysCpu = cpu()
      await settleApplied(cluster)
      console.log(`  keys loaded in ${ms(keysMs)}: ${Math.round(keys / (keysMs / 1000))} keys/s (kv.txn of ${maxTxnOps} puts, ${txnInFlight} in flight); cpu: ${keysCpu}`)
      await take("keys loaded")
      await sleep(settleSeconds * 1000)
      const keysSettled = await take("keys settled")

      // Jobs.
      const jobsClient = new JobsClient(client)
      cpu = cpuMeter()
      t0 = performance.now()
      await loadJobs(jobsClient, jobs, payloadBytes)
      const jobsMs = performance.now() - t0
      const jobsCpu = cpu()
      await settleApplied(cluster)
      console.log(`  jobs loaded in ${ms(jobsMs)}: ${Math.round(jobs / (jobsMs / 1000))} jobs/s (jobs.enqueueBatch of ${jobBatch}, ${batchesInFlight} in flight, ${queues} queues); cpu: ${jobsCpu}`)
      await take("jobs loaded")
      await sleep(settleSeconds * 1000)
      const jobsSettled = await take("jobs settled")

      // What the cluster holds, to be sure the figures are of the whole load.
      const ready = (await jobsClient.stats()).filter((q) => q.queue.startsWith("footprint-")).reduce((n, q) => n + q.ready, 0)
      const heldKeys = ids.map((id) => jobsSettled.nodes[id]!.keys)
      const complete = ready === jobs && heldKeys.every((k) => k === keys)
      if (!complete) console.log(`  NOT the whole load: ${ready} ready jobs of ${jobs}; keys held ${heldKeys.join(", ")} of ${keys}`)

      const perKey = perItemOf(keysSettled, idle, keys, ids)
      const perJob = perItemOf(jobsSettled, keysSettled, jobs, ids)
      const largest = Math.max(...ids.map((id) => jobsSettled.nodes[id]!.rss ?? 0))
      const largestPeak = Math.max(...ids.map((id) => jobsSettled.nodes[id]!.peakRss ?? 0))
      const largestAnon = Math.max(...ids.map((id) => jobsSettled.nodes[id]!.rssAnon ?? 0))
      const met = largest < targetRss
      console.log("")
      for (const line of tableLines(samples, ids)) console.log(line)
      console.log("")
      console.log(perItemLine("key (keys settled - idle)", perKey, ids))
      console.log(perItemLine("job (jobs settled - keys settled)", perJob, ids))
      console.log(
        `  largest RSS with both loaded: ${mb(largest)} (target under ${mb(targetRss)}): ${met ? "met" : "NOT met"}; largest anonymous part: ${mb(largestAnon)}; largest peak RSS: ${mb(largestPeak)}; snapshots taken: ${ids.map((id) => `${id} ${snapshots[id]}`).join(", ")}`
      )

      let heap: { node: string; path: string; bytes: number; ms: number } | undefined
      if (heapSnapshotDir !== undefined) {
        const node = ids.reduce((a, b) => ((jobsSettled.nodes[b]!.rss ?? 0) > (jobsSettled.nodes[a]!.rss ?? 0) ? b : a))
        console.log(`  heap snapshot of ${node} (largest RSS) into ${heapSnapshotDir} ...`)
        heap = { node, ...(await heapSnapshot(cluster, node, heapSnapshotDir)) }
        console.log(`  heap snapshot: ${heap.path}, ${mb(heap.bytes)}, written in ${ms(heap.ms)}`)
      }
      return {
        bench: "footprint",
        startedAt,
        machine: { cpus: cpus().length, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
        keys,
        valueBytes: o.valueBytes,
        jobs,
        payloadBytes,
        settleSeconds,
        snapshotThreshold: o.snapshotThreshold ?? "default",
        loads: {
          keys: { ms: Math.round(keysMs), perSecond: Math.round(keys / (keysMs / 1000)), how: `kv.txn of ${maxTxnOps} puts, ${txnInFlight} in flight`, cpu: keysCpu },
          jobs: { ms: Math.round(jobsMs), perSecond: Math.round(jobs / (jobsMs / 1000)), how: `jobs.enqueueBatch of ${jobBatch}, ${batchesInFlight} in flight, ${queues} queues`, cpu: jobsCpu }
        },
        complete,
        samples,
        bytesPerKey: perKey,
        bytesPerJob: perJob,
        largestRss: largest,
        largestPeakRss: largestPeak,
        largestRssAnon: largestAnon,
        targetRss,
        targetMet: met,
        snapshots,
        ...(heap === undefined ? {} : { heapSnapshot: heap })
      }
    }, env)
    const path = await writeResultFile(o.json ?? defaultResultPath("footprint", startedAt), result)
    console.log(`  result: ${path}`)
  })
}
