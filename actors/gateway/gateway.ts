/**
 * The Gateway: the client-facing `archio` service of one node (ADR-32, queue group shared by
 * every node). It decodes requests, sends writes to the consensus actor (forwarding them to
 * the leader when this node is not it), serves reads through ReadIndex (confirmed by the leader
 * when this node follows) or locally for stale reads, and encodes replies and errors.
 *
 * Forwarding re-publishes the client's bytes to the leader's own subject with the client's inbox
 * as reply subject, so the leader answers the client directly: one extra hop, no reply relay.
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node"
import { Clock, Effect, Either, Schedule } from "effect"
import * as Client from "../../protocol/client.ts"
import { archioError, type ArchioError } from "../../protocol/errors.ts"
import { makeDecoder, encodeJson } from "../../protocol/json.ts"
import { EntryKind, type NodeId } from "../../protocol/raft.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { encodeCommand, type Applier, type ApplyOutcome } from "../applier/applier.ts"
import type { KvCommand } from "../applier/kvState.ts"
import type { Consensus } from "../raft/shell.ts"
import { fromForwarded, fromService, type Responder } from "./responder.ts"
import * as Service from "./service.ts"

export interface GatewayOptions {
  readonly cluster: string
  readonly id: NodeId
  readonly members: ReadonlyArray<NodeId>
  /** Unique per process start, from the caller's seeded generator (ADR-32 instance id). */
  readonly instanceId: string
  readonly version: string
  /** A request not answered by then gets `timeout` (its outcome is unknown). */
  readonly requestTimeoutMs: number
}

const sweepEveryMs = 50

const decodePut = makeDecoder(Client.KvPutRequest)
const decodeGet = makeDecoder(Client.KvGetRequest)
const decodeDel = makeDecoder(Client.KvDelRequest)
const decodeCas = makeDecoder(Client.KvCasRequest)

/** Write endpoints: each turns a decoded request into one state machine command. */
const writes = {
  put: (bytes: Uint8Array) =>
    Either.map(decodePut(bytes), (r): KvCommand => ({ op: "put", key: r.key, value: r.value, ...opt("ttl", r.ttl), ...opt("token", r.token) })),
  del: (bytes: Uint8Array) => Either.map(decodeDel(bytes), (r): KvCommand => ({ op: "del", key: r.key, ...opt("token", r.token) })),
  // Without expectedRevision a cas is a plain put (see KvCasRequest).
  cas: (bytes: Uint8Array) =>
    Either.map(
      decodeCas(bytes),
      (r): KvCommand =>
        r.expectedRevision === undefined
          ? { op: "put", key: r.key, value: r.value, ...opt("ttl", r.ttl), ...opt("token", r.token) }
          : { op: "cas", key: r.key, value: r.value, expectedRevision: r.expectedRevision, ...opt("ttl", r.ttl), ...opt("token", r.token) }
    )
} as const

type WriteOp = keyof typeof writes

/** `{ [name]: value }` when value is present, `{}` otherwise (exactOptionalPropertyTypes). */
const opt = <K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [name]: value }) as { [P in K]?: V }

export const make = (options: GatewayOptions, nc: NatsConnection, consensus: Consensus, applier: Applier) =>
  Effect.gen(function* () {
    const { cluster, id } = options
    // Deadlines share one coarse clock and one sweep: no timer per request. Every request gets
    // the same timeout, so the list is ordered by deadline.
    const deadlines: Array<{ at: number; r: Responder }> = []
    let now = yield* Clock.currentTimeMillis
    const startedAt = now
    const track = (r: Responder): void => {
      deadlines.push({ at: now + options.requestTimeoutMs, r })
    }
    const sweep = Effect.gen(function* () {
      now = yield* Clock.currentTimeMillis
      while (deadlines.length > 0 && (deadlines[0]!.at <= now || deadlines[0]!.r.done)) {
        const { r } = deadlines.shift()!
        if (!r.done) r.fail(archioError("timeout", "the request did not complete in time; a write may or may not have been applied"))
      }
    })
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(sweepEveryMs)))

    const noLeader = (leader: NodeId | null): ArchioError =>
      archioError("unavailable", leader === null ? "no leader is elected right now; retry shortly" : `node ${id} cannot reach the leader; retry`, {
        leader
      })

    const replyWrite = (r: Responder, outcome: ApplyOutcome): void => {
      if ("_tag" in outcome) return r.fail(outcome)
      // `node` lets clients send their next write straight to the leader (leader affinity).
      if (outcome.ok) return r.ok({ ...outcome, node: id })
      r.fail(archioError(outcome.code, outcome.message, outcome.detail))
    }

    const handleWrite = (op: WriteOp, r: Responder): void => {
      const decoded = writes[op](r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      track(r)
      const data = encodeCommand(decoded.right)
      consensus.propose([{ kind: EntryKind.Command, data }], (p) => {
        if (p.ok) return applier.waitFor(p.firstIndex, p.term, (outcome) => replyWrite(r, outcome))
        if (p.leader !== null && p.leader !== id && r.forwardedBy === undefined) {
          return r.forward(nc, Subjects.node(cluster, p.leader, `kv.${op}`), id, options.requestTimeoutMs)
        }
        r.fail(noLeader(p.leader))
      })
    }

    const serveGet = (r: Responder, key: string, consistency: "linearizable" | "stale"): void => {
      const rec = applier.state.get(key)
      if (rec === undefined) return r.fail(archioError("not_found", `key "${key}" does not exist`, { revision: applier.state.revision }))
      r.ok({
        ok: true,
        key,
        value: rec.value,
        createRevision: rec.createRevision,
        modRevision: rec.modRevision,
        version: rec.version,
        revision: applier.state.revision,
        consistency,
        node: id
      })
    }

    // Follower reads: one ReadIndex request to the leader serves every read queued before it left.
    let readInFlight = false
    let pendingFollower: Array<{ run: (index: number) => void; fail: (e: ArchioError) => void }> = []
    const followerRead = (leader: NodeId, run: (index: number) => void, fail: (e: ArchioError) => void): void => {
      pendingFollower.push({ run, fail })
      if (!readInFlight) askLeader(leader)
    }
    const askLeader = (leader: NodeId): void => {
      const batch = pendingFollower
      pendingFollower = []
      readInFlight = true
      nc.request(Subjects.node(cluster, leader, "readindex"), new Uint8Array(0), { timeout: options.requestTimeoutMs })
        .then(
          (msg) => {
            const err = Service.readError(msg)
            if (err !== undefined) for (const b of batch) b.fail(err)
            else {
              const { index } = msg.json<{ index: number }>()
              for (const b of batch) b.run(index)
            }
          },
          () => {
            for (const b of batch) b.fail(archioError("unavailable", `the leader ${leader} did not confirm the read; retry`))
          }
        )
        .finally(() => {
          readInFlight = false
          if (pendingFollower.length > 0) {
            const current = consensus.status().leader
            if (current !== null && current !== id) askLeader(current)
            else {
              const stranded = pendingFollower
              pendingFollower = []
              for (const b of stranded) b.fail(noLeader(current))
            }
          }
        })
    }

    const handleGet = (r: Responder): void => {
      const decoded = decodeGet(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const { key } = decoded.right
      if (decoded.right.consistency === "stale") return serveGet(r, key, "stale")
      track(r)
      const leader = consensus.status().leader
      if (leader !== null && leader !== id) {
        return followerRead(
          leader,
          (index) => applier.whenApplied(index, () => serveGet(r, key, "linearizable")),
          (e) => r.fail(e)
        )
      }
      consensus.read((res) => {
        if (res.ok) applier.whenApplied(res.index, () => serveGet(r, key, "linearizable"))
        else r.fail(noLeader(res.leader))
      })
    }

    const status = () => {
      const s = consensus.status()
      return {
        ok: true as const,
        id,
        cluster,
        members: options.members,
        role: s.role,
        term: s.term,
        leader: s.leader,
        commitIndex: s.commitIndex,
        appliedIndex: applier.applied,
        firstIndex: s.firstIndex,
        lastIndex: s.lastIndex,
        lastTerm: s.lastTerm,
        leaderChanges: s.leaderChanges,
        uptimeMs: now - startedAt,
        ...(s.role === "leader" ? { peers: s.peers.map((p) => ({ id: p.id, nextIndex: p.nextIndex, matchIndex: p.matchIndex, state: p.state })) } : {})
      }
    }

    const service = Service.start(nc, {
      name: "archio",
      version: options.version,
      id: options.instanceId,
      description: "Archio replicated key-value store and job queue",
      metadata: { cluster, node: id },
      endpoints: [
        ...(["put", "del", "cas"] as const).map((op) => ({
          name: `kv-${op}`,
          subject: Subjects.kv(cluster, op),
          handler: (req: Service.ServiceRequest) => handleWrite(op, fromService(req))
        })),
        { name: "kv-get", subject: Subjects.kv(cluster, "get"), handler: (req: Service.ServiceRequest) => handleGet(fromService(req)) },
        {
          name: "admin-status",
          subject: Subjects.admin(cluster, "status"),
          handler: (req: Service.ServiceRequest) => req.respond(encodeJson(status()))
        }
      ]
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => service.stop()))

    // This node's own subjects: forwarded writes, ReadIndex for followers, per-node status.
    const direct = (op: string, handler: (msg: Msg) => void) => {
      const sub = nc.subscribe(Subjects.node(cluster, id, op), {
        callback: (err, msg) => {
          if (err === null && msg.reply !== undefined && msg.reply !== "") handler(msg)
        }
      })
      return sub
    }
    const subs = [
      ...(["put", "del", "cas"] as const).map((op) => direct(`kv.${op}`, (msg) => handleWrite(op, fromForwarded(nc, msg)))),
      direct("readindex", (msg) => {
        const r = fromForwarded(nc, msg)
        consensus.read((res) => (res.ok ? r.ok({ index: res.index }) : r.fail(noLeader(res.leader))))
      }),
      direct("admin.status", (msg) => fromForwarded(nc, msg).ok(status()))
    ]
    yield* Effect.addFinalizer(() => Effect.sync(() => subs.forEach((s) => s.unsubscribe())))
    return { status, service }
  })
