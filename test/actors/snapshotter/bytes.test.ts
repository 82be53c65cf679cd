/**
 * The Snapshotter bounds the log by bytes as well as by entries (a real Applier on memory-level):
 * a few big entries make a snapshot due long before the entry threshold, and the window kept
 * behind it holds at most `maxTrailingBytes` of entries.
 */
import t from "tap"
import { Effect, Exit, Layer, Scope } from "effect"
import * as Applier from "../../../actors/applier/applier.ts"
import type { Consensus } from "../../../actors/raft/shell.ts"
import * as Snapshotter from "../../../actors/snapshotter/snapshotter.ts"
import { makeMemory, Storage } from "../../../bootstrap/storage.ts"
import { EntryKind, type Entry } from "../../../protocol/raft.ts"
import { ManualTimers, testSupervisor, timersLayer } from "../../support/services.ts"
import { until } from "../../support/wait.ts"

const put = (index: number, value: string): Entry => ({
  index,
  term: 1,
  kind: EntryKind.Command,
  time: 1_000 + index,
  data: Applier.encodeCommand({ op: "put", key: `k${index}`, value })
})

t.test("big entries make a snapshot due before the entry threshold, and the window behind it is cut by bytes", async (t) => {
  const { layer: supervisorLayer, failures } = await testSupervisor()
  const scope = Effect.runSync(Scope.make())
  t.teardown(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const entries = new Map<number, Entry>()
  const compacted: number[] = []
  // Only what the Snapshotter uses of the consensus actor.
  const consensus = {
    status: () => ({ role: "follower", term: 1, baseIndex: compacted[compacted.length - 1] ?? 0 }),
    termAt: () => 1,
    entryBytes: (index: number) => entries.get(index)?.data.length,
    send: () => undefined,
    onSnapshotTraffic: () => undefined,
    snapshotAbandoned: () => undefined,
    compact: (index: number) => compacted.push(index),
    install: () => undefined
  } as unknown as Consensus
  // 1 KiB values: the fifth entry passes 4 KiB applied; 2 KiB of window keeps one entry.
  const tuning = { ...Snapshotter.defaultSnapshotTuning, maxLogBytes: 4 * 1024, maxTrailingBytes: 2 * 1024 }
  const { applier, snapshotter } = await Effect.runPromise(
    Effect.gen(function* () {
      const storage = yield* makeMemory
      return yield* Effect.gen(function* () {
        const applier = yield* Applier.make
        applier.logStored(Number.MAX_SAFE_INTEGER)
        const snapshotter = yield* Snapshotter.make({ cluster: "c", id: "n1", members: ["n1"], threshold: 10_000, ...tuning }, consensus, applier)
        return { applier, snapshotter }
      }).pipe(Effect.provideService(Storage, storage))
    }).pipe(Effect.provide(Layer.mergeAll(timersLayer(new ManualTimers()), supervisorLayer)), Scope.extend(scope))
  )
  const value = "v".repeat(1024)
  for (let i = 1; i <= 3; i++) {
    const e = put(i, value)
    entries.set(i, e)
    applier.offer([e])
  }
  t.equal(snapshotter.status().last, null, "3 KiB applied: no snapshot yet")
  for (let i = 4; i <= 6; i++) {
    const e = put(i, value)
    entries.set(i, e)
    applier.offer([e])
  }
  await until("a snapshot by size", () => snapshotter.status().last !== null)
  const last = snapshotter.status().last!
  t.ok(last.index >= 4 && last.index <= 6, `taken at index ${last.index}, far below the threshold of 10,000 entries`)
  await until("the log compacted", () => compacted.length > 0)
  t.equal(compacted[0], last.index - 1, "one entry of about 1 KiB kept behind it: the window is 2 KiB")

  // Entries applied while a snapshot is being taken make the next one due, with no later write
  // to notice it: it follows when the first ends.
  for (let i = 7; i <= 12; i++) {
    const e = put(i, value)
    entries.set(i, e)
    applier.offer([e])
  }
  await until("a second snapshot without any further write", () => (snapshotter.status().last?.index ?? 0) >= 10)
  t.pass(`then at index ${snapshotter.status().last!.index}`)
  t.same(failures, [])
})
