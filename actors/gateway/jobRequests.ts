/**
 * Job endpoints' wire side: decoding requests into logged commands (writes) or queries
 * (reads), and turning stored job records into the `JobView` clients see. Pure; the Gateway
 * does the proposing and answering.
 */
import { Either } from "effect"
import * as Client from "../../protocol/client.ts"
import { archioError, type ArchioError } from "../../protocol/errors.ts"
import { makeDecoder } from "../../protocol/json.ts"
import { defaultPageLimit } from "../../protocol/limits.ts"
import type { LoggedJobCommand } from "../applier/applier.ts"
import type { JobRecord } from "../applier/jobQueue.ts"
import { opt } from "./optional.ts"

const decodeEnqueue = makeDecoder(Client.EnqueueRequest)
const decodeEnqueueBatch = makeDecoder(Client.EnqueueBatchRequest)
const decodeAck = makeDecoder(Client.AckRequest)
const decodeAckBatch = makeDecoder(Client.AckBatchRequest)
const decodeFail = makeDecoder(Client.FailRequest)
const decodeExtend = makeDecoder(Client.ExtendRequest)
const decodeRelease = makeDecoder(Client.ReleaseRequest)
const decodeCancel = makeDecoder(Client.CancelRequest)
const decodeRetry = makeDecoder(Client.RetryRequest)
const decodePurge = makeDecoder(Client.PurgeRequest)
export const decodeLease = makeDecoder(Client.LeaseRequest)
export const decodeJobGet = makeDecoder(Client.JobGetRequest)
export const decodeList = makeDecoder(Client.ListRequest)
export const decodeStats = makeDecoder(Client.StatsRequest)

/** A job as logged: its fields always in this order, whatever order the request had them in. */
const toSpec = (s: Client.JobSpec): Client.JobSpec => ({
  queue: s.queue,
  payload: s.payload,
  ...opt("priority", s.priority),
  ...opt("delay", s.delay),
  ...opt("runAt", s.runAt),
  ...opt("maxAttempts", s.maxAttempts),
  ...opt("backoff", s.backoff),
  ...opt("leaseMs", s.leaseMs),
  ...opt("uniqueKey", s.uniqueKey),
  ...opt("retainMs", s.retainMs)
})

type Decode = (bytes: Uint8Array) => Either.Either<LoggedJobCommand, ArchioError>

/** Job write endpoints by operation: each decodes into one logged command. */
export const jobWrites: Record<"enqueue" | "enqueueBatch" | "ack" | "ackBatch" | "fail" | "extend" | "release" | "cancel" | "retry" | "purge", Decode> = {
  enqueue: (bytes) =>
    Either.map(decodeEnqueue(bytes), ({ token, ...spec }) => ({ op: "jobs.enqueue", jobs: [toSpec(spec)], batch: false, ...opt("token", token) })),
  enqueueBatch: (bytes) =>
    Either.map(decodeEnqueueBatch(bytes), (r) => ({ op: "jobs.enqueue", jobs: r.jobs.map(toSpec), batch: true, ...opt("token", r.token) })),
  ack: (bytes) => Either.map(decodeAck(bytes), (r) => ({ op: "jobs.ack", id: r.id, fence: r.token, ...opt("result", r.result) })),
  ackBatch: (bytes) =>
    Either.map(decodeAckBatch(bytes), (r) => ({ op: "jobs.ackBatch", acks: r.acks.map((a) => ({ id: a.id, fence: a.token, ...opt("result", a.result) })) })),
  fail: (bytes) =>
    Either.map(decodeFail(bytes), (r) => ({ op: "jobs.fail", id: r.id, fence: r.token, error: r.error, retryable: r.retryable ?? true })),
  extend: (bytes) =>
    Either.map(decodeExtend(bytes), (r) => ({ op: "jobs.extend", id: r.id, fence: r.token, ...opt("leaseMs", r.leaseMs), ...opt("progress", r.progress) })),
  release: (bytes) => Either.map(decodeRelease(bytes), (r) => ({ op: "jobs.release", id: r.id, fence: r.token })),
  cancel: (bytes) => Either.map(decodeCancel(bytes), (r) => ({ op: "jobs.cancel", id: r.id })),
  retry: (bytes) => Either.map(decodeRetry(bytes), (r) => ({ op: "jobs.retry", id: r.id })),
  purge: (bytes) =>
    Either.map(decodePurge(bytes), (r) => ({
      op: "jobs.purge",
      queue: r.queue,
      states: r.states ?? ["completed", "dead", "cancelled"],
      olderThanMs: r.olderThanMs ?? 0
    }))
}

export const toJobView = (j: JobRecord): Client.JobView => ({
  id: j.id,
  queue: j.queue,
  state: j.state,
  payload: j.payload,
  priority: j.priority,
  attempts: j.attempts,
  maxAttempts: j.maxAttempts,
  runAt: j.runAt,
  createdAt: j.createdAt,
  updatedAt: j.updatedAt,
  ...opt("finishedAt", j.finishedAt),
  ...(j.state === "leased" ? { token: j.token, ...opt("workerId", j.workerId), ...opt("leaseUntil", j.leaseUntil) } : {}),
  ...opt("result", j.result),
  ...opt("error", j.error),
  ...opt("progress", j.progress),
  ...opt("uniqueKey", j.uniqueKey)
})

/** `jobs.list` cursors are the decimal seq of the last job returned. */
export const decodeListCursor = (cursor: string | undefined): Either.Either<number, ArchioError> => {
  if (cursor === undefined) return Either.right(0)
  return /^[1-9][0-9]{0,15}$/.test(cursor)
    ? Either.right(Number(cursor))
    : Either.left(archioError("bad_request", "cursor: not a cursor from a jobs.list reply (send back the reply's cursor unchanged)"))
}

export const listLimit = (limit: number | undefined): number => limit ?? defaultPageLimit
