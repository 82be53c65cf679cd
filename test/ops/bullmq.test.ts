/**
 * The BullMQ peer of `jobs-vs-bullmq` (ops/bench/redis.ts, bullmq.ts, bullmqWorker.ts): the
 * private Redis's command line, and a real Redis 7 with the AOF synced on every write serving
 * one BullMQ producer and one worker process, through the same JobSystem calls the Archio side
 * of the bench uses. Skipped, saying why, where redis-server or BullMQ's driver (ioredis) is
 * missing.
 */
import t from "tap"
import { existsSync, readdirSync, statSync } from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import { withBullmq } from "../../ops/bench/bullmq.ts"
import { wallMs } from "../../ops/bench/systems.ts"
import { bullmqMissing, redisArgs } from "../../ops/bench/redis.ts"

t.test("the private Redis: loopback, its own folder, AOF only with the fsync asked for, no eviction", async (t) => {
  const args = redisArgs({ port: 7001, dir: "/tmp/r", appendfsync: "always" })
  const flag = (name: string) => args[args.indexOf(name) + 1]
  t.equal(flag("--port"), "7001")
  t.equal(flag("--bind"), "127.0.0.1")
  t.equal(flag("--dir"), "/tmp/r")
  t.equal(flag("--appendonly"), "yes")
  t.equal(flag("--appendfsync"), "always")
  t.equal(flag("--save"), "", "no RDB snapshots")
  t.equal(flag("--maxmemory-policy"), "noeviction")
  t.equal(flag("--daemonize"), "no", "stays our child, so we can stop it")
  t.equal(redisArgs({ port: 7001, dir: "/tmp/r", appendfsync: "everysec" })[args.indexOf("--appendfsync") + 1], "everysec")
})

/** One inline command to Redis at 127.0.0.1:`port`; the raw RESP reply. */
const redisCommand = (port: number, command: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    let reply = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      reply += chunk
      // CONFIG GET answers a two-element array: *2, then two bulk strings.
      if (reply.split("\r\n").length >= 6) {
        socket.end()
        resolve(reply)
      }
    })
    socket.on("error", reject)
    socket.write(`${command}\r\n`)
  })

const missing = bullmqMissing()

t.test("BullMQ on Redis with appendfsync always: a worker process runs every job a producer adds", { skip: missing ?? false, timeout: 60_000 }, async (t) => {
  let dir = ""
  // The worker process runs under tsx, tap's under its own loader: its coverage would not merge.
  await withBullmq(
    "always",
    async (system, redis) => {
      dir = redis.dir
      t.match(redis.version, /^Redis server v=7\./, "Redis 7")
      t.match(await redisCommand(redis.port, "CONFIG GET appendfsync"), /\r\nappendfsync\r\n\$6\r\nalways\r\n/)
      t.match(await redisCommand(redis.port, "CONFIG GET appendonly"), /\r\nappendonly\r\n\$3\r\nyes\r\n/)
      t.equal(system.name, "BullMQ always")

      const worker = system.startWorker({ id: "w1", queue: "smoke", handler: "stamp", concurrency: 4 })
      t.teardown(worker.stop)
      await worker.ready
      for (let i = 0; i < 5; i++) await system.enqueue("smoke", { t: wallMs(), i })
      await system.preload("smoke", 1500)
      for (let i = 0; i < 600 && (await system.completed("smoke")) < 1505; i++) await new Promise((r) => setTimeout(r, 50))
      t.equal(await system.completed("smoke"), 1505, "the 5 added one by one and the 1500 added in bulk all completed")
      const started = worker.lines.filter((l) => l.startsWith("started "))
      t.same(
        started.slice(0, 5).map((l) => Number(l.split(" ")[1])).sort(),
        [0, 1, 2, 3, 4],
        "the stamping handler reported each stamped job"
      )
      t.ok(started.slice(0, 5).every((l) => Number(l.split(" ")[2]) >= 0), "with a start time after its stamp")

      await worker.stop()
      t.equal(worker.proc.exitCode, 0, "SIGTERM closes the worker cleanly")
      const aof = join(redis.dir, "appendonlydir")
      t.ok(readdirSync(aof).some((f) => f.endsWith(".incr.aof") && statSync(join(aof, f)).size > 0), "the jobs went to the append-only file")
    },
    { _TAPJS_PROCESSINFO_COVERAGE_: "0" }
  )
  t.not(dir, "")
  t.notOk(existsSync(dir), "stopping removes Redis's folder")
})
