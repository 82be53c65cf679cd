/**
 * Reading a snapshot file (`archio snapshot save` wrote it) from start to end, in bounded
 * memory, through SnapshotReader: the records go to `onRecords` as they are parsed, and the
 * summary comes back only when the whole file is a verified snapshot.
 */
import { createReadStream } from "node:fs"
import type { SnapshotRecord } from "../../protocol/snapshotFormat.ts"
import { SnapshotReader, type SnapshotSummary } from "./verify.ts"

/** Bytes read from the file at a time. */
const readBytes = 1024 * 1024

/**
 * Reads and verifies `file`. Rejects with a SnapshotFormatError when it is not a whole,
 * valid snapshot, or with the file system's error when it cannot be read.
 */
export const readSnapshotFile = async (
  file: string,
  onRecords: (records: ReadonlyArray<SnapshotRecord>) => void | Promise<void> = () => undefined
): Promise<SnapshotSummary> => {
  const reader = new SnapshotReader()
  const stream = createReadStream(file, { highWaterMark: readBytes })
  try {
    for await (const chunk of stream) {
      const records = reader.push(chunk as Buffer)
      if (records.length > 0) await onRecords(records)
    }
  } finally {
    stream.destroy()
  }
  return reader.end()
}
