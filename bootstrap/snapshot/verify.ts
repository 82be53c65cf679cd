/**
 * Reading a snapshot stream to its end and checking it, wherever its bytes come from (a node
 * during `save`, a file during `restore`): the format and the SHA-256 trailer
 * (protocol/snapshotFormat.ts), and that the state's meta records are readable and at the
 * header's index. The state records are handed out as they are parsed; they are known good
 * only once `end` returns.
 */
import { SnapshotDecoder, SnapshotFormatError, type SnapshotFormatErrorCode, type SnapshotHeader, type SnapshotRecord } from "../../protocol/snapshotFormat.ts"
import { stateMetaKeys } from "../../actors/applier/applier.ts"
import { metaKeys } from "../../actors/raft/storage.ts"

export interface RecordCounts {
  readonly kv: number
  readonly jobs: number
  readonly sessions: number
}

/** A whole, verified snapshot: what it holds and how to tell it apart from another. */
export interface SnapshotSummary {
  readonly header: SnapshotHeader
  /** Hex SHA-256 of the whole stream, as its trailer holds it. */
  readonly checksum: string
  readonly size: number
  readonly counts: RecordCounts
  /** The state's meta records (applied index, revision, leader time, job counters) by key. */
  readonly meta: ReadonlyMap<string, Uint8Array>
}

/** The problem a format error names, for a sentence like "FILE is truncated". */
export const problemOf = (code: SnapshotFormatErrorCode): string => {
  switch (code) {
    case "not_snapshot":
      return "is not an Archio snapshot"
    case "version":
      return "has a snapshot format version this build cannot read"
    case "truncated":
      return "is truncated (incomplete)"
    case "corrupt":
      return "is corrupt"
    case "checksum":
      return "is corrupt (its checksum does not match its content)"
  }
}

const stateMeta: ReadonlySet<string> = new Set(stateMetaKeys)
const untext = new TextDecoder("utf-8", { fatal: true })

export class SnapshotReader {
  private readonly decoder = new SnapshotDecoder()
  private readonly meta = new Map<string, Uint8Array>()
  private kv = 0
  private jobs = 0
  private sessions = 0

  /** Bytes read so far. */
  get received(): number {
    return this.decoder.received
  }

  /** The header, once its bytes are in. */
  get header(): SnapshotHeader | undefined {
    return this.decoder.header
  }

  /** Reads the next bytes; returns the kv, jobs and sessions records they completed. Throws SnapshotFormatError. */
  push(bytes: Uint8Array): ReadonlyArray<SnapshotRecord> {
    this.decoder.push(bytes)
    const out: Array<SnapshotRecord> = []
    for (const r of this.decoder.takeRecords()) {
      switch (r.section) {
        case "meta":
          // Only the state's own meta travels; anything else a newer writer added is left out.
          if (stateMeta.has(r.key)) this.meta.set(r.key, r.value)
          continue
        case "kv":
          this.kv++
          break
        case "jobs":
          this.jobs++
          break
        case "sessions":
          this.sessions++
          break
      }
      out.push(r)
    }
    return out
  }

  /** The input ended: the summary of a whole, verified snapshot, or a SnapshotFormatError. */
  end(): SnapshotSummary {
    this.decoder.end()
    const header = this.decoder.header!
    for (const [key, value] of this.meta) {
      let parsed: unknown
      try {
        parsed = JSON.parse(untext.decode(value))
      } catch {
        throw new SnapshotFormatError("corrupt", `its meta record ${JSON.stringify(key)} is not JSON`)
      }
      if (key === metaKeys.applied && parsed !== header.index) {
        throw new SnapshotFormatError("corrupt", `its applied index ${JSON.stringify(parsed)} is not the index ${header.index} its header names`)
      }
    }
    return {
      header,
      checksum: this.decoder.digest,
      size: this.decoder.received,
      counts: { kv: this.kv, jobs: this.jobs, sessions: this.sessions },
      meta: this.meta
    }
  }
}
