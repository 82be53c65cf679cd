/**
 * Change events: the leader publishes every applied key change on its key's subject
 * (`Subjects.kvKeyEvent`) and every job transition on its job's (`Subjects.jobEvent`). Only the leader publishes, so a subscriber sees each change once;
 * delivery is core NATS (at most once), and a change applied while leadership moves may go
 * unpublished, so a watcher that must not miss one re-reads with `kv.scan` (each event and
 * each scan page carries the revision).
 */
import type { NatsConnection } from "@nats-io/transport-node"
import type { JobEvent, KvWatchEvent } from "../../protocol/client.ts"
import * as Subjects from "../../protocol/subjects.ts"
import type { KvEvent } from "../applier/kvState.ts"

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
export const publishKvEvents = (nc: NatsConnection, cluster: string, events: ReadonlyArray<KvEvent>): void => {
  for (const e of events) nc.publish(Subjects.kvKeyEvent(cluster, e.key), text.encode(JSON.stringify(toWatchEvent(e))))
}

/** Publishes one applied batch's job transitions on `events.jobs.<queue>.<id>.<state>`. */
export const publishJobEvents = (nc: NatsConnection, cluster: string, events: ReadonlyArray<JobEvent>): void => {
  for (const e of events) nc.publish(Subjects.jobEvent(cluster, e.queue, e.id, e.state), text.encode(JSON.stringify(e)))
}
