/**
 * The register workload: concurrent clients doing `get` (linearizable), `put` and `cas` on a
 * small set of keys through the public typed client (`ArchioClient`), each call bounded by a
 * per-operation deadline. Client `c<k>` talks only to server `s<(k-1) mod N + 1>`, so a client
 * on the minority side of a partition sees `unavailable` or timeouts.
 *
 * - Values are unique (`<client>-<n>`), so every read names the write it saw.
 * - `cas` expects a (value, mod revision) pair some client observed: usually the newest one
 *   seen for the key (likely to win), sometimes an older one or "absent" (likely a conflict).
 *   Values are unique, so "mod revision r" and "the value written at r" are the same condition;
 *   the history records the value (`[expected, new]`) and the revision (`expectedRevision`).
 * - Outcomes: a reply is `ok`; `conflict`, `bad_request`, `too_large`, `busy` are `fail` (refused, not
 *   applied); anything else (`unavailable` or `timeout` after the client's retries, `internal`,
 *   a closed connection) is `info`: an earlier attempt may have been applied. A refused cas
 *   records the key's mod revision the server reported (`revision`): the checker uses it to
 *   name the value the refusal saw.
 * - Keys rotate: after `opsPerKey` operations a slot moves on to a fresh key (`r<slot>-<gen>`),
 *   as Jepsen's independent keys do, which keeps each key's search small.
 * - At the end, once the cluster settled, one final client per server reads every key.
 * - `staleReads` (`--stale-reads`) reads each node's local copy instead: not linearizable by
 *   design, so a run with partitions must end in a violation. It shows the harness can see one.
 * - `wrongRefusals` (`--wrong-refusals`) sends a fifth of the cas with a revision no key has,
 *   while the history records the expectation the client meant: the server refuses them even
 *   when the expected value is the key's, which the checker must report (no faults needed).
 */
import { ArchioClient } from "../../protocol/archioClient.ts"
import { ArchioError } from "../../protocol/errors.ts"
import type { Completion, HistoryEntry } from "./history.ts"
import { checkRegisterHistory } from "./linearizability.ts"
import type { Rng } from "./nemesis.ts"
import { RotatingKeys } from "./rotatingKeys.ts"
import { connectClient, type CheckResult, type Workload, type WorkloadContext } from "./workload.ts"

export interface RegisterOptions {
  readonly clients: number
  /** Key slots used at once. */
  readonly keys: number
  readonly opsPerKey: number
  /** Deadline of one operation (the client's retries included). */
  readonly opTimeoutMs: number
  /** Pause between a client's operations, drawn from [0, thinkMs]. */
  readonly thinkMs: number
  /** Fractions of reads and writes; the rest are cas. */
  readonly readFraction: number
  readonly writeFraction: number
  /** Step budget of the checker per key. */
  readonly maxSteps?: number
  /**
   * Read with `consistency: "stale"` (the node's local copy) instead of linearizably: a self-test
   * of the harness, which must then report violations under partitions.
   */
  readonly staleReads?: boolean
  /**
   * Send some cas with an impossible expected revision but record the meant expectation: a
   * self-test of the refused-cas check, which must then report violations.
   */
  readonly wrongRefusals?: boolean
}

export const defaultRegisterOptions: RegisterOptions = {
  clients: 6,
  keys: 5,
  opsPerKey: 250,
  opTimeoutMs: 2_000,
  thinkMs: 10,
  readFraction: 0.4,
  writeFraction: 0.3
}

interface Seen {
  readonly value: string | null
  readonly revision: number
}

const failCodes = new Set(["conflict", "bad_request", "too_large", "busy"])

/** Far above any revision a run reaches: a cas expecting it is always refused. */
const impossibleRevision = Number.MAX_SAFE_INTEGER

interface Outcome {
  readonly type: Completion
  readonly error: string
  readonly message: string
  /** On a cas `conflict`: the key's mod revision when the cas was refused (the checker maps it to a value). */
  readonly revision?: number
}

const outcomeOf = (e: unknown): Outcome => {
  if (e instanceof ArchioError) {
    const outcome = { type: failCodes.has(e.code) ? "fail" : "info", error: e.code, message: e.message.slice(0, 200) } as const
    const revision = e.detail?.["revision"]
    return typeof revision === "number" ? { ...outcome, revision } : outcome
  }
  return { type: "info", error: "exception", message: (e instanceof Error ? e.message : String(e)).slice(0, 200) }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The node that answered, which every Archio reply carries (`node`) but the client types omit. */
const nodeOf = (reply: object): string | undefined => {
  const node = (reply as { node?: unknown }).node
  return typeof node === "string" ? node : undefined
}

export class RegisterWorkload implements Workload {
  readonly name = "register"
  private ctx: WorkloadContext | undefined
  private clients: Array<{ readonly name: string; readonly client: ArchioClient; readonly rng: Rng; counter: number }> = []
  private readonly keys: RotatingKeys
  private readonly seen = new Map<string, { latest: Seen | undefined; older: Seen[] }>()

  constructor(readonly options: RegisterOptions = defaultRegisterOptions) {
    this.keys = new RotatingKeys(options.keys, options.opsPerKey)
  }

  async start(ctx: WorkloadContext): Promise<void> {
    this.ctx = ctx
    const servers = ctx.cluster.mesh.size
    for (let k = 0; k < this.options.clients; k++) {
      const name = `c${k + 1}`
      this.clients.push({ name, client: await connectClient(ctx, name, k % servers, this.options.opTimeoutMs), rng: ctx.rng.fork(name), counter: 0 })
    }
  }

  private observe(key: string, value: string | null, revision: number): void {
    let s = this.seen.get(key)
    if (s === undefined) this.seen.set(key, (s = { latest: undefined, older: [] }))
    if (s.latest === undefined || revision > s.latest.revision) {
      if (s.latest !== undefined) s.older.push(s.latest)
      if (s.older.length > 8) s.older.shift()
      s.latest = { value, revision }
    }
  }

  /** The (value, revision) a cas expects: mostly the newest seen, sometimes stale or absent. */
  private expectation(key: string, rng: Rng): Seen {
    const s = this.seen.get(key)
    const absent: Seen = { value: null, revision: 0 }
    if (s?.latest === undefined) return absent
    if (rng.chance(0.75)) return s.latest
    return rng.chance(0.7) && s.older.length > 0 ? rng.pick(s.older) : absent
  }

  async read(client: ArchioClient, name: string, key: string): Promise<void> {
    const h = this.ctx!.history
    const done = h.invoke(name, "read", key, null)
    try {
      const rec = await client.get(key, this.options.staleReads === true ? { consistency: "stale" } : {})
      if (rec === undefined) done("ok", null)
      else {
        this.observe(key, rec.value, rec.modRevision)
        done("ok", rec.value, { revision: rec.modRevision, node: nodeOf(rec) })
      }
    } catch (e) {
      const o = outcomeOf(e)
      done(o.type, null, { error: o.error, message: o.message })
    }
  }

  async run(stop: AbortSignal): Promise<void> {
    const { readFraction, writeFraction, thinkMs } = this.options
    await Promise.all(
      this.clients.map(async (c) => {
        const h = this.ctx!.history
        while (!stop.aborted) {
          const key = this.keys.next(c.rng.int(0, this.options.keys - 1))
          const r = c.rng.next()
          if (r < readFraction) await this.read(c.client, c.name, key)
          else if (r < readFraction + writeFraction) {
            const value = `${c.name}-${++c.counter}`
            const done = h.invoke(c.name, "write", key, value)
            try {
              const res = await c.client.put(key, value)
              this.observe(key, value, res.revision)
              done("ok", value, { revision: res.revision, node: nodeOf(res) })
            } catch (e) {
              const o = outcomeOf(e)
              done(o.type, value, { error: o.error, message: o.message })
            }
          } else {
            const value = `${c.name}-${++c.counter}`
            const expect = this.expectation(key, c.rng)
            const done = h.invoke(c.name, "cas", key, [expect.value, value], { expectedRevision: expect.revision })
            // Drawn only in the self-test, so that ordinary runs keep their seeds' streams.
            const sent = this.options.wrongRefusals === true && c.rng.chance(0.2) ? impossibleRevision : expect.revision
            try {
              const res = await c.client.cas(key, value, sent)
              this.observe(key, value, res.revision)
              done("ok", [expect.value, value], { revision: res.revision, node: nodeOf(res) })
            } catch (e) {
              const { type, ...diagnostics } = outcomeOf(e)
              done(type, [expect.value, value], diagnostics)
            }
          }
          if (thinkMs > 0) await sleep(c.rng.int(0, thinkMs))
        }
      })
    )
  }

  async final(): Promise<void> {
    const ctx = this.ctx!
    const readers: ArchioClient[] = []
    try {
      for (let i = 0; i < ctx.cluster.mesh.size; i++) readers.push(await connectClient(ctx, `final${i + 1}`, i, 10_000))
      const keys = [...this.keys.used].sort()
      await Promise.all(
        readers.map(async (client, i) => {
          for (const key of keys) await this.read(client, `final${i + 1}`, key)
        })
      )
    } finally {
      await Promise.all(readers.map((r) => r.close().catch(() => undefined)))
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.client.close().catch(() => undefined)))
    this.clients = []
  }

  check(entries: ReadonlyArray<HistoryEntry>): CheckResult {
    const started = performance.now()
    const report = checkRegisterHistory(entries, this.options.maxSteps === undefined ? {} : { maxSteps: this.options.maxSteps })
    const ms = performance.now() - started
    const f = report.counts.byF
    const fmt = (name: string) => {
      const c = f[name] ?? { ok: 0, fail: 0, info: 0 }
      return `${name} ${c.ok}/${c.fail}/${c.info}`
    }
    const finals = entries.filter((e) => e.type === "ok" && e.f === "read" && typeof e.client === "string" && e.client.startsWith("final")).length
    const lines = [
      `operations  ${report.counts.ops} (ok ${report.counts.ok}, fail ${report.counts.fail}, info ${report.counts.info}); ok/fail/info by kind: ${fmt("read")}, ${fmt("write")}, ${fmt("cas")}`,
      `checker     ${report.keys} keys, ${report.searched} operations searched, ${finals} final reads, ${(ms / 1000).toFixed(1)} s`,
      `            refused cas: ${report.refusedCas.searched} searched (${report.refusedCas.pinned} naming the value they saw), ${report.refusedCas.leftOut} left out (expected value certainly gone); unknown writes: ${report.keptUnknown} searched, ${report.prunedUnknown} left out (unobservable)`
    ]
    if (report.unknownKeys.length > 0) lines.push(`undecided   the search gave up on ${report.unknownKeys.join(", ")}`)
    return {
      valid: report.valid,
      lines,
      violations: report.violations.map((v) => v.explanation),
      details: {
        counts: report.counts,
        keys: report.keys,
        searched: report.searched,
        prunedUnknown: report.prunedUnknown,
        keptUnknown: report.keptUnknown,
        refusedCas: report.refusedCas,
        results: report.results,
        unknownKeys: report.unknownKeys,
        violations: report.violations
      }
    }
  }
}
