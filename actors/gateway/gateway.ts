/**
 * The Gateway: the client-facing `archio` service of one node (ADR-32, queue group shared by
 * every node). It decodes requests, sends writes to the consensus actor (forwarding them to
 * the leader when this node is not it), serves reads through ReadIndex (confirmed by the leader
 * when this node follows) or locally for stale reads, and encodes replies and errors.
 *
 * Forwarding asks the leader on its own subject with the client's bytes and relays the answer
 * to the client's inbox (responder.ts says why a request and not a plain re-publish). A handler
 * that throws answers `internal` and stops the node (actors/services/supervisor.ts).
 *
 * Admin endpoints act on the node that answers: `admin.snapshot` takes a snapshot there,
 * `admin.backup` opens a backup session there (backup.ts), and `admin.backupChunk` reads it,
 * forwarded to the session's node when another node gets it. `admin.transfer` is the leader's:
 * a follower forwards it there, and the leader answers once the new leader has taken over.
 */
import { Effect, Either, type Scope } from "effect"
import type { BusMessage } from "../../protocol/bus.ts"
import * as Client from "../../protocol/client.ts"
import { archioError, ArchioError } from "../../protocol/errors.ts"
import { makeDecoder } from "../../protocol/json.ts"
import { defaultPageLimit, isValidKey } from "../../protocol/limits.ts"
import { isMember, type Membership, type MembershipOp } from "../../protocol/membership.ts"
import { EntryKind, type NodeId } from "../../protocol/raft.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { encodeCommand, type Applier, type ApplyOutcome, type Command } from "../applier/applier.ts"
import { duplicateKey, totalWrites, type KvCommand } from "../applier/kvState.ts"
import { readyOnApply, type JobWorker } from "../jobs/jobWorker.ts"
import type { ChangeResult } from "../raft/core.ts"
import type { Consensus, TransferResult } from "../raft/shell.ts"
import type { SnapshotMeta, Snapshotter } from "../snapshotter/snapshotter.ts"
import { Bus } from "../services/bus.ts"
import { Supervisor } from "../services/supervisor.ts"
import { everyScoped, Timers } from "../services/timers.ts"
import { WriteRouting } from "./writeRouting.ts"
import * as Admission from "./admission.ts"
import * as Backup from "./backup.ts"
import { decodeJobGet, decodeLease, decodeList, decodeListCursor, decodeStats, jobWrites, listLimit, toJobView } from "./jobRequests.ts"
import { memberList } from "./members.ts"
import type { RequestMetrics } from "./metrics.ts"
import { opt } from "./optional.ts"
import * as Responders from "./responder.ts"
import type { Responder } from "./responder.ts"
import * as Service from "./service.ts"

export interface GatewayOptions {
  readonly cluster: string
  readonly id: NodeId
  /** Unique per process start, from the caller's seeded generator (ADR-32 instance id). */
  readonly instanceId: string
  readonly version: string
  /** A request not answered by then gets `timeout` (its outcome is unknown). */
  readonly requestTimeoutMs: number
  /** Where answered requests are counted, by endpoint and code (see `metrics.ts`). */
  readonly metrics?: RequestMetrics
  /** How many waiting requests this node may hold (admission.ts); `defaultBounds` when absent. */
  readonly bounds?: Admission.Bounds
}

const sweepEveryMs = 50

/** The service endpoint's name of `<group>.<op>` (`kv.put` -> `kv-put`). */
const endpointName = (op: string): string => op.replace(".", "-")

const actor = "gateway"

/** What the HTTP shim and the node's log use of the Gateway. */
export interface Gateway {
  /** This node's `admin.status` reply. */
  status(): NodeStatus
  /** The write path of `<group>.<op>` (`kv.put`, ...), for requests that arrive another way. */
  write(op: string, r: Responder): void
  /** The `kv.get` path. */
  get(r: Responder): void
  /**
   * Any service endpoint by `<group>.<op>` (`jobs.list`, `admin.status`, ...), as if its request
   * had come on `archio.<cluster>.<group>.<op>`: for the HTTP shim's `/api/<group>.<op>`.
   */
  call(op: string, r: Responder): void
  /** The endpoints `call` knows. */
  readonly operations: ReadonlyArray<string>
}

/** An `admin.status` reply: the wire contract's type. */
export type NodeStatus = Client.StatusResponse

const decodePut = makeDecoder(Client.KvPutRequest)
const decodeGet = makeDecoder(Client.KvGetRequest)
const decodeDel = makeDecoder(Client.KvDelRequest)
const decodeCas = makeDecoder(Client.KvCasRequest)
const decodeTxn = makeDecoder(Client.KvTxnRequest)
const decodeScan = makeDecoder(Client.KvScanRequest)
const decodeStatus = makeDecoder(Client.StatusRequest)
const decodeMembers = makeDecoder(Client.MembersRequest)
const decodeSnapshot = makeDecoder(Client.SnapshotRequest)
const decodeBackup = makeDecoder(Client.BackupRequest)
const decodeBackupChunk = makeDecoder(Client.BackupChunkRequest)
const decodeTransfer = makeDecoder(Client.TransferRequest)
const decodeMembershipChange = makeDecoder(Client.MembershipChangeRequest)

/**
 * Scan cursors are the base64url (no padding) of the last key returned; the next page starts
 * strictly after it. Opaque to clients: anything else is `bad_request`.
 */
export const encodeCursor = (lastKey: string): string => Buffer.from(lastKey, "utf8").toString("base64url")

const utf8Strict = new TextDecoder("utf-8", { fatal: true })
const utf8 = new TextDecoder()

export const decodeCursor = (cursor: string): Either.Either<string, ArchioError> => {
  const bad = Either.left(archioError("bad_request", "cursor: not a cursor from a kv.scan reply (send back the reply's cursor unchanged)"))
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return bad
  const bytes = Buffer.from(cursor, "base64url")
  let key: string
  try {
    key = utf8Strict.decode(bytes)
  } catch {
    return bad
  }
  // Canonical encodings only, and only of keys: a cursor is exactly what encodeCursor produced.
  return isValidKey(key) && encodeCursor(key) === cursor ? Either.right(key) : bad
}

/** A txn branch naming one key twice is refused before it is proposed (as etcd does). */
const checkBranch = (name: string, ops: ReadonlyArray<Client.TxnOp>): ArchioError | undefined => {
  const key = duplicateKey(ops)
  return key === undefined ? undefined : archioError("bad_request", `${name}: key "${key}" appears more than once; a txn writes each key at most once`)
}

/** Key-value write endpoints: each turns a decoded request into one state machine command. */
const kvWrites = {
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
    ),
  txn: (bytes: Uint8Array) =>
    Either.flatMap(decodeTxn(bytes), (r): Either.Either<KvCommand, ArchioError> => {
      const problem = checkBranch("success", r.success) ?? checkBranch("failure", r.failure)
      if (problem !== undefined) return Either.left(problem)
      return Either.right({ op: "txn", compare: r.compare, success: r.success, failure: r.failure, ...opt("token", r.token) })
    })
} as const

type Decode = (bytes: Uint8Array) => Either.Either<Command, ArchioError>

/** Every write endpoint by `<group>.<op>` (its subject under `archio.<cluster>.`). */
const writes: Record<string, Decode> = Object.fromEntries([
  ...Object.entries(kvWrites).map(([op, decode]) => [`kv.${op}`, decode]),
  ...Object.entries(jobWrites).map(([op, decode]) => [`jobs.${op}`, decode])
])

export const make = (
  options: GatewayOptions,
  consensus: Consensus,
  applier: Applier,
  jobWorker: JobWorker,
  snapshotter: Snapshotter
): Effect.Effect<Gateway, never, Bus | Timers | Supervisor | Scope.Scope> =>
  Effect.gen(function* () {
    const { cluster, id } = options
    const nc = yield* Bus
    const timers = yield* Timers
    const supervisor = yield* Supervisor
    // Every responder made here records its answer in the endpoint's meter (responder.ts).
    const meterOf = options.metrics === undefined ? undefined : Responders.meterBySubject(options.metrics, cluster, id)
    const fromService = (req: Service.ServiceRequest): Responder => Responders.fromService(req, meterOf?.(req.subject))
    const fromForwarded = (conn: typeof nc, msg: BusMessage): Responder => Responders.fromForwarded(conn, msg, meterOf?.(msg.subject))
    // Deadlines share one coarse clock and one sweep: no timer per request. Every request gets
    // the same timeout, so the list is ordered by deadline.
    const deadlines: Array<{ at: number; r: Responder }> = []
    let now = timers.now()
    const startedAt = now
    const admission = Admission.make(id, options.bounds ?? Admission.defaultBounds)
    const track = (r: Responder): void => {
      deadlines.push({ at: now + options.requestTimeoutMs, r })
    }
    // A plain timer, not a fiber: it runs 20 times a second on every node, and an Effect
    // schedule costs a runtime turn each time.
    const sweep = (): void => {
      now = timers.now()
      while (deadlines.length > 0 && (deadlines[0]!.at <= now || deadlines[0]!.r.done)) {
        const { r } = deadlines.shift()!
        if (!r.done) r.fail(archioError("timeout", "the request did not complete in time; a write may or may not have been applied"))
      }
    }
    yield* everyScoped(timers, sweepEveryMs, supervisor.guard(actor, sweep))

    const noLeader = (leader: NodeId | null): ArchioError =>
      archioError("unavailable", leader === null ? "no leader is elected right now; retry shortly" : `node ${id} cannot reach the leader; retry`, {
        leader
      })

    const replyWrite = (r: Responder, outcome: ApplyOutcome): void => {
      if (outcome instanceof ArchioError) return r.fail(outcome)
      // `node` lets clients send their next write straight to the leader (leader affinity).
      if (outcome.ok) return r.ok({ ...outcome, node: id })
      r.fail(archioError(outcome.code, outcome.message, outcome.detail))
    }

    const handleWrite = (op: string, request: Responder): void => {
      // Admitted before decoding: under a flood, `busy` must cost as little as possible.
      const r = admission.admit("writes", request)
      if (r === undefined) return
      const decoded = writes[op]!(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      track(r)
      const cmd = decoded.right
      const data = encodeCommand(cmd)
      // Parked workers of the queues get the new jobs in the same append (JobWorker.alongside).
      const along = cmd.op === "jobs.enqueue" ? jobWorker.alongside(readyOnApply(cmd.jobs)) : undefined
      const proposals = along === undefined ? [{ kind: EntryKind.Command, data }] : [{ kind: EntryKind.Command, data }, ...along.proposals]
      consensus.propose(proposals, (p) => {
        if (p.ok) {
          applier.waitFor(p.firstIndex, p.term, (outcome) => replyWrite(r, outcome))
          return along?.appended(p.firstIndex, p.term)
        }
        along?.refused(noLeader(p.leader))
        if (p.leader !== null && p.leader !== id && r.forwardedBy === undefined) {
          return r.forward(nc, Subjects.node(cluster, p.leader, op), id, options.requestTimeoutMs)
        }
        r.fail(noLeader(p.leader))
      })
    }

    const serveGet = (r: Responder, key: string, consistency: "linearizable" | "stale"): void => {
      const rec = applier.kv.get(key)
      if (rec === undefined) return r.fail(archioError("not_found", `key "${key}" does not exist`, { revision: applier.kv.revision }))
      r.ok({
        ok: true,
        key,
        value: rec.value,
        createRevision: rec.createRevision,
        modRevision: rec.modRevision,
        version: rec.version,
        revision: applier.kv.revision,
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
              const { index } = JSON.parse(utf8.decode(msg.data)) as { index: number }
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

    /** Runs `serve` once this node may answer: at once for stale reads, else after ReadIndex. */
    const read = (
      request: Responder,
      consistency: Client.Consistency | undefined,
      serve: (r: Responder, consistency: Client.Consistency) => void
    ): void => {
      if (consistency === "stale") return serve(request, "stale")
      const r = admission.admit("reads", request)
      if (r === undefined) return
      track(r)
      const leader = consensus.status().leader
      if (leader !== null && leader !== id) {
        return followerRead(
          leader,
          (index) => applier.whenApplied(index, () => serve(r, "linearizable")),
          (e) => r.fail(e)
        )
      }
      consensus.read((res) => {
        if (res.ok) applier.whenApplied(res.index, () => serve(r, "linearizable"))
        else r.fail(noLeader(res.leader))
      })
    }

    const handleGet = (r: Responder): void => {
      const decoded = decodeGet(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const { key } = decoded.right
      read(r, decoded.right.consistency, (held, consistency) => serveGet(held, key, consistency))
    }

    const serveScan = (r: Responder, q: Client.KvScanRequest, after: string | undefined, consistency: Client.Consistency): void => {
      const page = applier.kv.scan({
        ...opt("prefix", q.prefix),
        ...opt("start", q.start),
        ...opt("end", q.end),
        ...opt("after", after),
        limit: q.limit ?? defaultPageLimit
      })
      const keysOnly = q.keysOnly === true
      const items = page.items.map(([key, rec]) => ({
        key,
        ...(keysOnly ? {} : { value: rec.value }),
        createRevision: rec.createRevision,
        modRevision: rec.modRevision,
        version: rec.version
      }))
      const last = page.items[page.items.length - 1]
      r.ok({
        ok: true,
        items,
        ...(page.more && last !== undefined ? { cursor: encodeCursor(last[0]) } : {}),
        revision: applier.kv.revision,
        consistency,
        node: id
      })
    }

    const handleScan = (r: Responder): void => {
      const decoded = decodeScan(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const q = decoded.right
      let after: string | undefined
      if (q.cursor !== undefined) {
        const c = decodeCursor(q.cursor)
        if (Either.isLeft(c)) return r.fail(c.left)
        after = c.right
      }
      read(r, q.consistency, (held, consistency) => serveScan(held, q, after, consistency))
    }

    // Leases park on the leader's JobWorker for up to `waitMs`; it answers them, not the sweep.
    const handleLease = (r: Responder): void => {
      const decoded = decodeLease(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const { role, leader } = consensus.status()
      if (role !== "leader" && (leader === null || r.forwardedBy !== undefined)) return r.fail(noLeader(leader))
      const held = admission.admit("leases", r)
      if (held === undefined) return
      if (role === "leader") return jobWorker.lease(decoded.right, held)
      held.forward(nc, Subjects.node(cluster, leader!, "jobs.lease"), id, (decoded.right.waitMs ?? 0) + options.requestTimeoutMs)
    }

    const handleJobGet = (r: Responder): void => {
      const decoded = decodeJobGet(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const jobId = decoded.right.id
      read(r, undefined, (held, consistency) => {
        const job = applier.jobs.get(jobId)
        if (job === undefined) return held.fail(archioError("not_found", `job ${jobId} does not exist`))
        held.ok({ ok: true, job: toJobView(job), consistency, node: id })
      })
    }

    const handleList = (r: Responder): void => {
      const decoded = decodeList(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const q = decoded.right
      const after = decodeListCursor(q.cursor)
      if (Either.isLeft(after)) return r.fail(after.left)
      read(r, undefined, (held, consistency) => {
        const page = applier.jobs.list(q.queue, q.state, after.right, listLimit(q.limit))
        held.ok({ ok: true, jobs: page.jobs.map(toJobView), ...(page.next === undefined ? {} : { cursor: String(page.next) }), consistency, node: id })
      })
    }

    const handleStats = (r: Responder): void => {
      const decoded = decodeStats(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      read(r, undefined, (held, consistency) => held.ok({ ok: true, queues: applier.jobs.stats(decoded.right.queue), time: applier.jobs.time, consistency, node: id }))
    }

    // `kv.writes` counts from this process's start, as /metrics does (StateMetrics): an installed
    // snapshot replaces the key-value state with a fresh object counting from 0, so what the
    // replaced ones counted is kept here.
    let kvCounted = applier.kv
    let kvWritesBefore = 0
    const kvWritesApplied = (): number => {
      if (applier.kv !== kvCounted) {
        kvWritesBefore += totalWrites(kvCounted.writes)
        kvCounted = applier.kv
      }
      return kvWritesBefore + totalWrites(kvCounted.writes)
    }
    // Folded as soon as the install lands, before the new state applies anything.
    applier.onInstalled(() => void kvWritesApplied())

    const status = (): NodeStatus => {
      const s = consensus.status()
      const last = snapshotter.status().last
      return {
        ok: true,
        id,
        cluster,
        clusterId: s.membership.cluster,
        members: memberList(s),
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
        logBaseIndex: s.baseIndex,
        logBaseTerm: s.baseTerm,
        snapshot: last === null ? null : { index: last.index, term: last.term, size: last.size, time: last.time },
        admission: { held: admission.held(), busy: admission.refused() },
        kv: { keys: applier.kv.records.size, bytes: applier.kv.bytes, writes: kvWritesApplied() },
        ...(s.role === "leader" ? { peers: s.peers.map((p) => ({ id: p.id, nextIndex: p.nextIndex, matchIndex: p.matchIndex, state: p.state })) } : {})
      }
    }

    // The leader's view of the members: a follower forwards to the leader it knows, and answers
    // from its own view (no match indexes, `leader` null) only when it knows none. A request
    // forwarded here by a node that took us for the leader is `unavailable` (asked again, it
    // finds the leader).
    const handleMembers = (r: Responder): void => {
      const decoded = decodeMembers(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const s = consensus.status()
      if (s.role !== "leader" && s.leader !== null) {
        if (r.forwardedBy !== undefined) return r.fail(archioError("unavailable", `node ${id} no longer leads (${s.leader} does); retry`, { leader: s.leader }))
        return r.forward(nc, Subjects.node(cluster, s.leader, "admin.members"), id, options.requestTimeoutMs)
      }
      r.ok({ ok: true, members: memberList(s), leader: s.leader, term: s.term, node: id })
    }

    /**
     * A node's cluster id as it says in `admin.status`: "" when it has none yet (empty, or
     * waiting to join), undefined when it does not answer (not started yet: that is fine).
     */
    const clusterIdOf = async (node: NodeId): Promise<string | undefined> => {
      try {
        const reply = await nc.request(Subjects.node(cluster, node, "admin.status"), new Uint8Array(0), { timeout: Math.min(1000, options.requestTimeoutMs / 2) })
        const body = JSON.parse(new TextDecoder().decode(reply.data)) as { clusterId?: unknown }
        return typeof body.clusterId === "string" ? body.clusterId : undefined
      } catch {
        return undefined
      }
    }

    /**
     * `admin.add`, `admin.promote`, `admin.remove`: the leader's (a follower passes them on). A
     * node added must not hold another cluster's data: asked first, it must say no cluster id or
     * ours. The answer comes once the change is committed and applied (or at once, when it was
     * in effect already).
     */
    const handleMembershipChange = (op: MembershipOp) => (r: Responder): void => {
      const decoded = decodeMembershipChange(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const target = decoded.right.id
      const s = consensus.status()
      if (s.role !== "leader") {
        if (s.leader !== null && s.leader !== id && r.forwardedBy === undefined) {
          return r.forward(nc, Subjects.node(cluster, s.leader, `admin.${op}`), id, options.requestTimeoutMs)
        }
        return r.fail(noLeader(s.leader))
      }
      track(r)
      const change = (): void =>
        consensus.changeMembership(op, target, (res) => {
          if (!res.ok) return r.fail(changeError(res, target))
          const answer = (): void => {
            const now = consensus.status()
            r.ok({ ok: true, members: memberList(now), clusterId: now.membership.cluster, index: res.index, changed: res.changed, node: id })
          }
          if (!res.changed) return answer()
          applier.waitFor(res.index, res.term, (outcome) => (outcome instanceof ArchioError ? r.fail(outcome) : answer()))
        })
      if (op !== "add" || target === id) return change()
      void clusterIdOf(target).then((theirs) => {
        if (r.done) return
        const ours = consensus.status().membership.cluster
        if (theirs !== undefined && theirs !== "" && theirs !== ours) {
          return r.fail(archioError("conflict", `node ${target} holds data of another cluster (cluster id ${theirs}; this one is ${ours}): start it with an empty data dir and --join`, { clusterId: theirs }))
        }
        change()
      })
    }

    const changeError = (res: Exclude<ChangeResult, { ok: true }>, target: NodeId): ArchioError => {
      switch (res.reason) {
        case "not_leader":
          return noLeader(res.leader)
        case "busy":
          return archioError("unavailable", `${res.message}; retry`, { leader: res.leader })
        case "lagging":
          return archioError("unavailable", `${res.message}; retry`, { leader: res.leader, id: target, reason: "lagging" })
        case "refused":
          return archioError("bad_request", `id: ${res.message}`, { id: target })
      }
    }

    /** A handler's throw is a bug: the client gets `internal` and the node stops (supervisor.ts). */
    const guarded =
      (handle: (r: Responder) => void) =>
      (r: Responder): void => {
        if (supervisor.failed) return r.fail(archioError("unavailable", `node ${id} is stopping; retry`))
        try {
          handle(r)
        } catch (cause) {
          r.fail(archioError("internal", `internal error in node ${id}; it is stopping`))
          supervisor.fail(actor, cause)
        }
      }

    // Backup sessions live until the node stops: closed after the service stops answering.
    const backupTuning = Backup.defaultBackupTuning
    const backups = Backup.make({ ...backupTuning, id, open: () => snapshotter.openStream(), timers, supervisor })
    yield* Effect.addFinalizer(() => Effect.promise(() => backups.stop()))

    const handleSnapshot = (r: Responder): void => {
      const decoded = decodeSnapshot(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      snapshotter.takeNow().then(
        supervisor.guard(actor, (m: SnapshotMeta) => r.ok({ ok: true, node: id, index: m.index, term: m.term, size: m.size, checksum: m.checksum, time: m.time })),
        supervisor.guard(actor, (cause: unknown) =>
          r.fail(archioError("unavailable", `node ${id} could not take a snapshot (${cause instanceof Error ? cause.message : String(cause)}); retry`))
        )
      )
    }

    const handleBackup = (r: Responder): void => {
      const decoded = decodeBackup(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      void backups.open().then(
        supervisor.guard(actor, (opened: Backup.OpenedBackup | ArchioError) => {
          if (opened instanceof ArchioError) return r.fail(opened)
          const { index, term } = opened.header
          r.ok({ ok: true, session: opened.session, node: id, index, term, chunkBytes: backupTuning.chunkBytes })
        })
      )
    }

    const handleBackupChunk = (r: Responder): void => {
      const decoded = decodeBackupChunk(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const { session, offset } = decoded.right
      const owner = Client.backupSessionNode(session)
      if (owner !== id) {
        if (r.forwardedBy !== undefined) return r.fail(archioError("not_found", `backup session ${session} belongs to node ${owner}, not ${id}`))
        // The session's stream is on its node: ask there, and relay the answer.
        return r.forward(nc, Subjects.node(cluster, owner, "admin.backupChunk"), id, options.requestTimeoutMs, () =>
          archioError("unavailable", `node ${owner}, which holds backup session ${session}, did not answer; retry, or start a new backup if it stopped`, { node: owner })
        )
      }
      void backups.chunk(session, offset).then(
        supervisor.guard(actor, (chunk: Backup.BackupChunk | ArchioError) => {
          if (chunk instanceof ArchioError) return r.fail(chunk)
          r.ok({
            ok: true,
            offset: chunk.offset,
            data: Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength).toString("base64"),
            done: chunk.done,
            ...opt("size", chunk.size),
            ...opt("checksum", chunk.checksum),
            node: id
          })
        })
      )
    }

    /**
     * `admin.transfer`: the leader hands over to the named voter (or the most caught-up one) and
     * answers once it hears from it as leader; a follower passes the request to the leader.
     */
    const handleTransfer = (r: Responder): void => {
      const decoded = decodeTransfer(r.data)
      if (Either.isLeft(decoded)) return r.fail(decoded.left)
      const to = decoded.right.id ?? null
      const s = consensus.status()
      const voters = s.membership.voters
      if (to !== null && !voters.includes(to)) {
        return r.fail(archioError("bad_request", `id: node ${to} is not a voting member (the voters are ${voters.join(", ")})`, { members: voters }))
      }
      if (s.role !== "leader") {
        if (s.leader !== null && s.leader !== id && r.forwardedBy === undefined) {
          return r.forward(nc, Subjects.node(cluster, s.leader, "admin.transfer"), id, options.requestTimeoutMs)
        }
        return r.fail(noLeader(s.leader))
      }
      if (to === id) return r.fail(archioError("bad_request", `id: node ${id} already leads; name another voter, or send {} to pick the most caught-up one`, { leader: id }))
      track(r)
      const started = timers.now()
      consensus.transferLeadership(to, (res) => {
        if (res.ok) return r.ok({ ok: true, leader: res.leader, term: res.term, ms: Math.max(0, timers.now() - started), node: id })
        r.fail(transferError(res, to))
      })
    }

    const transferError = (res: Exclude<TransferResult, { ok: true }>, asked: NodeId | null): ArchioError => {
      const detail = { leader: res.leader, ...(res.to === null ? {} : { to: res.to }) }
      switch (res.reason) {
        case "no_target":
          return asked === null
            ? archioError("bad_request", `node ${id} leads alone: there is no other voter to hand leadership to`, detail)
            : archioError("bad_request", `id: node ${asked} is not a voter node ${id} replicates to`, detail)
        case "not_leader":
          return noLeader(res.leader)
        case "busy":
          return archioError("unavailable", `a transfer of leadership to ${res.to ?? "another node"} is already under way; retry`, detail)
        case "stopped":
          return archioError("unavailable", `node ${id} is stopping; retry`, detail)
        case "timeout": {
          const now = res.leader === null ? "no leader is known right now" : res.leader === id ? `${id} still leads` : `${res.leader} leads instead`
          return archioError("unavailable", `node ${res.to ?? "?"} did not take over leadership within an election timeout; ${now}; retry`, detail)
        }
      }
    }

    /** Every endpoint of the service, by `<group>.<op>`. */
    const endpoints: Record<string, (r: Responder) => void> = {
      ...Object.fromEntries(Object.keys(writes).map((op) => [op, (r: Responder) => handleWrite(op, r)])),
      "kv.get": handleGet,
      "kv.scan": handleScan,
      "jobs.lease": handleLease,
      "jobs.get": handleJobGet,
      "jobs.list": handleList,
      "jobs.stats": handleStats,
      "admin.status": (r) => {
        const decoded = decodeStatus(r.data)
        if (Either.isLeft(decoded)) return r.fail(decoded.left)
        r.ok(status())
      },
      "admin.members": handleMembers,
      "admin.snapshot": handleSnapshot,
      "admin.backup": handleBackup,
      "admin.backupChunk": handleBackupChunk,
      "admin.transfer": handleTransfer,
      "admin.add": handleMembershipChange("add"),
      "admin.promote": handleMembershipChange("promote"),
      "admin.remove": handleMembershipChange("remove")
    }
    const serviceEndpoints = Object.entries(endpoints).map(([op, handle]) => {
      const answer = guarded(handle)
      return { name: endpointName(op), subject: `${Subjects.root(cluster)}.${op}`, handler: (req: Service.ServiceRequest) => answer(fromService(req)) }
    })
    // Writes and leases go to the leader alone while one is settled (writeRouting.ts).
    const leaderOnly = new Set([...Object.keys(writes), "jobs.lease"].map(endpointName))
    const routing = new WriteRouting(id, timers.now())
    const route = (): void => {
      if (service === undefined) return
      const s = consensus.status()
      const taking = routing.update(s.role, s.leader, timers.now())
      if (taking !== undefined) service.listen(leaderOnly, taking)
    }
    const startService = (): Service.Service => {
      routing.reset()
      const started = Service.start(nc, {
        name: "archio",
        version: options.version,
        id: options.instanceId,
        description: "Archio replicated key-value store and job queue",
        metadata: { cluster, node: id },
        endpoints: serviceEndpoints
      })
      const taking = routing.update(consensus.status().role, consensus.status().leader, timers.now())
      if (taking === false) started.listen(leaderOnly, false)
      return started
    }
    // The queue group is for members: a node that waits to be added (or was removed) knows no
    // leader to pass a request to, so it keeps to its own subjects until it is in a configuration.
    let service: Service.Service | undefined
    let stopping: Array<Promise<void>> = []
    const serveWhileMember = (m: Membership): void => {
      const member = isMember(m, id)
      if (member && service === undefined) service = startService()
      else if (!member && service !== undefined) {
        stopping.push(service.stop())
        service = undefined
      }
    }
    serveWhileMember(consensus.status().membership)
    consensus.onMembership(serveWhileMember)
    yield* everyScoped(timers, sweepEveryMs, supervisor.guard(actor, route))
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        const running = service
        service = undefined
        const pending = stopping
        stopping = []
        await Promise.all([...pending, running?.stop()])
      })
    )

    // This node's own subjects: forwarded writes and leases, ReadIndex for followers, status,
    // snapshots and backups of this node.
    const own: Record<string, (r: Responder) => void> = {
      ...Object.fromEntries(Object.keys(writes).map((op) => [op, endpoints[op]!])),
      "jobs.lease": handleLease,
      readindex: (r) => consensus.read((res) => (res.ok ? r.ok({ index: res.index }) : r.fail(noLeader(res.leader)))),
      "admin.status": endpoints["admin.status"]!,
      "admin.members": handleMembers,
      "admin.snapshot": handleSnapshot,
      "admin.backup": handleBackup,
      "admin.backupChunk": handleBackupChunk,
      "admin.transfer": handleTransfer,
      "admin.add": handleMembershipChange("add"),
      "admin.promote": handleMembershipChange("promote"),
      "admin.remove": handleMembershipChange("remove")
    }
    const subs = Object.entries(own).map(([op, handle]) => {
      const answer = guarded(handle)
      return nc.subscribe(Subjects.node(cluster, id, op), {
        callback: (err, msg) => {
          if (err === null && msg.reply !== undefined && msg.reply !== "") answer(fromForwarded(nc, msg))
        }
      })
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => subs.forEach((s) => s.unsubscribe())))
    // `write` and `get` let the HTTP shim (http.ts) use the same validation, write and read paths.
    const call = (op: string, r: Responder): void => {
      const handle = Object.hasOwn(endpoints, op) ? endpoints[op] : undefined
      if (handle === undefined) return r.fail(archioError("not_found", `no endpoint ${op}`))
      guarded(handle)(r)
    }
    const gateway: Gateway = {
      status,
      write: (op, r) => guarded((x) => handleWrite(op, x))(r),
      get: guarded(handleGet),
      call,
      operations: Object.keys(endpoints)
    }
    return gateway
  })
