/**
 * Benchmarks against a real three-node cluster on this machine (real fsync, private nats-server):
 *
 *   npm run bench -- write [--seconds 10] [--warmup 10] [--concurrency 1,16,64] [--value-bytes 256]
 *   npm run bench -- write-etcd [same options]   (the same load on a local etcd cluster)
 *   npm run bench -- side-by-side [--rounds 3] [same options]   (write-path, write, write-etcd in turn, summarized)
 *   npm run bench -- read [--seconds 10] [--concurrency 1,16,64,256] [--value-bytes 256]
 *   npm run bench -- cas [--seconds 10] [--concurrency 1,16,64]
 *   npm run bench -- failover [--kills 20]
 *   npm run bench -- sizes [--sizes 3,5,7] [--concurrency 1,16,64] [--kills 10]
 *                                          (write then failover on a cluster of each size; --nodes N sets
 *                                          the size for write, failover and the others that take it)
 *   npm run bench -- transfer [--kills 20]  (the write gap of leader restarts: SIGTERM hands over, SIGKILL; transfer.ts)
 *   npm run bench -- jobs-enqueue [--concurrency 64] [--batch 100]
 *   npm run bench -- jobs-e2e [--workers 1,2,4] [--worker-concurrency 64] [--jobs 60000]
 *   npm run bench -- jobs-latency [--seconds 10]
 *   npm run bench -- jobs                  (the three jobs-* above)
 *   npm run bench -- jobs-vs-bullmq [--rounds 3] [--parts enqueue,e2e,latency] [--concurrency 64] [--workers 1,2,4] [--json FILE]
 *                                          (the jobs-* parts on Archio, typed and plain, then BullMQ on a private Redis 7 with
 *                                          appendfsync always, then everysec, in turn each round; medians, Archio/BullMQ per
 *                                          round; needs redis-server and ioredis; jobsVsBullmq.ts)
 *   npm run bench -- kv-vs [--rounds 3] [--parts puts,gets] [--concurrency 1,16,64] [--json FILE]
 *                                          (puts and gets on Archio, plain requests and the typed client, then etcd 3.4, then
 *                                          JetStream KV R3 on three nats-servers, in turn each round; kvVs.ts)
 *   npm run bench -- snapshot [--keys 1000000] [--value-bytes 256] [--snapshot-threshold N]
 *                                          (snapshot, backup, install, restart times of a big state; snapshot.ts)
 *   npm run bench -- memory [--puts 2000000] [--snapshot-threshold N]
 *                                          (disk and RSS over many puts on 10,000 keys, restart times; memory.ts)
 *   npm run bench -- footprint [--keys 1000000] [--jobs 1000000] [--value-bytes 256] [--payload-bytes 200] [--settle 30] [--heap-snapshot DIR] [--json FILE]
 *                                          (each node's RSS, heap and disk with many keys, then many ready jobs; footprint.ts)
 *   npm run bench -- overload [--seconds 60] [--concurrency 64]
 *                                          (ten times the saturating rate of puts for a minute; overload.ts)
 *   npm run bench -- disk | transport      (the machine's floor: fsync and NATS hop costs)
 *   npm run bench -- write-path [--seconds 10]  (one client's put along Archio's path, nothing else;
 *                                               its log in LevelDB, then in a preallocated file)
 *
 * Each benchmark lives in its own module beside this one (writes.ts, reads.ts, cas.ts,
 * jobs.ts; shared helpers in common.ts; the comparisons' tables in compare.ts, and each
 * comparison writes its rounds as JSON to `--json FILE`, by default .archio/bench/<command>-<time>.json;
 * Ctrl-C stops every server and worker a bench started, cleanup.ts). Every measured level first runs the same load for
 * `--warmup` seconds, unmeasured. `--profile-dir DIR` profiles the nodes (and workers)
 * with V8's CPU profiler (cpuProfile.mjs), writing one .cpuprofile each to DIR when they stop;
 * `node ops/bench/cpuProfile.mjs summary FILE` prints the top functions by self time.
 */
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { casBench } from "./cas.ts"
import type { BenchOptions } from "./common.ts"
import { etcdWriteBench } from "./etcd.ts"
import { disk, transport, writePaths } from "./floor.ts"
import { jobsBench, jobsE2eBench, jobsEnqueueBench, jobsLatencyBench } from "./jobs.ts"
import { jobsVsBullmq } from "./jobsVsBullmq.ts"
import { kvVs } from "./kvVs.ts"
import { footprintBench } from "./footprint.ts"
import { memoryBench } from "./memory.ts"
import { overloadBench } from "./overload.ts"
import { readBench } from "./reads.ts"
import { sideBySide } from "./sideBySide.ts"
import { snapshotBench } from "./snapshot.ts"
import { transferBench } from "./transfer.ts"
import { failoverBench, writeBench } from "./writes.ts"

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "10" },
    concurrency: { type: "string" },
    "value-bytes": { type: "string", default: "256" },
    kills: { type: "string", default: "20" },
    rounds: { type: "string", default: "3" },
    workers: { type: "string", default: "1,2,4" },
    "worker-concurrency": { type: "string", default: "64" },
    jobs: { type: "string", default: "60000" },
    batch: { type: "string", default: "100" },
    keys: { type: "string" },
    puts: { type: "string" },
    "snapshot-threshold": { type: "string" },
    "profile-dir": { type: "string" },
    nodes: { type: "string", default: "3" },
    sizes: { type: "string", default: "3,5,7" },
    json: { type: "string" },
    parts: { type: "string" },
    // footprint.ts reads these itself (footprintArgs).
    "payload-bytes": { type: "string" },
    settle: { type: "string" },
    "heap-snapshot": { type: "string" }
  }
})

const list = (s: string): number[] => s.split(",").map(Number)
/** A positive integer option, or undefined when absent; exits on anything else. */
const count = (name: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined
  const n = Number(raw.replace(/_/g, ""))
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return n
}
const profileDir = values["profile-dir"]

const options: BenchOptions = {
  seconds: Number(values.seconds),
  warmup: Number(values.warmup),
  concurrency: values.concurrency === undefined ? undefined : list(values.concurrency),
  valueBytes: Number(values["value-bytes"]),
  kills: Number(values.kills),
  rounds: Number(values.rounds),
  workers: list(values.workers),
  workerConcurrency: Number(values["worker-concurrency"]),
  jobs: Number(values.jobs),
  batch: Number(values.batch),
  keys: count("keys", values.keys),
  puts: count("puts", values.puts),
  snapshotThreshold: count("snapshot-threshold", values["snapshot-threshold"]),
  nodes: count("nodes", values.nodes),
  json: values.json,
  parts: values.parts?.split(","),
  // --cpu-prof is refused in NODE_OPTIONS: a preload starts the profiler instead.
  nodeEnv:
    profileDir === undefined
      ? undefined
      : { NODE_OPTIONS: `--import ${new URL("./cpuProfile.mjs", import.meta.url).pathname}`, ARCHIO_CPU_PROF_DIR: resolve(profileDir) }
}

const benches: Record<string, (o: BenchOptions) => Promise<unknown>> = {
  write: writeBench,
  "write-etcd": etcdWriteBench,
  "side-by-side": sideBySide,
  read: readBench,
  cas: casBench,
  failover: failoverBench,
  transfer: transferBench,
  jobs: jobsBench,
  "jobs-enqueue": jobsEnqueueBench,
  "jobs-e2e": jobsE2eBench,
  "jobs-latency": jobsLatencyBench,
  "jobs-vs-bullmq": jobsVsBullmq,
  "kv-vs": kvVs,
  snapshot: snapshotBench,
  memory: memoryBench,
  footprint: footprintBench,
  overload: overloadBench,
  disk: () => disk(),
  transport: () => transport(),
  "write-path": (o) => writePaths(o.seconds, o.warmup, o.valueBytes),
  // Puts and failover with each cluster size in turn, in one run (--sizes 3,5,7).
  sizes: async (o) => {
    for (const nodes of list(values.sizes)) {
      await writeBench({ ...o, nodes })
      await failoverBench({ ...o, nodes })
    }
  }
}
const which = positionals.length === 0 ? ["write", "failover"] : positionals
for (const name of which) {
  if (benches[name] === undefined) {
    console.error(`unknown benchmark "${name}"; choose from: ${Object.keys(benches).join(", ")}`)
    process.exit(2)
  }
}
for (const name of which) await benches[name]!(options)
