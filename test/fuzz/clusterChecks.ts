/**
 * What the system-level fuzz files check on a real cluster around a batch of bad input: that
 * nothing was written (every node's term, last log index and commit index as before) and that
 * the cluster still serves (every process up, a leader, a put then a linearizable get).
 */
import type { LocalCluster } from "../../ops/cluster.ts"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import { until } from "../support/wait.ts"

interface Mark {
  readonly term: number
  readonly lastIndex: number
  readonly commitIndex: number
}

/** The nodes under test: `LocalCluster`'s processes, or nodes running in this process. */
export interface Nodes {
  readonly ids: ReadonlyArray<string>
  /** False once node `id` stopped (its process exited, its fiber ended). */
  isRunning(id: string): boolean
  /** Node `id`'s `admin.status`, or undefined when it does not answer in time. */
  status(id: string, timeoutMs: number): Promise<Mark | undefined>
}

/** Term, last index and commit index of every node, by id. */
export type Marks = ReadonlyMap<string, Mark>

/** Every node's marks; throws naming a node that is down or does not answer. */
export const marks = async (nodes: Nodes): Promise<Marks> => {
  const out = new Map<string, Mark>()
  for (const id of nodes.ids) {
    if (!nodes.isRunning(id)) throw new Error(`node ${id} is not running (it crashed)`)
    const s = await nodes.status(id, 5_000)
    if (s === undefined) throw new Error(`node ${id} does not answer admin.status`)
    out.set(id, { term: s.term, lastIndex: s.lastIndex, commitIndex: s.commitIndex })
  }
  return out
}

/**
 * Waits until the cluster is quiet (every node in one term, its whole log committed, the same
 * last index everywhere) and returns the marks then: writes of earlier steps, or a new leader's
 * first entry, may still be committing or reaching followers.
 */
export const settledMarks = async (nodes: Nodes): Promise<Marks> => {
  let last: Marks = new Map()
  await until(
    "every node to hold and commit the same log",
    async () => {
      last = await marks(nodes)
      const all = [...last.values()]
      return all.every((m) => m.lastIndex === all[0]!.lastIndex && m.commitIndex === m.lastIndex && m.term === all[0]!.term)
    },
    { timeoutMs: 15_000, everyMs: 50 }
  )
  return last
}

/** Differences between two sets of marks, one sentence per node; empty when nothing moved. */
export const moved = (before: Marks, after: Marks): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const [id, b] of before) {
    const a = after.get(id)
    if (a === undefined) out.push(`${id}: no status after`)
    else if (a.term !== b.term || a.lastIndex !== b.lastIndex || a.commitIndex !== b.commitIndex) {
      out.push(`${id}: term ${b.term} -> ${a.term}, last index ${b.lastIndex} -> ${a.lastIndex}, commit ${b.commitIndex} -> ${a.commitIndex}`)
    }
  }
  return out
}

/** Every node process still up, a leader, and a put then a linearizable get through it. */
export const stillServes = async (cluster: LocalCluster, client: ArchioClient, key: string): Promise<void> => {
  for (const id of cluster.ids) if (!cluster.isRunning(id)) throw new Error(`node ${id} crashed (its process exited)`)
  await cluster.waitForLeader(10_000)
  const value = `alive-${Date.now()}`
  await client.put(key, value)
  const got = await client.get(key)
  if (got?.value !== value) throw new Error(`a get of ${key} after a put of ${value} read ${JSON.stringify(got)}`)
}
