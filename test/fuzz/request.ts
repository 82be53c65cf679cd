/**
 * One fuzzed request to one endpoint over NATS: where it goes, its bytes, what the protocol
 * decoder says of them, and how fast-check prints it (a preview, not 500 000 numbers).
 */
import fc from "fast-check"
import { headers, type NatsConnection } from "@nats-io/transport-node"
import { forwardedHeader } from "../../actors/gateway/responder.ts"
import type { ReplyLike, Verdict } from "./answers.ts"

/** An endpoint as a client reaches it: the service's queue group, or one node's own subject. */
export interface Target {
  readonly subject: string
  /** `<group>.<op>` (`kv.put`): picks the request schema. */
  readonly op: string
  readonly verdict: (bytes: Uint8Array) => Verdict
}

const preview = (bytes: Uint8Array): string => {
  const head = Buffer.from(bytes.subarray(0, 120)).toString("latin1")
  return `${JSON.stringify(head)}${bytes.length > 120 ? `... (${bytes.length} bytes)` : ""}`
}

export class FuzzRequest {
  readonly verdict: Verdict
  constructor(
    readonly target: Target,
    readonly bytes: Uint8Array,
    /** A forwarding node's header, as a client may forge it: a request must still be answered. */
    readonly forwardedBy?: string
  ) {
    this.verdict = target.verdict(bytes)
  }
  [fc.toStringMethod](): string {
    return `${this.target.subject}${this.forwardedBy === undefined ? "" : ` (${forwardedHeader}: ${JSON.stringify(this.forwardedBy)})`} <- ${preview(this.bytes)}`
  }
  toString(): string {
    return this[fc.toStringMethod]()
  }
}

/** The reply, or why there was none (no responders, the time ran out, the client refused to send). */
export const send = async (nc: NatsConnection, subject: string, bytes: Uint8Array, timeoutMs: number, forwardedBy?: string): Promise<ReplyLike | string> => {
  try {
    if (forwardedBy === undefined) return await nc.request(subject, bytes, { timeout: timeoutMs })
    const h = headers()
    h.set(forwardedHeader, forwardedBy)
    return await nc.request(subject, bytes, { timeout: timeoutMs, headers: h })
  } catch (e) {
    return `no answer on ${subject} within ${timeoutMs} ms: ${e instanceof Error ? e.message : String(e)}`
  }
}
