import t, { type Test } from "tap"
import { Cause, Effect, Exit, Scope } from "effect"
import * as Consensus from "../../../actors/raft/shell.ts"
import { EntryKind } from "../../../protocol/raft.ts"
import * as Storage from "../../../bootstrap/storage.ts"
import { natsClient, natsServer } from "../../support/nats.ts"
import { tempDir } from "../../support/tmp.ts"
import { sleep, until } from "../../support/wait.ts"

const options = { cluster: "shell", id: "n1", members: ["n1"], tickMs: 5, electionTicks: 4, heartbeatTicks: 1 }

/** The actor ticks every 5 ms: look as often, and give up after 5 s. */
const waitFor = { timeoutMs: 5_000, everyMs: 5 }

/**
 * A lone node's consensus actor over a real nats-server and classic-level database, leading;
 * `committed` collects the indexes it hands over. Closed with `scope` (or when the test ends).
 */
const leadingNode = async (t: Test, supervise?: Consensus.Supervise) => {
  const server = await natsServer(t)
  const nc = await natsClient(t, server.url)
  const dir = await tempDir(t)
  const scope = Effect.runSync(Scope.make())
  t.teardown(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const stores = await Effect.runPromise(Scope.extend(Storage.make(dir), scope))
  const committed: number[] = []
  const consensus = await Effect.runPromise(
    Scope.extend(
      Consensus.make(options, nc, stores, (entries) => committed.push(...entries.map((e) => e.index)), supervise),
      scope
    )
  )
  await until("leadership", () => consensus.status().role === "leader", waitFor)
  return { stores, scope, consensus, committed }
}

t.test("a lone node's consensus shell leads, commits proposals in order, and reports a failed log write", async (t) => {
  const failures: Array<{ name: string; cause: Cause.Cause<unknown> }> = []
  const supervise: Consensus.Supervise = (name, effect) => effect.pipe(Effect.tapErrorCause((cause) => Effect.sync(() => failures.push({ name, cause }))))
  const { stores, consensus, committed } = await leadingNode(t, supervise)

  const results: unknown[] = []
  for (let i = 0; i < 3; i++) {
    consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([i]) }], (r) => results.push(r))
  }
  await until("three commits after the no-op", () => committed.length === 4, waitFor)
  t.same(committed, [1, 2, 3, 4], "the no-op, then each proposal, handed over in log order")
  t.match(results, [{ ok: true, firstIndex: 2 }, { ok: true, firstIndex: 3 }, { ok: true, firstIndex: 4 }])
  t.equal(consensus.status().persistedIndex, 4, "all of it durable")

  const read = await new Promise<Consensus.ReadResult>((resolve) => consensus.read(resolve))
  t.same(read, { ok: true, index: 4 }, "a lone leader serves a read at its commit index")

  // A log write that fails stops the actor loudly instead of leaving it deciding without a disk.
  await stores.db.close()
  consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([9]) }], () => {})
  await until("the failure", () => failures.length > 0, waitFor)
  t.equal(failures[0]!.name, "consensus")
  t.ok(Cause.isDie(failures[0]!.cause), "reported as a defect of the consensus actor")
  const before = committed.length
  consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([10]) }], () => {})
  await sleep(50) // an absence cannot be awaited: give a wrong commit time to show
  t.equal(committed.length, before, "a failed actor decides nothing more")
})

t.test("whenStored answers once the log on disk holds an index, and false when the actor stops first", async (t) => {
  const { scope, consensus, committed } = await leadingNode(t)
  await until("the no-op", () => committed.length === 1, waitFor)

  const answers: Array<[number, boolean]> = []
  consensus.whenStored(1, (stored) => answers.push([1, stored]))
  t.same(answers, [[1, true]], "index 1 is on disk: answered at once")
  consensus.propose([{ kind: EntryKind.Command, data: new Uint8Array([1]) }], () => {})
  consensus.whenStored(2, (stored) => answers.push([2, stored]))
  consensus.whenStored(50, (stored) => answers.push([50, stored]))
  await until("index 2 stored", () => answers.length === 2, waitFor)
  t.same(answers[1], [2, true], "index 2 once its write landed")
  await Effect.runPromise(Scope.close(scope, Exit.void))
  t.same(answers[2], [50, false], "index 50 never will be: false when the actor stops")
})
