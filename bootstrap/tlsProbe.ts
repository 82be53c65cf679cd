/**
 * Why a NATS server refuses our TLS connection, found by trying it once ourselves. nats.js does
 * not say: with TLS 1.3 a server that wants a client certificate sends its alert only after our
 * side of the handshake is done, and the client just times out (or, waiting for the first
 * server, retries for ever). A refusal is final, as a wrong password is: the caller stops and
 * says why instead of waiting.
 *
 * The probe reads the server's INFO line, upgrades to TLS with our CA, certificate and key,
 * sends CONNECT and PING without credentials, and waits for any answer: any NATS line means
 * TLS was accepted (an authorization error on this credential-less CONNECT is not our concern
 * here), a TLS error means it was refused. A server that cannot be reached decides nothing.
 */
import { readFile } from "node:fs/promises"
import { isIP, connect as connectTcp, type Socket } from "node:net"
import { connect as connectTls, type ConnectionOptions as TlsOptions } from "node:tls"
import { redactUrl, type NatsSettings } from "./config.ts"

/** What one probe found. */
export type TlsVerdict = { readonly kind: "accepted" } | { readonly kind: "refused"; readonly why: string } | { readonly kind: "unreachable" }

const probeTimeoutMs = 3000

/** Errors of the network, not of TLS: a server going away or not there decides nothing. */
const networkCodes = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"])

/** OpenSSL's reason in its message (`...:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:...`), else the message. */
export const tlsReason = (message: string): string => /SSL routines:[^:]*:([^:]+):/.exec(message)?.[1] ?? message.trim()

/** A TLS-stage error as the verdict: the server's alert or our check of its certificate, else nothing decided. */
export const verdictOf = (error: { readonly code?: unknown; readonly message: string }): TlsVerdict =>
  typeof error.code === "string" && networkCodes.has(error.code) ? { kind: "unreachable" } : { kind: "refused", why: tlsReason(error.message) }

/** What to check for a refusal, from its message. */
export const adviceFor = (why: string): string =>
  /certificate required|handshake failure|bad certificate|unknown ca/i.test(why)
    ? "the server wants a client certificate it trusts (NATS_TLS_CERT, NATS_TLS_KEY)"
    : /verify|self.signed|altname|expired|issuer/i.test(why)
      ? "its certificate is not one NATS_TLS_CA vouches for, or not for this host name"
      : "check the NATS_TLS_* files and the server's tls block"

const hostAndPort = (server: string): { readonly host: string; readonly port: number } => {
  const url = new URL(server.includes("://") ? server : `nats://${server}`)
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1")
  return { host, port: url.port === "" ? 4222 : Number(url.port) }
}

/** The first line the server sends (`INFO {...}`), parsed; rejects when the socket fails first. */
const readInfo = (socket: Socket): Promise<{ readonly tls_required?: boolean; readonly tls_available?: boolean }> =>
  new Promise((resolve, reject) => {
    let text = ""
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8")
      const end = text.indexOf("\r\n")
      if (end === -1) return
      socket.removeAllListeners("data")
      socket.pause()
      const line = text.slice(0, end)
      try {
        resolve(line.startsWith("INFO ") ? (JSON.parse(line.slice(5)) as { tls_required?: boolean; tls_available?: boolean }) : {})
      } catch {
        resolve({})
      }
    })
    socket.once("error", reject)
    socket.once("close", () => reject(Object.assign(new Error("the server closed the connection"), { code: "ECONNRESET" })))
  })

/** One probe of `server` with our TLS files. */
export const probeTls = async (server: string, tls: NonNullable<NatsSettings["tls"]>): Promise<TlsVerdict> => {
  const { host, port } = hostAndPort(server)
  const files: TlsOptions = {}
  try {
    if (tls.caFile !== undefined) files.ca = await readFile(tls.caFile)
    if (tls.certFile !== undefined) files.cert = await readFile(tls.certFile)
    if (tls.keyFile !== undefined) files.key = await readFile(tls.keyFile)
  } catch (e) {
    return { kind: "refused", why: `cannot read a TLS file: ${e instanceof Error ? e.message : String(e)}` }
  }
  const socket = connectTcp({ host, port })
  const timer = setTimeout(() => socket.destroy(Object.assign(new Error("no answer"), { code: "ETIMEDOUT" })), probeTimeoutMs)
  try {
    const info = await readInfo(socket)
    if (info.tls_required !== true && info.tls_available !== true) return { kind: "refused", why: "the server does not offer TLS" }
    return await new Promise<TlsVerdict>((resolve) => {
      // An IP address is no server name (SNI); the certificate is still checked against `host`.
      const secure = connectTls({ socket, host, ...(isIP(host) === 0 ? { servername: host } : {}), ...files }, () => {
        secure.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":true}\r\nPING\r\n')
      })
      secure.once("data", () => resolve({ kind: "accepted" }))
      secure.once("error", (e: NodeJS.ErrnoException) => resolve(verdictOf(e)))
      secure.once("close", () => resolve({ kind: "unreachable" }))
    })
  } catch (e) {
    return e instanceof Error ? verdictOf(e as NodeJS.ErrnoException) : { kind: "unreachable" }
  } finally {
    clearTimeout(timer)
    socket.destroy()
  }
}

/**
 * Why the servers refuse our TLS connection, or undefined when TLS is off, accepted, or no
 * server answered. The first server that answers decides (they share one configuration).
 */
export const tlsRefusal = async (settings: NatsSettings): Promise<string | undefined> => {
  const tls = settings.tls
  if (tls === undefined) return undefined
  for (const server of settings.servers) {
    const verdict = await probeTls(server, tls)
    if (verdict.kind === "accepted") return undefined
    if (verdict.kind === "refused") return `the NATS server at ${redactUrl(server)} refuses our TLS connection (${verdict.why}): ${adviceFor(verdict.why)}`
  }
  return undefined
}
