/**
 * `archio snapshot`, in process through `main(argv, terminal)`: help and usage errors; restore
 * refusing truncated, corrupt, wrong-version and foreign files and a data dir in use (exit 1,
 * nothing written); restore of a file made with SnapshotEncoder read back by the node's own
 * loaders; save and now against a real one-node cluster; and a three-node cluster saved,
 * restored into three fresh data dirs and started again, serving exactly what was saved.
 */
import t from "tap"
import { headers, type Msg } from "@nats-io/transport-node"
import { Effect } from "effect"
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { loadState } from "../../actors/applier/applier.ts"
import type { JobRecord } from "../../actors/applier/jobQueue.ts"
import type { KeyRecord, SessionRecord } from "../../actors/applier/kvState.ts"
import { decodeJsonValue, encodeJsonValue, loadRestored, metaKeys } from "../../actors/raft/storage.ts"
import type { SnapshotMeta } from "../../actors/snapshotter/decisions.ts"
import { archio, main } from "../../bootstrap/cli.ts"
import { snapshotCommands, snapshotGroup } from "../../bootstrap/snapshot/index.ts"
import { readSnapshotFile } from "../../bootstrap/snapshot/snapshotFile.ts"
import * as Storage from "../../bootstrap/storage.ts"
import { freePort } from "../../bootstrap/natsServer.ts"
import type { Terminal } from "../../bootstrap/terminal.ts"
import { LocalCluster } from "../../ops/cluster.ts"
import { ArchioClient, type ScanItem } from "../../protocol/archioClient.ts"
import type { JobView } from "../../protocol/client.ts"
import { JobsClient } from "../../protocol/jobsClient.ts"
import { SnapshotEncoder, type SnapshotHeader, type SnapshotSection } from "../../protocol/snapshotFormat.ts"
import { testCluster } from "../support/cluster.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { singleNode } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"

interface Ran {
  readonly code: number
  readonly out: string
  readonly err: string
}

/** Runs `archio ...argv` in this process with captured output. */
const run = async (argv: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}, cwd?: string, signal?: AbortSignal): Promise<Ran> => {
  let out = ""
  let err = ""
  const terminal: Terminal = {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    env,
    stdin: () => Promise.reject(new Error("this test gives no stdin")),
    ...(cwd === undefined ? {} : { cwd }),
    ...(signal === undefined ? {} : { signal })
  }
  const code = await main(argv, terminal)
  return { code, out, err }
}

const json = (text: string): Record<string, unknown> => JSON.parse(text.trim()) as Record<string, unknown>

const text = new TextEncoder()

// ---------------------------------------------------------------------------------------------
// A snapshot made by hand

const header: SnapshotHeader = { index: 4321, term: 7, members: ["a", "b", "c"], cluster: "old", createdAt: 1_700_000_000_000 }

const keyRecord = (i: number): KeyRecord => ({ value: `value ${i} ${"x".repeat(i % 50)}`, createRevision: i + 1, modRevision: i + 1, version: 1 })

const jobRecord = (seq: number, state: JobRecord["state"]): JobRecord => ({
  id: String(seq),
  seq,
  queue: "mail",
  payload: { to: `user${seq}@example.com` },
  priority: 0,
  state,
  attempts: state === "completed" ? 1 : 0,
  maxAttempts: 3,
  leaseMs: 30_000,
  retainMs: 7 * 24 * 3600 * 1000,
  runAt: header.createdAt - 1000,
  createdAt: header.createdAt - 1000,
  updatedAt: header.createdAt - 500,
  ...(state === "completed" ? { finishedAt: header.createdAt - 500, result: "sent" } : {}),
  token: state === "completed" ? seq : 0,
  readySeq: seq,
  readyAt: header.createdAt - 1000
})

const keyCount = 2500
const keys = Array.from({ length: keyCount }, (_, i) => `k/${String(i).padStart(5, "0")}`)
const jobs = [jobRecord(1, "completed"), jobRecord(2, "ready"), jobRecord(3, "ready")]
const sessions: Array<[string, SessionRecord]> = [["client-1", { seq: 4, result: { op: "put", revision: 9 } as never, lastSeen: header.createdAt }]]
const stateMeta: Array<[string, unknown]> = [
  [metaKeys.applied, header.index],
  ["kv.revision", keyCount],
  ["kv.time", header.createdAt],
  ["jobs.counters", { nextSeq: 4, nextReadySeq: 4, nextToken: 2 }]
]

/**
 * The bytes of a snapshot of the state above; `meta` replaces its meta records, `rawMeta` adds
 * some as given, `version` overwrites the format version.
 */
const makeSnapshot = (
  meta: ReadonlyArray<[string, unknown]> = stateMeta,
  options: { readonly version?: number; readonly rawMeta?: ReadonlyArray<[string, Uint8Array]> } = {}
): { readonly bytes: Buffer; readonly digest: string } => {
  const enc = new SnapshotEncoder(header)
  const put = (section: SnapshotSection, key: string, value: unknown) => enc.record(section, key, encodeJsonValue(value))
  for (const [k, v] of meta) put("meta", k, v)
  for (const [k, v] of options.rawMeta ?? []) enc.record("meta", k, v)
  keys.forEach((k, i) => put("kv", k, keyRecord(i)))
  for (const j of jobs) put("jobs", j.id, j)
  for (const [c, s] of sessions) put("sessions", c, s)
  enc.finish()
  const bytes = Buffer.from(enc.take(enc.buffered))
  if (options.version !== undefined) bytes.writeUInt16BE(options.version, 8)
  return { bytes, digest: enc.digest }
}

/** What a stopped node's data dir holds, read with the node's own loaders. */
const readDataDir = (dataDir: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const storage = yield* Storage.make(dataDir)
        return yield* Effect.promise(async () => {
          const state = await loadState(storage)
          const restored = await loadRestored(storage)
          const raw = await storage.meta.get(metaKeys.snapshot)
          return { state, restored, snapshot: raw === undefined ? undefined : decodeJsonValue<SnapshotMeta>(raw), generation: storage.generation }
        })
      })
    )
  )

t.test("help: archio snapshot and its commands", async (t) => {
  t.match(archio.help(), /\n {2}snapshot +save, restore and take snapshots/, "archio --help lists snapshot")
  for (const argv of [["snapshot", "--help"], ["snapshot", "help"]]) {
    const r = await run(argv)
    t.same({ code: r.code, out: r.out }, { code: 0, out: snapshotGroup.help() })
  }
  t.match(snapshotGroup.help(), /save FILE[\s\S]*restore FILE[\s\S]*now/)
  t.match(snapshotGroup.help(), "every member from the same file with its own\n--id and --data")
  for (const command of snapshotCommands) {
    const name = command.path.split(" ")[1]!
    const r = await run(["snapshot", name, "-h"])
    t.equal(r.code, 0)
    t.equal(r.out, command.help())
    t.match(r.out, `Usage: archio ${command.path}`)
    t.match(r.out, "--json")
    t.match(r.out, "Examples:")
    t.match(r.out, "Exit codes: 0")
  }
  t.match(snapshotCommands[0].help(), /--node ID[\s\S]*--force[\s\S]*--nats URLS[\s\S]*--timeout MS/)
  t.match(snapshotCommands[1].help(), /--data DIR[\s\S]*--id ID[\s\S]*--peers IDS[\s\S]*--cluster NAME/)
  t.match(snapshotCommands[1].help(), "Restore\nevery member of the new cluster from the same file")
  const none = await run(["snapshot"])
  t.same({ code: none.code, err: none.err }, { code: 2, err: snapshotGroup.help() })
})

t.test("usage errors exit 2 with every problem, before anything is read, written or sent", async (t) => {
  const dir = await tempDir(t)
  const nats = ["--nats", `nats://127.0.0.1:${await freePort()}`]
  const cases: Array<[ReadonlyArray<string>, ReadonlyArray<string>]> = [
    [["restore"], ["missing FILE (usage: archio snapshot restore FILE [flags])"]],
    [["restore", "f"], ["--data is required", "--id is required", "--peers is required"]],
    [["restore", "f", "--data", "d", "--id", "n1", "--peers", "n2,n3"], ['--peers must include this node\'s own id "n1" (--id), got "n2,n3"']],
    [["restore", "f", "--data", "d", "--id", "n1", "--peers", "n1,n1"], ['--peers lists "n1" twice']],
    [["restore", "f", "--data", "d", "--id", "n.1", "--peers", "n.1,x y"], ["--id must be a node id made of", "--peers must be a comma-separated list of node ids"]],
    [["restore", "f", "--data", "", "--id", "n1", "--peers", "n1", "--cluster", "a.b"], ['--data must be a folder path, got ""', "--cluster must be a cluster name"]],
    [["restore", "f", "g", "--data", "d", "--id", "n1", "--peers", "n1"], ['unexpected argument "g"']],
    [["save"], ["missing FILE (usage: archio snapshot save FILE [flags])"]],
    [["save", "f", "--node", "a b", "--timeout", "0"], ["--node must be a node id made of", '--timeout must be an integer from 1 to 600000, got "0"']],
    [["save", "f", "--force=yes"], ['--force takes no value, got "yes"']],
    [["now", "extra"], ['unexpected argument "extra" (usage: archio snapshot now [flags])']],
    [["now", "--cluster", "a b"], ["--cluster must be a cluster name"]]
  ]
  for (const [argv, messages] of cases) {
    const r = await run(["snapshot", ...argv, ...(argv[0] === "restore" ? [] : nats)], {}, dir)
    const label = `archio snapshot ${argv.join(" ")}`
    t.equal(r.code, 2, `${label}: exit 2`)
    t.equal(r.out, "", `${label}: nothing on stdout`)
    for (const m of messages) t.match(r.err, `archio snapshot ${argv[0]}: ${m}`, label)
    t.match(r.err, `Run "archio snapshot ${argv[0]} --help" for the`)
  }
  t.same(await readdir(dir), [], "nothing written")
  const env = await run(["snapshot", "now"], { SNAPSHOT_TIMEOUT_MS: "soon" })
  t.equal(env.code, 2)
  t.match(env.err, 'archio snapshot now: SNAPSHOT_TIMEOUT_MS must be an integer from 1 to 600000, got "soon"')
})

t.test("restore refuses a file that is not a whole, valid snapshot, and a data dir in use: exit 1, nothing written", async (t) => {
  const dir = await tempDir(t)
  const good = makeSnapshot()
  const size = good.bytes.length
  const restore = (file: string, data = "node") => run(["snapshot", "restore", file, "--data", data, "--id", "n1", "--peers", "n1,n2,n3"], {}, dir)
  /** Runs restore on `bytes` and checks it is refused naming `problem`, leaving only the file. */
  const refused = async (label: string, bytes: Uint8Array, problem: RegExp | string): Promise<void> => {
    await writeFile(join(dir, "bad.snap"), bytes)
    const r = await restore("bad.snap")
    t.equal(r.code, 1, `${label}: exit 1`)
    t.equal(r.out, "", `${label}: nothing on stdout`)
    t.match(r.err, /^archio snapshot restore: bad\.snap /, `${label}: names the file`)
    t.match(r.err, problem, `${label}: names the problem`)
    t.match(r.err, /; nothing was written\n$/, `${label}: says nothing was written`)
    t.equal(r.err.split("\n").length, 2, `${label}: one line`)
    t.same(await readdir(dir), ["bad.snap"], `${label}: no data dir, no temporary folder`)
  }

  // Truncated: every cut inside the header and the first records, then cuts spread over the rest.
  const cuts = new Set<number>()
  for (let i = 0; i < 200; i++) cuts.add(i)
  for (let i = 1; i <= 40; i++) cuts.add(Math.floor((size * i) / 41))
  for (let i = 1; i <= 33; i++) cuts.add(size - i)
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    await refused(`cut at ${cut} of ${size}`, good.bytes.subarray(0, cut), cut === 0 ? "is truncated (incomplete): snapshot is empty" : /is truncated \(incomplete\): snapshot ended after \d+ bytes/)
  }

  // Corrupt: a flipped byte in a value, in a length, in the trailer; a trailing extra byte.
  const flipped = (at: number): Buffer => {
    const b = Buffer.from(good.bytes)
    b[at] = b[at]! ^ 0x01
    return b
  }
  await refused("a flipped byte in a value", flipped(Math.floor(size / 2)), /is corrupt( \(its checksum does not match its content\))?: /)
  await refused("a flipped byte in the digest", flipped(size - 5), "is corrupt (its checksum does not match its content): checksum mismatch")
  await refused("the trailer marker changed", flipped(size - 33), "is corrupt: unknown section byte 0xfe")
  await refused("a byte after the trailer", Buffer.concat([good.bytes, Buffer.from([0])]), "is corrupt: 1 unexpected bytes after the trailer")
  await refused("a wrong version", makeSnapshot(stateMeta, { version: 2 }).bytes, "has a snapshot format version this build cannot read: snapshot format version 2")
  await refused("not a snapshot", text.encode('{"some":"json","not":"a snapshot"}\n'), "is not an Archio snapshot: not an Archio snapshot: the first 8 bytes are 0x")
  await refused(
    "an applied index other than the header's",
    makeSnapshot([[metaKeys.applied, header.index - 1], ...stateMeta.slice(1)]).bytes,
    `is corrupt: its applied index ${header.index - 1} is not the index ${header.index} its header names`
  )
  await refused("a meta record that is not JSON", makeSnapshot(stateMeta.slice(0, 1), { rawMeta: [["kv.revision", text.encode("{")]] }).bytes, 'is corrupt: its meta record "kv.revision" is not JSON')

  const missing = await restore("nope.snap")
  t.equal(missing.code, 1)
  t.match(missing.err, /^archio snapshot restore: cannot read nope\.snap: ENOENT.*; nothing was written\n$/)

  // A data dir that is not empty is never touched, even with a good file.
  await writeFile(join(dir, "bad.snap"), good.bytes)
  await mkdir(join(dir, "used"))
  await writeFile(join(dir, "used", "CURRENT"), "MANIFEST-000001\n")
  const used = await restore("bad.snap", "used")
  t.equal(used.code, 1)
  t.match(used.err, `archio snapshot restore: ${join(dir, "used")} exists and is not empty: restore only into a new (or empty) folder, never over a node's data; nothing was written\n`)
  t.same(await readdir(join(dir, "used")), ["CURRENT"])
  t.equal(await readFile(join(dir, "used", "CURRENT"), "utf8"), "MANIFEST-000001\n")
  await writeFile(join(dir, "afile"), "x")
  const notDir = await restore("bad.snap", "afile")
  t.equal(notDir.code, 1)
  t.match(notDir.err, "exists and is not a folder; nothing was written")
  t.same((await readdir(dir)).sort(), ["afile", "bad.snap", "used"], "no data dir, no temporary folder")
})

t.test("restore writes what the node's own loaders read back: the records, the applied index, base, hard state and snapshot meta", async (t) => {
  const dir = await tempDir(t)
  const { bytes, digest } = makeSnapshot()
  await writeFile(join(dir, "backup.snap"), bytes)
  // An empty folder is accepted (a mount point made for the node).
  await mkdir(join(dir, "nodes", "n2"), { recursive: true })
  const before = Date.now()
  const r = await run(["snapshot", "restore", "backup.snap", "--data", "nodes/n2", "--id", "n2", "--peers", "n1,n2,n3"], {}, dir)
  t.equal(r.code, 0, r.err)
  t.equal(r.err, "")
  const dataDir = join(dir, "nodes", "n2")
  t.equal(
    r.out,
    [
      `restored backup.snap into ${dataDir} for node n2`,
      `  snapshot: index 4321, term 7, ${keyCount} keys, 3 jobs, 1 sessions, ${bytes.length} bytes, sha256 ${digest}`,
      "  taken in cluster old (members a,b,c); new members n1,n2,n3",
      `start it with: archio node --id n2 --peers n1,n2,n3 --cluster old --data ${dataDir}`,
      "restore n1, n3 from the same file too, each with its own --id and --data, before starting the cluster",
      ""
    ].join("\n")
  )
  t.same(await readdir(join(dir, "nodes")), ["n2"], "no temporary folder left")

  const { state, restored, snapshot, generation } = await readDataDir(dataDir)
  t.equal(generation, 0, "generation 0: the sublevels kv, jobs, sessions")
  t.equal(state.applied, header.index)
  t.equal(state.kv.records.size, keyCount)
  keys.forEach((k, i) => {
    if (i % 97 === 0 || i === keyCount - 1) t.same(state.kv.get(k), keyRecord(i), k)
  })
  t.same([...state.kv.records.keys()].sort(), keys, "exactly the keys of the file")
  t.equal(state.kv.revision, keyCount)
  for (const j of jobs) t.same(state.jobs.get(j.id), j, `job ${j.id}`)
  t.same(state.jobs.counters(), { nextSeq: 4, nextReadySeq: 4, nextToken: 2 })
  t.same(restored.hardState, { term: header.term, vote: null })
  t.same({ base: restored.baseIndex, term: restored.baseTerm, entries: restored.entries.length, applied: restored.applied }, { base: header.index, term: header.term, entries: 0, applied: header.index })
  t.match(snapshot, { index: header.index, term: header.term, members: ["n1", "n2", "n3"], format: 1, checksum: digest, size: bytes.length })
  t.ok(snapshot!.time >= before && snapshot!.time <= Date.now(), "the install time")
  const sessionsOnDisk = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const storage = yield* Storage.make(dataDir)
        return yield* Effect.promise(async () => (await storage.sessions.iterator().all()).map(([k, v]) => [k, decodeJsonValue<SessionRecord>(v)]))
      })
    )
  )
  t.same(sessionsOnDisk, sessions)

  // --json, and the --cluster of the new cluster; restoring twice into the same dir is refused.
  const again = await run(["snapshot", "restore", join(dir, "backup.snap"), "--data", join(dir, "nodes", "n1"), "--id", "n1", "--peers", "n1,n2,n3", "--cluster", "prod", "--json"])
  t.equal(again.code, 0, again.err)
  t.same(json(again.out), {
    ok: true,
    file: join(dir, "backup.snap"),
    data: join(dir, "nodes", "n1"),
    id: "n1",
    peers: ["n1", "n2", "n3"],
    cluster: "prod",
    index: header.index,
    term: header.term,
    keys: keyCount,
    jobs: 3,
    sessions: 1,
    size: bytes.length,
    sha256: digest,
    snapshotCluster: "old",
    snapshotMembers: ["a", "b", "c"]
  })
  const twice = await run(["snapshot", "restore", "backup.snap", "--data", "nodes/n1", "--id", "n1", "--peers", "n1,n2,n3"], {}, dir)
  t.equal(twice.code, 1)
  t.match(twice.err, "exists and is not empty")
})

t.test("save against a scripted node: a lost reply is asked again at the same offset; a stream that does not check out is never saved", async (t) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const { bytes, digest } = makeSnapshot()
  const chunkBytes = 100_000
  /** How the scripted node misbehaves in the current run. */
  let script: { drop?: number; dropAlways?: number; corruptAt?: number; checksum?: string; size?: number; endEarly?: number; conflictAt?: number; index?: number } = {}
  const asked: Array<number> = []
  const dropped = new Set<number>()
  const fail = (m: Msg, code: string, status: number, message: string, detail?: Record<string, unknown>) => {
    const h = headers()
    h.set("Nats-Service-Error-Code", String(status))
    h.set("Nats-Service-Error", message)
    m.respond(JSON.stringify({ ok: false, error: { code, message, ...(detail === undefined ? {} : { detail }) } }), { headers: h })
  }
  nc.subscribe("archio.f.admin.backup", {
    callback: (_e, m) => void m.respond(JSON.stringify({ ok: true, session: "s1:1", node: "s1", index: script.index ?? header.index, term: header.term, chunkBytes }))
  })
  nc.subscribe("archio.f.node.s1.admin.backupChunk", {
    callback: (_e, m) => {
      const { session, offset } = m.json<{ session: string; offset: number }>()
      asked.push(offset)
      if (session !== "s1:1") return fail(m, "not_found", 404, `no backup session ${session}`)
      if (offset === script.conflictAt) return fail(m, "conflict", 409, `backup session s1:1 is at offset 0, not ${offset}`, { offset: 0 })
      if (offset === script.dropAlways) return
      if (offset === script.drop && !dropped.has(offset)) return void dropped.add(offset)
      const end = Math.min(script.endEarly ?? bytes.length, offset + chunkBytes)
      const data = Buffer.from(bytes.subarray(offset, end))
      if (script.corruptAt !== undefined && script.corruptAt >= offset && script.corruptAt < end) data[script.corruptAt - offset]! ^= 0x20
      const done = end >= (script.endEarly ?? bytes.length)
      const last = done ? { size: script.size ?? bytes.length, checksum: script.checksum ?? digest } : {}
      m.respond(JSON.stringify({ ok: true, offset, data: data.toString("base64"), done, ...last, node: "s1" }))
    }
  })
  await nc.flush()
  const dir = await tempDir(t)
  const save = (...more: Array<string>) => run(["snapshot", "save", "out.snap", "--nats", server.url, "--cluster", "f", "--timeout", "1500", ...more], {}, dir)

  script = { drop: 2 * chunkBytes }
  const ok = await save()
  t.equal(ok.code, 0, ok.err)
  t.equal(ok.out, `saved out.snap from node s1: index ${header.index}, term ${header.term}, ${bytes.length} bytes, sha256 ${digest} (${keyCount} keys, 3 jobs, 1 sessions)\n`)
  t.same(asked.filter((o) => o === 2 * chunkBytes).length, 2, "the chunk whose reply was lost was asked for again, at the same offset")
  t.same(asked, [...new Set(asked)].flatMap((o) => (o === 2 * chunkBytes ? [o, o] : [o])), "in order, never skipping")
  t.ok((await readFile(join(dir, "out.snap"))).equals(bytes), "the file holds the stream byte for byte")

  const refused = async (label: string, s: typeof script, message: string | RegExp): Promise<void> => {
    script = s
    asked.length = 0
    const r = await save("--force")
    t.equal(r.code, 1, `${label}: exit 1`)
    t.match(r.err, message, label)
    t.match(r.err, /^archio snapshot save: [^\n]*; nothing was saved\n$/, `${label}: one line, saying nothing was saved`)
    t.equal(r.err.split("nothing was saved").length, 2, `${label}: said once`)
    t.same(await readdir(dir), ["out.snap"], `${label}: no .partial left`)
    t.ok((await readFile(join(dir, "out.snap"))).equals(bytes), `${label}: the old file is untouched`)
  }
  await refused("a reported checksum other than the stream's", { checksum: "ab".repeat(32) }, `archio snapshot save: node s1 reports sha256 ${"ab".repeat(32)} but the bytes it sent hash to ${digest}; nothing was saved\n`)
  await refused("a reported size other than the stream's", { size: bytes.length + 1 }, `node s1 reports ${bytes.length + 1} bytes but sent ${bytes.length}`)
  await refused("a flipped byte", { corruptAt: Math.floor(bytes.length / 2) }, /archio snapshot save: the snapshot node s1 sent is corrupt/)
  await refused("a stream that ends early", { endEarly: 150_000 }, "the snapshot node s1 sent is truncated (incomplete): snapshot ended after 150000 bytes")
  await refused("another index than announced", { index: header.index + 1 }, `node s1 announced a snapshot at index ${header.index + 1} term ${header.term} but sent one at index ${header.index}`)
  await refused("a conflict", { conflictAt: chunkBytes }, `archio snapshot save: conflict: backup session s1:1 is at offset 0, not ${chunkBytes} (at byte ${chunkBytes} of the snapshot from node s1); nothing was saved`)
  await refused("a reply lost every time", { dropAlways: chunkBytes }, /timeout: no reply on archio\.f\.node\.s1\.admin\.backupChunk within 500 ms/)

  const stop = new AbortController()
  stop.abort()
  const stopped = await run(["snapshot", "save", "out.snap", "--force", "--nats", server.url, "--cluster", "f"], {}, dir, stop.signal)
  t.same(stopped, { code: 1, out: "", err: "archio snapshot save: interrupted; nothing was saved\n" }, "Ctrl-C stops it and leaves nothing")
  t.same(await readdir(dir), ["out.snap"])
})

t.test("save and now against a running node", async (t) => {
  const nc = await singleNode(t)
  const url = `nats://${nc.getServer()}`
  const env = { NATS_URL: url, CLUSTER: "c" }
  const client = new ArchioClient(nc, { cluster: "c", deadlineMs: 10_000 })
  const jobsClient = new JobsClient(client)
  // More than one chunk (256 KiB) of state.
  const big = "v".repeat(2000)
  for (let i = 0; i < 200; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => client.put(`save/${String(i + j).padStart(3, "0")}`, `${i + j} ${big}`)))
  await client.put("other", "x")
  const job = await jobsClient.enqueue({ queue: "q", payload: { n: 1 } })
  const dir = await tempDir(t)

  const saved = await run(["snapshot", "save", "backup.snap"], env, dir)
  t.equal(saved.code, 0, saved.err)
  t.match(saved.out, /^saved backup\.snap from node n1: index \d+, term \d+, \d+ bytes, sha256 [0-9a-f]{64} \(202 keys, 1 jobs, \d+ sessions\)\n$/)
  t.same(await readdir(dir), ["backup.snap"], "no .partial left")
  const file = join(dir, "backup.snap")
  const records = new Map<string, KeyRecord>()
  const jobRecords = new Map<string, JobRecord>()
  const summary = await readSnapshotFile(file, (rs) => {
    for (const r of rs) {
      if (r.section === "kv") records.set(r.key, decodeJsonValue<KeyRecord>(r.value))
      if (r.section === "jobs") jobRecords.set(r.key, decodeJsonValue<JobRecord>(r.value))
    }
  })
  t.ok(summary.size > 256 * 1024, `more than one chunk (${summary.size} bytes)`)
  t.match(saved.out, `index ${summary.header.index}, term ${summary.header.term}, ${summary.size} bytes, sha256 ${summary.checksum}`)
  t.equal(summary.header.cluster, "c")
  t.same(summary.header.members, ["n1"])
  const live: Array<ScanItem> = []
  for await (const page of client.scanAll({})) live.push(...page.items)
  t.same(
    [...records].map(([key, r]) => ({ key, value: r.value, createRevision: r.createRevision, modRevision: r.modRevision, version: r.version })),
    live.map(({ key, value, createRevision, modRevision, version }) => ({ key, value, createRevision, modRevision, version })),
    "the file's records are the node's keys"
  )
  t.same([...jobRecords.keys()], [job.id])
  t.match(jobRecords.get(job.id), { queue: "q", payload: { n: 1 }, state: "ready" })

  const exists = await run(["snapshot", "save", "backup.snap"], env, dir)
  t.same(exists, { code: 1, out: "", err: "archio snapshot save: backup.snap already exists; give --force to overwrite it\n" })
  await client.put("later", "y")
  const forced = await run(["snapshot", "save", "backup.snap", "--force", "--json", "--node", "n1"], env, dir)
  t.equal(forced.code, 0, forced.err)
  const result = json(forced.out)
  t.match(result, { ok: true, file, node: "n1", term: summary.header.term, keys: 203, jobs: 1, sha256: /^[0-9a-f]{64}$/ })
  t.ok((result["index"] as number) > summary.header.index, "a newer snapshot")
  const second = await readSnapshotFile(file)
  t.same({ size: result["size"], sha256: result["sha256"], index: result["index"] }, { size: second.size, sha256: second.checksum, index: second.header.index })
  t.same(await readdir(dir), ["backup.snap"])

  const nobody = await run(["snapshot", "save", "other.snap", "--node", "n9", "--timeout", "400"], env, dir)
  t.equal(nobody.code, 1)
  t.equal(nobody.err, 'archio snapshot save: unavailable: no Archio node answers on archio.c.node.n9.admin.backup: is the cluster running, and is its cluster name "c"?\n')
  t.same(await readdir(dir), ["backup.snap"], "nothing written")
  const noNats = await run(["snapshot", "save", "other.snap", "--nats", `nats://127.0.0.1:${await freePort()}`], {}, dir)
  t.equal(noNats.code, 1)
  t.match(noNats.err, "archio snapshot save: cannot connect to NATS at nats://127.0.0.1:")

  const now = await run(["snapshot", "now"], env)
  t.equal(now.code, 0, now.err)
  t.match(now.out, /^node n1 took a snapshot at index \d+, term \d+: \d+ bytes, sha256 [0-9a-f]{64}; its log is compacted behind it\n$/)
  const nowJson = await run(["snapshot", "now", "--node", "n1", "--json"], env)
  t.equal(nowJson.code, 0, nowJson.err)
  t.match(json(nowJson.out), { ok: true, node: "n1", index: Number, term: Number, size: Number, checksum: /^[0-9a-f]{64}$/, time: Number })
  const status = await client.status("n1")
  t.match(status["snapshot"], { index: json(nowJson.out)["index"], size: json(nowJson.out)["size"] }, "admin.status reports it")
  const nowNobody = await run(["snapshot", "now", "--node", "n9", "--json", "--timeout", "300"], env)
  t.equal(nowNobody.code, 1)
  t.match(json(nowNobody.out), { ok: false, error: { code: "unavailable" } })
  t.match(nowNobody.err, "archio snapshot now: unavailable: no Archio node answers on archio.c.node.n9.admin.snapshot")
})

t.test("a three-node cluster saved, restored into three fresh data dirs and started again serves exactly what was saved", async (t) => {
  const { cluster, client } = await testCluster(t)
  const jobsClient = new JobsClient(client)
  for (let i = 0; i < 60; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => client.put(`e2e/${i + j}`, `value ${i + j}`)))
  await client.put("e2e/0", "changed")
  await client.del("e2e/1")
  const ids: Array<string> = []
  for (const n of [1, 2, 3]) ids.push((await jobsClient.enqueue({ queue: "mail", payload: { n } })).id)
  ids.push((await jobsClient.enqueue({ queue: "later", payload: { n: 4 }, delay: 24 * 3600 * 1000 })).id)
  const [leased] = await jobsClient.lease({ queues: ["mail"], max: 1, workerId: "w1" })
  await jobsClient.ack(leased!.id, leased!.token, { done: true })

  const readAll = async (c: ArchioClient) => {
    const items: Array<ScanItem> = []
    for await (const page of c.scanAll({})) items.push(...page.items)
    const jc = new JobsClient(c)
    const byId: Array<JobView> = []
    for (const id of ids) byId.push(await jc.get(id))
    const listed = [...(await jc.list("mail")).jobs, ...(await jc.list("later")).jobs].map((j) => j.id).sort()
    return { items, byId, listed }
  }
  const saved = await readAll(client)
  t.equal(saved.items.length, 59)
  t.same(saved.byId.map((j) => j.state).sort(), ["completed", "ready", "ready", "scheduled"])

  const dir = await tempDir(t)
  const env = { NATS_URL: `nats://${cluster.nc.getServer()}`, CLUSTER: cluster.cluster }
  const save = await run(["snapshot", "save", "cluster.snap", "--json"], env, dir)
  t.equal(save.code, 0, save.err)
  const savedInfo = json(save.out)
  t.match(savedInfo, { ok: true, keys: 59, jobs: 4 })
  await cluster.stop()

  const root = join(dir, "restored")
  for (const id of cluster.ids) {
    const r = await run(["snapshot", "restore", "cluster.snap", "--data", join(root, id), "--id", id, "--peers", cluster.ids.join(","), "--json"], {}, dir)
    t.equal(r.code, 0, r.err)
    t.match(json(r.out), { ok: true, id, index: savedInfo["index"], term: savedInfo["term"], sha256: savedInfo["sha256"], cluster: cluster.cluster })
  }

  // A new cluster on its own NATS server, from the restored data dirs only.
  const nats = await natsServer(t)
  const restored = await LocalCluster.start({ natsUrl: nats.url, dataRoot: root, logDir: join(dir, "logs"), env: { _TAPJS_PROCESSINFO_COVERAGE_: "0" } })
  t.teardown(() => restored.stop())
  const statuses = await Promise.all(restored.ids.map((id) => restored.status(id, 2000)))
  for (const s of statuses) t.ok(s !== undefined && s.appliedIndex >= (savedInfo["index"] as number), `${s?.id} starts at the snapshot's index`)
  const fresh = new ArchioClient(restored.nc, { cluster: restored.cluster, deadlineMs: 20_000 })
  const after = await readAll(fresh)
  t.same(after.items, saved.items, "the same keys, values and revisions")
  t.same(after.byId, saved.byId, "the same jobs")
  t.same(after.listed, saved.listed)
  // And it goes on from there.
  const put = await fresh.put("e2e/new", "after restore")
  t.ok(put.revision > (saved.items.reduce((m, i) => Math.max(m, i.modRevision), 0)), "revisions continue after the saved ones")
  t.equal((await fresh.get("e2e/new"))?.value, "after restore")
})
