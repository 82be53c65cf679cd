import t, { type Test } from "tap"
import { Effect, Layer, Scope } from "effect"
import * as Consensus from "../../../actors/raft/shell.ts"
import { RaftBus } from "../../../actors/services/bus.ts"
import { Storage } from "../../../actors/services/storage.ts"
import { EntryKind } from "../../../protocol/raft.ts"
import * as StorageLayer from "../../../bootstrap/storage.ts"
import { natsClient, natsServer } from "../../support/nats.ts"
import { ManualTimers, testScope, testSupervisor, timersLayer } from "../../support/services.ts"
import { tempDir } from "../../support/tmp.ts"
import { sleep, until } from "../../support/wait.ts"

const options = { cluster: "shell", id: "n1", members: ["n1"], tickMs: 5, electionTicks: 4, heartbeatTicks: 1 }

/**
 * A lone node's consensus actor over a real nats-server and classic-level database, with timers
 * the test moves by hand; leading once `elect` ran. `committed` and `stored` record its outputs.
 */
const loneNode = async (t: Test) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const dir = await tempDir(t)
  const { scope: dbScope } = testScope(t)
  const storage = await Effect.runPromise(Scope.extend(StorageLayer.make(dir), dbScope))
  const timers = new ManualTimers()
  const { layer: supervisorLayer, failures } = await testSupervisor()
  const { scope, close } = testScope(t)
  const committed: number[] = []
  const stored: number[] = []
  const services = Layer.mergeAll(Layer.succeed(RaftBus, nc), Layer.succeed(Storage, storage), timersLayer(timers), supervisorLayer)
  const consensus = await Effect.runPromise(
    Consensus.make(options, {
      committed: (entries) => committed.push(...entries.map((e) => e.index)),
      stored: (i) => stored.push(i),
      installing: () => Promise.reject(new Error("a lone node never installs a snapshot")),
      installed: () => Promise.reject(new Error("a lone node never installs a snapshot"))
    }).pipe(
      Scope.extend(scope),
      Effect.provide(services)
    )
  )
  /** Ticks until the election timeout has passed: alone, it wins at once. */
  const elect = async (): Promise<void> => {
    timers.advance(options.tickMs * options.electionTicks * 2)
    await until("leadership", () => consensus.status().role === "leader")
  }
  return { storage, consensus, committed, stored, failures, timers, elect, stop: close }
}

t.test("a lone node's consensus shell leads, commits proposals in order, and says what is on disk", async (t) => {
  const { consensus, committed, stored, elect } = await loneNode(t)
  t.same(stored, [0], "an empty log: nothing on disk yet")
  t.equal(consensus.status().role, "follower", "no time has passed: no election")
  await elect()

  const results: unknown[] = []
  for (let i = 0; i < 3; i++) consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([i]) }], (r) => results.push(r))
  await until("three commits after the no-op", () => committed.length === 4)
  t.same(committed, [1, 2, 3, 4], "the no-op, then each proposal, handed over in log order")
  t.match(results, [{ ok: true, firstIndex: 2 }, { ok: true, firstIndex: 3 }, { ok: true, firstIndex: 4 }])
  await until("all of it on disk", () => stored[stored.length - 1] === 4)
  t.equal(consensus.status().persistedIndex, 4, "all of it durable")
  t.ok(
    stored.every((v, i) => i === 0 || v >= stored[i - 1]!),
    "without a conflicting leader, what is on disk only grows"
  )

  const read = await new Promise<Consensus.ReadResult>((resolve) => consensus.read(resolve))
  t.same(read, { ok: true, index: 4 }, "a lone leader serves a read at its commit index")
})

t.test("a failed log write stops the node in the consensus actor's name, and it decides nothing more", async (t) => {
  const { storage, consensus, committed, failures, elect } = await loneNode(t)
  await elect()
  await until("the no-op", () => committed.length === 1)
  await storage.db.close()
  consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([9]) }], () => {})
  await until("the failure", () => failures.length > 0)
  t.equal(failures[0]!.actor, "consensus")
  t.match(failures[0]!.message, /actor consensus failed/)
  const before = committed.length
  consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([10]) }], () => {})
  await sleep(50) // an absence cannot be awaited: give a wrong commit time to show
  t.equal(committed.length, before, "a failed actor decides nothing more")
})

t.test("stopping lets queued writes land and cancels the tick timer", async (t) => {
  const first = await loneNode(t)
  await first.elect()
  first.consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([1]) }], () => {})
  await first.stop()
  t.equal(first.stored[first.stored.length - 1], 2, "the proposal reached the disk before the actor stopped")
  t.equal(first.timers.scheduled, 0, "and its tick timer is cancelled")
})

t.test("transferLeadership answers at once where there is nothing to hand over", async (t) => {
  const { consensus, elect, stop } = await loneNode(t)
  const ask = (to: string | null) => new Promise<Consensus.TransferResult>((resolve) => consensus.transferLeadership(to, resolve))
  t.match(await ask(null), { ok: false, reason: "not_leader", leader: null }, "a follower hands over nothing")
  await elect()
  t.match(await ask(null), { ok: false, reason: "no_target", to: null, leader: "n1" }, "a lone leader has no one to hand over to")
  t.match(await ask("n1"), { ok: false, reason: "no_target", to: "n1" }, "not to itself")
  t.match(await ask("n9"), { ok: false, reason: "no_target", to: "n9" }, "nor to a stranger")
  const r = await new Promise<unknown>((resolve) => consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([1]) }], resolve))
  t.match(r, { ok: true }, "proposals are taken as before")
  await stop()
  t.match(await ask(null), { ok: false, reason: "stopped" }, "a stopped node answers stopped")
})
