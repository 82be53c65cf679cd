/**
 * A minimal HTTP/1.1 client over a plain socket, for sending what `fetch` and `http.request`
 * refuse to (any method, any bytes in the request line, lying or huge bodies) and still reading
 * the answer. It reads one response (by its Content-Length, or up to the close) and stops
 * writing the body once the server has answered.
 *
 * A server that answers before reading the body (a refusal, a route that takes no body) may
 * close the connection while the client is still sending; the client's next write then fails
 * (EPIPE) and Node drops the socket with the answer unread. So, like curl with `Expect:
 * 100-continue`, this client waits (up to 2 s) for the answer before sending a body the server
 * is not going to read (`answerFirst`), and once a chunked body passes the server's cap.
 */
import { connect } from "node:net"

export interface RawAnswer {
  readonly status: number
  /** Header names in lower case. */
  readonly headers: ReadonlyMap<string, string>
  readonly body: Buffer
}

export interface RawRequest {
  /** Everything before the body, without the blank line: request line and headers, CRLF-separated. */
  readonly head: string
  readonly body?: Uint8Array
  /** Send the body with chunked transfer encoding (the head must say so). */
  readonly chunked?: boolean
  /** The server answers without reading the body: wait for that answer before sending it. */
  readonly answerFirst?: boolean
  /** The server's body cap: it refuses a chunked body once past it; none when absent. */
  readonly capBytes?: number
}

const piece = 64 * 1024
const answerDueMs = 2_000

interface Parsed {
  readonly answer: RawAnswer
  /** True once the whole body (Content-Length bytes) is in. */
  readonly complete: boolean
}

const parse = (bytes: Buffer, head: boolean): Parsed | undefined => {
  const end = bytes.indexOf("\r\n\r\n")
  if (end < 0) return undefined
  const [statusLine, ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n")
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(":")
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  const rest = bytes.subarray(end + 4)
  const declared = headers.get("content-length")
  const length = head ? 0 : declared === undefined ? undefined : Number(declared)
  return {
    answer: { status: m === null ? 0 : Number(m[1]), headers, body: length === undefined ? rest : rest.subarray(0, length) },
    complete: length !== undefined && rest.length >= length
  }
}

/** Sends `request` on a fresh connection and reads one answer; a string says why there was none. */
export const rawHttp = (port: number, request: RawRequest, timeoutMs: number): Promise<RawAnswer | string> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1")
    const isHead = request.head.startsWith("HEAD ")
    const received: Array<Buffer> = []
    let settled = false
    const finish = (why?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const all = Buffer.concat(received)
      const parsed = parse(all, isHead)
      if (parsed === undefined) resolve(all.length === 0 ? (why ?? "the server closed the connection without an answer") : `no complete answer: ${JSON.stringify(all.subarray(0, 200).toString("latin1"))}`)
      else if (parsed.answer.status === 0) resolve(`not an HTTP status line: ${JSON.stringify(all.subarray(0, 80).toString("latin1"))}`)
      else resolve(parsed.answer)
    }
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs)
    socket.on("data", (chunk: Buffer) => {
      received.push(chunk)
      if (parse(Buffer.concat(received), isHead)?.complete === true) finish()
    })
    socket.on("end", () => finish())
    socket.on("close", () => finish())
    socket.on("error", (e) => finish(`connection error: ${e.message}`))

    const body = request.body ?? new Uint8Array(0)
    const cap = request.capBytes ?? Number.POSITIVE_INFINITY
    // Where to wait for an early answer, and how long: [body offset, ms], in order.
    const pauses: Array<[number, number]> = []
    if (request.answerFirst === true && body.length > 0) pauses.push([0, answerDueMs])
    if (request.chunked === true && body.length > cap) pauses.push([cap + 1, answerDueMs])
    let offset = 0
    const writeNext = (): void => {
      if (settled || socket.destroyed || received.length > 0) return
      const pause = pauses[0]
      if (pause !== undefined && offset >= pause[0]) {
        pauses.shift()
        setTimeout(writeNext, pause[1])
        return
      }
      if (offset >= body.length) {
        if (request.chunked === true) socket.write("0\r\n\r\n")
        return
      }
      const part = body.subarray(offset, offset + piece)
      offset += part.length
      const framed = request.chunked === true ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from("\r\n")]) : part
      socket.write(framed, () => setImmediate(writeNext))
    }
    socket.write(`${request.head}\r\n\r\n`, () => writeNext())
  })
