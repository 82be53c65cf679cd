/**
 * One way to answer a client, whether its request reached us through the service's queue group
 * or was forwarded by another node with the client's inbox as reply subject. Answers once.
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
  /** Passes the request to `subject` (another node), which will answer the client directly. */
  forward(nc: NatsConnection, subject: string, self: string): void
  readonly done: boolean
}

export const fromService = (req: ServiceRequest): Responder => ({
  data: req.data,
  forwardedBy: req.headers?.get(forwardedHeader) || undefined,
  ok: (body) => req.respond(encodeJson(body)),
  fail: (err) => req.respondError(err),
  forward: (nc, subject, self) => {
    forwardRaw(nc, subject, self, req.data, req.reply)
    req.handOff()
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
    forward: (nc, subject, self) => {
      if (forwardedBy !== undefined) {
        send(archioError("unavailable", "this node is not the leader and the request was already forwarded once; retry"))
      } else if (!done && reply !== "") {
        // A client that addressed this node directly (leader affinity) and guessed wrong.
        done = true
        forwardRaw(nc, subject, self, msg.data, reply)
      }
    },
    get done() {
      return done
    }
  }
}

const forwardRaw = (nc: NatsConnection, subject: string, self: string, data: Uint8Array, reply: string): void => {
  const h = headersOf(self)
  nc.publish(subject, data, { reply, headers: h })
}

const headersOf = (self: string) => {
  const h = natsHeaders()
  h.set(forwardedHeader, self)
  return h
}
