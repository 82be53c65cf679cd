/**
 * Judging one answer of the client service to a fuzzed request: what the protocol's own decoder
 * (`makeDecoder` of the endpoint's request schema) says about the payload is the oracle.
 *
 *   - refused locally  -> an error reply with exactly that code and message (the code stable,
 *                         the same whichever node or subject took it), headers matching the body;
 *                         or `busy` from a loaded node, which admits before it decodes;
 *   - accepted locally -> a success, or an error reply with a stable code other than `internal`
 *                         (a valid request may still be `not_found`, `conflict`, ...).
 */
import type { MsgHdrs } from "@nats-io/transport-node"
import { Either, Schema } from "effect"
import * as Client from "../../protocol/client.ts"
import { statusOf, type ArchioError } from "../../protocol/errors.ts"
import { makeDecoder } from "../../protocol/json.ts"
import { errorCodeHeader, errorHeader } from "../../protocol/reply.ts"

/** What the protocol decoder makes of a payload: the request, or the error the server must answer. */
export type Verdict = Either.Either<unknown, ArchioError>

/** The decoder of every endpoint, by `<group>.<op>`, from the contract's endpoint table. */
export const decoders: ReadonlyMap<string, (bytes: Uint8Array) => Verdict> = new Map(
  Object.entries(Client.endpoints).flatMap(([group, ops]) =>
    Object.entries(ops).map(([op, e]): [string, (bytes: Uint8Array) => Verdict] => [
      `${group}.${op}`,
      makeDecoder(e.request as Schema.Schema<unknown, unknown, never>)
    ])
  )
)

const decodeErrorBody = Schema.decodeUnknownEither(Client.ErrorBody, { onExcessProperty: "error" })
const utf8 = new TextDecoder("utf-8", { fatal: true })

export interface ReplyLike {
  readonly headers?: MsgHdrs | undefined
  readonly data: Uint8Array
}

/** The answer's body and error code, or a sentence saying what is malformed about it. */
export const readReply = (reply: ReplyLike): { body: Record<string, unknown>; code: string | undefined } | string => {
  let body: unknown
  try {
    body = JSON.parse(utf8.decode(reply.data))
  } catch (e) {
    return `the reply is not JSON: ${(e as Error).message}`
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return `the reply is not a JSON object: ${JSON.stringify(body)}`
  const status = reply.headers?.get(errorCodeHeader) ?? ""
  if (status === "") {
    return (body as { ok?: unknown }).ok === true ? { body: body as Record<string, unknown>, code: undefined } : `a reply without ${errorCodeHeader} is not {"ok":true,...}: ${JSON.stringify(body).slice(0, 300)}`
  }
  const envelope = decodeErrorBody(body)
  if (Either.isLeft(envelope)) return `an error reply that is not {"ok":false,"error":{"code","message"}} with a known code: ${JSON.stringify(body).slice(0, 300)}`
  const { code, message } = envelope.right.error
  if (status !== String(statusOf(code))) return `header ${errorCodeHeader} ${status} does not match code ${code} (${statusOf(code)})`
  if ((reply.headers?.get(errorHeader) ?? "") === "" && message !== "") return `an error reply without ${errorHeader}`
  return { body: body as Record<string, unknown>, code }
}

/** Answers that did not test the decoder: a file that sees many of them tests nothing (it checks). */
export const tally = { busy: 0 }

/** What is wrong with `reply` given the local `verdict`; undefined when it is as it should be. */
export const problemWith = (reply: ReplyLike, verdict: Verdict): string | undefined => {
  const read = readReply(reply)
  if (typeof read === "string") return read
  if (Either.isLeft(verdict)) {
    const want = verdict.left
    if (read.code === undefined) return `an invalid request (${want.code}: ${want.message.slice(0, 200)}) was answered ok: ${JSON.stringify(read.body).slice(0, 300)}`
    const error = read.body["error"] as { code: string; message: string }
    // The Gateway admits a request before it decodes it (a flood must cost little), so a loaded
    // node may answer `busy` first; that is a stable code too, and nothing was decoded or written.
    if (error.code === "busy") {
      tally.busy++
      return undefined
    }
    if (error.code !== want.code || error.message !== want.message) {
      return `expected ${want.code}: ${want.message.slice(0, 200)}; got ${error.code}: ${error.message.slice(0, 200)}`
    }
    return undefined
  }
  if (read.code === "internal") return `a valid request was answered internal: ${JSON.stringify(read.body).slice(0, 300)}`
  return undefined
}
