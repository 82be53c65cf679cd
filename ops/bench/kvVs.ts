/**
 * `kv-vs`: Archio's key-value store against etcd 3.4 (three members, etcd.ts) and NATS
 * JetStream KV (three servers, an R3 bucket, jetstream.ts), each on a fresh cluster in turn
 * within a round, for `--rounds` rounds, at `--concurrency` closed-loop clients (1, 16, 64):
 *
 * - puts of `--value-bytes` values on 1000 keys per client;
 * - gets of 1000 keys written first: Archio linearizable (its default), etcd linearizable (its
 *   default), JetStream direct gets (any replica answers from its own copy; JetStream's fast
 *   read, not a linearizable one).
 *
 * Archio is measured two ways on the same cluster, one after the other at each level: as any
 * NATS client uses it (`Archio plain`: `nc.request` on `archio.<cluster>.kv.put` / `.kv.get`,
 * JSON in and out, whichever node the queue group picks answers, a follower forwarding a
 * write), and with the typed client (`Archio typed`: ArchioClient, writes sent to the node
 * that answered the last one, the leader, with idempotency tokens; its gets go to the service
 * subject too). etcd's and JetStream's clients talk to their leader's server.
 *
 * One load generator (common.ts closedLoop) with one operation per system. Each round prints
 * its figures and the ratios Archio/peer; the end prints medians, ranges and the ratios'
 * medians; the JSON result goes to `--json` (or .archio/bench/). `--parts puts,gets` picks
 * parts.
 */
import type { NatsConnection } from "@nats-io/transport-node"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import { ArchioError } from "../../protocol/errors.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { closedLoop, levelLine, loadNote, percentile, withCluster, type BenchOptions, type LoopResult } from "./common.ts"
import { chooseParts, runRounds, type Comparison, type Figure, type Metric, type Pair } from "./compare.ts"
import { withEtcd } from "./etcd.ts"
import { withJetStreamKv } from "./jetstream.ts"
import { plainRequest, plainRetries, retriesNote } from "./systems.ts"
import { perSecond } from "./results.ts"

/** What the load generator needs of a key-value store: one put, one get. */
export interface KvSystem {
  readonly name: string
  put(key: string, value: string): Promise<unknown>
  /** The value's length, or undefined when the key is absent. */
  get(key: string): Promise<number | undefined>
}

export const kvParts = ["puts", "gets"] as const
const peers = ["etcd", "JetStream"] as const
const archioSystems = ["Archio plain", "Archio typed"] as const
/** Keys written before the gets; each get reads one of them. */
const keyCount = 1000

const putMetric = (c: number): string => `puts, ${c} client${c === 1 ? "" : "s"}`
const getMetric = (c: number): string => `gets, ${c} client${c === 1 ? "" : "s"}`

export const kvComparison = (levels: ReadonlyArray<number>): Comparison => ({
  title: "key-value: Archio vs etcd and JetStream KV",
  metrics: [
    ...levels.map((c): Metric => ({ name: putMetric(c), unit: "puts/s", better: "higher" })),
    ...levels.map((c): Metric => ({ name: getMetric(c), unit: "gets/s", better: "higher" }))
  ],
  systems: [...archioSystems, ...peers],
  pairs: archioSystems.flatMap((of) => peers.map((to): Pair => ({ of, to })))
})

const utf8 = new TextDecoder()

/** Archio as a plain NATS client sees it: JSON requests on the service subjects. */
export const archioPlain = (nc: NatsConnection, cluster: string): KvSystem => {
  const put = Subjects.kv(cluster, "put")
  const get = Subjects.kv(cluster, "get")
  return {
    name: "Archio plain",
    put: (key, value) => plainRequest(nc, put, { key, value }),
    get: async (key) => {
      try {
        const reply = JSON.parse(utf8.decode(await plainRequest(nc, get, { key }))) as { value?: string }
        return reply.value?.length
      } catch (e) {
        if (e instanceof ArchioError && e.code === "not_found") return undefined
        throw e
      }
    }
  }
}

export const archioTyped = (client: ArchioClient): KvSystem => ({
  name: "Archio typed",
  put: (key, value) => client.put(key, value),
  get: async (key) => (await client.get(key))?.value.length
})

const loopDetail = (r: LoopResult): string => `p50 ${percentile(r.sorted, 50).toFixed(2)} ms, p99 ${percentile(r.sorted, 99).toFixed(2)} ms; cpu: ${r.cpu}`

export const kvVs = async (o: BenchOptions): Promise<void> => {
  const levels = o.concurrency ?? [1, 16, 64]
  const parts = chooseParts(o.parts, kvParts)
  const value = "x".repeat(o.valueBytes)
  const comparison = kvComparison(levels)
  const getKey = (c: number, i: number) => `r${(c * 61 + i) % keyCount}`

  /** One level of one part for one system: the same closed loop whatever the system. */
  const measure = async (system: KvSystem, part: (typeof kvParts)[number], concurrency: number, add: (f: Figure) => void): Promise<void> => {
    const retried = plainRetries.count
    const r =
      part === "puts"
        ? await closedLoop(concurrency, o.seconds, (c, i) => system.put(`c${c}-${i % 1000}`, value), o)
        : await closedLoop(concurrency, o.seconds, async (c, i) => {
            const length = await system.get(getKey(c, i))
            if (length !== value.length) throw new Error(`${system.name}: get ${getKey(c, i)} answered ${length === undefined ? "absent" : `${length} bytes`}`)
          }, o)
    const retries = retriesNote(plainRetries.count - retried)
    console.log(`${system.name}: ${levelLine(concurrency, r, part, retries)}`)
    add({ metric: part === "puts" ? putMetric(concurrency) : getMetric(concurrency), system: system.name, value: perSecond(r), detail: loopDetail(r) + retries })
  }
  /** Writes the keys the gets read, 16 at a time. */
  const prewrite = (system: KvSystem): Promise<unknown> =>
    Promise.all(
      Array.from({ length: 16 }, async (_, c) => {
        for (let k = c; k < keyCount; k += 16) await system.put(`r${k}`, value)
      })
    )
  /** Every part and level on one system (or, for Archio, its two ways at each level). */
  const runOn = async (systems: ReadonlyArray<KvSystem>, header: string, add: (f: Figure) => void): Promise<void> => {
    for (const part of parts) {
      console.log(`${header}: ${part}, ${value.length}-byte values, ${o.seconds} s per level after ${o.warmup} s of warm-up, closed loop (${loadNote()})`)
      if (part === "gets") await prewrite(systems[0]!)
      for (const concurrency of levels) for (const system of systems) await measure(system, part, concurrency, add)
    }
  }

  const { nodeEnv: _env, ...options } = o
  await runRounds(comparison, { command: "kv-vs", rounds: o.rounds, jsonPath: o.json, options }, async (_round, add) => {
    await withCluster(
      ({ client }) => runOn([archioPlain(client.nc, client.cluster), archioTyped(client)], `Archio, ${o.nodes ?? 3} nodes, fsync on every member (plain requests, then the typed client, at each level)`, add),
      o.nodeEnv,
      o.nodes
    )
    await withEtcd(({ client, version }) =>
      runOn(
        [{ name: "etcd", put: (key, v) => client.put(key).value(v).exec(), get: async (key) => (await client.get(key).string())?.length }],
        `etcd: ${version}, 3 members, client on the leader, linearizable gets`,
        add
      )
    )
    await withJetStreamKv(({ kv, version, leader }) =>
      runOn(
        [{ name: "JetStream", put: (key, v) => kv.put(key, v), get: async (key) => (await kv.get(key))?.value.length }],
        `JetStream KV: ${version}, 3 servers, R3 bucket, client on the stream leader's server (${leader}), direct gets`,
        add
      )
    )
  })
}
