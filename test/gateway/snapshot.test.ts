/**
 * Snapshots and backups through the Gateway: the backup sessions alone (a stream and timers the
 * test controls: chunk order, retries, shared reads, idle close, the session limit, stopping),
 * the snapshot metrics alone, then a two-node cluster where a backup held by one node is read
 * through the other (forwarded), the session limit on a real node, and the log base in status.
 */
import t from "tap"
import { Effect, Fiber, Schema } from "effect"
import type { NatsConnection } from "@nats-io/transport-node"
import { join } from "node:path"
import * as Backup from "../../actors/gateway/backup.ts"
import * as Metrics from "../../actors/gateway/metrics.ts"
import type { SupervisorShape } from "../../actors/services/supervisor.ts"
import { runNode } from "../../bootstrap/node.ts"
import * as Client from "../../protocol/client.ts"
import { ArchioError } from "../../protocol/errors.ts"
import { errorCodeHeader } from "../../protocol/reply.ts"
import { SnapshotDecoder, type SnapshotHeader } from "../../protocol/snapshotFormat.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { config, quiet } from "../support/node.ts"
import { ManualTimers } from "../support/services.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

// ---------------------------------------------------------------------------------------------
// Backup sessions alone

const header: SnapshotHeader = { index: 7, term: 2, members: ["n1"], cluster: "c", createdAt: 0 }

/** A stream over fixed bytes; `hold` makes reads wait until `release`. */
class FakeStream implements Backup.BackupStream {
  readonly header = header
  reads = 0
  closes = 0
  private at = 0
  private gate: Promise<void> | undefined
  private open: (() => void) | undefined
  failNext: Error | undefined

  constructor(private readonly bytes: Uint8Array) {}

  get finished(): boolean {
    return this.at >= this.bytes.length
  }
  get produced(): number {
    return this.at
  }
  get digest(): string {
    return "d".repeat(64)
  }
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve))
  }
  release(): void {
    this.gate = undefined
    this.open?.()
  }
  async next(maxBytes: number): Promise<Uint8Array> {
    this.reads++
    if (this.gate !== undefined) await this.gate
    if (this.failNext !== undefined) throw this.failNext
    const out = this.bytes.slice(this.at, this.at + maxBytes)
    this.at += out.length
    return out
  }
  close(): Promise<void> {
    this.closes++
    return Promise.resolve()
  }
}

const supervisor = (): SupervisorShape & { readonly failures: unknown[] } => {
  const failures: unknown[] = []
  return {
    failures,
    guard: (_actor, fn) => fn,
    fail: (_actor, cause) => void failures.push(cause),
    get failed() {
      return failures.length > 0
    }
  }
}

const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i % 251)

const sessions = (streams: FakeStream[], tuning: Partial<Backup.BackupTuning> = {}) => {
  const timers = new ManualTimers()
  const sup = supervisor()
  let opened = 0
  const backups = Backup.make({
    ...Backup.defaultBackupTuning,
    chunkBytes: 4,
    ...tuning,
    id: "n1",
    timers,
    supervisor: sup,
    open: () => {
      const s = streams[opened++]
      return s === undefined ? Promise.reject(new Error("no more streams")) : Promise.resolve(s)
    }
  })
  return { backups, timers, sup }
}

const opened = async (p: Promise<Backup.OpenedBackup | ArchioError>): Promise<Backup.OpenedBackup> => {
  const r = await p
  if (r instanceof ArchioError) throw new Error(`expected a session, got ${r.code}: ${r.message}`)
  return r
}

const chunkOf = async (p: Promise<Backup.BackupChunk | ArchioError>): Promise<Backup.BackupChunk> => {
  const r = await p
  if (r instanceof ArchioError) throw new Error(`expected a chunk, got ${r.code}: ${r.message}`)
  return r
}

const errorOf = async (p: Promise<unknown>): Promise<ArchioError> => {
  const r = await p
  if (!(r instanceof ArchioError)) throw new Error(`expected an error, got ${JSON.stringify(r)}`)
  return r
}

t.test("backup sessions: chunks in order, retries, conflicts, the end", async (t) => {
  const stream = new FakeStream(bytes(10))
  const { backups } = sessions([stream])
  const { session, header: h } = await opened(backups.open())
  t.equal(session, "n1:1", "the session id names its node")
  t.equal(h.index, 7)
  t.equal(backups.streams, 1)

  const c0 = await chunkOf(backups.chunk(session, 0))
  t.same([...c0.data], [0, 1, 2, 3])
  t.equal(c0.done, false)
  t.equal(await chunkOf(backups.chunk(session, 0)), c0, "a retry of the last chunk gets it again")
  t.equal(stream.reads, 1, "without reading the stream again")
  const conflict = await errorOf(backups.chunk(session, 8))
  t.equal(conflict.code, "conflict")
  t.same(conflict.detail, { offset: 4 }, "the offset expected next")
  t.match(conflict.message, /at offset 4, not 8/)

  const c1 = await chunkOf(backups.chunk(session, 4))
  t.same([...c1.data], [4, 5, 6, 7])
  t.equal((await errorOf(backups.chunk(session, 0))).code, "conflict", "only the last chunk is kept")
  const c2 = await chunkOf(backups.chunk(session, 8))
  t.same(c2, { offset: 8, data: Uint8Array.from([8, 9]), done: true, size: 10, checksum: "d".repeat(64) }, "the last chunk says the size and checksum")
  t.equal(stream.closes, 1, "the stream closes with its last chunk")
  t.equal(backups.streams, 0, "a finished session holds no stream")
  t.equal(await chunkOf(backups.chunk(session, 8)), c2, "the last chunk can be asked again")
  t.same(await chunkOf(backups.chunk(session, 10)), { offset: 10, data: new Uint8Array(0), done: true, size: 10, checksum: "d".repeat(64) }, "past the end: empty, done")
  t.equal(stream.reads, 3)

  const missing = await errorOf(backups.chunk("n1:99", 0))
  t.equal(missing.code, "not_found")
  t.match(missing.message, /no backup session n1:99/)
})

t.test("backup sessions: requests for the same offset share one read", async (t) => {
  const stream = new FakeStream(bytes(10))
  const { backups } = sessions([stream])
  const { session } = await opened(backups.open())
  stream.hold()
  const a = backups.chunk(session, 0)
  const b = backups.chunk(session, 0)
  const wrong = await errorOf(backups.chunk(session, 4))
  t.same(wrong.detail, { offset: 0 }, "while the first read runs, its offset is the one expected")
  stream.release()
  const [ca, cb] = await Promise.all([chunkOf(a), chunkOf(b)])
  t.equal(ca, cb, "one chunk for both")
  t.equal(stream.reads, 1, "one read")
})

t.test("backup sessions: idle ones close, reads postpone it, finished ones are forgotten later", async (t) => {
  const idle = new FakeStream(bytes(10))
  const busy = new FakeStream(bytes(10))
  const done = new FakeStream(bytes(3))
  const { backups, timers } = sessions([idle, busy, done], { idleMs: 1000 })
  const s1 = (await opened(backups.open())).session
  const s2 = (await opened(backups.open())).session
  const s3 = (await opened(backups.open())).session
  await chunkOf(backups.chunk(s3, 0))
  t.equal(done.closes, 1, "a finished stream closes at once")

  timers.advance(600)
  await chunkOf(backups.chunk(s2, 0))
  t.equal((await chunkOf(backups.chunk(s3, 0))).done, true, "a finished session answers a retry while it is remembered")
  busy.hold()
  const pending = backups.chunk(s2, 4)
  timers.advance(500)
  t.equal(idle.closes, 1, "idle for 1 s: closed")
  t.equal((await errorOf(backups.chunk(s1, 0))).code, "not_found", "and forgotten")
  timers.advance(2000)
  t.equal(busy.closes, 0, "a read in progress keeps its session")
  t.equal((await errorOf(backups.chunk(s3, 0))).code, "not_found", "the finished session is forgotten once idle")
  busy.release()
  t.same([...(await chunkOf(pending)).data], [4, 5, 6, 7])
  timers.advance(999)
  t.equal(busy.closes, 0)
  timers.advance(1)
  t.equal(busy.closes, 1, "idle for 1 s after its read: closed")
  t.equal(backups.streams, 0)
  t.equal(timers.scheduled, 0, "no timer left behind")
})

t.test("backup sessions: at most maxSessions streams; failures free their place", async (t) => {
  const streams = [new FakeStream(bytes(8)), new FakeStream(bytes(8)), new FakeStream(bytes(2)), new FakeStream(bytes(8))]
  const { backups, sup } = sessions(streams, { maxSessions: 2 })
  const a = await opened(backups.open())
  await opened(backups.open())
  const refused = await errorOf(backups.open())
  t.equal(refused.code, "unavailable")
  t.match(refused.message, /already has 2 backup sessions open/)
  t.same(refused.detail, { sessions: 2, limit: 2 })

  streams[0]!.failNext = new Error("disk on fire")
  const failed = await errorOf(backups.chunk(a.session, 0))
  t.equal(failed.code, "unavailable")
  t.match(failed.message, /backup session n1:1 ended \(reading the snapshot failed: disk on fire\)/)
  t.equal(streams[0]!.closes, 1, "its stream closed")
  t.equal((await errorOf(backups.chunk(a.session, 0))).code, "not_found")
  const c = await opened(backups.open())
  t.equal(c.session, "n1:3", "its place is free again")
  t.equal((await chunkOf(backups.chunk(c.session, 0))).done, true)
  t.equal(backups.streams, 1, "a finished session frees its place")
  await opened(backups.open())
  t.equal(backups.streams, 2)
  t.same(sup.failures, [], "nothing failed the node")

  const empty = sessions([])
  const noStream = await errorOf(empty.backups.open())
  t.equal(noStream.code, "unavailable")
  t.match(noStream.message, /could not open a backup of its state \(no more streams\)/)
  t.equal(empty.backups.streams, 0, "a failed open takes no place")
})

t.test("backup sessions: stop closes every stream and refuses new sessions", async (t) => {
  const streams = [new FakeStream(bytes(8)), new FakeStream(bytes(8))]
  const { backups } = sessions(streams)
  const a = await opened(backups.open())
  await opened(backups.open())
  streams[0]!.hold()
  const reading = backups.chunk(a.session, 0)
  const stopped = backups.stop()
  streams[0]!.release()
  await stopped
  t.same(streams.map((s) => s.closes), [1, 1], "every stream closed once")
  t.equal(backups.streams, 0)
  t.ok((await reading) !== undefined, "the read in progress was answered")
  const refused = await errorOf(backups.open())
  t.match(refused, { code: "unavailable", message: /stopping/ })
})

// ---------------------------------------------------------------------------------------------
// Snapshot metrics alone

t.test("snapshot metrics: counts by phase and status, histograms of what succeeded", async (t) => {
  const m = new Metrics.SnapshotMetrics()
  m.record({ phase: "snapshot", status: "started" })
  m.record({ phase: "snapshot", status: "succeeded", seconds: 0.2, bytes: 5000 })
  m.record({ phase: "snapshot", status: "failed" })
  m.record({ phase: "persist", status: "succeeded", seconds: 0.01, bytes: 5000 })
  m.record({ phase: "restore", status: "succeeded", seconds: 3, bytes: 9000 })
  m.record({ phase: "restore", status: "failed" })
  t.equal(m.count("snapshot", "started"), 1)
  t.equal(m.count("snapshot", "failed"), 1)
  t.equal(m.count("restore", "succeeded"), 1)
  t.equal(m.duration.count, 1, "only the snapshot phase's seconds")
  t.equal(m.duration.sum, 0.2)
  t.equal(m.size.sum, 5000)
  t.equal(m.restoreDuration.sum, 3)
  const out: Array<string> = []
  m.render(out)
  t.ok(out.includes('kvstore_snapshot_operations_total{phase="persist",status="succeeded"} 1'))
  t.ok(out.includes('kvstore_snapshot_operations_total{phase="persist",status="failed"} 0'), "every series from the start")
  t.ok(out.includes('kvstore_snapshot_size_bytes_bucket{le="4096"} 0'))
  t.ok(out.includes('kvstore_snapshot_size_bytes_bucket{le="16384"} 1'))
  t.ok(out.includes(`kvstore_snapshot_size_bytes_bucket{le="${4 * 1024 ** 3}"} 1`), "size buckets reach 4 GiB")
  t.ok(out.includes("kvstore_snapshot_restore_duration_seconds_count 1"))
})

t.test("a sampled gauge reads at most every everyMs, on demand", async (t) => {
  let now = 0
  let reads = 0
  let answer = 100
  const g = new Metrics.SampledGauge(() => (reads++, Promise.resolve(answer)), () => now, 5000)
  t.equal(g.sample(), undefined, "unknown until the first read ends")
  await Promise.resolve()
  t.equal(g.sample(), 100)
  t.equal(reads, 1)
  answer = 200
  now = 4999
  t.equal(g.sample(), 100, "no new read before everyMs")
  now = 5000
  g.sample()
  await Promise.resolve()
  t.equal(g.sample(), 200)
  t.equal(reads, 2)
  const failing = new Metrics.SampledGauge(() => Promise.reject(new Error("closed")), () => now, 1)
  t.equal(failing.sample(), undefined, "a failed read leaves it unknown")
})

// ---------------------------------------------------------------------------------------------
// On real nodes

interface Raw {
  readonly body: Record<string, unknown>
  readonly code: string | undefined
}

const ask = async (nc: NatsConnection, subject: string, payload: unknown): Promise<Raw> => {
  const msg = await nc.request(subject, JSON.stringify(payload), { timeout: 5000 })
  return { body: msg.json<Record<string, unknown>>(), code: msg.headers?.get(errorCodeHeader) || undefined }
}

t.test("two nodes: a backup read through the other node, the session limit, the log base", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const nc = await natsClient(t, server.url)
  const fibers = new Map<string, Fiber.RuntimeFiber<never, unknown>>()
  for (const id of ["n1", "n2"]) {
    const c = config({ NODE_ID: id, PEERS: "n1,n2", NATS_URL: server.url, DATA_DIR: join(dir, id), CLUSTER: "c", SNAPSHOT_THRESHOLD: "40" })
    const fiber = Effect.runFork(runNode(c).pipe(Effect.provide(quiet)))
    fibers.set(id, fiber)
    t.teardown(() => Effect.runPromise(Fiber.interrupt(fiber)))
  }
  await until("a leader that answers writes", async () => (await ask(nc, "archio.c.kv.put", { key: "boot", value: "1" })).body["ok"] === true, {
    timeoutMs: 15_000,
    everyMs: 100
  })
  for (let i = 0; i < 60; i++) {
    const r = await ask(nc, "archio.c.kv.put", { key: `k${i}`, value: `v${i}`.repeat(10_000) })
    t.equal(r.body["ok"], true, `put k${i}`)
  }
  // Both nodes apply the writes; then a backup on n1 sees all of them.
  const status = async (id: string) => (await ask(nc, `archio.c.node.${id}.admin.status`, {})).body
  const leader = (await status("n1"))["leader"] as string
  const committed = (await status(leader))["commitIndex"] as number
  await until("both nodes to apply every write", async () => ((await status("n1"))["appliedIndex"] as number) >= committed && ((await status("n2"))["appliedIndex"] as number) >= committed)

  t.test("status: the log base moved past a snapshot", async (t) => {
    const status = (await ask(nc, "archio.c.node.n1.admin.status", {})).body
    Schema.decodeUnknownSync(Client.StatusResponse, { onExcessProperty: "error" })(status)
    t.ok((status["logBaseIndex"] as number) > 0, `40 entries per snapshot with 20 kept: compacted to ${String(status["logBaseIndex"])}`)
    t.ok((status["logBaseTerm"] as number) >= 1)
    t.equal(status["firstIndex"], (status["logBaseIndex"] as number) + 1, "the log starts after its base")
    t.match(status["snapshot"], { index: Number, term: Number, size: Number, time: Number })
  })

  t.test("a backup held by n1, read through n2 and the service subject", async (t) => {
    const open = await ask(nc, "archio.c.node.n1.admin.backup", {})
    t.match(open.body, { ok: true, session: /^n1:\d+$/, node: "n1" })
    const session = open.body["session"] as string
    const decoder = new SnapshotDecoder()
    let offset = 0
    let done = false
    let n = 0
    while (!done) {
      // Alternate: n2's own subject (n2 forwards to n1), then the service subject (either node).
      const subject = n++ % 2 === 0 ? "archio.c.node.n2.admin.backupChunk" : "archio.c.admin.backupChunk"
      const r = await ask(nc, subject, { session, offset })
      t.equal(r.code, undefined, `chunk at ${offset} via ${subject}`)
      t.equal(r.body["node"], "n1", "answered by the session's node")
      const data = Buffer.from(r.body["data"] as string, "base64")
      decoder.push(data)
      offset += data.length
      done = r.body["done"] === true
      if (done) t.equal(r.body["size"], offset)
    }
    decoder.end()
    t.ok(decoder.done, "a whole, verified snapshot")
    t.ok(n >= 3, `over several chunks (${n})`)
    const keys = new Set(decoder.takeRecords().filter((r) => r.section === "kv").map((r) => r.key))
    for (let i = 0; i < 60; i++) t.ok(keys.has(`k${i}`), `k${i} in the backup`)
    const retry = await ask(nc, "archio.c.node.n2.admin.backupChunk", { session, offset: 1 })
    t.match(retry, { code: "409", body: { ok: false, error: { code: "conflict", detail: { offset } } } }, "a conflict relayed from n1")
    const unknown = await ask(nc, "archio.c.node.n2.admin.backupChunk", { session: "n1:424242", offset: 0 })
    t.match(unknown, { code: "404", body: { error: { code: "not_found", message: /no backup session n1:424242/ } } }, "not_found relayed from n1")
  })

  t.test("at most 4 backup sessions open on a node", async (t) => {
    for (let i = 0; i < 4; i++) t.equal((await ask(nc, "archio.c.node.n2.admin.backup", {})).body["ok"], true, `session ${i + 1}`)
    const fifth = await ask(nc, "archio.c.node.n2.admin.backup", {})
    t.match(fifth, { code: "503", body: { ok: false, error: { code: "unavailable", message: /already has 4 backup sessions open/, detail: { limit: 4 } } } })
    t.equal((await ask(nc, "archio.c.node.n1.admin.backup", {})).body["ok"], true, "another node still opens one")
  })

  t.test("a session whose node stopped: unavailable", async (t) => {
    await Effect.runPromise(Fiber.interrupt(fibers.get("n2")!))
    const r = await ask(nc, "archio.c.node.n1.admin.backupChunk", { session: "n2:1", offset: 0 })
    t.match(r, { code: "503", body: { ok: false, error: { code: "unavailable", message: /node n2, which holds backup session n2:1, did not answer/ } } })
  })
})
