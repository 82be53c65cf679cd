/**
 * A simulated NATS: subjects with `*` and `>` wildcards, queue groups (one member picked at
 * random), request/reply through inboxes, no-responders, and the faults core NATS can show —
 * lost, delayed (hence reordered) messages — plus partitions between hosts, and duplicated
 * messages beyond what NATS shows: a plain publish (Raft's messages) may arrive twice, as a
 * resent one would. A request (a message with a reply subject) never does: NATS delivers a
 * message at most once, and a client's retry is a new request, which the typed client makes;
 * an answer such as `busy` ("this request was not written") speaks of the one delivery.
 *
 * Each host (a node, a client) connects with `connect`; the connection is a `Bus`, so the
 * node's actors and the typed client run on it unchanged. A partition puts hosts in groups:
 * a message crosses only between hosts of one group, and a host sees only the subscriptions of
 * its own group (as behind a broken route between NATS servers), so a request whose every
 * responder is on the far side gets no-responders. `kill` drops a connection at once, as the
 * server does when a process dies: its subscriptions vanish, nothing it sent later leaves.
 */
import { errors, headers, type MsgHdrs } from "@nats-io/transport-node"
import type { Bus, BusCallback, BusMessage, BusSubscription } from "../../protocol/bus.ts"
import { Life } from "./life.ts"
import type { World } from "./world.ts"

/** NATS's default `max_payload`. */
export const maxPayload = 1024 * 1024

interface Sub {
  readonly conn: Connection
  readonly subject: string
  readonly queue: string | undefined
  readonly callback: BusCallback
  /** For wildcard subjects: does a subject match? */
  readonly matches: ((subject: string) => boolean) | undefined
  active: boolean
  end: (() => void) | undefined
}

const isWildcard = (subject: string): boolean => subject.split(".").some((t) => t === "*" || t === ">")

/** A matcher for a wildcard subject; `prefix.>` and `prefix.*` (the common ones) by prefix. */
const matcher = (pattern: string): ((subject: string) => boolean) => {
  const tokens = pattern.split(".")
  const last = tokens[tokens.length - 1]
  const rest = tokens.slice(0, -1)
  if (!rest.includes("*") && !rest.includes(">")) {
    const prefix = `${rest.join(".")}.`
    if (last === ">") return (s) => s.length > prefix.length && s.startsWith(prefix)
    if (last === "*") return (s) => s.length > prefix.length && s.startsWith(prefix) && s.indexOf(".", prefix.length) === -1
  }
  return (s) => {
    const parts = s.split(".")
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!
      if (t === ">") return parts.length > i
      if (i >= parts.length) return false
      if (t !== "*" && t !== parts[i]) return false
    }
    return parts.length === tokens.length
  }
}

const noRespondersHeaders = (): MsgHdrs => headers(503, "No Responders")

export class Network {
  /** Chance that one delivery is lost, that it arrives twice, and the most it is delayed (ms). */
  dropRate = 0
  dupRate = 0
  maxDelayMs = 2
  /** Messages delivered, for the run's summary. */
  delivered = 0
  private readonly groups = new Map<string, number>()
  private readonly exact = new Map<string, Sub[]>()
  private wildcard: Sub[] = []
  private inboxes = 0

  constructor(readonly world: World) {}

  /** A connection for `host`, whose messages reach it through `life` (one per process life). */
  connect(host: string, life: Life = new Life()): Connection {
    return new Connection(this, host, life)
  }

  /** Splits hosts into groups (a host missing from the map is in group 0). */
  partition(groups: ReadonlyMap<string, number>): void {
    this.groups.clear()
    for (const [h, g] of groups) this.groups.set(h, g)
  }

  heal(): void {
    this.groups.clear()
    this.dropRate = 0
    this.dupRate = 0
  }

  groupOf(host: string): number {
    return this.groups.get(host) ?? 0
  }

  reachable(a: string, b: string): boolean {
    return this.groupOf(a) === this.groupOf(b)
  }

  newInbox(host: string): string {
    return `_INBOX.sim.${host}.${(this.inboxes++).toString(36)}`
  }

  add(sub: Sub): void {
    if (sub.matches !== undefined) this.wildcard.push(sub)
    else {
      const list = this.exact.get(sub.subject)
      if (list === undefined) this.exact.set(sub.subject, [sub])
      else list.push(sub)
    }
  }

  remove(sub: Sub): void {
    sub.active = false
    if (sub.matches !== undefined) this.wildcard = this.wildcard.filter((s) => s !== sub)
    else {
      const list = this.exact.get(sub.subject)
      if (list === undefined) return
      const kept = list.filter((s) => s !== sub)
      if (kept.length === 0) this.exact.delete(sub.subject)
      else this.exact.set(sub.subject, kept)
    }
  }

  /** Routes one published message from `from` (see the module comment for the faults). */
  route(from: Connection, subject: string, data: Uint8Array, reply: string | undefined, hdrs: MsgHdrs | undefined): void {
    const receivers: Sub[] = []
    const queues = new Map<string, Sub[]>()
    const consider = (sub: Sub): void => {
      if (!sub.active || !this.reachable(from.host, sub.conn.host)) return
      if (sub.queue === undefined) receivers.push(sub)
      else {
        const members = queues.get(sub.queue)
        if (members === undefined) queues.set(sub.queue, [sub])
        else members.push(sub)
      }
    }
    const direct = this.exact.get(subject)
    if (direct !== undefined) for (const sub of direct) consider(sub)
    for (const sub of this.wildcard) if (sub.matches!(subject)) consider(sub)
    for (const members of queues.values()) receivers.push(this.world.pick(members))
    if (receivers.length === 0) {
      // The server answers a request nobody (on this side) listens to with a 503 status.
      if (reply !== undefined) this.route(from, reply, new Uint8Array(0), undefined, noRespondersHeaders())
      return
    }
    for (const sub of receivers) this.deliver(from, sub, { subject, data, reply, headers: hdrs })
  }

  private deliver(from: Connection, sub: Sub, msg: BusMessage): void {
    if (this.world.chance(this.dropRate)) return
    const copies = msg.reply === undefined && this.world.chance(this.dupRate) ? 2 : 1
    for (let c = 0; c < copies; c++) {
      this.world.schedule(this.world.int(1, this.maxDelayMs + 1), () => {
        // Lost if the subscriber went away or a partition came between while it was in flight.
        if (!sub.active || !this.reachable(from.host, sub.conn.host)) return
        this.delivered++
        // A fresh buffer per delivery, as from a socket: nobody shares bytes with the sender.
        const delivered: BusMessage = { subject: msg.subject, data: msg.data.slice(), reply: msg.reply, headers: msg.headers }
        // A paused process reads it when it wakes, if it still listens then.
        sub.conn.life.run(() => {
          if (sub.active) sub.callback(null, delivered)
        })
      })
    }
  }
}

/** One host's connection: a `Bus` on the simulated network. */
export class Connection implements Bus {
  readonly info = { max_payload: maxPayload }
  private closed = false
  private readonly subs = new Set<Sub>()

  constructor(
    private readonly network: Network,
    readonly host: string,
    readonly life: Life
  ) {}

  publish(subject: string, payload: Uint8Array = new Uint8Array(0), options?: { readonly reply?: string; readonly headers?: MsgHdrs }): void {
    if (this.closed) throw new errors.ClosedConnectionError()
    if (payload.length > maxPayload) throw new errors.InvalidArgumentError(`payload of ${payload.length} bytes is over max_payload`)
    this.network.route(this, subject, payload, options?.reply, options?.headers)
  }

  subscribe(subject: string, options: { readonly queue?: string; readonly callback: BusCallback }): BusSubscription {
    if (this.closed) throw new errors.ClosedConnectionError()
    const sub: Sub = {
      conn: this,
      subject,
      queue: options.queue,
      callback: options.callback,
      matches: isWildcard(subject) ? matcher(subject) : undefined,
      active: true,
      end: undefined
    }
    const closed = new Promise<void>((resolve) => {
      sub.end = resolve
    })
    this.network.add(sub)
    this.subs.add(sub)
    const unsubscribe = (): void => {
      if (!sub.active) return
      this.network.remove(sub)
      this.subs.delete(sub)
      sub.end?.()
    }
    return {
      unsubscribe,
      drain: async () => unsubscribe(),
      isClosed: () => !sub.active,
      closed
    }
  }

  request(subject: string, payload: Uint8Array, options: { readonly timeout: number; readonly headers?: MsgHdrs }): Promise<BusMessage> {
    return new Promise<BusMessage>((resolve, reject) => {
      const inbox = this.network.newInbox(this.host)
      let settled = false
      let cancelTimer: () => void = () => {}
      const sub = this.subscribe(inbox, {
        callback: (_err, msg) => {
          if (settled) return
          settled = true
          sub.unsubscribe()
          cancelTimer()
          if (msg.data.length === 0 && msg.headers?.code === 503) {
            reject(new errors.RequestError(`no responders: '${subject}'`, { cause: new errors.NoRespondersError(subject) }))
          } else resolve(msg)
        }
      })
      cancelTimer = this.network.world.schedule(options.timeout, () => {
        if (settled) return
        settled = true
        sub.unsubscribe()
        reject(new errors.TimeoutError())
      })
      try {
        this.publish(subject, payload, options.headers === undefined ? { reply: inbox } : { reply: inbox, headers: options.headers })
      } catch (e) {
        settled = true
        sub.unsubscribe()
        cancelTimer()
        reject(e)
      }
    })
  }

  isClosed(): boolean {
    return this.closed
  }

  async drain(): Promise<void> {
    for (const sub of [...this.subs]) {
      this.network.remove(sub)
      sub.end?.()
    }
    this.subs.clear()
    this.closed = true
  }

  /** The process died: its subscriptions vanish at once and nothing is told. */
  kill(): void {
    for (const sub of this.subs) this.network.remove(sub)
    this.subs.clear()
    this.closed = true
  }
}
