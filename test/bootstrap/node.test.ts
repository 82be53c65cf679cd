import t from "tap"
import { Effect, Exit, Fiber } from "effect"
import { join } from "node:path"
import { runNode } from "../../bootstrap/node.ts"
import * as Storage from "../../bootstrap/storage.ts"
import { natsClient, natsServer } from "../support/nats.ts"
import { config, quiet } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { sleep, until } from "../support/wait.ts"

t.test("runNode answers admin.status in the queue group and on its own subject, and releases everything when interrupted", async (t) => {
  const server = await natsServer(t)
  const dir = await tempDir(t)
  const nc = await natsClient(t, server.url)
  const c1 = config({ NODE_ID: "n1", PEERS: "n1,n2", NATS_URL: server.url, DATA_DIR: join(dir, "n1"), CLUSTER: "c" })
  const c2 = config({ NODE_ID: "n2", PEERS: "n1,n2", NATS_URL: server.url, DATA_DIR: join(dir, "n2"), CLUSTER: "c" })
  const f1 = Effect.runFork(runNode(c1).pipe(Effect.provide(quiet)))
  const f2 = Effect.runFork(runNode(c2).pipe(Effect.provide(quiet)))
  const ask = async (subject: string) => {
    try {
      return (await nc.request(subject, "", { timeout: 500 })).json<Record<string, unknown>>()
    } catch {
      return undefined
    }
  }
  // Each check is two NATS requests to nodes still starting: every 50 ms.
  await until("both nodes", async () => (await ask("archio.c.node.n1.admin.status")) !== undefined && (await ask("archio.c.node.n2.admin.status")) !== undefined, { everyMs: 50 })
  const one = await ask("archio.c.node.n1.admin.status")
  t.match(one, { ok: true, id: "n1", cluster: "c", members: [{ id: "n1", role: "voter" }, { id: "n2", role: "voter" }] })
  t.ok(["follower", "precandidate", "candidate", "leader"].includes(String(one?.["role"])), "a Raft role")
  t.type(one?.["term"], "number")
  t.match(await ask("archio.c.node.n2.admin.status"), { id: "n2" })

  // The shared subject gets exactly one answer per request (queue group "q").
  const inbox = "test.replies"
  const replies: Array<string> = []
  nc.subscribe(inbox, { callback: (_e, m) => void replies.push(m.json<{ id: string }>().id) })
  for (let i = 0; i < 10; i++) nc.publish("archio.c.admin.status", "", { reply: inbox })
  await nc.flush()
  await until("ten replies", () => replies.length >= 10)
  await sleep(200) // room for an eleventh reply, if a request were answered twice
  t.equal(replies.length, 10, "one answer per request")
  t.ok(replies.every((id) => id === "n1" || id === "n2"))

  // A publish without a reply subject is ignored, not answered or crashed on.
  nc.publish("archio.c.admin.status", "")
  await nc.flush()

  const exits = await Promise.all([Effect.runPromise(Fiber.interrupt(f1)), Effect.runPromise(Fiber.interrupt(f2))])
  t.ok(exits.every((e) => Exit.isInterrupted(e)), "interrupted")
  t.equal(await ask("archio.c.node.n1.admin.status"), undefined, "no longer answers")
  const reopened = await Effect.runPromise(Effect.scoped(Effect.map(Storage.make(c1.dataDir), (s) => s.db.status)))
  t.equal(reopened, "open", "the database was closed and reopens")
})

t.test("runNode fails with the storage error when its data dir is taken", async (t) => {
  const server = await natsServer(t)
  const dir = join(await tempDir(t), "n1")
  const c = config({ NODE_ID: "n1", NATS_URL: server.url, DATA_DIR: dir })
  const exit = await Effect.runPromise(
    Effect.scoped(Effect.flatMap(Storage.make(dir), () => Effect.exit(runNode(c).pipe(Effect.provide(quiet)))))
  )
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
    t.equal(exit.cause.error._tag, "StorageError")
    t.match(exit.cause.error.message, `data dir ${dir} is in use by another archio node`)
  } else t.fail("expected a StorageError")
})
