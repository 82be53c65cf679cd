/**
 * `write-etcd`: the reference for `write`, measured the same way in the same session. A
 * three-member etcd cluster (the `etcd` binary of Debian's etcd-server, 3.4 here) on loopback,
 * each member with its own data folder and etcd's default fsync on every append, driven by
 * closed-loop puts of the same size from the `etcd3` client in this process. The client talks
 * to the leader's endpoint only: etcd's best case, as Archio's client sends to the leader.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Etcd3 } from "etcd3"
import { freePort } from "../../bootstrap/natsServer.ts"
import { withStop } from "./cleanup.ts"
import { closedLoop, levelLine, loadNote, sleep, type BenchOptions, type Level } from "./common.ts"

export const etcdInstallHint = "sudo apt-get install -y etcd-server   (Debian/Ubuntu: etcd 3.4)"

const findEtcd = (): string | undefined => {
  const which = spawnSync("sh", ["-c", "command -v etcd"], { encoding: "utf8" })
  return which.status === 0 && which.stdout.trim() !== "" ? which.stdout.trim() : undefined
}

interface Member {
  readonly name: string
  readonly client: string
  readonly peer: string
}

const startEtcd = async (bin: string, dir: string): Promise<{ members: Member[]; procs: ChildProcess[] }> => {
  const members: Member[] = []
  for (let i = 1; i <= 3; i++) {
    members.push({ name: `e${i}`, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` })
  }
  const initial = members.map((m) => `${m.name}=${m.peer}`).join(",")
  const procs = members.map((m) =>
    spawn(
      bin,
      [
        "--name", m.name,
        "--data-dir", join(dir, m.name),
        "--listen-client-urls", m.client,
        "--advertise-client-urls", m.client,
        "--listen-peer-urls", m.peer,
        "--initial-advertise-peer-urls", m.peer,
        "--initial-cluster", initial,
        "--initial-cluster-state", "new",
        "--log-level", "error"
      ],
      // etcd logs its Raft chatter to stderr whatever --log-level says; a failed start shows as no leader.
      { stdio: "ignore" }
    )
  )
  return { members, procs }
}

/** The endpoint of the member that leads, once one does. */
const findLeader = async (members: ReadonlyArray<Member>, timeoutMs = 30_000): Promise<string> => {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    for (const m of members) {
      const c = new Etcd3({ hosts: m.client, dialTimeout: 1000 })
      try {
        const s = await c.maintenance.status()
        if (s.leader !== "0" && s.leader === s.header.member_id) return m.client
      } catch {
        // not up yet
      } finally {
        c.close()
      }
    }
    await sleep(200)
  }
  throw new Error(`no etcd leader within ${timeoutMs} ms`)
}

export interface EtcdRun {
  /** A client on the leader's endpoint. */
  readonly client: Etcd3
  /** e.g. "etcd Version: 3.4.23". */
  readonly version: string
}

/**
 * Runs `run` against a fresh three-member etcd cluster (own data folders), then stops it and
 * removes the folders (on Ctrl-C too); undefined, with the install hint printed, when there
 * is no etcd binary.
 */
export const withEtcd = async <A>(run: (e: EtcdRun) => Promise<A>): Promise<A | undefined> => {
  const bin = findEtcd()
  if (bin === undefined) {
    console.log(`no etcd binary on PATH; install it with: ${etcdInstallHint}`)
    process.exitCode = 1
    return undefined
  }
  const dir = await mkdtemp(join(tmpdir(), "archio-bench-etcd-"))
  const { members, procs } = await startEtcd(bin, dir)
  const stop = async () => {
    for (const p of procs) p.kill("SIGTERM")
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once("exit", r)))))
    await rm(dir, { recursive: true, force: true })
  }
  return withStop(stop, async () => {
    const client = new Etcd3({ hosts: await findLeader(members) })
    try {
      const version = spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0] ?? "etcd"
      return await run({ client, version })
    } finally {
      client.close()
    }
  })
}

/** The measured levels, or undefined when there is no etcd binary. */
export const etcdWriteBench = async (o: BenchOptions): Promise<Level[] | undefined> => {
  const levels = o.concurrency ?? [1, 16, 64]
  const value = "x".repeat(o.valueBytes)
  return withEtcd(async ({ client, version }) => {
    const measured: Level[] = []
    console.log(`write-etcd: ${version}, 3 members, ${value.length}-byte values, ${o.seconds} s per level after ${o.warmup} s of warm-up, closed loop, client on the leader (${loadNote()})`)
    for (const concurrency of levels) {
      const r = await closedLoop(concurrency, o.seconds, (c, i) => client.put(`c${c}-${i % 1000}`).value(value).exec(), o)
      console.log(levelLine(concurrency, r, "puts"))
      measured.push({ concurrency, result: r })
    }
    return measured
  })
}
