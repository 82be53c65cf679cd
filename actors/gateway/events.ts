/**
 * Change events: the leader publishes every applied key change on its key's subject
 * (`Subjects.kvKeyEvent`) and every job transition on its job's (`Subjects.jobEvent`). Only the leader publishes, so a subscriber sees each change once;
 * delivery is core NATS (at most once), and a change applied while leadership moves may go
 * unpublished, so a watcher that must not miss one re-reads with `kv.scan` (each event and
 * each scan page carries the revision).
 */
import { errors } from "@nats-io/transport-node"
import { Effect } from "effect"
import type { Bus as BusShape } from "../../protocol/bus.ts"
import type { JobEvent, KvWatchEvent } from "../../protocol/client.ts"
import * as Subjects from "../../protocol/subjects.ts"
import type { AppliedBatch, Applier } from "../applier/applier.ts"
import type { KvEvent } from "../applier/kvState.ts"
import type { Consensus } from "../raft/shell.ts"
import { Bus } from "../services/bus.ts"
import { Supervisor } from "../services/supervisor.ts"

const text = new TextEncoder()

export const toWatchEvent = (e: KvEvent): KvWatchEvent =>
  e.type === "put"
    ? {
        type: "put",
        key: e.key,
        revision: e.revision,
        value: e.record.value,
        createRevision: e.record.createRevision,
        modRevision: e.record.modRevision,
        version: e.record.version
      }
    : { type: e.type, key: e.key, revision: e.revision }

/** Publishes one applied batch's events in order; the caller decides whether this node should. */
export const publishKvEvents = (bus: BusShape, cluster: string, events: ReadonlyArray<KvEvent>): void => {
  for (const e of events) bus.publish(Subjects.kvKeyEvent(cluster, e.key), text.encode(JSON.stringify(toWatchEvent(e))))
}

/** Publishes one applied batch's job transitions on `events.jobs.<queue>.<id>.<state>`. */
export const publishJobEvents = (bus: BusShape, cluster: string, events: ReadonlyArray<JobEvent>): void => {
  for (const e of events) bus.publish(Subjects.jobEvent(cluster, e.queue, e.id, e.state), text.encode(JSON.stringify(e)))
}

/** Publishes what the Applier applies, while this node leads: one publisher per change. */
export const make = (cluster: string, consensus: Consensus, applier: Applier): Effect.Effect<void, never, Bus | Supervisor> =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const supervisor = yield* Supervisor
    applier.onApplied(
      supervisor.guard("events", (batch: AppliedBatch) => {
        if (batch.kvEvents.length === 0 && batch.jobEvents.length === 0) return
        if (consensus.inspect().role !== "leader") return
        try {
          publishKvEvents(bus, cluster, batch.kvEvents)
          publishJobEvents(bus, cluster, batch.jobEvents)
        } catch (e) {
          // A connection that is closing loses them: events are at most once (see above).
          // Anything else is a bug, and the supervisor hears of it.
          if (!(e instanceof errors.ClosedConnectionError || e instanceof errors.DrainingConnectionError)) throw e
        }
      })
    )
  })
