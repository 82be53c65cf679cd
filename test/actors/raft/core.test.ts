/**
 * The Ready contract and the log's building blocks, one core at a time: what goes out before the
 * write is durable (sendFirst), what waits for it (messages), and when entries count.
 */
import t from "tap"
import { RaftLog } from "../../../actors/raft/log.ts"
import { nextRandom, randomInt } from "../../../actors/raft/random.ts"
import { EntryKind } from "../../../protocol/raft.ts"
import { encodedEntrySize } from "../../../protocol/raftCodec.ts"
import { command, drain, entriesOf, lone, msg } from "./harness.ts"

t.test("Ready: a follower acknowledges entries only after they are persisted", async (t) => {
  const core = lone({ term: 1, log: [1] })
  core.step(msg.append("n2", "n1", 1, 1, 1, entriesOf([1, 1], 2), 2, 4))
  t.ok(core.hasReady())
  const rd = core.ready()
  t.same(rd.hardState, null, "the term did not change")
  t.same(rd.truncateFrom, null)
  t.same(
    rd.entries.map((e) => e.index),
    [2, 3],
    "the new entries, to persist"
  )
  t.same(rd.sendFirst, [], "nothing may leave before the write")
  t.same(rd.messages, [{ ...msg.appendResp("n1", "n2", 1, true, 3, 4) }], "the acknowledgement waits for it, echoing the round")
  t.same(
    rd.committed.map((e) => e.index),
    [1, 2],
    "entries up to the leader's commit index (2) are applied after the write"
  )
  core.advance(rd)
  t.equal(core.status().persistedIndex, 3)
  t.notOk(core.hasReady(), "nothing left")
})

t.test("Ready: a leader sends its appends first and counts its own entry only once durable", async (t) => {
  const core = lone({ members: ["n1", "n2", "n3"], term: 1, log: [1] })
  core.tick(0)
  for (let i = 0; i < 30 && core.status().role !== "precandidate"; i++) core.tick(i)
  core.step(msg.prevoteResp("n2", "n1", 2, true))
  core.step(msg.voteResp("n2", "n1", 2, true))
  t.equal(core.status().role, "leader")
  drain(core)
  core.step(msg.appendResp("n2", "n1", 2, true, 2))
  drain(core)
  t.equal(core.status().commitIndex, 2, "the no-op is committed")

  const r = core.propose([command("x")])
  t.same(r, { ok: true, firstIndex: 3, term: 2 })
  const rd = core.ready()
  t.same(
    rd.entries.map((e) => [e.index, e.term, e.kind]),
    [[3, 2, EntryKind.Command]]
  )
  t.same(
    rd.sendFirst.filter((m) => m.type === "append").map((m) => m.to),
    ["n2"],
    "appends leave before the leader's own write (etcd's optimisation); n3 never answered its probe, so it waits for the next heartbeat"
  )
  core.step(msg.appendResp("n2", "n1", 2, true, 3))
  t.equal(core.status().commitIndex, 2, "n2 has it, but the leader's copy is not durable yet: 1 of 3")
  core.advance(rd)
  t.equal(core.status().commitIndex, 3, "now the leader's own copy counts: 2 of 3")
})

t.test("Ready: entries are stamped with leader time that never runs backwards", async (t) => {
  const core = lone({ members: ["n1"] })
  for (let i = 0; i < 30 && core.status().role !== "leader"; i++) core.tick(1000)
  core.tick(5000)
  core.propose([command("a")])
  core.tick(3000) // a clock going backwards is ignored
  core.propose([command("b")])
  const out = drain(core)
  t.same(
    out.committed.filter((e) => e.kind === EntryKind.Command).map((e) => e.time),
    [5000, 5000]
  )
})

t.test("Ready: a conflicting suffix is truncated on disk only if it was handed out", async (t) => {
  const core = lone({ term: 2, log: [1, 1, 1] })
  core.step(msg.append("n2", "n1", 2, 1, 1, entriesOf([2], 2), 0))
  const rd = core.ready()
  t.equal(rd.truncateFrom, 2, "entries 2 and 3 were on disk: drop their keys")
  t.same(
    rd.entries.map((e) => [e.index, e.term]),
    [[2, 2]]
  )
  core.advance(rd)
  t.equal(core.status().lastIndex, 2)

  // Appended and replaced within one Ready: nothing on disk to drop.
  const fresh = lone({ term: 2, log: [1] })
  fresh.step(msg.append("n2", "n1", 2, 1, 1, entriesOf([1, 1], 2), 0))
  fresh.step(msg.append("n3", "n1", 3, 1, 1, entriesOf([3], 2), 0))
  const rd2 = fresh.ready()
  t.equal(rd2.truncateFrom, null)
  t.same(
    rd2.entries.map((e) => [e.index, e.term]),
    [[2, 3]]
  )
})

t.test("a (pre-)candidate that hears from the leader of its term becomes its follower", async (t) => {
  const core = lone({ term: 1, log: [1] })
  for (let i = 0; i < 30 && core.status().role !== "precandidate"; i++) core.tick(i)
  core.step(msg.append("n2", "n1", 1, 1, 1, [], 1))
  t.equal(core.status().role, "follower")
  t.equal(core.status().leader, "n2")

  const candidate = lone({ term: 1, log: [1] })
  for (let i = 0; i < 30 && candidate.status().role !== "precandidate"; i++) candidate.tick(i)
  candidate.step(msg.prevoteResp("n2", "n1", 2, true))
  t.equal(candidate.status().role, "candidate")
  candidate.step(msg.append("n3", "n1", 2, 1, 1, [], 1))
  t.equal(candidate.status().role, "follower", "another node won term 2")
  t.equal(candidate.status().leader, "n3")
  t.equal(candidate.status().vote, "n1", "its own vote for term 2 stays on record")
})

t.test("AppendEntries below the compaction base is acknowledged at the commit index", async (t) => {
  const core = lone({ term: 3, baseIndex: 5, baseTerm: 2, log: [3, 3], applied: 5 })
  t.equal(core.status().firstIndex, 6)
  core.step(msg.append("n2", "n1", 3, 3, 1, [], 5, 1))
  const [reply] = drain(core).messages
  t.match(reply, { type: "append_resp", success: true, matchIndex: 5, round: 1 }, "everything up to the base is committed, hence matches")
})

t.test("a follower's rejection carries fast-backtracking hints", async (t) => {
  const core = lone({ term: 3, log: [1, 1, 2, 2, 2] })
  core.step(msg.append("n2", "n1", 3, 9, 3))
  core.step(msg.append("n2", "n1", 3, 5, 3))
  const [short, conflict] = drain(core).messages
  t.match(short, { success: false, matchIndex: 9, conflictIndex: 6, conflictTerm: 0, lastLogIndex: 5 }, "log too short: retry from our end")
  t.match(conflict, { success: false, matchIndex: 5, conflictIndex: 3, conflictTerm: 2 }, "term mismatch: the first index of our conflicting term")
})

t.test("RaftLog helpers", async (t) => {
  const log = new RaftLog(0, 0, entriesOf([1, 1, 4, 4, 5, 5, 6]), 0)
  t.equal(log.firstIndex, 1)
  t.equal(log.lastIndex, 7)
  t.equal(log.lastTerm, 6)
  t.equal(log.term(0), 0)
  t.equal(log.term(8), undefined)
  t.equal(log.entry(3)?.term, 4)
  t.ok(log.matchTerm(4, 4))
  t.notOk(log.matchTerm(4, 5))
  t.equal(log.firstIndexOfTerm(6, 5), 5)
  t.equal(log.firstIndexOfTerm(2, 1), 1)
  t.equal(log.lastIndexOfTerm(7, 4), 4)
  t.equal(log.lastIndexOfTerm(7, 3), 0, "no entry of term 3")
  t.equal(log.lastIndexOfTerm(3, 5), 0, "term 5 only starts later")
  t.equal(log.lastIndexOfTerm(100, 6), 7)
  t.equal(new RaftLog(0, 0, entriesOf([4, 5]), 0).lastIndexOfTerm(2, 3), 0, "every entry is newer than term 3")
  t.ok(log.isUpToDate(7, 6))
  t.ok(log.isUpToDate(1, 7))
  t.notOk(log.isUpToDate(6, 6))
  t.notOk(log.isUpToDate(99, 5))

  t.equal(log.slice(2, 7, 3).length, 3, "capped by count")
  const big = new RaftLog(0, 0, [1, 2, 3].map((i) => ({ index: i, term: 1, kind: EntryKind.Command, time: 0, data: new Uint8Array(100) })), 0)
  t.equal(big.slice(1, 3, Infinity, 10).length, 1, "an entry bigger than the byte cap still goes, alone")
  const two = 2 * encodedEntrySize(big.entry(1)!)
  t.equal(big.slice(1, 3, Infinity, two).length, 2, "two entries fit in exactly their encoded size")
  t.equal(big.slice(1, 3, Infinity, two - 1).length, 1, "one byte less and the second waits")

  t.equal(log.appendFromLeader(2, entriesOf([4, 4], 3)), 4, "entries we already hold are skipped")
  t.equal(log.lastIndex, 7, "and nothing after them is cut")
  t.equal(log.truncateFrom, null)
})

t.test("the seeded generator is deterministic and stays in range", async (t) => {
  const a = { rng: 42 }
  const b = { rng: 42 }
  const xs = Array.from({ length: 100 }, () => nextRandom(a))
  t.same(
    xs,
    Array.from({ length: 100 }, () => nextRandom(b))
  )
  t.ok(xs.every((x) => x >= 0 && x < 1))
  const ints = Array.from({ length: 1000 }, () => randomInt(a, 10, 20))
  t.ok(ints.every((n) => Number.isInteger(n) && n >= 10 && n < 20))
  t.equal(new Set(ints).size, 10, "every election timeout in [10, 20) occurs")
})

t.test("status() reports the node's view", async (t) => {
  const core = lone({ term: 4, vote: "n2", log: [1, 4], applied: 1 })
  t.same(core.status(), {
    id: "n1",
    membership: { cluster: "", voters: ["n1", "n2", "n3"], learners: [] },
    configIndex: 0,
    role: "follower",
    term: 4,
    vote: "n2",
    leader: null,
    commitIndex: 1,
    baseIndex: 0,
    baseTerm: 0,
    firstIndex: 1,
    lastIndex: 2,
    lastTerm: 4,
    persistedIndex: 2,
    leaderChanges: 0,
    peers: []
  })
})

t.test("a follower counts a leader change when it learns its leader from AppendEntries", async (t) => {
  const core = lone({ term: 1, log: [1] })
  t.equal(core.status().leaderChanges, 0)
  core.step(msg.append("n2", "n1", 1, 1, 1, [], 1, 1))
  t.equal(core.status().leader, "n2")
  t.equal(core.status().leaderChanges, 1, "n2 is the first leader known")
  core.step(msg.append("n2", "n1", 1, 1, 1, [], 1, 2))
  t.equal(core.status().leaderChanges, 1, "the same leader again is no change")
})
