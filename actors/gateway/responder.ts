/**
 * One way to answer a client, whether its request reached us through the service's queue group
 * or on this node's own subject (forwarded by another node, or sent straight here by a client
 * that knows the leader). Answers once.
 *
 * Forwarding is a request to the leader whose reply we relay: a plain publish with the client's
 * inbox would vanish without a trace when the leader just died (NATS reports no-responders only
 * to the publisher's own inbox), leaving the client to time out. With a request, a dead leader
 * is an immediate `unavailable` the client retries.
 */
import { headers as natsHeaders, type Msg, type NatsConnection } from "@nats-io/transport-node"
import { archioError, type ArchioError } from "../../protocol/errors.ts"
import { encodeJson } from "../../protocol/json.ts"
import { respondOnSubject, type ServiceRequest } from "./service.ts"

/** Header a node sets when it passes a client request on to the leader (never forwarded twice). */
export const forwardedHeader = "Archio-Forwarded-By"

export interface Responder {
  readonly data: Uint8Array
  /** Set when another node already forwarded this request here. */
  readonly forwardedBy: string | undefined
  ok(body: unknown): void
  fail(err: ArchioError): void
  /** Passes the request to `subject` (the leader's own subject) and relays its answer. */
  forward(nc: NatsConnection, subject: string, self: string, timeoutMs: number): void
  readonly done: boolean
}

export const fromService = (req: ServiceRequest): Responder => ({
  data: req.data,
  forwardedBy: req.headers?.get(forwardedHeader) || undefined,
  ok: (body) => req.respond(encodeJson(body)),
  fail: (err) => req.respondError(err),
  forward: (nc, subject, self, timeoutMs) => {
    const reply = req.reply
    req.handOff()
    relay(nc, subject, self, req.data, reply, timeoutMs)
  },
  get done() {
    return req.responded
  }
})

export const fromForwarded = (nc: NatsConnection, msg: Msg): Responder => {
  let done = false
  const reply = msg.reply ?? ""
  const send = (body: Uint8Array | ArchioError) => {
    if (done || reply === "") return
    done = true
    respondOnSubject(nc, reply, body)
  }
  const forwardedBy = msg.headers?.get(forwardedHeader) || undefined
  return {
    data: msg.data,
    forwardedBy,
    ok: (body) => send(encodeJson(body)),
    fail: (err) => send(err),
    forward: (nc, subject, self, timeoutMs) => {
      if (forwardedBy !== undefined) {
        send(archioError("unavailable", "this node is not the leader and the request was already forwarded once; retry"))
      } else if (!done && reply !== "") {
        // A client that addressed this node directly (leader affinity) and guessed wrong.
        done = true
        relay(nc, subject, self, msg.data, reply, timeoutMs)
      }
    },
    get done() {
      return done
    }
  }
}

const relay = (nc: NatsConnection, subject: string, self: string, data: Uint8Array, reply: string, timeoutMs: number): void => {
  const h = natsHeaders()
  h.set(forwardedHeader, self)
  nc.request(subject, data, { timeout: timeoutMs, headers: h }).then(
    (answer) => {
      try {
        nc.publish(reply, answer.data, answer.headers === undefined ? {} : { headers: answer.headers })
      } catch {
        // connection closing: the client's own timeout covers it
      }
    },
    (e: unknown) => {
      const gone = e instanceof Error && /no responders|503/i.test(`${e.message} ${String(e.cause ?? "")}`)
      respondOnSubject(
        nc,
        reply,
        gone
          ? archioError("unavailable", `the leader (${subject.split(".")[3]}) is gone; retry`)
          : archioError("timeout", "the leader did not answer in time; a write may or may not have been applied")
      )
    }
  )
}
