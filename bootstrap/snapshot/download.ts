/**
 * The backup protocol, client side: `admin.backup` opens a session on one node (a consistent
 * LevelDB view of its applied state, streamed in the snapshot format), then
 * `node.<id>.admin.backupChunk {session, offset}` reads it in order until `done`. A chunk
 * request that times out is sent again with the same offset (ArchioClient.call), which the node
 * answers with the same bytes; replies are checked here, so a chunk that does not follow on
 * from the bytes already read never reaches the caller.
 */
import { Either, Schema } from "effect"
import type { ArchioClient } from "../../protocol/archioClient.ts"
import * as Client from "../../protocol/client.ts"
import { adminSubject } from "./connection.ts"

/** An open backup session on one node (the `admin.backup` reply). */
export type BackupSession = Client.BackupResponse

export interface Chunk {
  readonly offset: number
  readonly data: Uint8Array
  readonly done: boolean
  /** With the last chunk: the stream's size and hex SHA-256, as the node computed them. */
  readonly size?: number
  readonly checksum?: string
}

const base64 = /^[A-Za-z0-9+/]*={0,2}$/

const decodeReply = <A, I>(schema: Schema.Schema<A, I>, what: string, reply: unknown): A => {
  const decoded = Schema.decodeUnknownEither(schema)(reply)
  if (Either.isLeft(decoded)) throw new Error(`the ${what} reply is not what this command expects (${decoded.left.message.split("\n")[0]}): is the node the same version?`)
  return decoded.right
}

/** Opens a backup session on `node`, or on any node when undefined. */
export const startBackup = async (client: ArchioClient, node: string | undefined): Promise<BackupSession> => {
  const reply = await client.call<unknown>(adminSubject(client.cluster, node, "backup"), {})
  const started = decodeReply(Client.BackupResponse, "admin.backup", reply)
  if (node !== undefined && started.node !== node) throw new Error(`asked node ${node} for a backup, but node ${started.node} answered`)
  return started
}

/** The chunk of `session` at `offset` (the bytes read so far). */
export const readChunk = async (client: ArchioClient, session: BackupSession, offset: number): Promise<Chunk> => {
  const reply = await client.call<unknown>(adminSubject(client.cluster, session.node, "backupChunk"), { session: session.session, offset })
  const chunk = decodeReply(Client.BackupChunkResponse, "admin.backupChunk", reply)
  if (chunk.offset !== offset) throw new Error(`node ${session.node} sent the chunk at byte ${chunk.offset} when asked for byte ${offset}`)
  if (chunk.data.length % 4 !== 0 || !base64.test(chunk.data)) throw new Error(`node ${session.node} sent a chunk at byte ${offset} whose data is not base64`)
  const data = Buffer.from(chunk.data, "base64")
  if (data.length === 0 && !chunk.done) throw new Error(`node ${session.node} sent an empty chunk at byte ${offset} before the end of the snapshot`)
  if (chunk.done && (chunk.size === undefined || chunk.checksum === undefined)) {
    throw new Error(`node ${session.node} ended the snapshot without its size and checksum`)
  }
  return {
    offset,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    done: chunk.done,
    ...(chunk.size === undefined ? {} : { size: chunk.size }),
    ...(chunk.checksum === undefined ? {} : { checksum: chunk.checksum })
  }
}
