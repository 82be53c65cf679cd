/** The nemesis schedule is a pure function of the seed; partitions cut the right links. */
import t from "tap"
import { faultDuration, faultKinds, partitionCuts, planSchedule, Rng } from "../../../ops/chaos/nemesis.ts"
import { parseChaosArgs, phaseDeadlines } from "../../../ops/chaos/run.ts"

const all = faultKinds

t.test("the same seed plans the same schedule; another seed another one", async (t) => {
  const a = planSchedule(42, { durationMs: 120_000, faults: all, nodes: 3 })
  const b = planSchedule(42, { durationMs: 120_000, faults: all, nodes: 3 })
  const c = planSchedule(43, { durationMs: 120_000, faults: all, nodes: 3 })
  t.same(a, b)
  t.notSame(a, c)
  t.ok(a.length >= 10, `a two-minute run has many steps (${a.length})`)
})

t.test("the schedule stays inside the run, uses only the chosen faults, and covers them all", async (t) => {
  const seen = new Set<string>()
  const shapes = new Set<string>()
  const targets = new Set<string>()
  let combos = 0
  for (let seed = 0; seed < 30; seed++) {
    const steps = planSchedule(seed, { durationMs: 60_000, faults: all, nodes: 3 })
    let last = 0
    for (const step of steps) {
      t.ok(step.at >= last, "steps are in time order and do not overlap")
      const length = Math.max(...step.faults.map(faultDuration))
      t.ok(step.at + length <= 60_000, "every step ends before the run does")
      last = step.at + length
      if (step.faults.length > 1) {
        combos++
        t.not(step.faults[0]!.kind, step.faults[1]!.kind, "a combination mixes two kinds")
      }
      for (const f of step.faults) {
        seen.add(f.kind)
        if (f.kind === "partition") shapes.add(f.shape)
        if (f.kind === "pause") t.ok(f.pauseMs > 300, "pauses outlast the election timeout")
        if (f.kind === "snapshot" && f.wipe) t.equal(step.faults.length, 1, "a wipe is never combined with another fault")
        if ("target" in f) targets.add(f.target)
      }
    }
  }
  t.same([...seen].sort(), [...all].sort(), "every fault kind occurs")
  t.same([...shapes].sort(), ["bridge", "isolate-leader", "majority-minority"])
  t.same([...targets].sort(), ["any", "follower", "leader"])
  t.ok(combos > 0, "some steps combine faults")
  const onlyKill = planSchedule(1, { durationMs: 60_000, faults: ["kill"], nodes: 3 })
  t.ok(
    onlyKill.every((s) => s.faults.every((f) => f.kind === "kill")),
    "only the listed faults"
  )
  t.same(planSchedule(1, { durationMs: 60_000, faults: [], nodes: 3 }), [], "no faults, no steps")
})

t.test("a plan with the snapshot fault holds a wipe, alone in its step; one without has none", async (t) => {
  for (let seed = 0; seed < 100; seed++) {
    for (const faults of [all, ["snapshot"] as const, ["snapshot", "kill"] as const]) {
      const steps = planSchedule(seed, { durationMs: 15_000, faults, nodes: 3 })
      const wipes = steps.filter((s) => s.faults.some((f) => f.kind === "snapshot" && f.wipe))
      if (wipes.length === 0 || wipes.some((s) => s.faults.length !== 1)) {
        t.fail(`seed ${seed}, faults ${faults.join(",")}: ${JSON.stringify(steps)}`)
        return
      }
      steps.forEach((s, i) => {
        const end = s.at + Math.max(...s.faults.map(faultDuration))
        if (end > (steps[i + 1]?.at ?? 15_000)) t.fail(`seed ${seed}: step ${i} overruns the next one or the run: ${JSON.stringify(steps)}`)
      })
    }
  }
  const withoutSnapshot = planSchedule(3, { durationMs: 60_000, faults: ["kill", "pause", "partition", "nats-restart", "delay"], nodes: 3 })
  t.notOk(
    withoutSnapshot.some((s) => s.faults.some((f) => f.kind === "snapshot")),
    "no snapshot fault unless listed"
  )
})

t.test("partition shapes", async (t) => {
  const mm = partitionCuts("majority-minority", [2, 0, 1], undefined)
  t.same(mm.groups, [[2], [0, 1]])
  t.same(mm.cuts, [
    [2, 0],
    [2, 1]
  ])
  const iso = partitionCuts("isolate-leader", [2, 0, 1], 1)
  t.same(iso.groups, [[1], [2, 0]], "the leader's server alone")
  const bridge = partitionCuts("bridge", [1, 0, 2], undefined)
  t.same(bridge.cuts, [[0, 2]], "only the two ends are cut apart")
  t.same(bridge.groups, [
    [0, 1],
    [1, 2]
  ])
  const five = partitionCuts("majority-minority", [4, 3, 0, 1, 2], undefined)
  t.same(five.groups[0], [4, 3], "five nodes: a minority of two")
  t.equal(five.cuts.length, 6)
  const bridge5 = partitionCuts("bridge", [0, 1, 2, 3, 4], undefined)
  t.same(bridge5.cuts, [
    [1, 3],
    [1, 4],
    [2, 3],
    [2, 4]
  ])
})

t.test("Rng: deterministic, in range, forks independent", async (t) => {
  const a = new Rng(9)
  const b = new Rng(9)
  const xs = Array.from({ length: 50 }, () => a.int(3, 7))
  t.same(
    xs,
    Array.from({ length: 50 }, () => b.int(3, 7))
  )
  t.ok(
    xs.every((x) => x >= 3 && x <= 7),
    "int is inclusive"
  )
  t.same([...new Set(xs)].sort(), [3, 4, 5, 6, 7])
  t.not(new Rng(9).fork("x").next(), new Rng(9).fork("y").next())
  t.equal(new Rng(9).fork("x").next(), new Rng(9).fork("x").next())
  t.same(new Rng(1).shuffle([1, 2, 3, 4]).sort(), [1, 2, 3, 4])
  t.throws(() => new Rng(1).pick([]))
})

t.test("command-line options", async (t) => {
  const ok = parseChaosArgs(["--seconds", "90", "--seed", "5", "--faults", "kill,partition", "--nodes", "5"])
  t.ok("options" in ok)
  if ("options" in ok) {
    t.equal(ok.options.seconds, 90)
    t.equal(ok.options.seed, 5)
    t.same(ok.options.faults, ["kill", "partition"])
    t.equal(ok.options.nodes, 5)
    t.equal(ok.options.snapshotThreshold, 400, "a low snapshot threshold by default, so runs compact often")
  }
  const threshold = parseChaosArgs(["--snapshot-threshold", "50", "--faults", "snapshot"])
  t.equal("options" in threshold && threshold.options.snapshotThreshold, 50)
  t.same("options" in threshold && threshold.options.faults, ["snapshot"])
  const badThreshold = parseChaosArgs(["--snapshot-threshold", "0"])
  t.match("errors" in badThreshold ? badThreshold.errors.join("\n") : "", /--snapshot-threshold must be an integer from 1/)
  const none = parseChaosArgs(["--faults", "none"])
  t.same("options" in none && none.options.faults, [])
  const bad = parseChaosArgs(["--seconds", "x", "--faults", "kill,meteor", "--nodes", "4"])
  t.ok("errors" in bad)
  if ("errors" in bad) {
    t.match(bad.errors.join("\n"), /--seconds must be an integer/)
    t.match(bad.errors.join("\n"), /unknown fault "meteor"/)
    t.match(bad.errors.join("\n"), /--nodes must be 3 or 5/)
  }
  t.ok("errors" in parseChaosArgs(["--bogus"]))
  t.ok("help" in parseChaosArgs(["-h"]))
  const selfTest = parseChaosArgs(["--wrong-refusals"])
  t.equal("options" in selfTest && selfTest.options.wrongRefusals, true, "--wrong-refusals")
  const check = parseChaosArgs(["--check", "h.jsonl"])
  t.equal("check" in check ? check.check : undefined, "h.jsonl")
})

t.test("a harness phase that never ends is reported as stalled, and the run goes on", async (t) => {
  const stalled: Array<string> = []
  const said: Array<string> = []
  const within = phaseDeadlines(stalled, (line) => said.push(line))
  await within("a quick phase", 1_000, Promise.resolve())
  await within("a failing phase", 1_000, Promise.reject(new Error("boom")).catch(() => undefined))
  t.same(stalled, [], "phases that end in time are not reported")
  await within("the final reads", 30, new Promise(() => undefined))
  t.same(stalled, ["the final reads"])
  t.match(said.join("\n"), /STALLED: the final reads did not finish within 0.03 s/)
})
