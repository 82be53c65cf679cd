/**
 * The `snapshot` fault end to end, kept short: nodes snapshot on their own (a low threshold)
 * and when the nemesis forces it, a follower is stopped, its data deleted and started empty,
 * and it comes back by InstallSnapshot from the leader; the history stays linearizable.
 */
import { readFileSync } from "node:fs"
import t from "tap"
import { parseHistory } from "../../../ops/chaos/history.ts"
import { planSchedule } from "../../../ops/chaos/nemesis.ts"
import { runChaos } from "../../../ops/chaos/run.ts"
import { tempDir } from "../../support/tmp.ts"

t.test("forced snapshots and a wiped follower: linearizable, and the follower installed a snapshot", async (t) => {
  const faults = ["snapshot", "kill"] as const
  // Seed 4 plans a forced snapshot during a leader kill, then a lone wipe.
  const plan = planSchedule(4, { durationMs: 15_000, faults, nodes: 3 })
  t.ok(
    plan.some((s) => s.faults.length === 1 && s.faults[0]!.kind === "snapshot" && s.faults[0]!.wipe),
    "the plan holds a lone wipe"
  )
  const out = await tempDir(t)
  const summary = await runChaos({
    seconds: 15,
    seed: 4,
    faults,
    nodes: 3,
    workload: "register",
    clients: 4,
    keys: 3,
    opTimeoutMs: 1500,
    snapshotThreshold: 200,
    out,
    keepData: false,
    say: (line) => t.comment(line)
  })
  t.equal(summary.verdict, "linearizable", summary.lines.join("\n"))
  t.equal(summary.exitCode, 0)
  t.same(summary.crashed, [], "no node exited without being killed")
  t.ok((summary.faults["snapshot:forced"] ?? 0) >= 3, `snapshots were forced (${summary.faults["snapshot:forced"]})`)
  t.ok(summary.snapshots.taken > (summary.faults["snapshot:forced"] ?? 0), `nodes also snapshot on their own (${summary.snapshots.taken} in all)`)
  t.equal(summary.faults["snapshot:wipe"], 1, "a follower was wiped")
  t.equal(summary.faults["snapshot:installed"], 1, "and came back by InstallSnapshot")
  t.ok(summary.snapshots.installed >= 1, `installs in the nodes' logs (${summary.snapshots.installed})`)
  const history = parseHistory(readFileSync(`${summary.dir}/history.jsonl`, "utf8"))
  const wipes = history.flatMap((e) => {
    if (e.type !== "nemesis" || e.phase !== "end" || e.fault !== "snapshot") return []
    const wipe = (e.detail as { wipe?: { installed?: boolean; caughtUpMs?: number | null; leaderLogBase?: number } } | undefined)?.wipe
    return wipe === undefined ? [] : [wipe]
  })
  t.equal(wipes.length, 1, "the wipe is in the history")
  t.equal(wipes[0]?.installed, true)
  t.ok(typeof wipes[0]?.caughtUpMs === "number", `caught up (${wipes[0]?.caughtUpMs} ms after its start)`)
  t.ok((wipes[0]?.leaderLogBase ?? 0) > 0, "the leader's log was compacted, so the log alone could not bring it back")
  t.match(summary.lines.join("\n"), /snapshots\s+\d+ taken by the nodes \(threshold 200; \d+ forced by the nemesis\), \d+ installed from a leader; follower wipes 1, back by InstallSnapshot 1/)
})
