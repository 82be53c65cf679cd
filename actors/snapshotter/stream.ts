/**
 * A snapshot as bytes, read from a LevelDB view of the applied state (Applier.stateView): the
 * state's meta keys, then every key-value record, job and session, through the snapshot format
 * (protocol/snapshotFormat.ts). Records are read in batches as bytes are asked for, so a large
 * state streams in bounded memory and never blocks the event loop for long.
 */
import { SnapshotEncoder, type SnapshotHeader, type SnapshotSection } from "../../protocol/snapshotFormat.ts"
import { stateMetaKeys, type StateView } from "../applier/applier.ts"

interface RecordIterator {
  nextv(size: number): Promise<Array<[string, Uint8Array]>>
  close(): Promise<void>
}

/** Records read per step. */
const readBatch = 1000

type StateSection = Exclude<SnapshotSection, "meta">
const stateSections: ReadonlyArray<StateSection> = ["kv", "jobs", "sessions"]

export class SnapshotStream {
  private readonly encoder: SnapshotEncoder
  private section = -1
  private iterator: RecordIterator | undefined
  private closed = false
  /** The read in progress: `close` waits for it before releasing the LevelDB snapshot. */
  private reading: Promise<unknown> | undefined

  constructor(
    private readonly view: StateView,
    readonly header: SnapshotHeader
  ) {
    this.encoder = new SnapshotEncoder(header)
  }

  /** Bytes produced so far. */
  get produced(): number {
    return this.encoder.produced
  }

  /** Hex SHA-256 of the whole stream, once it ended. */
  get digest(): string {
    return this.encoder.digest
  }

  get finished(): boolean {
    return this.encoder.finished && this.encoder.buffered === 0
  }

  /** Up to `maxBytes` of the stream (fewer only at its end); an empty array once it ended. */
  async next(maxBytes: number): Promise<Uint8Array> {
    if (this.closed) throw new Error("snapshot stream closed")
    while (this.encoder.buffered < maxBytes && !this.encoder.finished) {
      if (this.closed) throw new Error("snapshot stream closed")
      const step = this.fill()
      this.reading = step
      await step
      this.reading = undefined
    }
    return this.encoder.take(maxBytes)
  }

  /** Encodes the next batch of records (or the meta section, or the end). */
  private async fill(): Promise<void> {
    const { encoder, view } = this
    if (this.section === -1) {
      for (const key of stateMetaKeys) {
        const value = await view.meta.get(key, { snapshot: view.snapshot })
        if (value !== undefined) encoder.record("meta", key, value)
      }
      this.section = 0
      return
    }
    const name = stateSections[this.section]
    if (name === undefined) {
      encoder.finish()
      return
    }
    this.iterator ??= view.levels[name].iterator({ snapshot: view.snapshot })
    const batch = await this.iterator.nextv(readBatch)
    // A section ends only on an empty batch: a store may return fewer than asked mid-range.
    if (batch.length === 0) {
      await this.iterator.close()
      this.iterator = undefined
      this.section++
      return
    }
    for (const [key, value] of batch) encoder.record(name, key, value)
  }

  /** Releases the iterator and the LevelDB snapshot (after a read in progress settles). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.reading !== undefined) await this.reading.catch(() => undefined)
    await this.iterator?.close()
    await this.view.snapshot.close()
  }
}
