/**
 * Stories about the log: repair of divergent followers, the commit rule, flow control, and a
 * network that loses, duplicates and reorders messages.
 */
import t, { type Test } from "tap"
import { nextRandom } from "../../../actors/raft/random.ts"
import { newProgress, quorumValue } from "../../../actors/raft/replicator.ts"
import type { RaftState } from "../../../actors/raft/state.ts"
import type { NodeId, RaftMessage } from "../../../protocol/raft.ts"
import { Cluster, entriesOf, is } from "./harness.ts"

/** Replaces a node's durable state and restarts it from there (a hand-built log). */
const restartWithLog = (c: Cluster, id: NodeId, terms: ReadonlyArray<number>, term: number): void => {
  const disk = c.node(id).disk
  disk.entries = entriesOf(terms)
  disk.hardState = { term, vote: null }
  disk.applied = 0
  c.restart(id)
}

const termsOf = (c: Cluster, id: NodeId): number[] => c.core(id).s.log.entries.map((e) => e.term)

t.test("log repair: the leader brings every follower of Figure 7 to its own log, with few rejections", async (t) => {
  // Raft paper, Figure 7: the leader of term 8 and six possible followers (terms per index).
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
  const followers: ReadonlyArray<{ readonly name: string; readonly log: ReadonlyArray<number>; readonly rejections: number }> = [
    { name: "a (missing one entry)", log: [1, 1, 1, 4, 4, 5, 5, 6, 6], rejections: 1 },
    { name: "b (missing six)", log: [1, 1, 1, 4], rejections: 1 },
    { name: "c (one extra uncommitted entry)", log: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], rejections: 0 },
    { name: "d (two extra entries of term 7)", log: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], rejections: 0 },
    { name: "e (two conflicting term-4 entries, three missing)", log: [1, 1, 1, 4, 4, 4, 4], rejections: 2 },
    { name: "f (eight conflicting entries of terms 2 and 3)", log: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], rejections: 2 }
  ]
  for (const f of followers) {
    const c = new Cluster({ size: 3 })
    restartWithLog(c, "n1", leaderLog, 7)
    restartWithLog(c, "n2", f.log, 7)
    restartWithLog(c, "n3", leaderLog, 7) // gives n1 the vote it needs
    c.campaign("n1")
    t.equal(c.status("n1").term, 8, `${f.name}: n1 leads term 8`)
    c.deliverAll()
    t.same(termsOf(c, "n2"), [...leaderLog, 8], `${f.name}: the follower's log is the leader's`)
    t.same(c.node("n2").disk.entries.map((e) => e.term), [...leaderLog, 8], `${f.name}: on disk too (conflicting keys dropped)`)
    // Backtracking steps: distinct prevLogIndex values the follower refused (a commit update sent
    // while a probe is outstanding is refused again at the same index; that costs no step).
    const refused = c.sent.filter(is.all(is.from("n2"), is.appendReject)).map((m) => (m.type === "append_resp" ? m.matchIndex : 0))
    const steps = new Set(refused).size
    t.equal(steps, f.rejections, `${f.name}: ${steps} backtracking steps (${refused.length} rejections)`)
    t.equal(c.status("n1").commitIndex, 11, `${f.name}: the leader commits through its no-op`)
  }
})

t.test("log repair: an old leader's long uncommitted tail is replaced, with fast backtracking", async (t) => {
  const c = new Cluster({ size: 3 })
  c.campaign("n1")
  for (let i = 0; i < 3; i++) c.propose("n1", `c${i}`)
  c.deliverAll()
  const healN1 = c.isolate("n1")
  for (let i = 0; i < 40; i++) t.ok(c.propose("n1", `orphan${i}`).ok, "n1 accepts while cut off") // indexes 5..44, term 1
  c.runUntil(() => c.leaders().some((id) => id !== "n1"))
  const second = c.leaders().find((id) => id !== "n1")!
  for (let i = 0; i < 20; i++) c.propose(second, `d${i}`)
  c.deliverAll()
  // The second leader crashes; n1 rejoins and must follow the remaining node, whose log is newer.
  c.crash(second)
  healN1()
  const third = c.ids.find((id) => id !== "n1" && id !== second)!
  const mark = c.sent.length
  c.runUntil(() => c.status(third).role === "leader" && c.status("n1").leader === third)
  c.runUntil(() => c.status("n1").lastIndex === c.status(third).lastIndex && c.status("n1").commitIndex === c.status(third).commitIndex)
  const rejections = c.sent.slice(mark).filter(is.all(is.from("n1"), is.appendReject)).length
  t.ok(rejections >= 1 && rejections <= 3, `${rejections} rejections for 40 divergent entries`)
  t.same(c.log("n1"), c.log(third), "n1's log equals the new leader's")
  t.notOk(c.log("n1").some((e) => e.includes("orphan")), "no orphan survives")
  const expected = ["c0", "c1", "c2", ...Array.from({ length: 20 }, (_, i) => `d${i}`)]
  t.same(c.applied("n1"), expected, "n1 applied the committed history and nothing else")
  t.same(c.applied(third), expected)
})

t.test("a follower that was down catches up in batches of at most maxAppendEntries", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  const lagger = c.ids.find((id) => id !== leader)!
  c.crash(lagger)
  for (let i = 0; i < 30; i++) c.propose(leader, `w${i}`)
  c.run(2)
  t.equal(c.status(leader).commitIndex, 31, "two of three commit without it")
  c.restart(lagger)
  const mark = c.sent.length
  c.runUntil(() => c.applied(lagger).length === 30)
  const appends = c.sent.slice(mark).filter(is.all(is.to(lagger), is.appendWithEntries))
  t.ok(appends.every((m) => m.type === "append" && m.entries.length <= c.tuning.maxAppendEntries), "no message carries more than 8 entries")
  t.ok(appends.length >= 4, `${appends.length} AppendEntries carried 30 entries`)
  t.same(c.applied(lagger), c.applied(leader))
})

/**
 * Figure 8 of the Raft paper, with five nodes and one entry per AppendEntries so each step can
 * be steered. Returns the cluster at the moment that matters: n1 leads term 3, entry 2 (term 1)
 * is stored on a majority that n1 knows of, and n1's own no-op (3@3) is on n1 alone.
 */
const figure8 = (t: Test): Cluster => {
  const c = new Cluster({ size: 5, tuning: { maxAppendEntries: 1 } })
  // (a) n1 leads term 1 and replicates 2@1 to n2 only.
  c.campaign("n1")
  c.deliverAll()
  const onlyN2 = c.drop(is.all(is.from("n1"), (m) => m.to !== "n2"))
  c.propose("n1", "old")
  c.deliverAll()
  t.same(c.log("n2"), ["1@1:<config>", "2@1:old"])
  t.equal(c.status("n1").commitIndex, 1, "(a) 2@1 is on two of five: not committed")
  onlyN2()
  // (b) n1 crashes; n5 wins term 2 with n3 and n4 (restarted, so they know no leader) and
  // appends its no-op 2@2, which never leaves it; then n5 crashes.
  c.crash("n1")
  c.restart("n3")
  c.restart("n4")
  const silentN5 = c.drop(is.all(is.from("n5"), is.type("append")))
  c.campaign("n5")
  t.equal(c.status("n5").term, 2)
  t.same(c.log("n5"), ["1@1:<config>", "2@2:<noop>"], "(b) n5 leads term 2 with its own entry at index 2")
  c.crash("n5")
  silentN5()
  // (c) n1 restarts and wins term 3 with n3 and n4. It replicates 2@1 to them, but every message
  // that would store its term-3 entry on a follower is lost (probes the follower rejects pass).
  c.restart("n1")
  c.drop((m) => m.type === "append" && m.entries.some((e) => e.term === 3) && c.core(m.to).s.log.matchTerm(m.prevLogIndex, m.prevLogTerm))
  c.campaign("n1")
  t.equal(c.status("n1").term, 3)
  c.tick("n1", c.tuning.heartbeatTicks) // one heartbeat round more: still nothing of term 3 lands
  c.deliverAll()
  return c
}

t.test("Figure 8: a leader never commits an entry of an earlier term by counting replicas", async (t) => {
  const c = figure8(t)
  const st = c.status("n1")
  t.equal(st.role, "leader", "(c) n1 still leads term 3")
  t.same(c.log("n3"), ["1@1:<config>", "2@1:old"], "n3 holds 2@1")
  t.same(c.log("n4"), ["1@1:<config>", "2@1:old"], "n4 holds 2@1")
  const match = new Map(st.peers.map((p) => [p.id, p.matchIndex]))
  t.equal(match.get("n3"), 2, "n1 knows n3 matches through 2")
  t.equal(match.get("n4"), 2, "n1 knows n4 matches through 2")
  t.equal(st.commitIndex, 1, "2@1 is on a known majority (n1, n3, n4) and still not committed")
  for (const id of ["n1", "n2", "n3", "n4"]) t.same(c.appliedLog(id), ["1@1:<config>"], `${id} applied nothing of term 1 beyond the no-op`)

  t.test("(d) …which is what lets a later leader overwrite it safely", async (t) => {
    c.crash("n1")
    c.heal()
    c.restart("n5")
    c.restart("n3")
    c.restart("n4")
    c.campaign("n5") // its last entry 2@2 beats 2@1: n3 and n4 vote for it
    t.equal(c.status("n5").role, "leader")
    c.deliverAll()
    c.tick("n5", c.tuning.heartbeatTicks)
    c.deliverAll()
    const term = c.status("n5").term
    for (const id of ["n2", "n3", "n4", "n5"]) {
      t.same(c.log(id), ["1@1:<config>", "2@2:<noop>", `3@${term}:<noop>`], `${id}: 2@1 was replaced by n5's 2@2`)
      t.same(c.appliedLog(id), c.log(id), `${id} applied n5's history`)
    }
    t.same(c.applied("n2"), [], "\"old\", once on four of five logs, was never applied anywhere")
  })
})

t.test("Figure 8 (e): the old entry commits indirectly, with the first entry of the leader's term", async (t) => {
  const c = figure8(t)
  t.equal(c.status("n1").commitIndex, 1)
  c.heal()
  c.tick("n1", c.tuning.heartbeatTicks)
  c.deliverAll()
  c.tick("n1", c.tuning.heartbeatTicks)
  c.deliverAll()
  t.equal(c.status("n1").commitIndex, 3, "3@3 reached a majority: 3 and, with it, 2 commit")
  for (const id of ["n1", "n2", "n3", "n4"]) {
    t.same(c.appliedLog(id), ["1@1:<config>", "2@1:old", "3@3:<noop>"], `${id} applied 2@1 and 3@3`)
  }
})

t.test("flow control: at most maxInflight AppendEntries with entries in flight to a slow follower", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  const slow = c.ids.find((id) => id !== leader)!
  const toSlow = is.all(is.to(slow), is.appendWithEntries)
  let most = 0
  const watch = (): void => {
    most = Math.max(most, c.pending(toSlow).length)
  }
  for (let i = 0; i < 100; i++) {
    c.propose(leader, `p${i}`)
    c.deliverAll(is.to(slow)) // the fast follower keeps up; the slow one's mail piles up
    watch()
  }
  t.equal(c.pending(toSlow).length, 4, "the window is full: four AppendEntries to the slow follower")
  t.equal(c.status(leader).commitIndex, 101, "the leader and the fast follower commit all 100")
  const fast = c.ids.find((id) => id !== leader && id !== slow)!
  c.tick(leader, c.tuning.heartbeatTicks) // the fast follower hears the last commit index
  c.deliverAll(is.to(slow))
  t.equal(c.applied(fast).length, 100)

  // The slow follower reads one message at a time; everything else flows at once, with ticks.
  for (let step = 0; c.pending(is.to(slow)).length > 0; step++) {
    c.deliverOne(is.to(slow))
    c.deliverAll(is.to(slow))
    watch()
    if (step % 3 === 0) {
      c.tickAll(1)
      watch()
      c.deliverAll(is.to(slow))
    }
    if (step > 10_000) throw new Error("no progress")
  }
  t.equal(most, c.tuning.maxInflight, "never more than four unacknowledged AppendEntries with entries")
  t.equal(c.applied(slow).length, 100, "the slow follower got everything")
  t.same(c.applied(slow), c.applied(leader))

  t.test("lost AppendEntries and lost acknowledgements are recovered by heartbeats", async (t) => {
    const lossy = c.drop(toSlow)
    const mark = c.sent.length
    for (let i = 0; i < 20; i++) c.propose(leader, `q${i}`)
    c.deliverAll()
    c.tick(leader, c.tuning.heartbeatTicks)
    c.deliverAll()
    t.equal(c.status(slow).lastIndex, 101, "the slow follower lost every entry-carrying message")
    t.ok(c.sent.slice(mark).some(is.all(is.from(slow), is.appendReject)), "the next heartbeat (an empty AppendEntries) revealed the gap")
    t.equal(c.pending(toSlow).length, 0, "the retry (a probe) was lost too")
    lossy()
    c.run(c.tuning.heartbeatTicks)
    t.equal(c.applied(slow).length, 120, "the next heartbeat round resent the entries; all applied")

    const mute = c.drop(is.all(is.from(slow), is.type("append_resp")))
    for (let i = 0; i < 20; i++) c.propose(leader, `r${i}`)
    c.run(1)
    t.ok(c.status(leader).peers.find((p) => p.id === slow)!.matchIndex <= 121, "the leader hears no acknowledgement")
    mute()
    c.run(3 * c.tuning.heartbeatTicks)
    t.equal(c.status(leader).peers.find((p) => p.id === slow)!.matchIndex, 141, "a heartbeat's answer told it how far the follower is")
    t.equal(c.applied(slow).length, 140, "all 140 applied")
    t.same(c.applied(slow), c.applied(leader))
    t.same(c.leaders(), [leader], "a few lost messages never cost the leadership")
  })
})

t.test("duplicated and reordered messages change nothing: every node applies the same sequence", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  const term = c.status(leader).term
  const accepted: string[] = []
  for (let round = 0; round < 60; round++) {
    if (round < 40) {
      for (let k = 0; k < 3; k++) {
        const text = `r${round}.${k}`
        if (c.propose(leader, text).ok) accepted.push(text)
      }
    }
    c.tickAll(1)
    // Deliver this batch backwards, every message twice.
    for (const m of c.take().reverse()) {
      c.deliver(m)
      c.deliver(m)
    }
  }
  c.run(5)
  t.same(c.leaders(), [leader], "the leader kept leading")
  t.equal(c.status(leader).term, term)
  t.equal(accepted.length, 120)
  for (const id of c.ids) t.same(c.applied(id), accepted, `${id} applied all 120 commands once, in order`)
})

t.test("a seeded storm of loss, duplication, reordering and partitions: same applied sequence everywhere", async (t) => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const c = new Cluster({ size: 5, seed })
    const rng = { rng: seed * 977 }
    const random = (): number => nextRandom(rng)
    let heal: (() => void) | null = null
    let writes = 0
    for (let step = 0; step < 600; step++) {
      if (step % 100 === 0) {
        heal?.()
        heal = null
        if (random() < 0.6) {
          const shuffled = [...c.ids].sort(() => random() - 0.5)
          const cut = 1 + Math.floor(random() * 2)
          heal = c.partition(shuffled.slice(0, cut), shuffled.slice(cut))
        }
      }
      const leader = c.leader()
      if (leader !== undefined && random() < 0.5) c.propose(leader, `s${seed}w${writes++}`)
      c.tickAll(1)
      const batch = c.take()
      const deliver: RaftMessage[] = []
      for (const m of batch) {
        const r = random()
        if (r < 0.1) continue // lost
        deliver.push(m)
        if (r > 0.9) deliver.push(m) // duplicated
      }
      // Shuffled within the batch; a few messages held back to the next one.
      deliver.sort(() => random() - 0.5)
      for (const m of deliver) {
        if (random() < 0.1) c.queue.push(m)
        else c.deliver(m)
      }
    }
    heal?.()
    const leader = c.stabilize()
    c.propose(leader, "final")
    c.runUntil(() => c.ids.every((id) => c.applied(id).at(-1) === "final"))
    const reference = c.appliedLog(leader)
    for (const id of c.ids) t.same(c.appliedLog(id), reference, `seed ${seed}: ${id} applied the leader's sequence`)
    t.ok(c.applied(leader).length > 10, `seed ${seed}: ${c.applied(leader).length} commands applied`)
  }
})

t.test("a new commit index rides on the next append, or goes alone with the next heartbeat", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  c.settle()
  const followers = c.ids.filter((id) => id !== leader)
  const mark = c.sent.length
  c.propose(leader, "x")
  c.deliverAll()
  const commit = c.status(leader).commitIndex
  t.equal(commit, 2, "x committed on the leader")
  const empty = (m: RaftMessage): boolean => m.type === "append" && m.entries.length === 0
  t.same(c.sent.slice(mark).filter(empty), [], "no empty AppendEntries went out just to carry it")
  for (const id of followers) t.equal(c.status(id).commitIndex, 1, `${id} has not heard it yet`)

  c.propose(leader, "y")
  c.process(leader)
  const carried = c.pending(is.appendWithEntries)
  t.equal(carried.length, 2, "y's AppendEntries to both followers")
  t.ok(carried.every((m) => m.type === "append" && m.leaderCommit === commit), "carry the commit index of x")
  c.deliverAll()
  for (const id of followers) t.same(c.applied(id), ["x"], `${id} applied x on y's append`)

  c.tick(leader, c.tuning.heartbeatTicks)
  const alone = c.pending(is.from(leader))
  t.ok(alone.length === 2 && alone.every((m) => empty(m) && m.type === "append" && m.leaderCommit === 3), "the next heartbeat sends y's commit alone")
  c.deliverAll()
  for (const id of followers) t.same(c.applied(id), ["x", "y"])
})

t.test("appends are the heartbeats: a follower sent one since the last heartbeat gets no other", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  c.settle()
  // Tick to a heartbeat, so the next one is exactly heartbeatTicks away.
  while (c.pending(is.from(leader)).length === 0) c.tick(leader)
  c.deliverAll()

  c.propose(leader, "x")
  c.process(leader)
  c.deliverAll(is.type("append_resp")) // the followers store x; their answers wait
  c.tick(leader, c.tuning.heartbeatTicks)
  t.same(c.pending(is.from(leader)), [], "x's appends, which carried the latest commit index, stood for this heartbeat")

  c.deliverAll() // the answers: x commits
  c.tick(leader, c.tuning.heartbeatTicks)
  t.equal(c.pending(is.from(leader)).length, 2, "a follower lacking the commit index gets the next heartbeat")
  c.deliverAll()
  c.tick(leader, c.tuning.heartbeatTicks)
  t.equal(c.pending(is.from(leader)).length, 2, "and with nothing to send, every heartbeat goes out")
  c.deliverAll()
  for (const id of c.ids) t.same(c.applied(id), ["x"])
  t.same(c.leaders(), [leader])
})

t.test("quorumValue: the quorum-th largest of ours and the followers', for clusters of 1 to 7", async (t) => {
  const rng = { rng: 17 }
  const random = (n: number): number => Math.floor(nextRandom(rng) * n)
  for (let trial = 0; trial < 2000; trial++) {
    const size = 1 + random(7)
    const peers = Array.from({ length: size - 1 }, (_, i) => `p${i}`)
    const own = random(6)
    const s = { peers, voterPeers: peers, selfVoter: true, quorum: Math.floor(size / 2) + 1, progress: new Map() } as unknown as RaftState
    for (const p of peers) s.progress.set(p, { ...newProgress({ log: { lastIndex: 0 } } as unknown as RaftState), match: random(6) })
    const sorted = [own, ...peers.map((p) => s.progress.get(p)!.match)].sort((a, b) => b - a)
    const got = quorumValue(s, own, (pr) => pr.match)
    if (got !== sorted[s.quorum - 1]) t.fail(`own ${own}, matches ${sorted.join(",")}: got ${got}, want ${sorted[s.quorum - 1]}`)
  }
  t.pass("2,000 random clusters agree with sorting")
})
