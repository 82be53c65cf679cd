import t from "tap"
import type { Level } from "../../ops/bench/common.ts"
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
