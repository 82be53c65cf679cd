/**
 * Impossible input fails loudly (TigerBeetle style): where the core asserts, it throws
 * InvariantViolation instead of carrying on with a corrupt log.
 */
import t from "tap"
import { RaftCore } from "../../../actors/raft/core.ts"
import { invariant, InvariantViolation } from "../../../actors/raft/invariant.ts"
import { RaftLog } from "../../../actors/raft/log.ts"
import { appendLocal } from "../../../actors/raft/replicator.ts"
import { EntryKind } from "../../../protocol/raft.ts"
import { entriesOf, lone, msg, testTuning } from "./harness.ts"

const violation = (what: RegExp) => ({ name: "InvariantViolation", message: what })

t.test("invariant() passes silently or throws InvariantViolation naming what broke", async (t) => {
  t.doesNotThrow(() => invariant(true, "fine"))
  t.throws(() => invariant(false, "two leaders in one term"), violation(/invariant violated: two leaders in one term/))
  t.ok(new InvariantViolation("x") instanceof Error)
})

t.test("RaftLog refuses a restored log that is not contiguous from its base", async (t) => {
  const gap = [...entriesOf([1, 1]), ...entriesOf([1], 4)] // 1, 2, 4
  t.throws(() => new RaftLog(0, 0, gap, 0), violation(/log entries are contiguous from the base/))
  t.throws(() => new RaftLog(5, 1, entriesOf([1, 1]), 5), violation(/contiguous/), "entries must start at base + 1")
  t.throws(() => new RaftLog(0, 0, entriesOf([2, 1]).reverse(), 0), violation(/contiguous/), "nor run backwards")
  t.throws(
    () => new RaftCore({ id: "n1", members: ["n1"], ...testTuning, seed: 1 }, { hardState: { term: 1, vote: null }, baseIndex: 0, baseTerm: 0, entries: gap, applied: 0, membership: null }),
    violation(/contiguous/),
    "a core restored from such a log does not start"
  )
})

t.test("RaftLog refuses an applied index outside the log", async (t) => {
  t.throws(() => new RaftLog(0, 0, entriesOf([1, 1]), 3), violation(/applied index lies within the log/))
  t.throws(() => new RaftLog(5, 1, entriesOf([1], 6), 4), violation(/applied index lies within the log/))
})

t.test("RaftLog refuses appends that do not extend it by one, commits past its end, slices into the snapshot", async (t) => {
  const log = new RaftLog(0, 0, entriesOf([1, 1]), 0)
  t.throws(() => log.append(entriesOf([1], 4)), violation(/appended entries extend the log by one/))
  t.throws(() => log.append(entriesOf([1], 2)), violation(/extend the log by one/), "nor rewrite one")
  t.throws(() => log.commitTo(3), violation(/commit index never passes the end of the log/))
  const compacted = new RaftLog(5, 1, entriesOf([1, 2], 6), 5)
  t.throws(() => compacted.slice(5, 7), violation(/slice starts after the compaction base/))
})

t.test("a follower refuses to overwrite a committed entry, even when a 'leader' says so", async (t) => {
  const log = new RaftLog(0, 0, entriesOf([1, 1, 1]), 3)
  t.throws(() => log.appendFromLeader(1, entriesOf([2], 2)), violation(/a committed entry is never overwritten/))
  const core = lone({ term: 1, log: [1, 1, 1], applied: 3 })
  t.throws(
    () => core.step(msg.append("n2", "n1", 2, 1, 1, entriesOf([2, 2], 2), 3)),
    violation(/a committed entry is never overwritten/),
    "the core throws on the impossible AppendEntries"
  )
})

t.test("only a leader appends proposals", async (t) => {
  const core = lone()
  t.throws(() => appendLocal(core.s, [{ kind: EntryKind.Command, data: new Uint8Array(0) }]), violation(/only a leader appends proposals/))
})

t.test("a core outside its member list (joining, or removed) starts, and never campaigns", async (t) => {
  const core = lone({ id: "n4" })
  for (let i = 0; i < 10 * testTuning.electionTicks; i++) core.tick(i)
  t.equal(core.status().role, "follower")
  t.same(core.ready().sendFirst, [], "no pre-vote went out")
})
