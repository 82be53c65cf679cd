/**
 * `transfer`: the write gap of a leader restart under a continuous writer. One client writes a
 * new key at a time, each put sent when the last was acknowledged; the leader gets SIGTERM (it
 * hands leadership to its most caught-up follower, then stops) or SIGKILL (the others elect a
 * leader after an election timeout), is restarted and caught up, and the next round starts. The
 * gap of a round is the time from the last write acknowledged before the signal to the first
 * acknowledged after it. The same rounds run in test/cluster/transfer.test.ts.
 *
 *   npm run bench -- transfer [--kills 20]   (20 SIGTERM restarts, then 20 SIGKILL)
 */
import type { LocalCluster } from "../cluster.ts"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import { fmt, loadNote, percentile, sleep, withCluster, type BenchOptions } from "./common.ts"

export type RestartSignal = "SIGTERM" | "SIGKILL"

export interface RestartRound {
  readonly signal: RestartSignal
  /** The leader that got the signal, and who led after it. */
  readonly stopped: string
  readonly next: string
  /** Last acknowledged write before the signal to the first after it. */
  readonly gapMs: number
  /** From the signal to the process's exit. */
  readonly exitMs: number
}

/** One client writing `w<i>` = `<i>` one put at a time until stopped; every outcome recorded. */
export class ContinuousWriter {
  /** When each acknowledged write was acknowledged (performance.now()), in order. */
  readonly ackTimes: number[] = []
  readonly acked = new Map<string, string>()
  /** Writes that failed (the client's deadline passed): key and error. */
  readonly failed: Array<{ readonly key: string; readonly error: string }> = []
  private stopping = false
  private readonly loop: Promise<void>

  constructor(client: ArchioClient, prefix = "w") {
    this.loop = (async () => {
      for (let i = 0; !this.stopping; i++) {
        const key = `${prefix}${i}`
        try {
          await client.put(key, String(i))
          this.ackTimes.push(performance.now())
          this.acked.set(key, String(i))
        } catch (e) {
          this.failed.push({ key, error: e instanceof Error ? e.message : String(e) })
        }
      }
    })()
  }

  /** Resolves once a write is acknowledged after `at`; its time. */
  async ackAfter(at: number, timeoutMs = 60_000): Promise<number> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const last = this.ackTimes[this.ackTimes.length - 1]
      if (last !== undefined && last > at) return this.ackTimes.find((a) => a > at)!
      if (performance.now() > deadline) throw new Error(`no write acknowledged within ${timeoutMs} ms`)
      await sleep(1)
    }
  }

  /** The last acknowledgement at or before `at`. */
  ackBefore(at: number): number | undefined {
    return this.ackTimes.findLast((a) => a <= at)
  }

  async stop(): Promise<void> {
    this.stopping = true
    await this.loop
  }
}

/** Waits until every running node answers and has applied what the leader committed. */
const caughtUp = async (cluster: LocalCluster): Promise<string> => {
  const leader = await cluster.waitForLeader(60_000)
  const s = await cluster.status(leader, 2_000)
  if (s !== undefined) await cluster.waitForApplied(s.commitIndex, 60_000)
  return leader
}

/**
 * Restarts the leader once per signal in `plan` while `writer` writes: signal, wait for the first
 * write after it and for the process to exit, restart it, wait until every node caught up.
 */
export const restartLeaders = async (
  cluster: LocalCluster,
  writer: ContinuousWriter,
  plan: ReadonlyArray<RestartSignal>,
  onRound: (r: RestartRound, i: number) => void = () => {}
): Promise<RestartRound[]> => {
  const rounds: RestartRound[] = []
  for (const [i, signal] of plan.entries()) {
    const leader = await caughtUp(cluster)
    await writer.ackAfter(performance.now()) // the writer is writing through this leader
    const at = performance.now()
    const exited = signal === "SIGTERM" ? cluster.signal(leader, "SIGTERM") : cluster.kill(leader)
    const first = await writer.ackAfter(at)
    await exited
    const exitMs = performance.now() - at
    const before = writer.ackBefore(at) ?? at
    const next = await cluster.waitForLeader(60_000)
    cluster.startNode(leader)
    const round: RestartRound = { signal, stopped: leader, next, gapMs: first - before, exitMs }
    rounds.push(round)
    onRound(round, i)
  }
  await caughtUp(cluster)
  return rounds
}

/** Median, best and worst gap of the rounds with `signal`, as one line. */
export const gapSummary = (rounds: ReadonlyArray<RestartRound>, signal: RestartSignal): string => {
  const gaps = rounds
    .filter((r) => r.signal === signal)
    .map((r) => r.gapMs)
    .sort((a, b) => a - b)
  if (gaps.length === 0) return `${signal}: no rounds`
  return `${signal} over ${gaps.length} leader restarts: write gap median ${fmt(percentile(gaps, 50))}, best ${fmt(gaps[0]!)}, worst ${fmt(gaps[gaps.length - 1]!)}`
}

export const transferBench = async (o: BenchOptions): Promise<void> => {
  await withCluster(async ({ cluster, client }) => {
    console.log(`transfer: ${o.kills} leader restarts with SIGTERM (handover), then ${o.kills} with SIGKILL, one writer (${loadNote()})`)
    const writer = new ContinuousWriter(client)
    const plan: RestartSignal[] = [...Array<RestartSignal>(o.kills).fill("SIGTERM"), ...Array<RestartSignal>(o.kills).fill("SIGKILL")]
    const rounds = await restartLeaders(cluster, writer, plan, (r, i) =>
      console.log(`  ${String(i + 1).padStart(2)} ${r.signal} ${r.stopped} -> ${r.next}: write gap ${fmt(r.gapMs)}, exited after ${fmt(r.exitMs)}`)
    )
    await writer.stop()
    console.log(gapSummary(rounds, "SIGTERM"))
    console.log(gapSummary(rounds, "SIGKILL"))
    console.log(`${writer.acked.size} writes acknowledged, ${writer.failed.length} failed`)
  }, o.nodeEnv)
}
