/**
 * The key-value state machine: etcd-style revisions, TTLs driven by leader time, idempotency
 * tokens, and determinism (the same log gives the same state and the same events everywhere).
 */
import t from "tap"
import {
  compareKeys,
  KvState,
  newChanges,
  sessionTtlMs,
  type KeyRecord,
  type KvChanges,
  type KvCommand,
  type KvEvent,
  type KvResult,
  type SessionRecord
} from "../../../actors/applier/kvState.ts"
import type { Compare, TxnOp } from "../../../protocol/client.ts"

/** One applied entry: leader time first (as the Applier does), then the command. */
const step = (kv: KvState, time: number, cmd: KvCommand, changes: KvChanges = newChanges()): { r: KvResult; changes: KvChanges } => {
  kv.advanceTime(time, changes)
  return { r: kv.apply(cmd, changes), changes }
}

const isEmpty = (c: KvChanges): boolean => c.puts.size === 0 && c.dels.size === 0 && c.sessions.size === 0 && c.events.length === 0

const snapshot = (kv: KvState) => ({
  records: [...kv.records].sort(([a], [b]) => (a < b ? -1 : 1)),
  sessions: [...kv.sessions].sort(([a], [b]) => (a < b ? -1 : 1)),
  revision: kv.revision,
  time: kv.time
})

/** What the Applier keeps on disk: the kv and sessions sublevels, mirrored from changes. */
class Disk {
  readonly kv = new Map<string, KeyRecord>()
  readonly sessions = new Map<string, SessionRecord>()
  write(c: KvChanges): void {
    for (const [k, r] of c.puts) this.kv.set(k, r)
    for (const k of c.dels) this.kv.delete(k)
    for (const [client, s] of c.sessions) {
      if (s === null) this.sessions.delete(client)
      else this.sessions.set(client, s)
    }
  }
  /** Records in key order, as a LevelDB iterator returns them. */
  sortedKv(): Array<[string, KeyRecord]> {
    return [...this.kv].sort(([a], [b]) => (a < b ? -1 : 1))
  }
  sortedSessions(): Array<[string, SessionRecord]> {
    return [...this.sessions].sort(([a], [b]) => (a < b ? -1 : 1))
  }
}

t.test("put: one revision per write; createRevision, modRevision and version per key", async (t) => {
  const kv = new KvState()
  t.equal(kv.revision, 0)
  const a1 = step(kv, 1, { op: "put", key: "a", value: "1" })
  t.same(a1.r, { ok: true, revision: 1, key: "a" }, "a create reports no previous revision")
  t.same(kv.get("a"), { value: "1", createRevision: 1, modRevision: 1, version: 1 })
  t.same(a1.changes.events, [{ type: "put", key: "a", record: kv.get("a"), revision: 1 }])
  t.same([...a1.changes.puts.keys()], ["a"])

  step(kv, 2, { op: "put", key: "b", value: "x" })
  const a2 = step(kv, 3, { op: "put", key: "a", value: "2" })
  t.same(a2.r, { ok: true, revision: 3, key: "a", prevRevision: 1 })
  t.same(kv.get("a"), { value: "2", createRevision: 1, modRevision: 3, version: 2 }, "createRevision stays, version counts writes")
  t.same(kv.get("b"), { value: "x", createRevision: 2, modRevision: 2, version: 1 })
  t.equal(kv.revision, 3, "three writes, three revisions")
  t.equal(kv.get("nope"), undefined)
})

t.test("del: removes and bumps the revision; a missing key changes nothing", async (t) => {
  const kv = new KvState()
  step(kv, 1, { op: "put", key: "a", value: "1" })
  step(kv, 2, { op: "put", key: "a", value: "2" })
  const d = step(kv, 3, { op: "del", key: "a" })
  t.same(d.r, { ok: true, revision: 3, key: "a", deleted: true, prevRevision: 2 })
  t.equal(kv.get("a"), undefined)
  t.same(d.changes.events, [{ type: "del", key: "a", revision: 3 }])
  t.same([...d.changes.dels], ["a"])

  const before = snapshot(kv)
  const missing = step(kv, 3, { op: "del", key: "a" })
  t.same(missing.r, { ok: true, revision: 3, key: "a", deleted: false }, "deleting a missing key reports the current revision")
  t.ok(isEmpty(missing.changes), "no change, no event")
  t.same(snapshot(kv), before, "state unchanged")

  step(kv, 4, { op: "put", key: "a", value: "again" })
  t.same(kv.get("a"), { value: "again", createRevision: 4, modRevision: 4, version: 1 }, "a re-created key starts a new life")
})

t.test("cas", async (t) => {
  t.test("expectedRevision 0 only creates", async (t) => {
    const kv = new KvState()
    const created = step(kv, 1, { op: "cas", key: "lock", value: "me", expectedRevision: 0 })
    t.same(created.r, { ok: true, revision: 1, key: "lock" })
    const before = snapshot(kv)
    const again = step(kv, 2, { op: "cas", key: "lock", value: "you", expectedRevision: 0 })
    t.same(again.r, {
      ok: false,
      code: "conflict",
      message: 'key "lock" already exists (revision 1)',
      detail: { revision: 1 }
    })
    t.ok(isEmpty(again.changes))
    t.same(snapshot(kv).records, before.records, "the key still holds the first value")
    t.equal(kv.revision, 1, "a refused cas writes nothing")
  })

  t.test("a matching revision writes; a stale one returns the actual revision and changes nothing", async (t) => {
    const kv = new KvState()
    step(kv, 1, { op: "put", key: "k", value: "v1" })
    step(kv, 2, { op: "put", key: "other", value: "o" })
    const ok = step(kv, 3, { op: "cas", key: "k", value: "v2", expectedRevision: 1 })
    t.same(ok.r, { ok: true, revision: 3, key: "k", prevRevision: 1 })
    t.same(kv.get("k"), { value: "v2", createRevision: 1, modRevision: 3, version: 2 })
    const stale = step(kv, 4, { op: "cas", key: "k", value: "v3", expectedRevision: 1 })
    t.same(stale.r, { ok: false, code: "conflict", message: 'key "k" is at revision 3, not 1', detail: { revision: 3 } })
    t.ok(isEmpty(stale.changes))
    t.equal(kv.get("k")?.value, "v2")
    t.equal(kv.revision, 3)
    const absent = step(kv, 5, { op: "cas", key: "ghost", value: "x", expectedRevision: 7 })
    t.same(absent.r, { ok: false, code: "conflict", message: 'key "ghost" is at revision 0, not 7', detail: { revision: 0 } })
    t.equal(kv.get("ghost"), undefined)
  })

  t.test("cas with a TTL", async (t) => {
    const kv = new KvState()
    step(kv, 100, { op: "cas", key: "lease", value: "holder", expectedRevision: 0, ttl: 50 })
    t.equal(kv.get("lease")?.expiresAt, 150)
  })
})

t.test("TTL: a key expires when leader time reaches expiresAt, not earlier", async (t) => {
  const kv = new KvState()
  step(kv, 5000, { op: "put", key: "session", value: "s", ttl: 1000 })
  step(kv, 5001, { op: "put", key: "plain", value: "p" })
  t.equal(kv.get("session")?.expiresAt, 6000, "expiresAt = leader time of the write + ttl")
  t.equal(kv.revision, 2)

  const early = newChanges()
  kv.advanceTime(5999, early)
  t.ok(isEmpty(early), "one millisecond before: nothing happens")
  t.equal(kv.get("session")?.value, "s", "still readable")
  t.equal(kv.revision, 2)

  const due = newChanges()
  kv.advanceTime(6000, due)
  t.same(due.events, [{ type: "expire", key: "session", revision: 3 }], "an expire event with its own revision")
  t.same([...due.dels], ["session"], "the Applier is told to delete it")
  t.equal(kv.revision, 3, "expiry is a write: the revision moves")
  t.equal(kv.get("session"), undefined)
  t.equal(kv.records.has("session"), false)
  t.equal(kv.get("plain")?.value, "p", "keys without a TTL stay")

  const later = newChanges()
  kv.advanceTime(100_000, later)
  t.ok(isEmpty(later), "an expired key expires once")

  const backwards = newChanges()
  kv.advanceTime(50, backwards)
  t.equal(kv.time, 100_000, "leader time never runs backwards")
  t.ok(isEmpty(backwards))
})

t.test("TTL: rewrites move or cancel the expiry; a deleted key does not expire later", async (t) => {
  const kv = new KvState()
  step(kv, 0, { op: "put", key: "moved", value: "1", ttl: 100 })
  step(kv, 0, { op: "put", key: "cancelled", value: "1", ttl: 100 })
  step(kv, 0, { op: "put", key: "deleted", value: "1", ttl: 100 })
  step(kv, 50, { op: "put", key: "moved", value: "2", ttl: 100 })
  step(kv, 50, { op: "put", key: "cancelled", value: "2" })
  step(kv, 50, { op: "del", key: "deleted" })
  const rev = kv.revision
  const at100 = newChanges()
  kv.advanceTime(100, at100)
  t.same(at100.events, [], "nothing is due at 100 any more")
  t.equal(kv.revision, rev)
  t.equal(kv.nextExpiry(), 150, "the next expiry the leader must make time reach")
  const at150 = newChanges()
  kv.advanceTime(150, at150)
  t.same(at150.events, [{ type: "expire", key: "moved", revision: rev + 1 }], "the rewritten key expires at its new time")
  t.equal(kv.get("cancelled")?.value, "2", "a rewrite without TTL keeps the key for good")
  t.equal(kv.nextExpiry(), undefined, "nothing left to expire")
  kv.advanceTime(10_000_000, newChanges())
  t.equal(kv.get("cancelled")?.value, "2")
})

t.test("TTL: a write at the expiry time sees the key as gone", async (t) => {
  const kv = new KvState()
  step(kv, 0, { op: "put", key: "k", value: "old", ttl: 10 })
  const r = step(kv, 10, { op: "cas", key: "k", value: "new", expectedRevision: 0 })
  t.same(r.r, { ok: true, revision: 3, key: "k" }, "expired first (revision 2), then created afresh (revision 3)")
  t.same(
    r.changes.events.map((e) => [e.type, e.revision]),
    [
      ["expire", 2],
      ["put", 3]
    ]
  )
  t.same(kv.get("k"), { value: "new", createRevision: 3, modRevision: 3, version: 1 })
})

/** A log of (leader time, command) pairs touching everything: TTLs, dels, cas, tokens. */
const script: ReadonlyArray<readonly [number, KvCommand]> = [
  [1000, { op: "put", key: "a", value: "1" }],
  [1000, { op: "put", key: "t1", value: "x", ttl: 500 }],
  [1200, { op: "cas", key: "lock", value: "w1", expectedRevision: 0, ttl: 300, token: { client: "w1", seq: 1 } }],
  [1300, { op: "cas", key: "lock", value: "w2", expectedRevision: 0, token: { client: "w2", seq: 1 } }],
  [1300, { op: "put", key: "t2", value: "y", ttl: 100 }],
  [1400, { op: "del", key: "a" }],
  [1450, { op: "put", key: "a", value: "2", token: { client: "w1", seq: 2 } }],
  [1450, { op: "put", key: "a", value: "2", token: { client: "w1", seq: 2 } }],
  [1500, { op: "put", key: "t1", value: "refreshed", ttl: 1000 }],
  [1600, { op: "cas", key: "lock", value: "w2", expectedRevision: 0, token: { client: "w2", seq: 2 } }],
  [1600, { op: "del", key: "missing" }],
  [2000, { op: "put", key: "t3", value: "z", ttl: 1 }],
  [2600, { op: "put", key: "b", value: "1", token: { client: "w1", seq: 1 } }],
  [2600, { op: "txn", compare: [{ key: "b", target: "version", op: "==", value: 1 }], success: [{ op: "put", key: "tx/1", value: "s", ttl: 400 }, { op: "del", key: "lock" }], failure: [] }],
  [2700, { op: "txn", compare: [{ key: "tx/1", target: "value", op: "==", value: "nope" }], success: [], failure: [{ op: "put", key: "tx/2", value: "f" }], token: { client: "w2", seq: 3 } }],
  [2800, { op: "txn", compare: [{ key: "tx/1", target: "value", op: "==", value: "nope" }], success: [], failure: [{ op: "put", key: "tx/2", value: "f" }], token: { client: "w2", seq: 3 } }],
  [2600 + sessionTtlMs, { op: "put", key: "c", value: "late" }],
  [2600 + sessionTtlMs, { op: "put", key: "b", value: "retry", token: { client: "w1", seq: 2 } }]
]

/** Applies the script in batches of `size` entries, one KvChanges (one disk write) per batch. */
const replay = (size: number): { kv: KvState; disk: Disk; results: KvResult[]; events: KvEvent[] } => {
  const kv = new KvState()
  const disk = new Disk()
  const results: KvResult[] = []
  const events: KvEvent[] = []
  for (let i = 0; i < script.length; i += size) {
    const changes = newChanges()
    for (const [time, cmd] of script.slice(i, i + size)) results.push(step(kv, time, cmd, changes).r)
    disk.write(changes)
    events.push(...changes.events)
  }
  return { kv, disk, results, events }
}

t.test("determinism: the same log gives the same state, results and events, however it is batched", async (t) => {
  const one = replay(1)
  t.ok(one.kv.revision > 10, `the script makes ${one.kv.revision} revisions`)
  t.ok(
    one.events.some((e) => e.type === "expire"),
    "keys expired along the way"
  )
  for (const size of [2, 3, 5, script.length]) {
    const other = replay(size)
    t.same(snapshot(other.kv), snapshot(one.kv), `batches of ${size}: same state`)
    t.same(other.results, one.results, `batches of ${size}: same results`)
    t.same(other.events, one.events, `batches of ${size}: same events`)
    t.same(other.disk.sortedKv(), snapshot(other.kv).records, `batches of ${size}: merged changes leave the disk equal to memory`)
    t.same(other.disk.sortedSessions(), snapshot(other.kv).sessions, `batches of ${size}: sessions on disk equal memory`)
  }

  t.test("leader time advanced in many small steps or one jump: same result", async (t) => {
    const build = (): KvState => {
      const kv = new KvState()
      step(kv, 0, { op: "put", key: "x", value: "1", ttl: 30 })
      step(kv, 0, { op: "put", key: "y", value: "1", ttl: 70 })
      step(kv, 0, { op: "put", key: "z", value: "1", token: { client: "c", seq: 1 } })
      return kv
    }
    const small = build()
    const smallEvents: KvEvent[] = []
    for (let time = 1; time <= sessionTtlMs + 100; time += time < 200 ? 7 : 60_000) {
      const c = newChanges()
      small.advanceTime(time, c)
      smallEvents.push(...c.events)
    }
    small.advanceTime(sessionTtlMs + 100, newChanges())
    const jump = build()
    const jumpChanges = newChanges()
    jump.advanceTime(sessionTtlMs + 100, jumpChanges)
    t.same(snapshot(small), snapshot(jump))
    t.same(smallEvents, jumpChanges.events)
    t.equal(jump.sessions.size, 0, "the idle session expired in both")
  })
})

t.test("restore: a state rebuilt from disk continues exactly like the one that never stopped", async (t) => {
  const half = Math.floor(script.length / 2)
  const live = new KvState()
  const disk = new Disk()
  const liveEvents: KvEvent[] = []
  for (const [time, cmd] of script.slice(0, half)) disk.write(step(live, time, cmd).changes)
  const restored = new KvState()
  restored.restore(disk.sortedKv(), disk.sortedSessions(), live.revision, live.time)
  t.same(snapshot(restored), snapshot(live), "same state right after loading")
  const restoredEvents: KvEvent[] = []
  for (const [time, cmd] of script.slice(half)) {
    const a = step(live, time, cmd)
    const b = step(restored, time, cmd)
    t.same(b.r, a.r, `${cmd.op} ${"key" in cmd ? cmd.key : ""} at ${time}: same result`)
    liveEvents.push(...a.changes.events)
    restoredEvents.push(...b.changes.events)
  }
  t.same(snapshot(restored), snapshot(live), "same state at the end")
  const byKey = (es: KvEvent[]) => es.map((e) => `${e.type} ${e.key}`).sort()
  t.same(byKey(restoredEvents), byKey(liveEvents), "the same keys changed (revisions: see the next test)")
})

// Regression: due keys once expired in Set insertion order, which restore() rebuilds in disk
// (key) order, so a restarted replica gave the same expiries other revisions.
t.test(
  "restore: keys due in the same advanceTime expire with the same revisions on a restarted replica",
  async (t) => {
    // Replica A applies the log without stopping; replica B restarts after the two puts and
    // loads its records from disk in key order, exactly as Applier.load does.
    const a = new KvState()
    const disk = new Disk()
    disk.write(step(a, 0, { op: "put", key: "b", value: "1", ttl: 10 }).changes)
    disk.write(step(a, 0, { op: "put", key: "a", value: "1", ttl: 10 }).changes)
    const b = new KvState()
    b.restore(disk.sortedKv(), disk.sortedSessions(), a.revision, a.time)
    const ea = newChanges()
    const eb = newChanges()
    a.advanceTime(10, ea)
    b.advanceTime(10, eb)
    // A: b expires at revision 3, a at 4. B: a at 3, b at 4. The same log, different outputs.
    t.same(eb.events, ea.events, "both replicas publish the same expire events with the same revisions")

    // The same happens with the mixed script: restart halfway, and "lock" and "t1" (both due
    // at the 1500 ms entry) swap revisions 8 and 9 on the restarted replica.
    const half = Math.floor(script.length / 2)
    const live = new KvState()
    const liveDisk = new Disk()
    for (const [time, cmd] of script.slice(0, half)) liveDisk.write(step(live, time, cmd).changes)
    const restarted = new KvState()
    restarted.restore(liveDisk.sortedKv(), liveDisk.sortedSessions(), live.revision, live.time)
    const liveEvents: KvEvent[] = []
    const restartedEvents: KvEvent[] = []
    for (const [time, cmd] of script.slice(half)) {
      liveEvents.push(...step(live, time, cmd).changes.events)
      restartedEvents.push(...step(restarted, time, cmd).changes.events)
    }
    t.same(restartedEvents, liveEvents, "the script's events, revisions included, match after a restart")
  }
)

t.test("idempotency tokens", async (t) => {
  t.test("a repeated token returns the first result and changes nothing", async (t) => {
    const kv = new KvState()
    const first = step(kv, 10, { op: "put", key: "k", value: "v1", token: { client: "c1", seq: 1 } })
    t.same(first.r, { ok: true, revision: 1, key: "k" })
    t.same(first.changes.sessions.get("c1"), { seq: 1, result: first.r, lastSeen: 10 }, "the session is persisted with the write")
    step(kv, 20, { op: "put", key: "other", value: "o" })
    const before = snapshot(kv)
    const retry = step(kv, 30, { op: "put", key: "k", value: "v1", token: { client: "c1", seq: 1 } })
    t.same(retry.r, first.r, "the retry gets the original answer (revision 1), not a new write")
    t.ok(isEmpty(retry.changes))
    t.same(snapshot(kv).records, before.records)
    t.equal(kv.revision, 2)
    t.same(snapshot(kv).sessions, before.sessions, "the session record is untouched (lastSeen stays 10)")
  })

  t.test("a failed write is remembered too: its retry fails the same way", async (t) => {
    const kv = new KvState()
    step(kv, 0, { op: "put", key: "k", value: "v" })
    const refused = step(kv, 1, { op: "cas", key: "k", value: "x", expectedRevision: 0, token: { client: "c", seq: 5 } })
    t.equal(refused.r.ok, false)
    step(kv, 2, { op: "del", key: "k" })
    const retry = step(kv, 3, { op: "cas", key: "k", value: "x", expectedRevision: 0, token: { client: "c", seq: 5 } })
    t.same(retry.r, refused.r, "the key is gone now, but the retry of the refused cas does not suddenly succeed")
    t.equal(kv.get("k"), undefined)
  })

  t.test("an older seq is refused with conflict and changes nothing", async (t) => {
    const kv = new KvState()
    step(kv, 0, { op: "put", key: "k", value: "v1", token: { client: "c", seq: 1 } })
    const second = step(kv, 1, { op: "put", key: "k", value: "v2", token: { client: "c", seq: 2 } })
    t.same(second.r, { ok: true, revision: 2, key: "k", prevRevision: 1 }, "a higher seq is a new write")
    const before = snapshot(kv)
    const old = step(kv, 1, { op: "put", key: "k", value: "v1", token: { client: "c", seq: 1 } })
    t.equal(old.r.ok, false)
    t.equal(!old.r.ok && old.r.code, "conflict")
    t.match(!old.r.ok && old.r.message, /older than the last write seen from that client \(2\)/)
    t.ok(isEmpty(old.changes))
    t.same(snapshot(kv), before)
    const otherClient = step(kv, 3, { op: "put", key: "k", value: "v3", token: { client: "d", seq: 1 } })
    t.equal(otherClient.r.ok, true, "seqs are per client")
  })

  t.test("sessions expire after sessionTtlMs of leader time; a retry after that is a new write", async (t) => {
    const kv = new KvState()
    const first = step(kv, 1000, { op: "put", key: "k", value: "v", token: { client: "c", seq: 1 } })
    const idle = newChanges()
    kv.advanceTime(1000 + sessionTtlMs - 1, idle)
    t.ok(isEmpty(idle), "one millisecond before the TTL the session is kept")
    t.ok(kv.sessions.has("c"))
    t.same(step(kv, 1000 + sessionTtlMs - 1, { op: "put", key: "k", value: "v", token: { client: "c", seq: 1 } }).r, first.r)
    const gone = newChanges()
    kv.advanceTime(1000 + sessionTtlMs, gone)
    t.same([...gone.sessions], [["c", null]], "the Applier is told to delete the session")
    t.notOk(kv.sessions.has("c"))
    t.equal(kv.revision, 1, "forgetting a session is not a key write")
    const late = step(kv, 1000 + sessionTtlMs, { op: "put", key: "k", value: "v", token: { client: "c", seq: 1 } })
    t.same(late.r, { ok: true, revision: 2, key: "k", prevRevision: 1 }, "applied again: the dedup window is over")
  })
})

// ---------------------------------------------------------------------------------------------
// txn

const txn = (
  compare: ReadonlyArray<Compare>,
  success: ReadonlyArray<TxnOp>,
  failure: ReadonlyArray<TxnOp> = [],
  token?: { client: string; seq: number }
): KvCommand => ({ op: "txn", compare, success, failure, ...(token === undefined ? {} : { token }) })

t.test("txn: compare targets and operators against the state before the txn", async (t) => {
  const kv = new KvState()
  step(kv, 1, { op: "put", key: "a", value: "m" }) // rev 1
  step(kv, 2, { op: "put", key: "b", value: "x" }) // rev 2
  step(kv, 3, { op: "put", key: "a", value: "n" }) // rev 3: a create 1, mod 3, version 2
  step(kv, 4, { op: "put", key: "c", value: "\u{1F600}" }) // rev 4
  const holds = (c: Compare): boolean => {
    const probe = new KvState()
    probe.restore([...kv.records], [], kv.revision, kv.time)
    const r = probe.apply(txn([c], []), newChanges())
    return r.ok && "succeeded" in r && r.succeeded
  }
  const cases: Array<[Compare, boolean]> = [
    [{ key: "a", target: "value", op: "==", value: "n" }, true],
    [{ key: "a", target: "value", op: "!=", value: "n" }, false],
    [{ key: "a", target: "value", op: ">", value: "m" }, true],
    [{ key: "a", target: "value", op: "<", value: "m" }, false],
    [{ key: "a", target: "mod", op: "==", value: 3 }, true],
    [{ key: "a", target: "mod", op: ">", value: 2 }, true],
    [{ key: "a", target: "mod", op: "<", value: 3 }, false],
    [{ key: "a", target: "create", op: "==", value: 1 }, true],
    [{ key: "a", target: "create", op: "!=", value: 1 }, false],
    [{ key: "a", target: "version", op: "==", value: 2 }, true],
    [{ key: "a", target: "version", op: "<", value: 3 }, true],
    [{ key: "b", target: "version", op: ">", value: 1 }, false],
    // A missing key: value "", mod/create/version 0.
    [{ key: "zz", target: "value", op: "==", value: "" }, true],
    [{ key: "zz", target: "mod", op: "==", value: 0 }, true],
    [{ key: "zz", target: "create", op: "==", value: 0 }, true],
    [{ key: "zz", target: "version", op: "==", value: 0 }, true],
    [{ key: "zz", target: "version", op: ">", value: 0 }, false],
    // Values order as UTF-8 bytes, like keys: U+1F600 (F0 ..) is above U+FF21 (EF ..), although
    // JavaScript's `<` on UTF-16 code units says the opposite.
    [{ key: "c", target: "value", op: ">", value: "\uFF21" }, true],
    [{ key: "c", target: "value", op: "<", value: "\uFF21" }, false]
  ]
  for (const [c, expected] of cases) t.equal(holds(c), expected, `${c.key} ${c.target} ${c.op} ${JSON.stringify(c.value)}`)
})

t.test("txn: success branch applies all ops at one new revision, with one event per key", async (t) => {
  const kv = new KvState()
  step(kv, 1, { op: "put", key: "a", value: "1" }) // rev 1
  step(kv, 2, { op: "put", key: "gone", value: "g" }) // rev 2
  const r = step(
    kv,
    3,
    txn(
      [
        { key: "a", target: "mod", op: "==", value: 1 },
        { key: "new", target: "version", op: "==", value: 0 }
      ],
      [
        { op: "put", key: "a", value: "2" },
        { op: "put", key: "new", value: "n", ttl: 100 },
        { op: "del", key: "gone" },
        { op: "del", key: "never-existed" }
      ],
      [{ op: "put", key: "failed", value: "f" }]
    )
  )
  t.same(r.r, { ok: true, succeeded: true, revision: 3 })
  t.equal(kv.revision, 3, "the whole txn is one revision")
  t.same(kv.get("a"), { value: "2", createRevision: 1, modRevision: 3, version: 2 })
  t.same(kv.get("new"), { value: "n", createRevision: 3, modRevision: 3, version: 1, expiresAt: 103 })
  t.equal(kv.get("gone"), undefined)
  t.equal(kv.get("failed"), undefined, "the failure branch did not run")
  t.same(
    r.changes.events.map((e) => [e.type, e.key, e.revision]),
    [
      ["put", "a", 3],
      ["put", "new", 3],
      ["del", "gone", 3]
    ],
    "one event per key changed; deleting a missing key is no change"
  )
  t.same([...r.changes.puts.keys()], ["a", "new"])
  t.same([...r.changes.dels], ["gone"])
  t.same(kv.sortedKeys(), ["a", "new"], "the key index follows")
})

t.test("txn: a failing compare runs the failure branch; compares see the state before the txn", async (t) => {
  const kv = new KvState()
  step(kv, 1, { op: "put", key: "k", value: "v" })
  const r = step(
    kv,
    2,
    txn(
      [
        { key: "k", target: "value", op: "==", value: "v" },
        { key: "k", target: "version", op: "==", value: 5 }
      ],
      [{ op: "del", key: "k" }],
      [
        { op: "put", key: "k", value: "w" },
        { op: "put", key: "log", value: "lost the race" }
      ]
    )
  )
  t.same(r.r, { ok: true, succeeded: false, revision: 2 })
  t.same(kv.get("k"), { value: "w", createRevision: 1, modRevision: 2, version: 2 })
  t.same(kv.get("log"), { value: "lost the race", createRevision: 2, modRevision: 2, version: 1 })
  t.equal(kv.revision, 2)
})

t.test("txn: a branch that writes nothing keeps the revision and changes nothing", async (t) => {
  const kv = new KvState()
  step(kv, 1, { op: "put", key: "k", value: "v" })
  const empty = step(kv, 2, txn([{ key: "k", target: "value", op: "==", value: "v" }], []))
  t.same(empty.r, { ok: true, succeeded: true, revision: 1 })
  t.ok(isEmpty(empty.changes))
  const onlyMissingDels = step(kv, 3, txn([], [{ op: "del", key: "nope" }]))
  t.same(onlyMissingDels.r, { ok: true, succeeded: true, revision: 1 })
  t.ok(isEmpty(onlyMissingDels.changes))
  t.equal(kv.revision, 1)
})

t.test("txn: a branch naming a key twice is refused and writes nothing", async (t) => {
  const kv = new KvState()
  const r = step(kv, 1, txn([], [{ op: "put", key: "k", value: "1" }, { op: "del", key: "k" }]))
  t.same(r.r, { ok: false, code: "bad_request", message: 'success: key "k" appears more than once; a txn writes each key at most once' })
  t.ok(isEmpty(r.changes))
  t.equal(kv.revision, 0)
})

t.test("txn: an idempotency token replays the first answer, even when the compare no longer holds", async (t) => {
  const kv = new KvState()
  const cmd = txn([{ key: "lock", target: "create", op: "==", value: 0 }], [{ op: "put", key: "lock", value: "me" }], [], { client: "c", seq: 1 })
  const first = step(kv, 1, cmd)
  t.same(first.r, { ok: true, succeeded: true, revision: 1 })
  t.same(first.changes.sessions.get("c"), { seq: 1, result: first.r, lastSeen: 1 })
  const before = snapshot(kv)
  const retry = step(kv, 1, cmd)
  t.same(retry.r, first.r, "the retry is answered from the session table")
  t.ok(isEmpty(retry.changes))
  t.same(snapshot(kv), before)
  const next = step(kv, 3, txn([{ key: "lock", target: "create", op: "==", value: 0 }], [{ op: "put", key: "lock", value: "again" }], [], { client: "c", seq: 2 }))
  t.same(next.r, { ok: true, succeeded: false, revision: 1 }, "a new seq is a new txn; it fails its compare")
})

t.test("txn: TTL puts inside a txn expire like any other", async (t) => {
  const kv = new KvState()
  step(kv, 0, txn([], [{ op: "put", key: "t", value: "1", ttl: 10 }, { op: "put", key: "p", value: "1" }]))
  const due = newChanges()
  kv.advanceTime(10, due)
  t.same(due.events, [{ type: "expire", key: "t", revision: 2 }])
  t.same(kv.sortedKeys(), ["p"])
})

// ---------------------------------------------------------------------------------------------
// scan

const keysOf = (page: { items: ReadonlyArray<readonly [string, KeyRecord]> }): string[] => page.items.map(([k]) => k)

const filled = (keys: ReadonlyArray<string>): KvState => {
  const kv = new KvState()
  keys.forEach((k, i) => step(kv, i, { op: "put", key: k, value: `v-${k}` }))
  return kv
}

t.test("scan: key order, whatever the insertion order", async (t) => {
  const kv = filled(["b", "a/2", "c", "a/10", "a", "a/1", "ab"])
  t.same(keysOf(kv.scan({ limit: 100 })), ["a", "a/1", "a/10", "a/2", "ab", "b", "c"])
  t.same(kv.sortedKeys(), ["a", "a/1", "a/10", "a/2", "ab", "b", "c"])
  const [first] = kv.scan({ limit: 1 }).items
  t.same(first, ["a", { value: "v-a", createRevision: 5, modRevision: 5, version: 1 }], "items carry the record")
})

t.test("scan: order is UTF-8 byte order (code point order), not UTF-16 code units", async (t) => {
  const astral = "\u{1F600}" // UTF-8 F0 9F 98 80; UTF-16 D83D DE00
  const highBmp = "\uFF21" // UTF-8 EF BC A1; UTF-16 FF21
  const kv = filled([astral, highBmp, "z", "é"])
  t.same(keysOf(kv.scan({ limit: 10 })), ["z", "é", highBmp, astral])
  const bytes = (s: string) => Buffer.from(s, "utf8")
  const all = [astral, highBmp, "z", "é", "a\u{10000}", "a\uE000", "a"]
  t.same(
    [...all].sort(compareKeys),
    [...all].sort((a, b) => Buffer.compare(bytes(a), bytes(b))),
    "compareKeys agrees with Buffer.compare on the UTF-8 bytes"
  )
})

t.test("scan: prefix and [start, end) ranges", async (t) => {
  const kv = filled(["app/a", "app/b", "apple", "b", "app", "ap", "app/c/d"])
  t.same(keysOf(kv.scan({ prefix: "app/", limit: 10 })), ["app/a", "app/b", "app/c/d"])
  t.same(keysOf(kv.scan({ prefix: "app", limit: 10 })), ["app", "app/a", "app/b", "app/c/d", "apple"])
  t.same(keysOf(kv.scan({ prefix: "zzz", limit: 10 })), [])
  t.same(keysOf(kv.scan({ prefix: "", limit: 10 })).length, 7, "an empty prefix is every key")
  t.same(keysOf(kv.scan({ start: "app/b", end: "apple", limit: 10 })), ["app/b", "app/c/d"], "start inclusive, end exclusive")
  t.same(keysOf(kv.scan({ start: "apple", limit: 10 })), ["apple", "b"], "no end: to the last key")
  t.same(keysOf(kv.scan({ end: "app", limit: 10 })), ["ap"], "no start: from the first key")
  t.same(keysOf(kv.scan({ start: "b", end: "", limit: 10 })), ["b"], "an empty end means no upper bound")
  t.same(keysOf(kv.scan({ start: "c", end: "a", limit: 10 })), [], "an empty range")
})

t.test("scan: limit, and continuing strictly after the last key", async (t) => {
  const keys = Array.from({ length: 25 }, (_, i) => `k${String(i).padStart(2, "0")}`)
  const kv = filled([...keys].reverse())
  const seen: string[] = []
  let after: string | undefined
  let pages = 0
  for (;;) {
    const page = kv.scan({ prefix: "k", limit: 10, ...(after === undefined ? {} : { after }) })
    pages++
    seen.push(...keysOf(page))
    if (!page.more) break
    after = seen[seen.length - 1]
  }
  t.equal(pages, 3)
  t.same(seen, keys, "every key once, in order")
  t.same(kv.scan({ limit: 25 }).more, false, "a page that ends exactly at the last key says no more")
  t.same(kv.scan({ limit: 24 }).more, true)
  t.same(keysOf(kv.scan({ limit: 2, after: "k10x" })), ["k11", "k12"], "after need not be a stored key")
  t.same(keysOf(kv.scan({ start: "k20", limit: 2, after: "k05" })), ["k20", "k21"], "the range start still applies")
  t.same(keysOf(kv.scan({ end: "k03", limit: 10, after: "k01" })), ["k02"])
})

t.test("scan: random puts and deletes of thousands of keys, against a sorted model", async (t) => {
  // A seeded LCG: the same keys and queries every run.
  let seed = 42
  const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n)
  const alphabet = ["a", "b", "é", "/", "z", "\u{1F600}"]
  const randomKey = (): string => Array.from({ length: 1 + next(4) }, () => alphabet[next(alphabet.length)]).join("")
  const kv = new KvState()
  const model = new Set<string>()
  for (let i = 0; i < 3000; i++) {
    const key = randomKey()
    if (next(4) === 0) {
      step(kv, 0, { op: "del", key })
      model.delete(key)
    } else {
      step(kv, 0, { op: "put", key, value: "v" })
      model.add(key)
    }
  }
  const sorted = [...model].sort(compareKeys)
  t.same(kv.sortedKeys(), sorted, "the index holds exactly the live keys, in order")
  for (let q = 0; q < 300; q++) {
    const [start, end, after, prefix] = [randomKey(), randomKey(), randomKey(), randomKey()]
    const query = next(2) === 0 ? { prefix, limit: 1 + next(20), after } : { start, end, limit: 1 + next(20), after }
    const expected = sorted.filter(
      (k) =>
        (query.prefix !== undefined ? k.startsWith(query.prefix) : compareKeys(k, start) >= 0 && compareKeys(k, end) < 0) && compareKeys(k, after) > 0
    )
    const page = kv.scan(query)
    t.same(keysOf(page), expected.slice(0, query.limit), JSON.stringify(query))
    t.equal(page.more, expected.length > query.limit)
  }
})

t.test("scan: expired keys are invisible, before and after they are removed", async (t) => {
  const kv = new KvState()
  step(kv, 0, { op: "put", key: "a", value: "1" })
  step(kv, 0, { op: "put", key: "b", value: "1", ttl: 10 })
  step(kv, 0, { op: "put", key: "c", value: "1", ttl: 10 })
  step(kv, 0, { op: "put", key: "d", value: "1" })
  t.same(keysOf(kv.scan({ limit: 10 })), ["a", "b", "c", "d"])
  // Reads look at the applied time: make it pass the expiry without removing the records.
  kv.time = 10
  t.same(keysOf(kv.scan({ limit: 10 })), ["a", "d"], "due but not yet removed: hidden")
  const page = kv.scan({ limit: 1 })
  t.same(keysOf(page), ["a"])
  t.equal(page.more, true, "d is still ahead")
  t.equal(kv.scan({ limit: 1, after: "a" }).more, false, "only expired keys after d: no more")
  kv.time = 0
  kv.advanceTime(10, newChanges())
  t.same(kv.sortedKeys(), ["a", "d"], "expiry removes them from the index")
  t.same(keysOf(kv.scan({ limit: 10 })), ["a", "d"])
})

t.test("scan: deletes and re-creates keep the index exact", async (t) => {
  const kv = filled(["m", "c", "x", "a"])
  step(kv, 10, { op: "del", key: "c" })
  step(kv, 11, { op: "put", key: "m", value: "again" })
  step(kv, 12, { op: "put", key: "c", value: "back" })
  step(kv, 13, { op: "del", key: "a" })
  step(kv, 14, { op: "del", key: "missing" })
  t.same(kv.sortedKeys(), ["c", "m", "x"])
  t.same(
    kv.scan({ limit: 10 }).items.map(([k, r]) => [k, r.value]),
    [
      ["c", "back"],
      ["m", "again"],
      ["x", "v-x"]
    ]
  )
})

t.test("scan: the index is the same after any batching and after a restart", async (t) => {
  const one = replay(1)
  const expected = [...one.kv.records.keys()].sort(compareKeys)
  t.same(one.kv.sortedKeys(), expected, "the index holds exactly the stored keys, in order")
  for (const size of [2, 5, script.length]) t.same(replay(size).kv.sortedKeys(), expected, `batches of ${size}`)
  const restored = new KvState()
  restored.restore([...one.disk.kv].reverse(), one.disk.sortedSessions(), one.kv.revision, one.kv.time)
  t.same(restored.sortedKeys(), expected, "restore builds the index from records in any order")
  t.same(restored.scan({ limit: 100 }), one.kv.scan({ limit: 100 }), "and scans the same")
})

t.test("a client seen again keeps its session until its last write is sessionTtlMs old, with one timer", async (t) => {
  const kv = new KvState()
  const changes = newChanges()
  for (let i = 1; i <= 50; i++) {
    kv.advanceTime(i * 1000, changes)
    kv.apply({ op: "put", key: `k${i}`, value: "v", token: { client: "c1", seq: i } }, changes)
  }
  t.equal((kv as unknown as { lapsing: { size: number } }).lapsing.size, 1, "one queued deadline per client, however many writes")
  kv.advanceTime(1000 + sessionTtlMs, newChanges())
  t.ok(kv.sessions.has("c1"), "its first write's deadline passed, not its last")
  kv.advanceTime(50_000 + sessionTtlMs - 1, newChanges())
  t.ok(kv.sessions.has("c1"))
  const lapsed = newChanges()
  kv.advanceTime(50_000 + sessionTtlMs, lapsed)
  t.notOk(kv.sessions.has("c1"), "gone at its last write's deadline")
  t.equal(lapsed.sessions.get("c1"), null, "and deleted on disk")
})
