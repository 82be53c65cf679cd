/**
 * `archio snapshot save FILE`: streams a consistent snapshot of a running cluster's state from
 * one node (download.ts) into FILE. The bytes go to FILE.partial and through the snapshot
 * decoder as they arrive; only a stream that ends, passes its own SHA-256 check and matches
 * the size and checksum the node reports is synced and renamed to FILE (partialFile.ts).
 */
import { Either } from "effect"
import { stat } from "node:fs/promises"
import { resolve } from "node:path"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import { ArchioError, toEnvelope } from "../../protocol/errors.ts"
import { SnapshotFormatError } from "../../protocol/snapshotFormat.ts"
import { defineCommand } from "../command.ts"
import { ConfigError, type CommandLine, type OptionSpec } from "../options.ts"
import { stopRequest, type Terminal } from "../terminal.ts"
import { closeClient, connectionOptions, failureText, jsonOption, nodeOption, openClient, readConnection, readNode, type Connection } from "./connection.ts"
import { readChunk, startBackup, type BackupSession } from "./download.ts"
import { openPartial } from "./partialFile.ts"
import { problemOf, SnapshotReader, type SnapshotSummary } from "./verify.ts"

export const saveOptions = {
  node: nodeOption,
  force: { flag: "--force", help: "overwrite FILE if it exists" },
  json: jsonOption
} as const satisfies Record<string, OptionSpec>

export interface SaveSettings {
  /** FILE as given, for messages. */
  readonly shown: string
  /** FILE from the working folder. */
  readonly file: string
  readonly node: string | undefined
  readonly force: boolean
  readonly json: boolean
  readonly connection: Connection
}

/**
 * One chunk request waits this long before it is sent again with the same offset: a third of
 * --timeout, so it is asked at least three times, and at most 5 s.
 */
const chunkAttemptMs = (timeoutMs: number): number => Math.min(5000, Math.max(1, Math.ceil(timeoutMs / 3)))

export const saveSettings = (line: CommandLine<keyof typeof saveOptions | keyof typeof connectionOptions>, terminal: Terminal): Either.Either<SaveSettings, ConfigError> => {
  const problems: Array<string> = []
  const file = line.args[0]!
  if (file === "") problems.push('FILE must be a path, got ""')
  const node = readNode(line, problems)
  const connection = readConnection(line, problems)
  if (problems.length > 0 || connection === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ shown: file, file: resolve(terminal.cwd ?? process.cwd(), file), node, force: line.has("force"), json: line.has("json"), connection })
}

const exists = async (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false
  )

/** The save stops for a reason its message gives whole (interrupted, a stream that does not match). */
class Refused extends Error {}

/** Reads the whole stream of `session` into `reader`, each chunk also to `write`; returns the node's size and checksum. */
const download = async (
  client: ArchioClient,
  session: BackupSession,
  reader: SnapshotReader,
  write: (bytes: Uint8Array) => Promise<void>,
  stopped: () => boolean
): Promise<{ readonly size: number; readonly checksum: string }> => {
  let offset = 0
  for (;;) {
    if (stopped()) throw new Refused("interrupted")
    const chunk = await readChunk(client, session, offset)
    reader.push(chunk.data)
    await write(chunk.data)
    offset += chunk.data.length
    if (chunk.done) return { size: chunk.size!, checksum: chunk.checksum! }
  }
}

/** Checks the verified stream against what the node said it sent. */
const mismatch = (s: BackupSession, summary: SnapshotSummary, reported: { readonly size: number; readonly checksum: string }): string | undefined => {
  const { header } = summary
  if (header.index !== s.index || header.term !== s.term) {
    return `node ${s.node} announced a snapshot at index ${s.index} term ${s.term} but sent one at index ${header.index} term ${header.term}`
  }
  if (reported.size !== summary.size) return `node ${s.node} reports ${reported.size} bytes but sent ${summary.size}`
  if (reported.checksum !== summary.checksum) return `node ${s.node} reports sha256 ${reported.checksum} but the bytes it sent hash to ${summary.checksum}`
  return undefined
}

export const runSave = async (s: SaveSettings, terminal: Terminal): Promise<number> => {
  const fail = (message: string): number => {
    terminal.err(`archio snapshot save: ${message}\n`)
    return 1
  }
  if (!s.force && (await exists(s.file))) return fail(`${s.shown} already exists; give --force to overwrite it`)
  let client: ArchioClient
  try {
    client = await openClient(s.connection, chunkAttemptMs(s.connection.timeoutMs))
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e))
  }
  const stop = stopRequest(terminal)
  let stopped = false
  void stop.stopped.then(() => (stopped = true))
  try {
    let session: BackupSession
    try {
      session = await startBackup(client, s.node)
    } catch (e) {
      if (s.json && e instanceof ArchioError) terminal.out(`${JSON.stringify(toEnvelope(e))}\n`)
      return fail(failureText(e, s.connection.cluster))
    }
    let partial: Awaited<ReturnType<typeof openPartial>>
    try {
      partial = await openPartial(s.file)
    } catch (e) {
      return fail(`cannot write ${s.shown}: ${e instanceof Error ? e.message : String(e)}`)
    }
    const reader = new SnapshotReader()
    let summary: SnapshotSummary
    try {
      const reported = await download(client, session, reader, partial.write, () => stopped)
      summary = reader.end()
      const wrong = mismatch(session, summary, reported)
      if (wrong !== undefined) throw new Refused(wrong)
      await partial.commit()
    } catch (e) {
      await partial.abandon()
      if (e instanceof SnapshotFormatError) return fail(`the snapshot node ${session.node} sent ${problemOf(e.code)}: ${e.message}; nothing was saved`)
      if (e instanceof Refused) return fail(`${e.message}; nothing was saved`)
      if (s.json && e instanceof ArchioError) terminal.out(`${JSON.stringify(toEnvelope(e))}\n`)
      return fail(`${failureText(e, s.connection.cluster)} (at byte ${reader.received} of the snapshot from node ${session.node}); nothing was saved`)
    }
    const { header, counts } = summary
    const result = {
      ok: true,
      file: s.file,
      node: session.node,
      index: header.index,
      term: header.term,
      size: summary.size,
      sha256: summary.checksum,
      keys: counts.kv,
      jobs: counts.jobs,
      sessions: counts.sessions
    }
    terminal.out(
      s.json
        ? `${JSON.stringify(result)}\n`
        : `saved ${s.shown} from node ${session.node}: index ${header.index}, term ${header.term}, ${summary.size} bytes, sha256 ${summary.checksum} (${counts.kv} keys, ${counts.jobs} jobs, ${counts.sessions} sessions)\n`
    )
    return 0
  } finally {
    stop.dispose()
    await closeClient(client)
  }
}

export const saveCommand = defineCommand({
  path: "snapshot save",
  summary: "stream a consistent snapshot of a running cluster into a file",
  args: ["FILE"],
  description: `Streams a consistent snapshot of the cluster's state (every key, job and client session, at one
applied index) from one node (--node, or any node) into FILE, over NATS
(archio.<cluster>.admin.backup, then archio.<cluster>.node.<id>.admin.backupChunk). The node
reads a LevelDB view of its state as of one index, so writes go on meanwhile. The bytes go to
FILE.partial; once the whole stream has arrived, passes its SHA-256 check and matches the size
and checksum the node reports, it is synced to disk and renamed to FILE. A chunk whose answer
is lost is asked for again. Prints the index, term, size and sha256 of the file.
Exit codes: 0 saved, 1 failed (FILE exists, no node answers, a bad stream), 2 bad usage.`,
  options: [
    { title: "Flags", options: saveOptions },
    { title: "Connection flags (a flag wins over its variable)", options: connectionOptions }
  ],
  examples: ["archio snapshot save backup.snap --nats nats://10.0.0.5:4222 --cluster prod", "archio snapshot save /backups/$(date +%F).snap --node n2 --json"],
  check: saveSettings,
  run: runSave
})
