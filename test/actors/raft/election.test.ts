/**
 * Stories about elections: who leads, who votes for whom, Pre-Vote, check-quorum, terms.
 * Modelled on etcd-io/raft's raft_test.go and raft_paper_test.go, written for our core.
 */
import t from "tap"
import { Cluster, drain, is, lone, msg } from "./harness.ts"
import type { RaftMessage } from "../../../protocol/raft.ts"

const replies = (ms: ReadonlyArray<RaftMessage>, type: RaftMessage["type"]) => ms.filter((m) => m.type === type)

t.test("a single-node cluster elects itself and commits and applies a proposal", async (t) => {
  const c = new Cluster({ size: 1 })
  t.equal(c.status("n1").role, "follower", "every node starts as a follower")
  c.tick("n1", 2 * c.tuning.electionTicks)
  const st = c.status("n1")
  t.equal(st.role, "leader", "alone, it wins its own pre-vote and vote")
  t.equal(st.term, 1)
  t.equal(st.vote, "n1")
  t.same(c.node("n1").disk.hardState, { term: 1, vote: "n1" }, "its vote was persisted")
  t.same(c.appliedLog("n1"), ["1@1:<config>"], "the first leader's entry (the seeded configuration) commits on its own")

  const r = c.propose("n1", "x=1")
  t.same(r, { ok: true, firstIndex: 2, term: 1 })
  t.same(c.appliedLog("n1"), ["1@1:<config>", "2@1:x=1"], "a majority of one commits as soon as the entry is durable")
  t.same(c.core("n1").propose([]), { ok: true, firstIndex: 3, term: 1 }, "an empty proposal appends nothing")
  t.equal(c.sent.length, 0, "it never had anyone to talk to")
})

t.test("a proposal on a follower is refused with the leader's id", async (t) => {
  const c = new Cluster({ size: 3 })
  t.same(c.propose("n1", "x"), { ok: false, leader: null }, "before any election nobody knows a leader")
  const leader = c.stabilize()
  for (const id of c.ids.filter((id) => id !== leader)) {
    t.same(c.propose(id, "x"), { ok: false, leader }, `${id} points at ${leader}`)
  }
  t.equal(c.status(leader).lastIndex, 1, "nothing but the leader's no-op was appended")
})

t.test("three nodes: exactly one leader, whose no-op commits; proposals apply in order everywhere", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  c.settle()
  const term = c.status(leader).term
  t.same(c.leaders(), [leader], "exactly one leader")
  for (const id of c.ids) {
    t.equal(c.status(id).term, term, `${id} is in the leader's term`)
    t.equal(c.status(id).leader, leader, `${id} knows the leader`)
    t.same(c.appliedLog(id), [`1@${term}:<config>`], `${id} applied the first leader's configuration entry of term ${term}`)
  }

  const sent: string[] = []
  for (let i = 0; i < 20; i++) {
    sent.push(`cmd${i}`)
    t.ok(c.propose(leader, `cmd${i}`).ok)
    if (i % 3 === 0) c.run(1) // interleave ticks (heartbeats) with proposals
  }
  c.settle()
  for (const id of c.ids) t.same(c.applied(id), sent, `${id} applied all 20 commands in proposal order`)

  c.run(200)
  t.same(c.leaders(), [leader], "a healthy cluster keeps its leader for 20 election timeouts")
  t.equal(c.status(leader).term, term, "and its term")
})

t.test("votes", async (t) => {
  t.test("a node votes at most once per term, and persists the vote before announcing it", async (t) => {
    const n1 = lone()
    n1.step(msg.vote("n2", "n1", 1, 0, 0))
    const first = drain(n1)
    t.same(first.hardState, { term: 1, vote: "n2" }, "the vote is handed out for persisting")
    t.same(replies(first.sendFirst, "vote_resp"), [], "a vote never leaves before it is durable")
    t.same(first.messages, [msg.voteResp("n1", "n2", 1, true)], "granted to the first candidate")

    n1.step(msg.vote("n3", "n1", 1, 5, 1))
    t.same(drain(n1).messages, [msg.voteResp("n1", "n3", 1, false)], "refused to a second candidate in the same term")
    n1.step(msg.vote("n2", "n1", 1, 0, 0))
    t.same(drain(n1).messages, [msg.voteResp("n1", "n2", 1, true)], "a retransmitted request from the same candidate is granted again")
    n1.step(msg.vote("n3", "n1", 2, 0, 0))
    const next = drain(n1)
    t.same(next.messages, [msg.voteResp("n1", "n3", 2, true)], "a new term brings a new vote")
    t.same(next.hardState, { term: 2, vote: "n3" })
  })

  t.test("§5.4.1: a vote (and a pre-vote) goes only to a log at least as up to date", async (t) => {
    // Our log: 1@1 2@1 3@2; we are in term 2.
    const cases: ReadonlyArray<{ readonly lastIndex: number; readonly lastTerm: number; readonly granted: boolean; readonly why: string }> = [
      { lastIndex: 9, lastTerm: 1, granted: false, why: "longer but with an older last term" },
      { lastIndex: 2, lastTerm: 2, granted: false, why: "same last term but shorter" },
      { lastIndex: 3, lastTerm: 2, granted: true, why: "identical last entry" },
      { lastIndex: 4, lastTerm: 2, granted: true, why: "same last term and longer" },
      { lastIndex: 1, lastTerm: 3, granted: true, why: "shorter but with a newer last term" }
    ]
    for (const k of cases) {
      const voter = lone({ term: 2, log: [1, 1, 2] })
      voter.step(msg.vote("n2", "n1", 3, k.lastIndex, k.lastTerm))
      const out = drain(voter)
      t.same(out.messages, [msg.voteResp("n1", "n2", 3, k.granted)], `vote: ${k.why}`)
      t.equal(voter.status().term, 3, "the candidate's term is adopted either way")
      t.equal(voter.status().vote, k.granted ? "n2" : null)

      const preVoter = lone({ term: 2, log: [1, 1, 2] })
      preVoter.step(msg.prevote("n2", "n1", 3, k.lastIndex, k.lastTerm))
      const pre = drain(preVoter)
      t.same(pre.sendFirst, [msg.prevoteResp("n1", "n2", k.granted ? 3 : 2, k.granted)], `pre-vote: ${k.why}`)
      t.same(preVoter.status().term, 2, "a pre-vote never moves the voter's term")
      t.equal(pre.hardState, null, "nor its hard state")
    }
  })

  t.test("a request from an older term is ignored; an older pre-vote is refused with our term", async (t) => {
    const n1 = lone({ term: 5, log: [1, 5] })
    n1.step(msg.vote("n2", "n1", 4, 10, 4))
    t.same(drain(n1), { hardState: null, sendFirst: [], messages: [], entries: [], committed: [], readStates: [], droppedReads: [] })
    n1.step(msg.prevote("n2", "n1", 5, 10, 4))
    t.same(drain(n1).sendFirst, [msg.prevoteResp("n1", "n2", 5, false)], "a pre-vote for a term we are already in: refused (we have no leader but the log is behind)")
    n1.step(msg.prevote("n2", "n1", 3, 10, 4))
    t.same(drain(n1).sendFirst, [msg.prevoteResp("n1", "n2", 5, false)])
  })

  t.test("an AppendEntries from an older term is refused with our term; nothing else changes", async (t) => {
    const n1 = lone({ term: 3, log: [1, 3] })
    n1.step(msg.append("n2", "n1", 2, 2, 3, [], 2))
    const out = drain(n1)
    t.match(out.messages, [{ type: "append_resp", to: "n2", term: 3, success: false }])
    t.equal(n1.status().leader, null, "the stale sender is not taken for a leader")
    t.equal(n1.status().commitIndex, 0, "nor is its commit index")
  })

  t.test("messages addressed to someone else, or from ourselves, are ignored", async (t) => {
    const n1 = lone()
    n1.step(msg.vote("n2", "n3", 1, 0, 0))
    n1.step(msg.vote("n1", "n1", 1, 0, 0))
    t.notOk(n1.hasReady())
    t.equal(n1.status().term, 0)
  })

  t.test("a vote asked by a node outside our configuration is judged like any other (it may be a voter we do not know of yet)", async (t) => {
    const n1 = lone()
    n1.step(msg.vote("n9", "n1", 1, 0, 0))
    t.equal(n1.status().term, 1)
    t.same(n1.ready().messages.map((m) => [m.type, m.to, m.type === "vote_resp" && m.granted]), [["vote_resp", "n9", true]])
  })
})

t.test("a candidate that loses its vote returns to follower; replies to a past campaign are ignored", async (t) => {
  const n1 = lone({ term: 1, log: [1] })
  n1.tick(0)
  for (let i = 0; i < 20 && n1.status().role === "follower"; i++) n1.tick(0)
  t.equal(n1.status().role, "precandidate")
  const pre = drain(n1)
  t.same(
    pre.sendFirst.map((m) => [m.type, m.to, m.term]),
    [
      ["prevote", "n2", 2],
      ["prevote", "n3", 2]
    ],
    "pre-votes ask for term 2 but leave our term at 1"
  )
  t.equal(n1.status().term, 1)
  n1.step(msg.prevoteResp("n2", "n1", 2, true))
  t.equal(n1.status().role, "candidate", "a granted pre-vote makes a majority: now the real election")
  t.equal(n1.status().term, 2)
  const votes = drain(n1)
  t.same(votes.hardState, { term: 2, vote: "n1" })
  t.same(
    votes.messages.map((m) => [m.type, m.to]),
    [
      ["vote", "n2"],
      ["vote", "n3"]
    ],
    "vote requests wait for our own vote to be durable"
  )
  n1.step(msg.prevoteResp("n3", "n1", 2, true))
  t.equal(n1.status().role, "candidate", "a late pre-vote reply changes nothing")
  n1.step(msg.voteResp("n2", "n1", 2, false))
  n1.step(msg.voteResp("n3", "n1", 2, false))
  t.equal(n1.status().role, "follower", "two refusals of three: the election is lost")
  t.equal(n1.status().term, 2)
  t.equal(n1.status().vote, "n1", "it keeps its own vote for the term")
  n1.step(msg.voteResp("n2", "n1", 2, true))
  t.equal(n1.status().role, "follower", "a vote arriving after the campaign ended is ignored")
})

t.test("a leader ignores an AppendEntries of its own term (two leaders in a term cannot happen)", async (t) => {
  const c = new Cluster({ size: 3 })
  c.campaign("n1")
  c.deliver(msg.append("n2", "n1", 1, 5, 1, [], 5))
  t.equal(c.status("n1").role, "leader")
  t.equal(c.status("n1").commitIndex, 1)
  t.equal(c.pending(is.from("n1")).length, 0)
})

t.test("a higher term in a message makes a leader step down", async (t) => {
  const higher: ReadonlyArray<readonly [string, RaftMessage]> = [
    ["append", msg.append("n2", "n1", 5, 0, 0)],
    ["append_resp", msg.appendResp("n2", "n1", 5, false)],
    ["vote_resp (refused)", msg.voteResp("n2", "n1", 5, false)],
    ["prevote_resp (refused)", msg.prevoteResp("n2", "n1", 5, false)],
    ["snapshot", msg.snapshot("n2", "n1", 5)],
    ["snapshot_resp", msg.snapshotResp("n2", "n1", 5)],
    ["vote with transfer (leadership handed over)", msg.vote("n2", "n1", 5, 0, 0, true)]
  ]
  for (const [name, m] of higher) {
    const c = new Cluster({ size: 3 })
    c.campaign("n1")
    t.equal(c.status("n1").role, "leader")
    c.deliver(m)
    const st = c.status("n1")
    t.equal(st.role, "follower", `${name}: the leader steps down`)
    t.equal(st.term, 5, `${name}: and adopts term 5`)
    t.same(c.node("n1").disk.hardState.term, 5, `${name}: the new term is persisted`)
  }

  t.test("a TimeoutNow of a higher term: step down, then campaign at once as told", async (t) => {
    const c = new Cluster({ size: 3 })
    c.campaign("n1")
    c.deliver(msg.timeoutNow("n2", "n1", 5))
    t.equal(c.status("n1").role, "candidate", "no pre-vote: the sender handed leadership over")
    t.equal(c.status("n1").term, 6)
    const votes = c.pending(is.all(is.from("n1"), is.type("vote")))
    t.same(
      votes.map((m) => m.type === "vote" && m.transfer),
      [true, true],
      "its vote requests say it was handed leadership"
    )
  })

  t.test("…except a disruptive (pre-)vote while the leader lease holds (check-quorum)", async (t) => {
    for (const m of [msg.vote("n2", "n1", 5, 9, 1), msg.prevote("n2", "n1", 5, 9, 1)]) {
      const c = new Cluster({ size: 3 })
      c.campaign("n1")
      c.deliver(m)
      t.equal(c.status("n1").role, "leader", `${m.type}: ignored`)
      t.equal(c.status("n1").term, 1, `${m.type}: term unchanged`)
      t.equal(c.pending(is.from("n1")).length, 0, `${m.type}: not even answered`)
    }
  })
})

t.test("a stale leader's AppendEntries is answered with the newer term, and it steps down", async (t) => {
  const c = new Cluster({ size: 3 })
  c.campaign("n1")
  c.run(3)
  const heal = c.isolate("n1")
  // n1 is frozen (not ticked), so it still believes it leads term 1 while n2 and n3 move on.
  for (let i = 0; i < 100 && c.leaders().filter((id) => id !== "n1").length === 0; i++) {
    c.tick("n2")
    c.tick("n3")
    c.deliverAll()
  }
  const newLeader = c.leaders().find((id) => id !== "n1")!
  t.ok(newLeader, "the majority elected a new leader")
  t.equal(c.status("n1").role, "leader", "n1 has not noticed yet")
  const newTerm = c.status(newLeader).term
  t.ok(newTerm > 1)
  heal()

  const mark = c.sent.length
  c.tick("n1", c.tuning.heartbeatTicks) // n1 sends a term-1 heartbeat
  const heartbeats = c.pending(is.all(is.from("n1"), is.type("append")))
  t.ok(heartbeats.length > 0 && heartbeats.every((m) => m.term === 1), "n1 sends heartbeats of term 1")
  c.deliverAll()
  const answers = c.sent.slice(mark).filter(is.all(is.to("n1"), is.type("append_resp")))
  t.ok(answers.length > 0, "the heartbeats are answered")
  t.ok(answers.every((m) => m.term === newTerm && m.type === "append_resp" && !m.success), "with a refusal carrying the newer term")
  t.equal(c.status("n1").role, "follower", "n1 steps down")
  t.equal(c.status("n1").term, newTerm)
  c.run(5)
  t.equal(c.status("n1").leader, newLeader, "and follows the new leader")
  t.same(c.leaders(), [newLeader])
})

t.test("Pre-Vote: an isolated node does not inflate its term and cannot disrupt the leader when it rejoins", async (t) => {
  const c = new Cluster({ size: 3 })
  const leader = c.stabilize()
  const term = c.status(leader).term
  const loner = c.ids.find((id) => id !== leader)!
  const heal = c.isolate(loner)
  const roles = new Set<string>()
  for (let i = 0; i < 20 * c.tuning.electionTicks; i++) {
    c.run(1)
    roles.add(c.status(loner).role)
    if (c.status(loner).term !== term) break
  }
  t.equal(c.status(loner).term, term, "twenty election timeouts later its term is unchanged")
  t.ok(roles.has("precandidate"), "it did keep trying (pre-candidate)")
  t.notOk(roles.has("candidate"), "but never became a candidate: no pre-vote majority")
  const preVotes = c.sent.filter(is.all(is.from(loner), is.type("prevote"))).length
  t.ok(preVotes >= 10, `it sent ${preVotes} pre-votes, all lost`)
  t.equal(c.sent.filter(is.all(is.from(loner), is.type("vote"))).length, 0, "and not a single vote request")

  heal()
  c.run(5 * c.tuning.electionTicks)
  t.same(c.leaders(), [leader], "after it rejoins the leader keeps leading")
  t.equal(c.status(leader).term, term, "in the same term")
  t.equal(c.status(loner).leader, leader, "the loner follows it")
  t.equal(c.status(loner).role, "follower")
  t.ok(c.propose(leader, "after").ok)
  c.deliverAll()
  c.settle()
  for (const id of c.ids) t.same(c.applied(id), ["after"])
})

t.test("Pre-Vote: a duplicated grant from an earlier campaign does not count in a later one", async (t) => {
  // etcd accepts this as "pre-vote is best effort" (etcd-io/etcd#8288); our transport promises
  // to tolerate duplicates and stale replies, and here one would depose a healthy leader.
  const c = new Cluster({ size: 3 })
  // n1 and n2 campaign at once; n3 grants both pre-votes, then gives its real vote to n2.
  for (const id of ["n1", "n2"]) {
    for (let i = 0; i < 30 && c.pending(is.all(is.from(id), is.type("prevote"))).length === 0; i++) c.tick(id)
  }
  c.deliverAll(is.type("vote", "vote_resp"))
  const grant = c.sent.find(is.all(is.from("n3"), is.to("n1"), is.type("prevote_resp")))!
  t.match(grant, { type: "prevote_resp", term: 1, granted: true }, "n3 granted n1's pre-vote for term 1")
  c.deliverAll(is.all(is.from("n1"), is.type("vote")))
  c.deliverAll()
  c.run(5)
  t.same(c.leaders(), ["n2"], "n2 won term 1; n1 follows it in term 1")
  t.equal(c.status("n1").term, 1)

  // Much later n1 is cut off, times out and pre-campaigns for term 2 ...
  const heal = c.isolate("n1")
  c.runUntil(() => c.status("n1").role === "precandidate")
  heal()
  // ... when a duplicate of n3's old grant (term 1) finally arrives.
  c.deliver(grant)
  t.equal(c.status("n1").role, "precandidate", "an old grant says nothing about term 2: n1 keeps waiting")
  t.equal(c.status("n1").term, 1, "and its term stays 1")
  c.run(5 * c.tuning.electionTicks)
  t.same(c.leaders(), ["n2"], "the healthy leader keeps leading")
  t.equal(c.status(c.leader()!).term, 1, "in term 1")
})

t.test("check-quorum: a leader cut off from the majority steps down; the majority elects a new one", async (t) => {
  const c = new Cluster({ size: 5 })
  const leader = c.stabilize()
  const term = c.status(leader).term
  const heal = c.isolate(leader)
  let steppedDownAfter = -1
  for (let i = 1; i <= 5 * c.tuning.electionTicks; i++) {
    c.run(1)
    if (steppedDownAfter < 0 && c.status(leader).role !== "leader") steppedDownAfter = i
  }
  t.ok(steppedDownAfter > 0, `the old leader stepped down after ${steppedDownAfter} ticks`)
  t.ok(steppedDownAfter <= 2 * c.tuning.electionTicks, "within two election timeouts")
  t.equal(c.status(leader).term, term, "stepping down does not change its term")
  const others = c.leaders().filter((id) => id !== leader)
  t.equal(others.length, 1, "the majority has one new leader")
  const newLeader = others[0]!
  t.ok(c.status(newLeader).term > term)

  heal()
  c.run(3 * c.tuning.electionTicks)
  t.same(c.leaders(), [newLeader], "after healing the new leader is the only one")
  t.equal(c.status(leader).leader, newLeader)

  t.test("…while a leader that keeps a majority keeps leading", async (t) => {
    const c = new Cluster({ size: 5 })
    const leader = c.stabilize()
    const term = c.status(leader).term
    const [a, b] = c.ids.filter((id) => id !== leader)
    c.crash(a!)
    c.crash(b!)
    c.run(10 * c.tuning.electionTicks)
    t.same(c.leaders(), [leader], "three of five is a quorum")
    t.equal(c.status(leader).term, term)
  })
})

t.test("a write accepted by a leader that lost its majority is never applied", async (t) => {
  const c = new Cluster({ size: 3 })
  const old = c.stabilize()
  const heal = c.isolate(old)
  t.same(c.propose(old, "lost-write"), { ok: true, firstIndex: 2, term: c.status(old).term }, "accepted: it does not know yet")
  c.run(4 * c.tuning.electionTicks)
  const fresh = c.leaders().find((id) => id !== old)!
  t.ok(fresh)
  t.ok(c.propose(fresh, "kept-write").ok)
  c.deliverAll()
  heal()
  c.run(3 * c.tuning.electionTicks)
  for (const id of c.ids) t.same(c.applied(id), ["kept-write"], `${id} applied only the majority's write`)
  t.notOk(c.log(old).some((e) => e.endsWith(":lost-write")), "the orphaned entry was cut from the old leader's log")
})

t.test("restart: a core rebuilt from what its Readies persisted keeps term and vote, and never votes twice", async (t) => {
  const c = new Cluster({ size: 3 })
  c.deliver(msg.vote("n3", "n1", 7, 0, 0))
  t.same(c.node("n1").disk.hardState, { term: 7, vote: "n3" }, "the vote for n3 in term 7 was persisted")
  c.crash("n1")
  c.restart("n1")
  t.equal(c.status("n1").term, 7)
  t.equal(c.status("n1").vote, "n3")
  t.equal(c.status("n1").role, "follower")

  const mark = c.sent.length
  c.deliver(msg.vote("n2", "n1", 7, 100, 7))
  c.deliver(msg.vote("n3", "n1", 7, 0, 0))
  t.same(
    c.sent.slice(mark),
    [msg.voteResp("n1", "n2", 7, false), msg.voteResp("n1", "n3", 7, true)],
    "after the restart: no vote for n2 in term 7, though its log is better; n3 may ask again"
  )

  t.test("a whole cluster restarts with its logs and applies nothing twice", async (t) => {
    const c = new Cluster({ size: 3 })
    const leader = c.stabilize()
    for (const x of ["a", "b", "c"]) c.propose(leader, x)
    c.deliverAll()
    c.settle()
    const term = c.status(leader).term
    for (const id of c.ids) c.crash(id)
    for (const id of c.ids) c.restart(id)
    for (const id of c.ids) {
      t.equal(c.status(id).term, term, `${id} kept its term`)
      t.equal(c.status(id).lastIndex, 4, `${id} kept its log`)
      t.equal(c.status(id).commitIndex, 4, `${id} starts with commit = its applied index`)
    }
    const again = c.stabilize()
    t.ok(c.status(again).term > term, "a new election, in a later term")
    c.propose(again, "d")
    c.deliverAll()
    c.settle()
    for (const id of c.ids) t.same(c.applied(id), ["a", "b", "c", "d"], `${id} applied each command once`)
  })
})
