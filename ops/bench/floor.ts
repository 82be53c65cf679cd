/**
 * What a write costs at the least on this machine, measured without Archio:
 *   disk: a synced LevelDB batch (what every Raft append waits for) against a preallocated file
 *         with fdatasync, alone and three processes at once (as in a local cluster);
 *   transport: a cross-process TCP echo, a NATS request/reply through nats-server, and the
 *         client CPU of one `nats.request` against a hand-rolled inbox mux;
 *   write-path: one client's put along Archio's path with nothing else (see writePath), once
 *         with the log in LevelDB as Archio keeps it and once in a file sized up front as
 *         etcd keeps its WAL.
 */
import { spawn } from "node:child_process"
import { constants, fdatasyncSync, ftruncateSync, openSync, writeSync, closeSync } from "node:fs"
import { mkdtemp, open, rm } from "node:fs/promises"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import { ClassicLevel } from "classic-level"
import { encodeUint64Key } from "../../protocol/raftCodec.ts"
import { startNatsServer } from "../../bootstrap/natsServer.ts"
import { closedLoop, levelLine, loadNote, sleep, type Level } from "./common.ts"

const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`

/** One process: N synced LevelDB batches of one 300-byte put, then N fdatasyncs. */
export const diskOnce = async (dir: string, n = 500): Promise<{ level: number; fdatasync: number }> => {
  const db = new ClassicLevel<string, Uint8Array>(join(dir, "db"), { valueEncoding: "view" })
  await db.open()
  const v = new Uint8Array(300)
  let t = performance.now()
  for (let i = 0; i < n; i++) await db.batch([{ type: "put", key: `k${i}`, value: v }], { sync: true } as object)
  const level = (performance.now() - t) / n
  await db.close()
  const fd = openSync(join(dir, "wal"), "w+")
  ftruncateSync(fd, 64 << 20)
  t = performance.now()
  for (let i = 0; i < n; i++) {
    writeSync(fd, v, 0, v.length, i * v.length)
    fdatasyncSync(fd)
  }
  closeSync(fd)
  return { level, fdatasync: (performance.now() - t) / n }
}

const self = new URL(import.meta.url).pathname

export const disk = async (): Promise<void> => {
  const dirs = await Promise.all([0, 1, 2].map(() => mkdtemp(join(tmpdir(), "archio-disk-"))))
  const one = await diskOnce(dirs[0]!)
  console.log(`disk, one process: LevelDB synced batch ${us(one.level)}, preallocated fdatasync ${us(one.fdatasync)}`)
  const lines = await Promise.all(
    dirs.map(
      (d) =>
        new Promise<string>((resolve) => {
          const p = spawn(process.execPath, ["--import", "tsx", self, "disk-child", d], { stdio: ["ignore", "pipe", "inherit"] })
          let out = ""
          p.stdout.on("data", (c: Buffer) => (out += c.toString()))
          p.on("exit", () => resolve(out.trim()))
        })
    )
  )
  console.log(`disk, three processes at once: ${lines.join("; ")}`)
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
}

export const transport = async (): Promise<void> => {
  // TCP echo between two processes.
  const echo = net.createServer((s) => {
    s.setNoDelay(true)
    s.on("data", (d) => s.write(d))
  })
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r))
  const port = (echo.address() as net.AddressInfo).port
  const child = spawn(process.execPath, ["--import", "tsx", self, "tcp-child", String(port)], { stdio: ["ignore", "pipe", "inherit"] })
  const tcp = await new Promise<string>((resolve) => {
    let out = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.on("exit", () => resolve(out.trim()))
  })
  echo.close()
  console.log(`transport: cross-process TCP echo round trip ${tcp}`)

  const server = await startNatsServer()
  const a = await connect({ servers: server.url, noAsyncTraces: true })
  const b = await connect({ servers: server.url, noAsyncTraces: true })
  b.subscribe("echo", { callback: (_e, m) => void m.respond(m.data) })
  await b.flush()
  const n = 2000
  const t = performance.now()
  for (let i = 0; i < n; i++) await a.request("echo", "x", { timeout: 1000 })
  console.log(`transport: NATS request/reply round trip ${us((performance.now() - t) / n)}`)
  const payload = new TextEncoder().encode(JSON.stringify({ key: "k", value: "x".repeat(256) }))
  const cpu = async (label: string, one: () => Promise<unknown>) => {
    const c0 = process.cpuUsage()
    let done = 0
    const end = performance.now() + 3000
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < end) {
          await one()
          done++
        }
      })
    )
    const c = process.cpuUsage(c0)
    console.log(`transport: ${label}: ${Math.round(done / 3)} requests/s, ${((c.user + c.system) / done).toFixed(0)} µs client CPU each (64 in flight)`)
  }
  await cpu("nats.request", () => a.request("echo", payload, { timeout: 2000 }))
  const pending = new Map<string, () => void>()
  let seq = 0
  const inbox = `_INBOX.bench${process.pid}`
  a.subscribe(`${inbox}.*`, {
    callback: (_e, m) => {
      const id = m.subject.slice(inbox.length + 1)
      pending.get(id)?.()
      pending.delete(id)
    }
  })
  await cpu("hand-rolled inbox mux", () => new Promise<void>((resolve) => {
    const id = (seq++).toString(36)
    pending.set(id, resolve)
    a.publish("echo", payload, { reply: `${inbox}.${id}` })
  }))
  await a.close()
  await b.close()
  await server.stop()
}

/** Where the write path's processes keep their log. */
export type PathLog = "leveldb" | "preallocated"

const pathLogNames: Record<PathLog, string> = {
  leveldb: "synced LevelDB batches (Archio's log)",
  preallocated: "a file sized up front, written in place with O_DSYNC (etcd's WAL)"
}

/**
 * The path of one client's put with nothing of Archio on it: no Raft, no state machine, no
 * schema. The client's request crosses nats-server to a "leader" process, which writes it to
 * its log and sends it to two "follower" processes; each writes it the same way and answers.
 * The reply leaves once the leader's copy and one follower's are durable (a majority). Four
 * nats-server crossings and one durable write per process, as for an Archio put: what one
 * client's put costs at the least with this design on this machine. With `preallocated` the
 * log is a file that appends do not grow (as etcd's WAL), so a sync flushes data and no
 * file-system metadata: what the same path would cost with etcd's kind of log.
 */
export const writePath = async (seconds: number, warmup: number, valueBytes: number, log: PathLog): Promise<Level[]> => {
  const server = await startNatsServer()
  const dirs = await Promise.all([0, 1, 2].map(() => mkdtemp(join(tmpdir(), "archio-path-"))))
  const roles = ["leader", "f1", "f2"]
  const children = roles.map((role, i) =>
    spawn(process.execPath, ["--import", "tsx", self, "path-child", server.url, dirs[i]!, role, log], { stdio: ["ignore", "pipe", "inherit"] })
  )
  try {
    await Promise.all(children.map((c) => new Promise<void>((resolve) => c.stdout.once("data", () => resolve()))))
    const nc = await connect({ servers: server.url, noAsyncTraces: true })
    const value = new Uint8Array(valueBytes).fill(120)
    console.log(
      `write-path: leader and two followers, log in ${pathLogNames[log]}, no Raft, ${valueBytes}-byte values, ${seconds} s after ${warmup} s of warm-up, closed loop (${loadNote()})`
    )
    const r = await closedLoop(1, seconds, () => nc.request("path.put", value, { timeout: 2000 }), { warmup })
    console.log(levelLine(1, r, "puts"))
    await nc.close()
    return [{ concurrency: 1, result: r }]
  } finally {
    for (const c of children) c.kill()
    await sleep(100)
    await server.stop()
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  }
}

/** Both kinds of log, one after the other. */
export const writePaths = async (seconds: number, warmup: number, valueBytes: number): Promise<Record<PathLog, Level[]>> => ({
  leveldb: await writePath(seconds, warmup, valueBytes, "leveldb"),
  preallocated: await writePath(seconds, warmup, valueBytes, "preallocated")
})

/** Opens a write path process's log: `append(seq, data)` resolves once the record is durable. */
const openPathLog = async (dir: string, log: PathLog): Promise<(seq: number, data: Uint8Array) => Promise<unknown>> => {
  if (log === "leveldb") {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, "db"), { keyEncoding: "view", valueEncoding: "view" })
    await db.open()
    // Keyed as Archio's log is.
    return (seq, data) => db.batch([{ type: "put", key: encodeUint64Key(seq), value: data }], { sync: true } as object)
  }
  const file = await open(join(dir, "wal"), constants.O_RDWR | constants.O_CREAT | constants.O_DSYNC)
  await file.truncate(64 << 20)
  let end = 0
  return (_seq, data) => {
    const at = end
    end += data.length
    return file.write(data, 0, data.length, at)
  }
}

/** One process of writePath: the leader (who answers the client) or a follower. */
const pathChild = async (url: string, dir: string, role: string, log: PathLog): Promise<void> => {
  const nc = await connect({ servers: url, noAsyncTraces: true })
  const append = await openPathLog(dir, log)
  // Each message starts with the put's sequence number.
  const seqOf = (bytes: Uint8Array): number => new DataView(bytes.buffer, bytes.byteOffset).getUint32(0)
  if (role === "leader") {
    let seq = 0
    const waiting = new Map<number, { readonly answer: () => void; copies: number }>()
    const stored = (s: number): void => {
      const w = waiting.get(s)
      if (w !== undefined && ++w.copies === 2) {
        waiting.delete(s)
        w.answer()
      }
    }
    nc.subscribe("path.ack", { callback: (_e, m) => stored(seqOf(m.data)) })
    nc.subscribe("path.put", {
      callback: (_e, m) => {
        const s = ++seq
        waiting.set(s, { answer: () => m.respond(new Uint8Array([1])), copies: 0 })
        const body = new Uint8Array(4 + m.data.length)
        new DataView(body.buffer).setUint32(0, s)
        body.set(m.data, 4)
        void append(s, m.data).then(() => stored(s))
        nc.publish("path.append.f1", body)
        nc.publish("path.append.f2", body)
      }
    })
  } else {
    nc.subscribe(`path.append.${role}`, {
      callback: (_e, m) => {
        const s = seqOf(m.data)
        void append(s, m.data.subarray(4)).then(() => nc.publish("path.ack", m.data.subarray(0, 4)))
      }
    })
  }
  await nc.flush()
  console.log("ready")
}

// Child roles for the measurements above.
if (process.argv[2] === "path-child") {
  await pathChild(process.argv[3]!, process.argv[4]!, process.argv[5]!, process.argv[6] as PathLog)
} else if (process.argv[2] === "disk-child") {
  const r = await diskOnce(process.argv[3]!)
  console.log(`LevelDB ${us(r.level)} / fdatasync ${us(r.fdatasync)}`)
} else if (process.argv[2] === "tcp-child") {
  const s = net.connect(Number(process.argv[3]), "127.0.0.1")
  s.setNoDelay(true)
  await new Promise((r) => s.once("connect", r))
  const n = 3000
  let got = 0
  const t = performance.now()
  await new Promise<void>((resolve) => {
    s.on("data", () => {
      if (++got === n) resolve()
      else s.write("x")
    })
    s.write("x")
  })
  console.log(us((performance.now() - t) / n))
  s.destroy()
}
