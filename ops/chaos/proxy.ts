/**
 * A small TCP fault proxy for the chaos harness. It listens on a local port and forwards every
 * connection to one target (in the harness: one NATS server's cluster port, so each proxy carries
 * one direction of one route between two NATS servers). It can:
 *
 * - `cut()`: reset every open connection and refuse new ones (accepted, then reset at once), as
 *   a real network partition looks to NATS: the route drops and every redial fails;
 * - `delay(ms, jitterMs)`: hold every chunk for `ms` (plus up to `jitterMs`) before passing it
 *   on, in order per direction;
 * - `heal()`: forward normally again (no cut, no delay).
 *
 * The proxy itself never decides anything: the nemesis calls these methods.
 */
import * as net from "node:net"

export type ProxyMode = "pass" | "cut"

export interface ProxyOptions {
  readonly targetHost?: string
  readonly targetPort: number
  /** Port to listen on (127.0.0.1); a free one when absent. */
  readonly port?: number
  /** A name for logs and errors, e.g. `s1->s2`. */
  readonly name?: string
}

export interface ProxyStats {
  /** Connections accepted and forwarded. */
  readonly accepted: number
  /** Connections refused while cut. */
  readonly refused: number
  /** Connections reset by `cut()`. */
  readonly reset: number
  /** Connections open now. */
  readonly open: number
  readonly bytes: number
}

/** One direction of one connection: chunks wait here while a delay is set. */
class DelayedPipe {
  private readonly queue: Array<{ readonly at: number; readonly chunk: Buffer }> = []
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly to: net.Socket,
    private readonly onBytes: (n: number) => void
  ) {}

  push(chunk: Buffer, delayMs: number): void {
    // Order is kept even when the delay shrinks: nothing overtakes a chunk already queued.
    if (delayMs <= 0 && this.queue.length === 0) return this.write(chunk)
    const last = this.queue[this.queue.length - 1]
    const at = Math.max(performance.now() + delayMs, last?.at ?? 0)
    this.queue.push({ at, chunk })
    this.arm()
  }

  clear(): void {
    this.queue.length = 0
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm(): void {
    if (this.timer !== undefined || this.queue.length === 0) return
    const wait = Math.max(0, this.queue[0]!.at - performance.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      const now = performance.now()
      while (this.queue.length > 0 && this.queue[0]!.at <= now + 0.5) this.write(this.queue.shift()!.chunk)
      this.arm()
    }, wait)
  }

  private write(chunk: Buffer): void {
    if (this.to.destroyed) return
    this.onBytes(chunk.length)
    this.to.write(chunk)
  }
}

interface Pair {
  readonly client: net.Socket
  readonly upstream: net.Socket
  readonly pipes: ReadonlyArray<DelayedPipe>
}

export class FaultProxy {
  private mode: ProxyMode = "pass"
  private delayMs = 0
  private jitterMs = 0
  private readonly pairs = new Set<Pair>()
  private counts = { accepted: 0, refused: 0, reset: 0, bytes: 0 }

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    readonly name: string,
    private readonly targetHost: string,
    private readonly targetPort: number,
    private readonly random: () => number
  ) {
    server.on("connection", (socket) => this.accept(socket))
  }

  /** Starts listening on 127.0.0.1 and resolves once the port is bound. */
  static start(options: ProxyOptions, random: () => number = Math.random): Promise<FaultProxy> {
    const server = net.createServer({ noDelay: true })
    return new Promise((resolve, reject) => {
      server.once("error", reject)
      server.listen(options.port ?? 0, "127.0.0.1", () => {
        server.off("error", reject)
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        const name = options.name ?? `:${port}->:${options.targetPort}`
        resolve(new FaultProxy(server, port, name, options.targetHost ?? "127.0.0.1", options.targetPort, random))
      })
    })
  }

  get state(): { readonly mode: ProxyMode; readonly delayMs: number; readonly jitterMs: number } {
    return { mode: this.mode, delayMs: this.delayMs, jitterMs: this.jitterMs }
  }

  get stats(): ProxyStats {
    return { ...this.counts, open: this.pairs.size }
  }

  /** Resets every open connection and refuses new ones until `heal()`. */
  cut(): void {
    this.mode = "cut"
    for (const pair of [...this.pairs]) {
      this.counts.reset++
      this.drop(pair)
    }
  }

  /** Holds each chunk `ms` (+ up to `jitterMs`) before forwarding it; 0 forwards at once. */
  delay(ms: number, jitterMs = 0): void {
    this.delayMs = Math.max(0, ms)
    this.jitterMs = Math.max(0, jitterMs)
  }

  /** Back to plain forwarding: no cut, no delay. */
  heal(): void {
    this.mode = "pass"
    this.delayMs = 0
    this.jitterMs = 0
  }

  /** Closes the listener and every connection. */
  stop(): Promise<void> {
    for (const pair of [...this.pairs]) this.drop(pair)
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private currentDelay(): number {
    return this.delayMs + (this.jitterMs > 0 ? this.random() * this.jitterMs : 0)
  }

  private accept(client: net.Socket): void {
    if (this.mode === "cut") {
      this.counts.refused++
      client.on("error", () => undefined)
      client.resetAndDestroy()
      return
    }
    this.counts.accepted++
    client.setNoDelay(true)
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort, noDelay: true })
    const onBytes = (n: number): void => {
      this.counts.bytes += n
    }
    const toUpstream = new DelayedPipe(upstream, onBytes)
    const toClient = new DelayedPipe(client, onBytes)
    const pair: Pair = { client, upstream, pipes: [toUpstream, toClient] }
    this.pairs.add(pair)
    client.on("data", (chunk: Buffer) => toUpstream.push(chunk, this.currentDelay()))
    upstream.on("data", (chunk: Buffer) => toClient.push(chunk, this.currentDelay()))
    // Either side closing or failing closes the whole pair, like one TCP connection would.
    const close = (): void => this.drop(pair)
    client.on("error", close)
    upstream.on("error", close)
    client.on("close", close)
    upstream.on("close", close)
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return
    for (const pipe of pair.pipes) pipe.clear()
    for (const s of [pair.client, pair.upstream]) {
      s.on("error", () => undefined)
      if (!s.destroyed) {
        if (this.mode === "cut") s.resetAndDestroy()
        else s.destroy()
      }
    }
  }
}
