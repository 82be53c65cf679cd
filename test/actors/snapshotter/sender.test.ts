/**
 * The leader's side of the Snapshotter in one process (a real Applier on memory-level, manual
 * timers, a consensus that records what is sent): a transfer per follower, sent again on
 * silence, given up after too many, and never outliving the term that started it.
 */
import t, { type Test } from "tap"
import { Effect, Exit, Layer, Scope } from "effect"
import * as Applier from "../../../actors/applier/applier.ts"
import type { Consensus, SnapshotTraffic } from "../../../actors/raft/shell.ts"
import * as Snapshotter from "../../../actors/snapshotter/snapshotter.ts"
import { makeMemory, Storage } from "../../../bootstrap/storage.ts"
import type { RaftMessage } from "../../../protocol/raft.ts"
import { ManualTimers, testSupervisor, timersLayer } from "../../support/services.ts"

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20))

const setup = async (t: Test) => {
  const timers = new ManualTimers()
  const { layer: supervisorLayer, failures } = await testSupervisor()
  const scope = Effect.runSync(Scope.make())
  t.teardown(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const world = { status: { role: "leader", term: 3, baseIndex: 0 }, sent: [] as RaftMessage[], abandoned: [] as string[], traffic: undefined as SnapshotTraffic | undefined }
  // Only what the Snapshotter uses of the consensus actor.
  const consensus = {
    status: () => world.status,
    termAt: () => 3,
    send: (m: RaftMessage) => world.sent.push(m),
    onSnapshotTraffic: (listener: SnapshotTraffic) => {
      world.traffic = listener
    },
    snapshotAbandoned: (peer: string) => world.abandoned.push(peer),
    compact: () => undefined,
    install: () => undefined
  } as unknown as Consensus
  const tuning = { ...Snapshotter.defaultSnapshotTuning, resendMs: 1000, maxSilences: 2 }
  await Effect.runPromise(
    Effect.gen(function* () {
      const storage = yield* makeMemory
      return yield* Effect.gen(function* () {
        const applier = yield* Applier.make
        applier.logStored(Number.MAX_SAFE_INTEGER)
        return yield* Snapshotter.make({ cluster: "c", id: "n1", members: ["n1", "n2", "n3"], threshold: 200, ...tuning }, consensus, applier)
      }).pipe(Effect.provideService(Storage, storage))
    }).pipe(Effect.provide(Layer.mergeAll(timersLayer(timers), supervisorLayer)), Scope.extend(scope))
  )
  return { timers, failures, world }
}

const chunksTo = (sent: ReadonlyArray<RaftMessage>, term: number) => sent.filter((m) => m.type === "snapshot" && m.to === "n2" && m.term === term)

t.test("silences send the chunk again, then the transfer gives up and the core probes again", async (t) => {
  const { timers, failures, world } = await setup(t)
  world.traffic!.wanted("n2")
  await settle()
  t.equal(chunksTo(world.sent, 3).length, 1, "one chunk: the whole (empty) state")
  for (let i = 0; i < 6; i++) {
    timers.advance(1000)
    await settle()
  }
  t.ok(chunksTo(world.sent, 3).length >= 2, "sent again after a silence")
  t.same(world.abandoned, ["n2"], "given up once")
  t.same(failures, [])
})

t.test("a transfer from an earlier term never blocks the next term's", async (t) => {
  const { timers, failures, world } = await setup(t)
  world.traffic!.wanted("n2")
  await settle()
  // Re-elected in term 4 before the term-3 sender noticed: the new core asks again.
  world.status = { ...world.status, term: 4 }
  world.traffic!.wanted("n2")
  await settle()
  t.equal(chunksTo(world.sent, 4).length, 1, "the term-4 transfer starts at once")
  for (let i = 0; i < 6; i++) {
    timers.advance(1000)
    await settle()
  }
  t.same(world.abandoned, ["n2"], "and it, not the old one, is the one that gives up")
  t.same(failures, [])
})

t.test("a follower's success ends the transfer; its progress replies free the window", async (t) => {
  const { timers, world } = await setup(t)
  world.traffic!.wanted("n2")
  await settle()
  const first = chunksTo(world.sent, 3)[0]!
  if (first.type !== "snapshot") throw new Error("setup")
  world.traffic!.reply({ type: "snapshot_resp", from: "n2", to: "n1", term: 3, lastIncludedIndex: first.lastIncludedIndex, offset: first.data.length, success: true })
  for (let i = 0; i < 6; i++) {
    timers.advance(1000)
    await settle()
  }
  t.equal(chunksTo(world.sent, 3).length, 1, "nothing sent again")
  t.same(world.abandoned, [], "nothing given up")
})
