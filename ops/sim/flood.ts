/**
 * A flood: a burst of raw requests sent all at once, far more than a node may hold (puts on fresh
 * keys, linearizable gets, leases that park), on the service subject or straight at one node, as
 * a misbehaving client of any language would. Every answer is counted by code; the keys of puts
 * answered `busy` are kept, and the simulation checks at the end that none of them exists: `busy`
 * must mean "nothing was written".
 */
import { encodeJson } from "../../protocol/json.ts"
import { readError } from "../../protocol/reply.ts"
import * as Subjects from "../../protocol/subjects.ts"
import type { Connection, Network } from "./network.ts"
import type { World } from "./world.ts"

/** The queue the flood's leases wait on: no producer fills it, so they park until their wait ends. */
export const floodQueue = "flood"

export class Flood {
  private readonly conn: Connection
  private seq = 0
  /** Keys of puts answered `busy`: none may exist at the end. */
  readonly refusedKeys: string[] = []
  readonly answers = { ok: 0, busy: 0, other: 0 }

  constructor(
    private readonly world: World,
    network: Network,
    private readonly cluster: string
  ) {
    this.conn = network.connect("flood")
  }

  /** Sends `count` requests at once, to `node`'s own subjects or (undefined) the service's. */
  burst(node: string | undefined, count: number): void {
    const subject = (op: string): string => (node === undefined ? `${Subjects.root(this.cluster)}.${op}` : Subjects.node(this.cluster, node, op))
    for (let i = 0; i < count; i++) {
      const r = this.world.random()
      if (r < 0.6) {
        const key = `flood/${this.seq++}`
        this.send(subject("kv.put"), { key, value: "f" }, key)
      } else if (r < 0.85) {
        this.send(subject("kv.get"), { key: `flood/${this.world.int(0, Math.max(1, this.seq))}` }, undefined)
      } else {
        this.send(subject("jobs.lease"), { queues: [floodQueue], max: 1, workerId: "flood", waitMs: this.world.int(50, 500), leaseMs: 1000 }, undefined)
      }
    }
  }

  private send(subject: string, body: unknown, putKey: string | undefined): void {
    this.conn.request(subject, encodeJson(body), { timeout: 2_000 }).then(
      (msg) => {
        const err = readError(msg)
        if (err === undefined) this.answers.ok++
        else if (err.code === "busy") {
          this.answers.busy++
          if (putKey !== undefined) this.refusedKeys.push(putKey)
        } else this.answers.other++
      },
      () => this.answers.other++
    )
  }

  close(): void {
    this.conn.kill()
  }
}
