/**
 * One string for everything of a node's state machine that every replica must agree on: every
 * key's record (value, revisions, version, lease/expiry), the client sessions, every job, the
 * job counters, the store's revision and its leader-stamped time. Two replicas at the same
 * applied index hold the same state exactly when their digests are equal. Pure: it reads the
 * in-memory state (after `loadState` for a database on disk).
 */
import type { JobQueue } from "../actors/applier/jobQueue.ts"
import type { KvState } from "../actors/applier/kvState.ts"

const byKey = <A>(m: ReadonlyMap<string, A>): Array<[string, A]> => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

export const stateDigest = (kv: KvState, jobs: JobQueue): string =>
  JSON.stringify({
    revision: kv.revision,
    time: kv.time,
    keys: byKey(kv.records),
    sessions: byKey(kv.sessions),
    jobs: byKey(jobs.jobs),
    counters: jobs.counters()
  })
