import t from "tap"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Level } from "../../ops/bench/common.ts"
import { ahead, chooseParts, resultDocument, ratiosOf, roundLines, runRounds, summaryLines, type Comparison, type Figure } from "../../ops/bench/compare.ts"
import { defaultResultPath } from "../../ops/bench/results.ts"
import { summarize } from "../../ops/bench/summary.ts"

/** A level whose window counted `rate` operations in one second. */
const level = (concurrency: number, rate: number): Level => ({
  concurrency,
  result: { count: rate, sorted: [], seconds: 1, cpu: "", others: 0, attempt: 1 }
})

t.test("per level: medians, ranges and the within-round ratio", async (t) => {
  const rounds = [
    { floor: [level(1, 500)], floorPreallocated: [level(1, 900)], archio: [level(1, 400), level(16, 3000)], etcd: [level(1, 500), level(16, 1500)] },
    { floor: [level(1, 450)], floorPreallocated: [level(1, 700)], archio: [level(1, 300), level(16, 2800)], etcd: [level(1, 200), level(16, 1400)] },
    { floor: [level(1, 600)], floorPreallocated: [level(1, 800)], archio: [level(1, 450), level(16, 2000)], etcd: [level(1, 300), level(16, 2500)] }
  ]
  const lines = summarize(rounds, [1, 16])
  t.equal(lines[0], "side by side over 3 round(s), puts/s:")
  // Ratios at 1 client: 0.8, 1.5, 1.5 -> median 1.5, ahead in 2 of 3; the pooled medians (400 vs 300) would hide the loss.
  t.equal(
    lines[1],
    "    1 client(s): Archio median 400 (300-450), etcd median 300 (200-500); write path median 500 (450-600); write path with a preallocated log median 800 (700-900); Archio/etcd within a round: median 1.50, ahead in 2 of 3"
  )
  t.equal(lines[2], "   16 client(s): Archio median 2800 (2000-3000), etcd median 1500 (1400-2500); Archio/etcd within a round: median 2.00, ahead in 2 of 3")
})

t.test("an even number of rounds takes the mean of the middle two", async (t) => {
  const rounds = [
    { floor: [], floorPreallocated: [], archio: [level(1, 100)], etcd: [level(1, 100)] },
    { floor: [], floorPreallocated: [], archio: [level(1, 300)], etcd: [level(1, 100)] }
  ]
  t.equal(summarize(rounds, [1])[1], "    1 client(s): Archio median 200 (100-300), etcd median 100 (100-100); Archio/etcd within a round: median 2.00, ahead in 1 of 2")
})

// --- The comparisons' tables (ops/bench/compare.ts: jobs-vs-bullmq, kv-vs) -------------------

const comparison: Comparison = {
  title: "test",
  metrics: [
    { name: "puts", unit: "puts/s", better: "higher" },
    { name: "p50", unit: "ms", better: "lower" }
  ],
  systems: ["A", "B", "C"],
  pairs: [
    { of: "A", to: "B" },
    { of: "A", to: "C" }
  ]
}
const fig = (metric: string, system: string, value: number): Figure => ({ metric, system, value })
const rounds: Figure[][] = [
  [fig("puts", "A", 300), fig("puts", "B", 100), fig("puts", "C", 600), fig("p50", "A", 2), fig("p50", "B", 4)],
  [fig("puts", "A", 200), fig("puts", "B", 400), fig("p50", "A", 3), fig("p50", "B", 1.5)],
  [fig("puts", "A", 500), fig("puts", "B", 250), fig("puts", "C", 1000), fig("p50", "A", 1), fig("p50", "B", 2)]
]

t.test("ratios are taken within each round, and rounds missing either system are left out", async (t) => {
  t.same(ratiosOf(rounds, "puts", { of: "A", to: "B" }), [3, 0.5, 2])
  t.same(ratiosOf(rounds, "puts", { of: "A", to: "C" }), [0.5, 0.5], "C was not measured in round 2")
  t.same(ratiosOf(rounds, "p50", { of: "A", to: "C" }), [], "never measured")
  t.ok(ahead(1.2, "higher"))
  t.notOk(ahead(1.2, "lower"), "a higher latency is behind")
  t.ok(ahead(0.5, "lower"))
  t.notOk(ahead(1, "higher"), "a tie is not ahead")
})

t.test("one round's lines: each metric's figures, then each pair's ratio", async (t) => {
  t.same(roundLines(comparison, rounds[0]!, 1), [
    "round 1 of test:",
    "  puts (puts/s): A 300, B 100, C 600",
    "    A / B  3.00",
    "    A / C  0.50",
    "  p50 (ms): A 2.00, B 4.00",
    "    A / B  0.50"
  ])
})

t.test("the summary: medians and ranges per system, ratio medians and rounds ahead (lower is better for latency)", async (t) => {
  t.same(summaryLines(comparison, rounds), [
    "test over 3 round(s):",
    "  puts (puts/s, higher is better):",
    "    A      median 300 (200-500); rounds: 300 200 500",
    "    B      median 250 (100-400); rounds: 100 400 250",
    "    C      median 800 (600-1000); rounds: 600 1000",
    "    A / B  median 2.00, A ahead in 2 of 3; rounds: 3.00 0.50 2.00",
    "    A / C  median 0.50, A ahead in 0 of 2; rounds: 0.50 0.50",
    "  p50 (ms, lower is better):",
    "    A      median 2.00 (1.00-3.00); rounds: 2.00 3.00 1.00",
    "    B      median 2.00 (1.50-4.00); rounds: 4.00 1.50 2.00",
    "    A / B  median 0.50, A ahead in 2 of 3; rounds: 0.50 2.00 0.50"
  ])
})

t.test("the JSON result: every round's figures, each system's median, each pair's ratios", async (t) => {
  const doc = resultDocument(comparison, rounds, { command: "kv-vs", startedAt: "2026-01-01T00:00:00.000Z", options: { rounds: 3 } })
  t.equal(doc.command, "kv-vs")
  t.same(doc.rounds[1], { round: 2, figures: rounds[1] })
  t.same(doc.summary[0], {
    metric: "puts",
    medians: { A: 300, B: 250, C: 800 },
    ratios: [
      { of: "A", to: "B", perRound: [3, 0.5, 2], median: 2, ahead: 2 },
      { of: "A", to: "C", perRound: [0.5, 0.5], median: 0.5, ahead: 0 }
    ]
  })
  t.same(JSON.parse(JSON.stringify(doc)), doc, "plain JSON")
})

t.test("parts: all by default, the asked ones in their own order", async (t) => {
  t.same(chooseParts(undefined, ["enqueue", "e2e", "latency"]), ["enqueue", "e2e", "latency"])
  t.same(chooseParts(["latency", "enqueue"], ["enqueue", "e2e", "latency"]), ["enqueue", "latency"])
})

t.test("runRounds prints each round and the summary, and rewrites the JSON file after every round", async (t) => {
  const dir = t.testdir({})
  const path = join(dir, "nested", "out.json")
  const printed: string[] = []
  const log = console.log
  console.log = (line: string) => printed.push(line)
  const seen: number[] = []
  try {
    await runRounds(comparison, { command: "kv-vs", rounds: 2, jsonPath: path, options: {} }, async (i, add) => {
      if (i === 2) seen.push(JSON.parse(readFileSync(path, "utf8")).rounds.length)
      add(fig("puts", "A", 100 * i))
      add(fig("puts", "B", 50))
    })
  } finally {
    console.log = log
  }
  t.same(seen, [1], "round 1 was on disk before round 2 ran")
  const doc = JSON.parse(readFileSync(path, "utf8"))
  t.same(doc.summary[0].ratios[0].perRound, [2, 4])
  t.ok(printed.includes("--- round 2 of 2 of test"))
  t.ok(printed.includes("    A / B  median 3.00, A ahead in 2 of 2; rounds: 2.00 4.00"))
  t.equal(printed.at(-1), `results written to ${path}`)
})

t.test("a result file's default place is .archio/bench/, one file per command and start time", async (t) => {
  t.equal(defaultResultPath("kv-vs", "2026-12-07T23:30:15.734Z"), join(".archio", "bench", "kv-vs-2026-12-07T23-30-15-734Z.json"))
})
