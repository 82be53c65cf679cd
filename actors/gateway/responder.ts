/**
 * One way to answer a client, whether its request reached us through the service's queue group,
 * on this node's own subject (forwarded by another node, or sent straight here by a client that
 * knows the leader), or in-process from the HTTP shim (`inProcess`). Answers once.
 *
 * Forwarding is a request to the leader whose reply we relay: a plain publish with the client's
 * inbox would vanish without a trace when the leader just died (NATS reports no-responders only
 * to the publisher's own inbox), leaving the client to time out. With a request, a dead leader
 * is an immediate `unavailable` the client retries.
 *
 * Metrics are recorded here, where every answer passes: a responder made with a `Meter` records
 * the result code (`ok` or the error code) and the time from its creation to the answer; a
 * forwarded request is recorded when the leader's answer is relayed, with the leader's code.
 */
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node"
import { isNoResponders, type Bus, type BusMessage } from "../../protocol/bus.ts"
import { archioError, errorCodes, type ArchioError, type ErrorCode } from "../../protocol/errors.ts"
import { encodeJson } from "../../protocol/json.ts"
import { errorCodeHeader, readError } from "../../protocol/reply.ts"
import * as Subjects from "../../protocol/subjects.ts"
import type { Meter, RequestMetrics } from "./metrics.ts"
import { respondOnSubject, type ServiceRequest } from "./service.ts"

const utf8 = new TextDecoder()

/** Header a node sets when it passes a client request on to the leader (never forwarded twice). */
export const forwardedHeader = "Archio-Forwarded-By"

export interface Responder {
  readonly data: Uint8Array
  /** Set when another node already forwarded this request here. */
  readonly forwardedBy: string | undefined
  ok(body: unknown): void
  fail(err: ArchioError): void
  /**
   * Passes the request to `subject` (the leader's own subject) and relays its answer;
   * `unanswered` says what the client gets when nobody answers there (default: the leader is
   * gone, or `timeout`). `settled` runs once the answer was relayed, or at once when there was
   * nothing to forward (already answered).
   */
  forward(nc: Bus, subject: string, self: string, timeoutMs: number, unanswered?: Unanswered, settled?: () => void): void
  readonly done: boolean
}

/** The error for a forwarded request that got no answer (no responders, or a timeout). */
export type Unanswered = (cause: unknown) => ArchioError

const seconds = (start: number): number => (performance.now() - start) / 1000

export const fromService = (req: ServiceRequest, meter?: Meter): Responder => {
  const start = meter === undefined ? 0 : performance.now()
  return {
    data: req.data,
    forwardedBy: req.headers?.get(forwardedHeader) || undefined,
    ok: (body) => {
      if (req.responded) return
      req.respond(encodeJson(body))
      meter?.record("ok", seconds(start))
    },
    fail: (err) => {
      if (req.responded) return
      req.respondError(err)
      meter?.record(err.code, seconds(start))
    },
    forward: (nc, subject, self, timeoutMs, unanswered, settled) => {
      if (req.responded) return settled?.()
      const reply = req.reply
      req.handOff()
      relay(nc, subject, self, req.data, reply, timeoutMs, (code) => {
        meter?.record(code, seconds(start))
        settled?.()
      }, unanswered)
    },
    get done() {
      return req.responded
    }
  }
}

export const fromForwarded = (nc: Bus, msg: BusMessage, meter?: Meter): Responder => {
  const start = meter === undefined ? 0 : performance.now()
  let done = false
  const reply = msg.reply ?? ""
  const send = (body: Uint8Array | ArchioError, code: string) => {
    if (done || reply === "") return
    done = true
    respondOnSubject(nc, reply, body)
    meter?.record(code, seconds(start))
  }
  const forwardedBy = msg.headers?.get(forwardedHeader) || undefined
  return {
    data: msg.data,
    forwardedBy,
    ok: (body) => send(encodeJson(body), "ok"),
    fail: (err) => send(err, err.code),
    forward: (nc, subject, self, timeoutMs, unanswered, settled) => {
      if (forwardedBy === undefined && !done && reply !== "") {
        // A client that addressed this node directly (leader affinity) and guessed wrong.
        done = true
        return relay(nc, subject, self, msg.data, reply, timeoutMs, (code) => {
          meter?.record(code, seconds(start))
          settled?.()
        }, unanswered)
      }
      if (forwardedBy !== undefined) send(archioError("unavailable", "this node is not the leader and the request was already forwarded once; retry"), "unavailable")
      settled?.()
    },
    get done() {
      return done
    }
  }
}

/** Where an in-process caller (the HTTP shim) wants its answer. */
export interface Answer {
  ok(body: unknown): void
  fail(err: ArchioError): void
}

/**
 * A responder for a request made inside this process (the HTTP shim): `data` are the request's
 * JSON bytes, exactly as a NATS client would send them, so decoding and validation are the
 * gateway's. Forwarding asks the leader over NATS and hands its answer (parsed) to `answer`.
 */
export const inProcess = (data: Uint8Array, answer: Answer): Responder => {
  let done = false
  return {
    data,
    forwardedBy: undefined,
    ok: (body) => {
      if (done) return
      done = true
      answer.ok(body)
    },
    fail: (err) => {
      if (done) return
      done = true
      answer.fail(err)
    },
    forward: (nc, subject, self, timeoutMs, unanswered, settled) => {
      if (done) return settled?.()
      done = true
      nc.request(subject, data, { timeout: timeoutMs, headers: forwardHeaders(self) }).finally(() => settled?.()).then(
        (msg) => {
          const err = readError(msg)
          if (err !== undefined) return answer.fail(err)
          let body: unknown
          try {
            body = JSON.parse(utf8.decode(msg.data))
          } catch {
            return answer.fail(archioError("internal", `the leader's answer from ${subject} was not JSON`))
          }
          answer.ok(body)
        },
        (e: unknown) => answer.fail(unanswered === undefined ? relayFailure(e, subject) : unanswered(e))
      )
    },
    get done() {
      return done
    }
  }
}

const forwardHeaders = (self: string): MsgHdrs => {
  const h = natsHeaders()
  h.set(forwardedHeader, self)
  return h
}

/** Why a forwarded request got no answer: the leader is gone (no responders) or slow. */
const relayFailure = (e: unknown, subject: string): ArchioError => {
  return isNoResponders(e)
    ? archioError("unavailable", `the leader (${subject.split(".")[3]}) is gone; retry`)
    : archioError("timeout", "the leader did not answer in time; a write may or may not have been applied")
}

/** `Nats-Service-Error-Code` value -> our code; the first code with a status wins (409 -> conflict). */
const codeOfStatus = new Map<string, ErrorCode>()
for (const [code, status] of Object.entries(errorCodes) as Array<[ErrorCode, number]>) {
  if (!codeOfStatus.has(String(status))) codeOfStatus.set(String(status), code)
}

/** The result code of a relayed answer: `ok`, or the code its error header stands for. */
const answerCode = (headers: MsgHdrs | undefined): string => {
  const status = headers?.get(errorCodeHeader) ?? ""
  return status === "" ? "ok" : (codeOfStatus.get(status) ?? "internal")
}

const relay = (
  nc: Bus,
  subject: string,
  self: string,
  data: Uint8Array,
  reply: string,
  timeoutMs: number,
  settled: (code: string) => void,
  unanswered: Unanswered | undefined
): void => {
  nc.request(subject, data, { timeout: timeoutMs, headers: forwardHeaders(self) }).then(
    (answer) => {
      try {
        nc.publish(reply, answer.data, answer.headers === undefined ? {} : { headers: answer.headers })
      } catch {
        // connection closing: the client's own timeout covers it
      }
      settled(answerCode(answer.headers))
    },
    (e: unknown) => {
      const err = unanswered === undefined ? relayFailure(e, subject) : unanswered(e)
      respondOnSubject(nc, reply, err)
      settled(err.code)
    }
  )
}

/**
 * The meter of each subject a request arrives on, for `fromService` and `fromForwarded`: the
 * endpoint is the subject without `archio.<cluster>.` and `node.<id>.`, so `kv.put` counts
 * requests from the queue group and on this node's own subject together. Meters are made on the
 * first request of a subject; later lookups are one `Map.get`.
 */
export const meterBySubject = (metrics: RequestMetrics, cluster: string, id: string): ((subject: string) => Meter) => {
  const root = `${Subjects.root(cluster)}.`
  const own = Subjects.node(cluster, id, "")
  const bySubject = new Map<string, Meter>()
  return (subject) => {
    let m = bySubject.get(subject)
    if (m === undefined) {
      const endpoint = subject.startsWith(own) ? subject.slice(own.length) : subject.startsWith(root) ? subject.slice(root.length) : subject
      m = metrics.endpoint(endpoint)
      bySubject.set(subject, m)
    }
    return m
  }
}
