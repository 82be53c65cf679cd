/**
 * The jobs workload end to end, kept short: a real cluster under every fault kind, producers
 * enqueueing and three `archio worker` processes (one killed and restarted now and then)
 * leasing and acking; after the heal the queue drains and the checker finds every acknowledged
 * enqueue completed once, by the ack of its last lease.
 */
import { existsSync, readFileSync } from "node:fs"
import t from "tap"
import { parseHistory } from "../../../ops/chaos/history.ts"
import { checkJobsHistory } from "../../../ops/chaos/jobsChecker.ts"
import { runChaos } from "../../../ops/chaos/run.ts"
import { tempDir } from "../../support/tmp.ts"

t.test("a short jobs run under every fault kind loses nothing and completes nothing twice", async (t) => {
  const out = await tempDir(t)
  const summary = await runChaos({
    seconds: 12,
    // Plans a leader kill, a restart of the leader's NATS server and a follower pause.
    seed: 9,
    faults: ["kill", "pause", "partition", "nats-restart", "delay"],
    nodes: 3,
    workload: "jobs",
    clients: 6,
    keys: 5,
    opTimeoutMs: 2000,
    out,
    keepData: false,
    say: () => undefined
  })
  t.equal(summary.verdict, "valid", summary.lines.join("\n"))
  t.equal(summary.exitCode, 0)
  t.same(summary.crashed, [], "no node exited without being killed")
  t.ok(Object.keys(summary.faults).length > 0, `faults were injected (${JSON.stringify(summary.faults)})`)
  for (const f of ["history.jsonl", "jobs-handler.mjs", "logs/w1.log", "logs/w3.log"]) t.ok(existsSync(`${summary.dir}/${f}`), `${f} is in the run folder`)
  const history = parseHistory(readFileSync(`${summary.dir}/history.jsonl`, "utf8"))
  const report = checkJobsHistory(history)
  t.ok(report.counts.payloads.ok > 100, `jobs were enqueued (${report.counts.payloads.ok})`)
  t.ok((report.counts.workerLines.acked ?? 0) > 100, `and acked by the workers (${report.counts.workerLines.acked ?? 0})`)
  t.equal(report.counts.finalByState.completed, report.counts.finalJobs, "all completed")
  t.equal(report.counts.leaseChecked, report.counts.finalJobs, "every completion names its lease")
  t.ok(report.counts.workerKills >= 1, `a worker was killed (${report.counts.workerKills})`)
  t.ok((report.counts.events.completed ?? 0) > 0, "job events were recorded")
  t.match(summary.lines.join("\n"), /verdict\s+valid/)
})
