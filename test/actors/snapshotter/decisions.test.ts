/**
 * The Snapshotter's decisions: when to snapshot, how much log stays behind, what a follower does
 * with each chunk, and how a leader's window answers replies and silences.
 */
import t from "tap"
import { compactionBase, expectedOffset, judgeChunk, SendWindow, snapshotDue, trailingEntries, type SentChunk } from "../../../actors/snapshotter/decisions.ts"
import type { InstallSnapshot } from "../../../protocol/raft.ts"

const chunk = (offset: number, index = 50, lastIncludedTerm = 3): InstallSnapshot => ({
  type: "snapshot",
  from: "n1",
  to: "n2",
  term: 4,
  lastIncludedIndex: index,
  lastIncludedTerm,
  offset,
  done: false,
  data: new Uint8Array(10)
})

t.test("when, and how much log stays behind", async (t) => {
  const MiB = 1024 * 1024
  t.notOk(snapshotDue(109, 10, 100, 0, 64 * MiB))
  t.ok(snapshotDue(110, 10, 100, 0, 64 * MiB))
  t.ok(snapshotDue(20, 10, 100, 64 * MiB, 64 * MiB), "few entries, but many bytes of them")
  t.notOk(snapshotDue(20, 10, 100, 64 * MiB - 1, 64 * MiB))
  t.equal(trailingEntries(10_000), 5000, "etcd's catch-up window at the default threshold")
  t.equal(trailingEntries(1_000_000), 5000, "capped, so memory stays bounded")
  t.equal(trailingEntries(40), 20, "half a small threshold")
  t.equal(trailingEntries(1), 1)
  const small = () => 100
  t.equal(compactionBase(10_000, 10_000, 0, small, 32 * MiB), 5000)
  t.equal(compactionBase(100, 10_000, 0, small, 32 * MiB), 0, "never below zero")
  t.equal(compactionBase(6000, 10_000, 3000, small, 32 * MiB), 3000, "never backwards")
  // Entries of 1 MiB: only 32 of them fit in the window behind a snapshot at 10,000.
  const big = () => MiB
  t.equal(compactionBase(10_000, 10_000, 0, big, 32 * MiB), 10_000 - 32, "the window holds at most maxTrailingBytes")
  t.equal(compactionBase(10_000, 10_000, 9_990, big, 32 * MiB), 9_990, "and never moves the base backwards")
  t.equal(compactionBase(10_000, 10_000, 0, big, MiB / 2), 10_000, "an entry bigger than the window: none kept")
  t.equal(compactionBase(10_000, 10_000, 0, () => undefined, 0), 5000, "sizes unknown count as nothing: the entry bound alone applies")
})

t.test("a follower starts, appends, or asks for the offset it expects", async (t) => {
  t.equal(judgeChunk(undefined, chunk(0)), "start")
  t.equal(judgeChunk(undefined, chunk(10)), "resync", "a chunk from the middle of a snapshot we are not installing")
  t.equal(expectedOffset(undefined, chunk(10)), 0)
  const session = { index: 50, lastTerm: 3, received: 20 }
  t.equal(judgeChunk(session, chunk(20)), "append")
  t.equal(judgeChunk(session, chunk(10)), "resync", "a duplicate")
  t.equal(judgeChunk(session, chunk(30)), "resync", "a gap: something was lost")
  t.equal(expectedOffset(session, chunk(30)), 20)
  t.equal(judgeChunk(session, chunk(0)), "resync", "a late first chunk of the same snapshot does not restart it")
  t.equal(judgeChunk(session, chunk(0, 60)), "start", "a newer snapshot replaces the session")
  t.equal(judgeChunk(session, chunk(20, 50, 4)), "resync", "same index, other term: another snapshot")
  t.equal(expectedOffset(session, chunk(20, 50, 4)), 0)
})

const sent = (w: SendWindow, offset: number, size: number, done = false): SentChunk => {
  const c = { offset, data: new Uint8Array(size), done }
  w.sentChunk(c)
  return c
}

t.test("a leader's window: progress frees it, a repeated offset sends the gap again once", async (t) => {
  const w = new SendWindow(2)
  sent(w, 0, 10)
  sent(w, 10, 10)
  t.ok(w.full)
  t.same(w.reply(10), { resend: [] })
  t.equal(w.acked, 10)
  t.notOk(w.full)
  const third = sent(w, 20, 10, true)
  t.ok(w.ended)
  const gap = w.reply(10)
  t.not(gap, "restart")
  t.same(gap === "restart" ? [] : gap.resend.map((c) => c.offset), [10, 20], "the follower missed 10: both unconfirmed chunks again")
  t.same(w.reply(10), { resend: [] }, "the same gap is answered once")
  t.same(w.reply(5), { resend: [] }, "a stale reply changes nothing")
  t.same(w.reply(30), { resend: [] })
  t.equal(w.inflight.length, 0)
  t.equal(third.done, true)
})

t.test("a follower that lost its install asks for byte 0: the transfer restarts", async (t) => {
  const w = new SendWindow(4)
  sent(w, 0, 10)
  sent(w, 10, 10)
  w.reply(10)
  t.equal(w.reply(0), "restart")
})

t.test("silences send the unconfirmed chunks again, then give up", async (t) => {
  const w = new SendWindow(4)
  sent(w, 0, 10)
  sent(w, 10, 10)
  const again = w.silence(2)
  t.same(again === "give_up" ? [] : again.map((c) => c.offset), [0, 10])
  t.not(w.silence(2), "give_up")
  t.equal(w.silence(2), "give_up")
  const fresh = new SendWindow(4)
  sent(fresh, 0, 10)
  fresh.silence(1)
  fresh.reply(10)
  t.equal(fresh.silences, 0, "progress resets the count")
})

t.test("SendWindow: a follower that holds more of this snapshot than we sent (from an earlier leader) is skipped ahead", async (t) => {
  const w = new SendWindow(2)
  sent(w, 0, 100)
  t.equal(w.toSkip, 0)
  t.same(w.reply(400), { resend: [] }, "its offset is past everything we sent")
  t.equal(w.acked, 400)
  t.same(w.inflight, [], "nothing of ours is still unconfirmed")
  t.equal(w.toSkip, 300, "the next 300 bytes are read, not sent")
  w.skipped(300)
  t.equal(w.toSkip, 0)
  t.equal(w.sent, 400, "sending goes on from the follower's offset")
})
