/**
 * The chaos harness end to end, kept short: a real cluster under every fault kind gives a
 * linearizable history and a complete run folder; and with stale reads (the self-test) a
 * partition must be caught as a violation, which shows the pipeline can see one. The second
 * self-test does the same for refused cas: some are sent with an impossible revision while the
 * history records the one meant, and a refusal of the key's current value must be caught.
 */
import { existsSync, readFileSync } from "node:fs"
import t from "tap"
import { parseHistory } from "../../../ops/chaos/history.ts"
import { planSchedule } from "../../../ops/chaos/nemesis.ts"
import { runChaos } from "../../../ops/chaos/run.ts"
import { tempDir } from "../../support/tmp.ts"

t.test("a short run under every fault kind is linearizable and leaves a run folder", async (t) => {
  const out = await tempDir(t)
  const lines: string[] = []
  const summary = await runChaos({
    seconds: 12,
    seed: 3,
    faults: ["kill", "pause", "partition", "nats-restart", "delay"],
    nodes: 3,
    workload: "register",
    clients: 4,
    keys: 3,
    opTimeoutMs: 1500,
    out,
    keepData: false,
    // Printed as they come, so a run that stalls shows how far it got.
    say: (line) => {
      lines.push(line)
      t.comment(line)
    }
  })
  t.equal(summary.verdict, "linearizable", summary.lines.join("\n"))
  t.equal(summary.exitCode, 0)
  t.same(summary.crashed, [], "no node exited without being killed")
  t.ok(summary.operations > 200, `operations ran (${summary.operations})`)
  t.ok(summary.ok > 100, "most of them succeeded")
  t.ok(Object.keys(summary.faults).length > 0, `faults were injected (${JSON.stringify(summary.faults)})`)
  for (const f of ["history.jsonl", "schedule.json", "summary.json", "check.json", "logs/n1.log", "logs/s1.log"]) {
    t.ok(existsSync(`${summary.dir}/${f}`), `${f} is in the run folder`)
  }
  t.notOk(existsSync(`${summary.dir}/data`), "node databases are removed after a clean run")
  const history = parseHistory(readFileSync(`${summary.dir}/history.jsonl`, "utf8"))
  t.equal(history[0]?.type, "meta")
  t.ok(
    history.some((e) => e.type === "nemesis" && e.phase === "start"),
    "faults are in the history"
  )
  t.ok(
    history.some((e) => e.type === "ok" && e.client.startsWith("final")),
    "final reads after the heal"
  )
  t.match(summary.lines.join("\n"), /verdict\s+linearizable/)
})

t.test("self-test: stale reads under a partition are reported as a violation", async (t) => {
  // A seed whose first fault is a long partition that splits off a minority.
  let seed = 1
  for (; ; seed++) {
    const first = planSchedule(seed, { durationMs: 12_000, faults: ["partition"], nodes: 3 })[0]?.faults[0]
    if (first?.kind === "partition" && first.shape !== "bridge" && first.holdMs >= 6_000) break
  }
  const out = await tempDir(t)
  const summary = await runChaos({
    seconds: 12,
    seed,
    faults: ["partition"],
    nodes: 3,
    workload: "register",
    clients: 6,
    keys: 2,
    opTimeoutMs: 1000,
    out,
    keepData: false,
    staleReads: true,
    say: () => undefined
  })
  t.equal(summary.verdict, "violation", summary.lines.join("\n"))
  t.equal(summary.exitCode, 1)
  t.ok(existsSync(`${summary.dir}/violations.txt`), "the explanation is written down")
  t.match(readFileSync(`${summary.dir}/violations.txt`, "utf8"), /not linearizable/)
  t.ok(existsSync(`${summary.dir}/data`), "node databases are kept for study")
})

t.test("self-test: a cas refused while its expected value was current is reported as a violation", async (t) => {
  const out = await tempDir(t)
  const summary = await runChaos({
    seconds: 5,
    seed: 11,
    faults: [],
    nodes: 3,
    workload: "register",
    clients: 4,
    keys: 2,
    opTimeoutMs: 1000,
    out,
    keepData: false,
    wrongRefusals: true,
    say: () => undefined
  })
  t.equal(summary.verdict, "violation", summary.lines.join("\n"))
  t.equal(summary.exitCode, 1)
  const explanation = readFileSync(`${summary.dir}/violations.txt`, "utf8")
  t.match(explanation, /not linearizable/)
  t.match(explanation, /It was refused \(conflict\): at some point while it ran, the value must have differed from/, "a refused cas is what no order explains")
  const history = parseHistory(readFileSync(`${summary.dir}/history.jsonl`, "utf8"))
  t.ok(
    history.some((e) => e.type === "fail" && e.f === "cas" && typeof e["revision"] === "number"),
    "refusals record the key's revision"
  )
})
