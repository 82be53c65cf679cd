/**
 * Reading replies on the client side: the Services API error headers and our JSON envelope.
 * Shared by the typed client and by nodes that ask other nodes (e.g. ReadIndex).
 */
import type { MsgHdrs } from "@nats-io/transport-node"
import { archioError, errorCodes, isErrorCode, type ArchioError } from "./errors.ts"

/** Header carrying the human-readable error text of an error reply. */
export const errorHeader = "Nats-Service-Error"
/** Header carrying the numeric error code of an error reply (always parses as a number). */
export const errorCodeHeader = "Nats-Service-Error-Code"

const decoder = new TextDecoder()

/**
 * Reads an error reply (client side): undefined when `msg` carries no `Nats-Service-Error-Code`.
 * Prefers the JSON envelope; falls back to the headers (mapping an unknown code to `internal`).
 */
export const readError = (msg: { readonly headers?: MsgHdrs | undefined; readonly data: Uint8Array }): ArchioError | undefined => {
  const h = msg.headers
  const status = h?.get(errorCodeHeader) ?? ""
  if (status === "") return undefined
  try {
    const body: unknown = JSON.parse(decoder.decode(msg.data))
    if (typeof body === "object" && body !== null && "error" in body) {
      const e: unknown = body.error
      if (typeof e === "object" && e !== null && "code" in e && "message" in e && isErrorCode(e.code) && typeof e.message === "string") {
        const detail = "detail" in e && typeof e.detail === "object" && e.detail !== null ? (e.detail as Record<string, unknown>) : undefined
        return archioError(e.code, e.message, detail)
      }
    }
  } catch {
    // not our envelope: fall back to the headers
  }
  // The first code with that status wins: 409 reads back as `conflict`.
  const byStatus = Object.entries(errorCodes).find(([, n]) => String(n) === status)?.[0]
  const code = byStatus !== undefined && isErrorCode(byStatus) ? byStatus : "internal"
  return archioError(code, h?.get(errorHeader) || `service error ${status}`)
}

