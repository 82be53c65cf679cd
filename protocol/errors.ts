/**
 * The one table of client-facing errors. Codes are stable API: clients match on them.
 * Each code maps to a numeric code for the Services API `Nats-Service-Error-Code` header
 * (HTTP-like, so people recognise them) and to an HTTP status for the REST shim.
 */
import { Data } from "effect"

export const errorCodes = {
  bad_request: 400,
  /** The NATS server refused the request or its replies to this client's user (permissions): nothing reached Archio. */
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  lease_lost: 409,
  too_large: 413,
  /** The node holds as many waiting requests as it may; nothing was written. Back off and retry. */
  busy: 429,
  unavailable: 503,
  timeout: 504,
  internal: 500
} as const

export type ErrorCode = keyof typeof errorCodes

export const isErrorCode = (code: unknown): code is ErrorCode =>
  typeof code === "string" && Object.hasOwn(errorCodes, code)

/** An error a client sees: a stable code and a sentence a person understands. */
export class ArchioError extends Data.TaggedError("ArchioError")<{
  readonly code: ErrorCode
  readonly message: string
  /** Extra machine-readable detail, e.g. the leader id on `unavailable` or the current revision on `conflict`. */
  readonly detail?: Readonly<Record<string, unknown>>
}> {}

export const archioError = (
  code: ErrorCode,
  message: string,
  detail?: Readonly<Record<string, unknown>>
): ArchioError => new ArchioError(detail === undefined ? { code, message } : { code, message, detail })

/** The JSON body of every error reply. */
export interface ErrorEnvelope {
  readonly ok: false
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly detail?: Readonly<Record<string, unknown>> }
}

export const toEnvelope = (e: ArchioError): ErrorEnvelope => ({
  ok: false,
  error: e.detail === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, detail: e.detail }
})

export const statusOf = (code: ErrorCode): number => errorCodes[code]
