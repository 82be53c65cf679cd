/**
 * A simulated disk for one node: memory-level behind the node's Storage service, with LevelDB's
 * crash behaviour. LevelDB appends every write to its log in order; a `sync` write returns once
 * that log is on disk (and with it everything before it), while a write without `sync` may
 * still sit in the OS's buffers. So here a crash keeps every synced write and a random prefix
 * of the writes made after the last sync (a process crash keeps them all, a power cut may keep
 * none), never a write without the ones before it.
 *
 * Writes take a little virtual time and complete in the order they were made, as LevelDB's
 * writer queue does. What is durable is kept beside the database as plain maps (cheap to
 * update on every sync); a crash puts every key a lost write touched back to its durable value,
 * so the next life reads exactly what survived.
 */
import { MemoryLevel } from "memory-level"
import { over, readGeneration, withIo, type Db, type KeyRange, type StorageShape, type StoredOp, type Sublevel } from "../../actors/services/storage.ts"
import { Life } from "./life.ts"
import type { World } from "./world.ts"

/** A write as raw database keys (sublevel prefix included), so it can be replayed onto the durable copy. */
interface RawOp {
  readonly type: "put" | "del"
  readonly key: Buffer
  readonly value?: Buffer
}

const keyId = (key: Buffer): string => key.toString("latin1")

/**
 * memory-level's own batch: abstract-level's public batch costs several times more per
 * operation (options, encodings, hooks, events) than the store itself, and the node's writes
 * are the simulator's largest cost. Keys are prefixed and encoded here as the sublevels would
 * (`prefixKey`), so the node's reads through the public API see exactly what it wrote.
 */
interface RawStore {
  _batch(ops: ReadonlyArray<RawOp>, options: object): Promise<void>
}

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const rawOp = (op: StoredOp): RawOp => {
  const key = op.sublevel.prefixKey(typeof op.key === "string" ? Buffer.from(op.key, "utf8") : asBuffer(op.key), "buffer") as Buffer
  // Copied: the caller may reuse its buffers, and the durable copy must keep what was written.
  return op.type === "put" ? { type: "put", key, value: Buffer.from(op.value) } : { type: "del", key }
}

const applyOps = (db: Db, ops: ReadonlyArray<RawOp>): Promise<void> => (db as unknown as RawStore)._batch(ops, {})

export class Disk {
  /** The database every life reads and writes. */
  private readonly db: Db = new MemoryLevel<string, Uint8Array>({ keyEncoding: "utf8", valueEncoding: "view" }) as unknown as Db
  /** What a crash cannot take away: raw key id -> (raw key, value). */
  private readonly durable = new Map<string, { readonly key: Buffer; readonly value: Buffer }>()
  /** Writes made since the last sync (some maybe still in flight), oldest first. */
  private unsynced: Array<ReadonlyArray<RawOp>> = []
  private life = 0
  /** When the writer queue is free again (virtual ms). */
  private busyUntil = 0
  /** Extra virtual ms every write takes while the disk is slow (a fault). */
  slowMs = 0
  /** A crash's repair of the database, which the next life waits for. */
  private settling: Promise<void> = Promise.resolve()
  /** Writes of the current life not answered yet: a crash fails them (nobody is left to hear). */
  private readonly waiting = new Set<(e: Error) => void>()

  constructor(
    private readonly world: World,
    /** Most virtual ms one write takes (a synced one up to twice as long). */
    private readonly maxLatencyMs = 2,
    /**
     * A disk that says yes to `sync` without syncing (for the simulator's self-test: the
     * checks must notice what it loses).
     */
    private readonly liesAboutSync = false
  ) {}

  /**
   * The Storage of a new life, over what survived the last one; a finished write reaches the
   * process through `process` (a paused one hears of it when it wakes).
   */
  async open(process: Life = new Life()): Promise<StorageShape> {
    await this.db.open()
    await this.settling
    const life = ++this.life
    const live = over(this.db, await readGeneration(this.db))
    const writeRaw = (named: ReadonlyArray<RawOp>, sync: boolean): Promise<void> => {
      if (this.life !== life) return Promise.reject(new Error("simulated disk: the process is gone"))
      this.unsynced.push(named)
      const latency = this.world.int(0, (sync ? 2 : 1) * this.maxLatencyMs + 1) + this.slowMs
      this.busyUntil = Math.max(this.busyUntil, this.world.now) + latency
      return new Promise<void>((resolve, reject) => {
        this.waiting.add(reject)
        this.world.schedule(this.busyUntil - this.world.now, () => {
          if (this.life !== life) return
          applyOps(this.db, named).then(() => {
            this.waiting.delete(reject)
            // The log up to this write is on disk, earlier unsynced writes included.
            if (sync && !this.liesAboutSync) this.makeDurable(this.unsynced.splice(0, this.unsynced.indexOf(named) + 1))
            process.run(() => {
              if (this.life === life) resolve()
            })
          }, reject)
        })
      })
    }
    const write = (ops: ReadonlyArray<StoredOp>, sync: boolean): Promise<void> => writeRaw(ops.map(rawOp), sync)
    // A range delete is an unsynced write of every key in the range, as LevelDB logs it.
    const drop = async <K extends string | Uint8Array>(sublevel: Sublevel<K, Uint8Array>, range: KeyRange<K>): Promise<void> => {
      const keys = await sublevel.keys(range).all()
      if (keys.length === 0) return
      // K is one of the two key types StoredOp pairs with its sublevel; TypeScript cannot narrow a generic.
      const ops = keys.map((key) => rawOp({ type: "del", sublevel, key } as unknown as StoredOp))
      return writeRaw(ops, false)
    }
    return withIo(live, { write, drop })
  }

  private makeDurable(writes: ReadonlyArray<ReadonlyArray<RawOp>>): void {
    for (const w of writes) {
      for (const op of w) {
        if (op.type === "put") this.durable.set(keyId(op.key), { key: op.key, value: op.value! })
        else this.durable.delete(keyId(op.key))
      }
    }
  }

  /** The process died: unsynced writes survive only as a random prefix. */
  crash(): void {
    this.end(this.world.int(0, this.unsynced.length + 1))
  }

  /** The disk is lost (a wiped data dir, a new machine): the process dies and nothing survives. */
  wipe(): void {
    this.end(0)
    this.durable.clear()
    this.settling = this.settling.then(() => this.db.clear())
  }

  /** A clean stop: LevelDB closed, everything written survives. */
  close(): void {
    this.end(this.unsynced.length)
  }

  /**
   * Ends the life: the first `kept` unsynced writes become durable, and every key an unsynced
   * write touched goes back to its durable value (a write still in flight never landed).
   */
  private end(kept: number): void {
    this.life++
    const rejects = [...this.waiting]
    this.waiting.clear()
    // Lets the dead life's code finish (its finalizers), with nothing reaching the disk.
    for (const reject of rejects) reject(new Error("simulated disk: the process is gone"))
    this.makeDurable(this.unsynced.slice(0, kept))
    const repair: RawOp[] = []
    const seen = new Set<string>()
    for (const w of this.unsynced) {
      for (const op of w) {
        const id = keyId(op.key)
        if (seen.has(id)) continue
        seen.add(id)
        const d = this.durable.get(id)
        repair.push(d === undefined ? { type: "del", key: op.key } : { type: "put", key: op.key, value: d.value })
      }
    }
    this.unsynced = []
    if (repair.length > 0) this.settling = this.settling.then(() => applyOps(this.db, repair))
  }
}
