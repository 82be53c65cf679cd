/**
 * `overload`: many times the load a cluster can serve, for a minute, as a misbehaving client of
 * any language would send it (raw NATS requests on the service subject, never waiting for an
 * answer before the next). What must hold: every node stays up, its memory stays bounded,
 * requests it admits keep a bounded latency (a separate, well-behaved client measures it), and
 * the cluster serves normally the moment the flood stops.
 *
 *   npm run bench -- overload [--seconds 60] [--concurrency 64]
 *
 * First the saturating rate is measured (closed loop, `--concurrency` clients, 10 s); the flood
 * then sends ten times that rate. test/cluster/overload.test.ts runs a short flood with small
 * bounds and checks the same things.
 */
import { connect, nuid, type NatsConnection } from "@nats-io/transport-node"
import type { LocalCluster } from "../cluster.ts"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import { readError } from "../../protocol/reply.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { fmt, latencyLine, loadNote, percentile, sleep, withCluster, type BenchOptions } from "./common.ts"
import { mb, rssBytes } from "./nodeStats.ts"

/** What a flood saw: answers by code, and the keys of puts answered `busy`. */
export interface FloodReport {
  readonly sent: number
  readonly seconds: number
  /** Answers by code (`ok` or the error code). */
  readonly answers: Readonly<Record<string, number>>
  readonly unanswered: number
  /** Keys of puts answered `busy` (only with `uniqueKeys`): none may exist afterwards. */
  readonly busyKeys: ReadonlyArray<string>
  /** Milliseconds from sending to the answer, of the puts answered ok (admitted), ascending. */
  readonly admittedMs: ReadonlyArray<number>
}

export interface FloodOptions {
  readonly cluster: string
  /** Requests per second to aim at (the sender may fall short: see `sent / seconds`). */
  readonly rate: number
  readonly valueBytes: number
  /** A fresh key per put (to check later that none answered `busy` exists), else 10,000 keys in turn. */
  readonly uniqueKeys: boolean
  readonly keyPrefix: string
}

/**
 * Open-loop puts on the service subject at `rate` per second over its own connection, one reply
 * subscription for all of them (`<inbox>.<seq>`), until `stop`.
 */
export class Flooder {
  private readonly answers: Record<string, number> = {}
  private readonly busyKeys: string[] = []
  private readonly sentAt: number[] = []
  private readonly admittedMs: number[] = []
  private sent = 0
  private answered = 0
  private stopping = false
  private readonly started = performance.now()
  private readonly sending: Promise<void>

  private constructor(
    private readonly nc: NatsConnection,
    options: FloodOptions
  ) {
    const inbox = `_INBOX.flood.${nuid.next()}`
    const value = "v".repeat(options.valueBytes)
    const keyOf = (seq: number): string => `${options.keyPrefix}${options.uniqueKeys ? seq : seq % 10_000}`
    nc.subscribe(`${inbox}.*`, {
      callback: (_err, msg) => {
        this.answered++
        const err = readError(msg)
        const code = err === undefined ? "ok" : err.code
        this.answers[code] = (this.answers[code] ?? 0) + 1
        if (code === "ok") this.admittedMs.push(performance.now() - this.sentAt[Number(msg.subject.slice(inbox.length + 1))]!)
        if (code === "busy" && options.uniqueKeys) this.busyKeys.push(keyOf(Number(msg.subject.slice(inbox.length + 1))))
      }
    })
    const subject = `${Subjects.root(options.cluster)}.kv.put`
    const encoder = new TextEncoder()
    this.sending = (async () => {
      while (!this.stopping) {
        // Whatever the rate says is due, in slices, so the replies get read in between.
        const due = Math.min(5_000, Math.floor(((performance.now() - this.started) / 1000) * options.rate) - this.sent)
        for (let i = 0; i < due; i++) {
          const seq = this.sent++
          this.sentAt.push(performance.now())
          nc.publish(subject, encoder.encode(`{"key":"${keyOf(seq)}","value":"${value}"}`), { reply: `${inbox}.${seq}` })
        }
        await sleep(2)
      }
    })()
  }

  static async start(natsUrl: string, options: FloodOptions): Promise<Flooder> {
    const nc = await connect({ servers: natsUrl, name: "archio-flood", noAsyncTraces: true })
    return new Flooder(nc, options)
  }

  /** Stops sending, waits up to `graceMs` for the answers still due, and reports. */
  async stop(graceMs = 10_000): Promise<FloodReport> {
    this.stopping = true
    await this.sending
    const seconds = (performance.now() - this.started) / 1000
    const deadline = performance.now() + graceMs
    while (this.answered < this.sent && performance.now() < deadline) await sleep(50)
    await this.nc.close()
    return { sent: this.sent, seconds, answers: { ...this.answers }, unanswered: this.sent - this.answered, busyKeys: this.busyKeys, admittedMs: [...this.admittedMs].sort((a, b) => a - b) }
  }
}

/** A well-behaved client's puts, one at a time, during the flood: what an admitted request costs. */
export class Probe {
  readonly latencies: number[] = []
  readonly errors: Record<string, number> = {}
  private stopping = false
  private readonly loop: Promise<void>

  constructor(client: ArchioClient, prefix: string) {
    this.loop = (async () => {
      for (let i = 0; !this.stopping; i++) {
        const start = performance.now()
        try {
          await client.put(`${prefix}${i % 100}`, String(i))
          this.latencies.push(performance.now() - start)
        } catch (e) {
          const code = e instanceof Error && "code" in e ? String(e.code) : "error"
          this.errors[code] = (this.errors[code] ?? 0) + 1
          // `busy` is the cue to back off.
          await sleep(20)
        }
      }
    })()
  }

  async stop(): Promise<void> {
    this.stopping = true
    await this.loop
  }
}

/** Closed-loop puts from `concurrency` clients for `seconds`: puts per second. */
const saturatingRate = async (client: ArchioClient, concurrency: number, seconds: number): Promise<number> => {
  const end = performance.now() + seconds * 1000
  let done = 0
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      for (let i = 0; performance.now() < end; i++) {
        await client.put(`sat/${c}/${i % 100}`, "v")
        done++
      }
    })
  )
  return done / seconds
}

/** Peak RSS of every node process, sampled every `everyMs` until `stop`. */
export class RssSampler {
  readonly peak = new Map<string, number>()
  private readonly timer: NodeJS.Timeout

  constructor(cluster: LocalCluster, everyMs = 500) {
    const sample = (): void => {
      for (const id of cluster.ids) {
        const rss = rssBytes(cluster.pid(id))
        if (rss !== undefined && rss > (this.peak.get(id) ?? 0)) this.peak.set(id, rss)
      }
    }
    sample()
    this.timer = setInterval(sample, everyMs)
  }

  stop(): void {
    clearInterval(this.timer)
  }
}

const codes = (answers: Readonly<Record<string, number>>): string =>
  Object.entries(answers)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${n}`)
    .join(", ")

export const overloadBench = async (o: BenchOptions): Promise<void> => {
  const seconds = o.seconds
  const concurrency = o.concurrency?.[0] ?? 64
  console.log(`overload: ${loadNote()}`)
  await withCluster(async ({ cluster, client, natsUrl }) => {
    await cluster.waitForLeader(30_000)
    const rate = await saturatingRate(client, concurrency, 10)
    const before = new Map(cluster.ids.map((id) => [id, rssBytes(cluster.pid(id))]))
    console.log(`saturating: ${Math.round(rate)} puts/s (${concurrency} clients, closed loop); RSS ${cluster.ids.map((id) => `${id} ${mb(before.get(id))}`).join(", ")}`)

    const rss = new RssSampler(cluster)
    const probe = new Probe(client, "probe/")
    const flood = await Flooder.start(natsUrl, { cluster: cluster.cluster, rate: rate * 10, valueBytes: o.valueBytes, uniqueKeys: false, keyPrefix: "flood/" })
    await sleep(seconds * 1000)
    const report = await flood.stop()
    await probe.stop()
    rss.stop()
    const admitted = [...probe.latencies].sort((a, b) => a - b)
    console.log(
      `flood: ${report.sent} puts in ${report.seconds.toFixed(1)} s (${Math.round(report.sent / report.seconds)}/s, ${((report.sent / report.seconds) / rate).toFixed(1)}x saturation); ` +
        `answers: ${codes(report.answers)}; unanswered ${report.unanswered}`
    )
    console.log(`the flood's admitted puts (answered ok), send to answer: ${latencyLine(report.admittedMs)}`)
    console.log(`probe during the flood: ${admitted.length} puts ok, ${latencyLine(admitted)}; refused: ${codes(probe.errors) || "none"}`)
    console.log(`peak RSS: ${cluster.ids.map((id) => `${id} ${mb(rss.peak.get(id))} (before ${mb(before.get(id))})`).join(", ")}`)
    const statuses = await Promise.all(cluster.ids.map((id) => client.status(id).catch(() => undefined)))
    console.log(
      `after the flood: ${statuses.map((s, i) => (s === undefined ? `${cluster.ids[i]} no answer` : `${String(s["id"])} ${String(s["role"])} term ${String(s["term"])}, ${String(s["leaderChanges"])} leader changes, busy ${JSON.stringify((s["admission"] as { busy: unknown }).busy)}`)).join("; ")}`
    )
    const alive = cluster.ids.filter((id) => cluster.pid(id) !== undefined && rssBytes(cluster.pid(id)) !== undefined)
    console.log(`nodes up after the flood: ${alive.length} of ${cluster.ids.length}`)

    // Recovery: the first put after the flood, then a second of ordinary puts.
    const stopped = performance.now()
    await client.put("after/0", "v")
    const firstMs = performance.now() - stopped
    const after: number[] = []
    const end = performance.now() + 2_000
    for (let i = 1; performance.now() < end; i++) {
      const start = performance.now()
      await client.put(`after/${i % 100}`, "v")
      after.push(performance.now() - start)
    }
    after.sort((a, b) => a - b)
    console.log(`recovery: first put ${fmt(firstMs)} after the flood stopped; then ${after.length} puts in 2 s, p50 ${fmt(percentile(after, 50))} p99 ${fmt(percentile(after, 99))}`)
  }, o.nodeEnv)
}
