/**
 * A file that appears whole or not at all: bytes go to `<file>.partial`; `commit` syncs it,
 * renames it to `<file>` and syncs the folder, so after a crash there is the old file (or none)
 * and perhaps a `.partial` to delete, never a half-written `<file>`. `abandon` deletes the
 * `.partial`.
 */
import { open, rename, rm, type FileHandle } from "node:fs/promises"
import { dirname } from "node:path"

export interface PartialFile {
  /** Where the bytes go until `commit`. */
  readonly partialPath: string
  write(bytes: Uint8Array): Promise<void>
  /** Makes the bytes written durable as the file. */
  commit(): Promise<void>
  /** Deletes what was written; never throws. */
  abandon(): Promise<void>
}

export const partialPathOf = (file: string): string => `${file}.partial`

/** Syncs a folder, so a rename in it survives a crash (where the platform allows it). */
export const syncFolder = async (folder: string): Promise<void> => {
  let handle: FileHandle | undefined
  try {
    handle = await open(folder, "r")
    await handle.sync()
  } catch {
    // Some platforms and file systems cannot sync a folder; the rename is still atomic.
  } finally {
    await handle?.close().catch(() => undefined)
  }
}

/** Creates (or truncates, after an earlier run died) `<file>.partial`. */
export const openPartial = async (file: string): Promise<PartialFile> => {
  const partialPath = partialPathOf(file)
  const handle = await open(partialPath, "w")
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await handle.close()
  }
  return {
    partialPath,
    write: async (bytes) => {
      let at = 0
      while (at < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, at, bytes.length - at)
        at += bytesWritten
      }
    },
    commit: async () => {
      await handle.sync()
      await close()
      await rename(partialPath, file)
      await syncFolder(dirname(file))
    },
    abandon: async () => {
      await close().catch(() => undefined)
      await rm(partialPath, { force: true }).catch(() => undefined)
    }
  }
}
