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
