/**
 * Backup sessions of one node: `admin.backup` opens a snapshot stream of the applied state
 * (`Snapshotter.openStream`, a LevelDB view, never a copy in memory) and `admin.backupChunk`
 * reads it forwards, one chunk per request, so a client copies any size of state over NATS in
 * requests well under `max_payload`.
 *
 * A stream reads forwards only, so a session keeps just the last chunk it handed out: the next
 * offset reads the next chunk, the offset of the last chunk (a client's retry after a lost reply)
 * gets the same bytes again, and any other offset is `conflict` with the offset expected in
 * `detail`. Requests for the same offset at the same time share one read.
 *
 * Each open stream holds a LevelDB snapshot (older versions of every key stay on disk while it
 * lives), so at most `maxSessions` are open per node, a session closes after `idleMs` without a
 * request, the stream closes as soon as its last chunk is read, and the node closes every
 * stream when it stops. A finished session is remembered (its last chunk only) for `idleMs`, so
 * the last chunk can be asked again.
 *
 * Not an actor of its own: the Gateway owns it and calls it from its handlers.
 */
import { archioError, ArchioError } from "../../protocol/errors.ts"
import type { NodeId } from "../../protocol/raft.ts"
import type { SnapshotHeader } from "../../protocol/snapshotFormat.ts"
import type { SupervisorShape } from "../services/supervisor.ts"
import type { Cancel, TimersShape } from "../services/timers.ts"

/** What a session reads: the part of `SnapshotStream` (actors/snapshotter/stream.ts) it uses. */
export interface BackupStream {
  readonly header: SnapshotHeader
  /** Up to `maxBytes` (fewer only at the end); an empty array once ended. */
  next(maxBytes: number): Promise<Uint8Array>
  readonly finished: boolean
  /** Hex SHA-256 of the whole stream, once finished. */
  readonly digest: string
  /** Bytes produced so far. */
  readonly produced: number
  /** Releases the LevelDB snapshot; always called, once. */
  close(): Promise<void>
}

export interface BackupTuning {
  /** Bytes per chunk: 256 KiB is ~350 KB of base64, well under NATS's default 1 MiB max_payload. */
  readonly chunkBytes: number
  /** Streams open at once on this node. */
  readonly maxSessions: number
  /** A session with no request for this long is closed. */
  readonly idleMs: number
}

export const defaultBackupTuning: BackupTuning = { chunkBytes: 256 * 1024, maxSessions: 4, idleMs: 30_000 }

export interface BackupOptions extends BackupTuning {
  readonly id: NodeId
  /** Opens a stream of the applied state (`Snapshotter.openStream`). */
  readonly open: () => Promise<BackupStream>
  readonly timers: TimersShape
  readonly supervisor: SupervisorShape
}

/** One chunk of a session, as the `admin.backupChunk` reply carries it. */
export interface BackupChunk {
  readonly offset: number
  readonly data: Uint8Array
  readonly done: boolean
  /** With `done`: the whole stream's size and hex SHA-256. */
  readonly size?: number
  readonly checksum?: string
}

export interface OpenedBackup {
  readonly session: string
  readonly header: SnapshotHeader
}

export interface BackupSessions {
  /** Opens a session; `unavailable` past `maxSessions`, while stopping, or when no stream can be opened. */
  open(): Promise<OpenedBackup | ArchioError>
  /** The chunk at `offset` of `session` (one of this node's): see the module comment. */
  chunk(session: string, offset: number): Promise<BackupChunk | ArchioError>
  /** Streams open or being opened. */
  readonly streams: number
  /** Closes every session and waits for their streams to close. */
  stop(): Promise<void>
}

interface Session {
  readonly id: string
  readonly stream: BackupStream
  /** Offset of the next chunk to read: bytes handed out so far. */
  next: number
  /** The last chunk read, for a retry. */
  last: BackupChunk | undefined
  /** The read in progress, shared by requests for its offset. */
  reading: { readonly offset: number; readonly result: Promise<BackupChunk | ArchioError> } | undefined
  /** The stream was closed (finished, failed or expired). */
  closed: boolean
  cancelIdle: Cancel
}

const actor = "gateway"

export const make = (options: BackupOptions): BackupSessions => {
  const { id, timers, supervisor, chunkBytes } = options
  const sessions = new Map<string, Session>()
  /** Streams open or being opened: what `maxSessions` bounds. */
  let openStreams = 0
  let seq = 0
  let stopping = false
  /** Opens and closes in progress, which `stop` waits for. */
  const pending = new Set<Promise<unknown>>()
  const track = <A>(p: Promise<A>): Promise<A> => {
    pending.add(p)
    void p.finally(() => pending.delete(p)).catch(() => undefined)
    return p
  }

  const closeStream = (s: Session): void => {
    if (s.closed) return
    s.closed = true
    openStreams--
    track(
      s.stream.close().catch((cause: unknown) => {
        if (!stopping) supervisor.fail(actor, cause)
      })
    )
  }

  const forget = (s: Session): void => {
    s.cancelIdle()
    if (sessions.get(s.id) === s) sessions.delete(s.id)
    closeStream(s)
  }

  /** (Re)starts the idle countdown; a read in progress postpones it. */
  const touch = (s: Session): void => {
    s.cancelIdle()
    s.cancelIdle = timers.after(
      options.idleMs,
      supervisor.guard(actor, () => {
        if (s.reading !== undefined) touch(s)
        else forget(s)
      })
    )
  }

  /** Finished sessions kept for a retry of their last chunk: at most `maxSessions`, oldest dropped first. */
  const trimFinished = (): void => {
    const finished = [...sessions.values()].filter((s) => s.closed)
    for (const s of finished.slice(0, Math.max(0, finished.length - options.maxSessions))) forget(s)
  }

  const read = (s: Session, offset: number): Promise<BackupChunk | ArchioError> => {
    const result = s.stream.next(chunkBytes).then(
      (data): BackupChunk => {
        const done = s.stream.finished
        const chunk: BackupChunk = done ? { offset, data, done, size: s.stream.produced, checksum: s.stream.digest } : { offset, data, done }
        s.reading = undefined
        s.last = chunk
        s.next = offset + data.length
        if (done) {
          closeStream(s)
          trimFinished()
        }
        if (sessions.get(s.id) === s) touch(s)
        return chunk
      },
      (cause: unknown) => {
        s.reading = undefined
        forget(s)
        const why = stopping ? `node ${id} is stopping` : `reading the snapshot failed: ${cause instanceof Error ? cause.message : String(cause)}`
        return archioError("unavailable", `backup session ${s.id} ended (${why}); start a new one with admin.backup`)
      }
    )
    s.reading = { offset, result }
    return result
  }

  const open = async (): Promise<OpenedBackup | ArchioError> => {
    if (stopping) return archioError("unavailable", `node ${id} is stopping; retry on another node`)
    if (openStreams >= options.maxSessions) {
      return archioError(
        "unavailable",
        `node ${id} already has ${openStreams} backup sessions open, the most it allows; retry when one finishes (an idle one closes after ${options.idleMs / 1000} s), or on another node`,
        { sessions: openStreams, limit: options.maxSessions }
      )
    }
    openStreams++
    let stream: BackupStream
    try {
      stream = await options.open()
    } catch (cause) {
      openStreams--
      return archioError("unavailable", `node ${id} could not open a backup of its state (${cause instanceof Error ? cause.message : String(cause)}); retry`)
    }
    const s: Session = { id: `${id}:${++seq}`, stream, next: 0, last: undefined, reading: undefined, closed: false, cancelIdle: () => undefined }
    if (stopping) {
      forget(s)
      return archioError("unavailable", `node ${id} is stopping; retry on another node`)
    }
    sessions.set(s.id, s)
    touch(s)
    return { session: s.id, header: stream.header }
  }

  return {
    open: () => track(open()),

    chunk: (session, offset) => {
      const s = sessions.get(session)
      if (s === undefined) {
        return Promise.resolve(
          archioError(
            "not_found",
            `node ${id} has no backup session ${session} (a session ends ${options.idleMs / 1000} s after its last request, and when the node restarts); start again with admin.backup`
          )
        )
      }
      touch(s)
      if (s.reading !== undefined && s.reading.offset === offset) return s.reading.result
      if (s.last !== undefined && s.last.offset === offset) return Promise.resolve(s.last)
      if (s.reading === undefined && offset === s.next) {
        // Past the last chunk: nothing more to read, and the last chunk stays for a retry.
        if (s.last?.done === true) return Promise.resolve({ offset, data: new Uint8Array(0), done: true, size: s.last.size!, checksum: s.last.checksum! })
        return read(s, offset)
      }
      const expected = s.next
      return Promise.resolve(
        archioError(
          "conflict",
          `backup session ${session} is at offset ${expected}, not ${offset}: ask for ${expected}` +
            (s.last === undefined ? "" : ` (or ${s.last.offset} again, the chunk before)`),
          { offset: expected }
        )
      )
    },

    get streams() {
      return openStreams
    },

    stop: async () => {
      stopping = true
      for (const s of [...sessions.values()]) forget(s)
      // An open still running closes its stream when it ends (it sees `stopping`).
      while (pending.size > 0) await Promise.allSettled([...pending])
    }
  }
}
