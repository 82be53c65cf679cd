/**
 * Malformed Raft frames on a real node's Raft subjects (`archio.<cluster>.raft.<node>.<rpc>`),
 * as a buggy peer would publish them, against three `archio node` processes: truncated,
 * extended, bit-flipped, forged lengths, random bytes (raftFrames.ts), each one checked to be
 * refused by the codec before it is sent (a frame that decodes, say with a higher term, is a
 * different matter: it is a message, and Raft decides what it does).
 *
 * Properties: no node stops; no node's term, last index or commit index moves; the cluster
 * keeps its leader and serves a put and a get afterwards.
 *
 * Seeds: see seed.ts.
 */
import t from "tap"
import fc from "fast-check"
import { raftMessageTypes } from "../../protocol/raft.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { testCluster } from "../support/cluster.ts"
import { natsClient } from "../support/nats.ts"
import { sleep } from "../support/wait.ts"
import { marks, moved, settledMarks, stillServes } from "./clusterChecks.ts"
import { malformedFrame } from "./raftFrames.ts"
import { fuzzSetup } from "./seed.ts"

t.setTimeout(240_000)

const fuzz = fuzzSetup(t, "test/fuzz/raftSubjects.test.ts")

t.test("malformed frames on every node's Raft subjects change nothing", async (t) => {
  // Elections only when a leader is really gone: a changed term here would be the frames' doing.
  const { cluster, client, nats } = await testCluster(t, { ELECTION_TICKS: "100" })
  const nc = await natsClient(t, nats.url)
  const ids = cluster.ids
  // Each node takes everything under its `raft.<self>.>`: the real RPC names and others.
  const rpc = fc.oneof({ weight: 4, arbitrary: fc.constantFrom<string>(...raftMessageTypes) }, { weight: 1, arbitrary: fc.constantFrom("bogus", "append.x", "_") })
  const publication = fc.record({ node: fc.constantFrom(...ids), rpc, frame: malformedFrame(ids) })
  const before = await settledMarks(cluster)
  const leader = await cluster.waitForLeader(10_000)

  let published = 0
  await t.test("batches of malformed frames: every node up, its term and log as they were", async (t) => {
    await fc.assert(
      fc.asyncProperty(fc.array(publication, { minLength: 1, maxLength: 30 }), async (batch) => {
        for (const p of batch) nc.publish(`${Subjects.raftInbox(cluster.cluster, p.node).slice(0, -1)}${p.rpc}`, p.frame.bytes)
        published += batch.length
        await nc.flush()
        // Each node reads its Raft and status subjects on one connection, in order: the status
        // request is answered after the frames were handled.
        const changes = moved(before, await marks(cluster))
        if (changes.length > 0) throw new Error(`malformed frames moved a node: ${changes.join("; ")}`)
      }),
      fuzz.parameters(200)
    )
    t.ok(published > 0, `${published} frames (seed ${fuzz.seed})`)
    await sleep(500)
    t.same(moved(before, await marks(cluster)), [], "nothing moved a moment later either")
    t.equal(await cluster.waitForLeader(10_000), leader, "the same leader")
  })

  await t.test("the cluster still serves, and the check sees a write", async (t) => {
    await stillServes(cluster, client, "fuzz/raft-alive")
    t.not(moved(before, await settledMarks(cluster)).length, 0, "the put moved every log")
  })
})
