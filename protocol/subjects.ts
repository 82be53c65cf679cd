/**
 * Subject names. Everything Archio says on NATS lives under `archio.<cluster>.`.
 * Cluster names and node ids are single NATS tokens; `validToken` says which are allowed.
 */
import type { NodeId, RaftMessageType } from "./raft.ts"

const tokenPattern = /^[A-Za-z0-9_-]{1,64}$/

/** A name that can stand as one subject token: letters, digits, `_` and `-`, at most 64. */
export const validToken = (name: string): boolean => tokenPattern.test(name)

export const root = (cluster: string): string => `archio.${cluster}`

/** Client service endpoints shared by every node (queue group). */
export const kv = (cluster: string, op: string): string => `${root(cluster)}.kv.${op}`
export const jobs = (cluster: string, op: string): string => `${root(cluster)}.jobs.${op}`
export const admin = (cluster: string, op: string): string => `${root(cluster)}.admin.${op}`

/** Raft RPCs addressed to one node; each node subscribes only to its own `raft.<self>.>`. */
export const raft = (cluster: string, node: NodeId, rpc: RaftMessageType): string =>
  `${root(cluster)}.raft.${node}.${rpc}`
export const raftInbox = (cluster: string, node: NodeId): string => `${root(cluster)}.raft.${node}.>`

/** Requests one node forwards to another (for example a write to the leader); never queued. */
export const node = (cluster: string, nodeId: NodeId, op: string): string =>
  `${root(cluster)}.node.${nodeId}.${op}`

/** Change events. */
export const events = (cluster: string): string => `${root(cluster)}.events`

// ---------------------------------------------------------------------------------------------
// Key change events: `archio.<cluster>.events.kv.<key tokens>`
//
// A key is split on "/" and each segment becomes one subject token, so `nats sub` can follow
// one key (`...events.kv.users.42`) or every key under a folder (`...events.kv.users.>`). A
// segment made only of letters, digits, `_` and `-` stands as itself; any other segment
// (empty, or holding `.`, `*`, `>`, spaces, `~` or non-ASCII) becomes `~` followed by the
// base64url of its UTF-8 bytes. Plain tokens never start with `~`, so the mapping is one to
// one, and every key (at most 1024 bytes) gives a subject well under NATS' 4 KB control line.

const plainSegment = /^[A-Za-z0-9_-]+$/

export const kvKeyToken = (segment: string): string =>
  plainSegment.test(segment) ? segment : `~${Buffer.from(segment, "utf8").toString("base64url")}`

/** The subject tokens of `key` (joined with `.`). */
export const kvKeyTokens = (key: string): string => key.split("/").map(kvKeyToken).join(".")

export const kvEvents = (cluster: string): string => `${events(cluster)}.kv`

/** The subject a change to `key` is published on. */
export const kvKeyEvent = (cluster: string, key: string): string => `${kvEvents(cluster)}.${kvKeyTokens(key)}`

/**
 * The narrowest subscription that sees every key starting with `prefix`: the prefix's whole
 * segments (those followed by "/") then `>`. A prefix that ends inside a segment (`users/4`)
 * still needs the events filtered by key, which the event body carries.
 */
export const kvPrefixEvents = (cluster: string, prefix: string): string => {
  const whole = prefix.split("/").slice(0, -1)
  return whole.length === 0 ? `${kvEvents(cluster)}.>` : `${kvEvents(cluster)}.${whole.map(kvKeyToken).join(".")}.>`
}


/** Job transitions: `archio.<cluster>.events.jobs.<queue>.<id>.<state>` (job ids are plain tokens). */
export const jobEvent = (cluster: string, queue: string, id: string, state: string): string =>
  `${events(cluster)}.jobs.${queue}.${id}.${state}`
