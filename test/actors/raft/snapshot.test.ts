/**
 * InstallSnapshot in the consensus core: a leader whose log was compacted past a follower
 * hands it to the Snapshotter; a follower acknowledges a snapshot it does not need and passes
 * on one it does; an installed snapshot replaces the log, and what was on its way to the disk
 * before never counts after.
 */
import t from "tap"
import { seedMembership } from "../../../protocol/membership.ts"
import type { RaftCore } from "../../../actors/raft/core.ts"
import type { InstallSnapshot, RaftMessage } from "../../../protocol/raft.ts"
import { drain, lone, msg } from "./harness.ts"

/** n1 leads term 2 over a log compacted to index 10 (term 1), holding 11 and 12. */
const compactedLeader = (): RaftCore => {
  const core = lone({ term: 1, baseIndex: 10, baseTerm: 1, log: [1, 1], applied: 12 })
  for (let i = 0; i < 40 && core.status().role !== "precandidate"; i++) core.tick(i)
  core.step(msg.prevoteResp("n2", "n1", 2, true))
  core.step(msg.voteResp("n2", "n1", 2, true))
  if (core.status().role !== "leader") throw new Error("setup: n1 did not win")
  return core
}

const chunk = (over: Partial<InstallSnapshot> = {}): InstallSnapshot => ({
  type: "snapshot",
  from: "n2",
  to: "n1",
  term: 3,
  lastIncludedIndex: 20,
  lastIncludedTerm: 2,
  offset: 0,
  done: false,
  data: new Uint8Array([1, 2, 3]),
  ...over
})

const rejectAt = (from: string, prevLogIndex: number, lastIndex: number): RaftMessage => ({
  type: "append_resp",
  from,
  to: "n1",
  term: 2,
  success: false,
  matchIndex: prevLogIndex,
  conflictIndex: lastIndex + 1,
  conflictTerm: 0,
  lastLogIndex: lastIndex,
  round: 0
})

t.test("a leader asks the Snapshotter for a follower that needs compacted entries, once", async (t) => {
  const core = compactedLeader()
  drain(core)
  // n2 has only 3 entries: it needs 4..10, which are gone.
  core.step(rejectAt("n2", 12, 3))
  const rd = core.ready()
  t.same(rd.snapshotsWanted, ["n2"])
  t.equal(rd.sendFirst.filter((m) => m.type === "append" && m.to === "n2").length, 0, "no append can help it")
  t.equal(core.status().peers.find((p) => p.id === "n2")!.state, "snapshot")
  core.tick(1000)
  core.tick(1001)
  core.tick(1002)
  const later = drain(core)
  const beats = later.sendFirst.filter((m) => m.to === "n2")
  t.ok(beats.length > 0, "heartbeats go on while it waits for the snapshot (its election timer stays reset)")
  t.ok(
    beats.every((m) => m.type === "append" && m.entries.length === 0 && m.prevLogIndex === 10 && m.prevLogTerm === 1),
    "empty, naming our base"
  )
  core.step(rejectAt("n2", 10, 3))
  t.equal(core.status().peers.find((p) => p.id === "n2")!.state, "snapshot", "its rejection changes nothing")
  t.notOk(core.ready().snapshotsWanted.length > 0, "asked once")
})

t.test("a follower's snapshot reply: progress goes to the Snapshotter, success resumes replication after it", async (t) => {
  const core = compactedLeader()
  drain(core)
  core.step(rejectAt("n2", 12, 3))
  drain(core)
  core.step({ type: "snapshot_resp", from: "n2", to: "n1", term: 2, lastIncludedIndex: 12, offset: 100, success: false })
  const rd = core.ready()
  t.same(rd.snapshotReplies.map((m) => m.offset), [100], "the sender sees the offset")
  t.equal(core.status().peers.find((p) => p.id === "n2")!.state, "snapshot", "still installing")
  core.step({ type: "snapshot_resp", from: "n2", to: "n1", term: 2, lastIncludedIndex: 12, offset: 200, success: true })
  const after = drain(core)
  const n2 = core.status().peers.find((p) => p.id === "n2")!
  t.same([n2.state, n2.matchIndex, n2.nextIndex], ["probe", 12, 13], "it holds everything up to the snapshot")
  t.ok(
    after.sendFirst.some((m) => m.type === "append" && m.to === "n2" && m.prevLogIndex === 12),
    "replication resumes right after the snapshot"
  )
})

t.test("stale append acknowledgements in the snapshot state do not strand a follower", async (t) => {
  const core = compactedLeader()
  drain(core)
  core.step(rejectAt("n2", 12, 3))
  drain(core)
  // An old acknowledgement shows n2 holds our log up to 12 after all (a stale rejection came first).
  core.step(msg.appendResp("n2", "n1", 2, true, 12))
  const n2 = core.status().peers.find((p) => p.id === "n2")!
  t.equal(n2.state, "probe", "back to the log")
  // The snapshot's success arrives afterwards with an index it already matched: nothing strands.
  core.step({ type: "snapshot_resp", from: "n2", to: "n1", term: 2, lastIncludedIndex: 12, offset: 9, success: true })
  t.not(core.status().peers.find((p) => p.id === "n2")!.state, "snapshot")
})

t.test("the Snapshotter gave up: probe again, which asks for a fresh snapshot", async (t) => {
  const core = compactedLeader()
  drain(core)
  core.step(rejectAt("n2", 12, 3))
  drain(core)
  core.snapshotAbandoned("n2")
  t.same(core.ready().snapshotsWanted, ["n2"], "it still lacks compacted entries: another transfer starts")
})

t.test("a follower passes a needed chunk on, and acknowledges an unneeded one at once", async (t) => {
  const core = lone({ term: 3, log: [1, 2, 2], applied: 1 })
  core.step(chunk())
  const rd = core.ready()
  t.equal(rd.snapshotChunks.length, 1, "the Snapshotter installs it")
  t.equal(core.status().leader, "n2", "the sender is our leader")

  const holds = lone({ term: 3, log: [1, 2, 2], applied: 1 })
  holds.step(chunk({ lastIncludedIndex: 2, lastIncludedTerm: 2 }))
  const out = drain(holds)
  t.same(out.messages, [{ type: "snapshot_resp", from: "n1", to: "n2", term: 3, lastIncludedIndex: 2, offset: 3, success: true }], "we hold its last entry")
  t.equal(holds.status().commitIndex, 2, "and it is committed")
  t.equal(holds.ready().snapshotChunks.length, 0)

  const stale = lone({ term: 3, log: [1, 2, 2], applied: 1 })
  stale.step(chunk({ term: 2 }))
  const staleOut = drain(stale)
  t.equal(staleOut.messages[0]?.type, "append_resp", "a chunk from an old term is answered with our term")
  t.equal(stale.ready().snapshotChunks.length, 0, "and never installed")
})

t.test("an install replaces the log; a Ready made before it never counts after", async (t) => {
  const core = lone({ term: 3, log: [1, 2, 2], applied: 1 })
  core.step(msg.append("n2", "n1", 3, 3, 2, [{ index: 4, term: 2, kind: 1, time: 0, data: new Uint8Array(0) }], 1))
  const before = core.ready()
  t.equal(before.entries.length, 1)
  t.ok(core.canInstall(20, 3, 3), "behind the snapshot, from our leader's term")
  t.notOk(core.canInstall(20, 3, 2), "not from an old leader")
  t.notOk(core.canInstall(1, 1, 3), "not below our commit index")
  t.notOk(core.canInstall(3, 2, 3), "not when we hold its last entry")
  core.installSnapshot(20, 3, seedMembership(["n1", "n2", "n3"]))
  core.advance(before)
  const s = core.status()
  t.same([s.baseIndex, s.baseTerm, s.firstIndex, s.lastIndex, s.commitIndex, s.persistedIndex], [20, 3, 21, 20, 20, 20])
  t.equal(core.s.log.epoch, 1)
  core.step(msg.append("n2", "n1", 3, 20, 3, [{ index: 21, term: 3, kind: 1, time: 0, data: new Uint8Array(0) }], 21))
  const out = drain(core)
  t.same(out.entries.map((e) => e.index), [21], "the log goes on from the snapshot")
  t.ok(out.messages.some((m) => m.type === "append_resp" && m.success && m.matchIndex === 21))
})

t.test("compaction drops entries from memory, never ones not yet applied or durable", async (t) => {
  const core = lone({ term: 1, log: [1, 1, 1, 1, 1], applied: 3 })
  core.compact(5)
  t.equal(core.status().baseIndex, 3, "only up to the applied index")
  t.equal(core.status().firstIndex, 4)
  t.equal(core.s.log.term(3), 1, "the base keeps its term")
  t.equal(core.s.log.entry(5)?.index, 5)
  core.compact(2)
  t.equal(core.status().baseIndex, 3, "never backwards")
})

t.test("a follower that lost its disk is noticed at its first rejection, and gets a snapshot", async (t) => {
  const core = compactedLeader()
  drain(core)
  core.step(msg.appendResp("n2", "n1", 2, true, 13))
  drain(core)
  t.equal(core.status().peers.find((p) => p.id === "n2")!.matchIndex, 13)
  // Wiped and restarted: it rejects the next append with an empty log.
  core.step(rejectAt("n2", 13, 0))
  const rd = core.ready()
  t.same(rd.snapshotsWanted, ["n2"], "everything it needs was compacted: a snapshot")
  const n2 = core.status().peers.find((p) => p.id === "n2")!
  t.same([n2.state, n2.matchIndex], ["snapshot", 0], "its old match no longer counts")
})
