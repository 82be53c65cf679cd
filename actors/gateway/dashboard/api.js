/* global sessionStorage, AbortSignal */
/**
 * The dashboard's one way to the node: `POST /api/<group>.<op>` with the JSON body a NATS client
 * would send, answered by the Gateway's own handlers. Errors come back as the API's: an
 * `ApiError` with its stable code (`conflict`, `unauthorized`, `unavailable`, ...) and message.
 */

const tokenKey = "archio.httpToken"

/** A call that did not answer in this long counts the node as unreachable (its own deadline is shorter). */
const callTimeoutMs = 15_000

/** The HTTP token for this tab (session storage: gone when the tab closes), or "". */
export const getToken = () => sessionStorage.getItem(tokenKey) ?? ""

export const setToken = (token) => {
  if (token === "") sessionStorage.removeItem(tokenKey)
  else sessionStorage.setItem(tokenKey, token)
}

export class ApiError extends Error {
  /**
   * @param {string} code the API's error code, or `offline` when the node could not be reached
   * @param {string} message
   * @param {number} status HTTP status (0 when there was no answer)
   */
  constructor(code, message, status, detail) {
    super(message)
    this.code = code
    this.status = status
    this.detail = detail
  }
}

/** Runs `<group>.<op>` on this node; resolves with the reply, rejects with an `ApiError`. */
export const call = async (op, body = {}) => {
  const headers = { "Content-Type": "application/json" }
  const token = getToken()
  if (token !== "") headers.Authorization = `Bearer ${token}`
  let res
  try {
    res = await fetch(`/api/${op}`, { method: "POST", headers, body: JSON.stringify(body), cache: "no-store", signal: AbortSignal.timeout(callTimeoutMs) })
  } catch (e) {
    throw new ApiError("offline", `cannot reach this node (${e instanceof Error ? e.message : String(e)})`, 0)
  }
  let reply
  try {
    reply = await res.json()
  } catch {
    throw new ApiError("internal", `the node answered HTTP ${res.status} without JSON`, res.status)
  }
  if (!res.ok || reply?.ok === false) {
    const error = reply?.error ?? {}
    throw new ApiError(error.code ?? "internal", error.message ?? reply?.message ?? `HTTP ${res.status}`, res.status, error.detail)
  }
  return reply
}
