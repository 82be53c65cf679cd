/**
 * The byte format of an Archio snapshot. The same bytes travel over NATS in InstallSnapshot
 * chunks, are written by `archio snapshot save FILE` and read by `archio snapshot restore`.
 *
 * Layout (all integers big-endian):
 *
 *   header   8 bytes "ARCHIOSS"  u16 version (= 1)  u32 n  n bytes of UTF-8 JSON (SnapshotHeader)
 *   record   u8 section (1 kv, 2 jobs, 3 sessions, 4 meta)  u32 k  k bytes of UTF-8 key
 *            u32 v  v bytes of value
 *   trailer  u8 0xFF  32-byte SHA-256 of every byte before the digest (header, records, 0xFF)
 *
 * Both sides stream: the encoder hands out bytes in chunks as it produces them, and the decoder
 * accepts chunks split anywhere (inside the magic, a length, a key or a value). Each byte is
 * copied a bounded number of times and hashed once, so both run in time linear in the size.
 *
 * The checksum is only known at the end: records come out of the decoder before the whole
 * stream is verified, so a restore must stage them and commit only once `done` is true.
 */
import { createHash, type Hash } from "node:crypto"

export const snapshotFormatVersion = 1
export const snapshotSections = ["kv", "jobs", "sessions", "meta"] as const
export type SnapshotSection = (typeof snapshotSections)[number]

export interface SnapshotHeader {
  readonly index: number
  readonly term: number
  readonly members: ReadonlyArray<string>
  readonly cluster: string
  readonly createdAt: number
}

export interface SnapshotRecord {
  readonly section: SnapshotSection
  readonly key: string
  readonly value: Uint8Array
}

export type SnapshotFormatErrorCode = "not_snapshot" | "version" | "truncated" | "corrupt" | "checksum"

/** Input that is not a well-formed snapshot; the message says what and at which byte offset. */
export class SnapshotFormatError extends Error {
  override readonly name = "SnapshotFormatError"
  constructor(
    readonly code: SnapshotFormatErrorCode,
    message: string
  ) {
    super(message)
  }
}

const magic = Uint8Array.from("ARCHIOSS", (c) => c.charCodeAt(0))
const trailerMarker = 0xff
const digestBytes = 32
/** Lengths above these are refused as corrupt before anything is allocated for them. */
const maxHeaderBytes = 1024 * 1024
const maxKeyBytes = 64 * 1024
const maxValueBytes = 64 * 1024 * 1024

/** Section byte = position in `snapshotSections` + 1, so zero is never a section. */
const sectionCodes: { readonly [S in SnapshotSection]: number } = { kv: 1, jobs: 2, sessions: 3, meta: 4 }
const sectionOfCode = (code: number): SnapshotSection | undefined => snapshotSections[code - 1]

/** What is wrong with a parsed header, or undefined if it is a valid `SnapshotHeader`. */
const headerProblem = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "is not a JSON object"
  const fields = value as Record<string, unknown>
  for (const name of ["index", "term"] as const) {
    const n = fields[name]
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      return `${name} must be a non-negative safe integer`
    }
  }
  const members = fields["members"]
  if (!Array.isArray(members) || !members.every((m) => typeof m === "string")) {
    return "members must be an array of strings"
  }
  if (typeof fields["cluster"] !== "string") return "cluster must be a string"
  const createdAt = fields["createdAt"]
  if (typeof createdAt !== "number" || !Number.isFinite(createdAt)) return "createdAt must be a number"
  return undefined
}

/** A copy holding only the known fields, so unknown extras never leak to callers. */
const copyHeader = (h: SnapshotHeader): SnapshotHeader => ({
  index: h.index,
  term: h.term,
  members: [...h.members],
  cluster: h.cluster,
  createdAt: h.createdAt
})

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

/** Encoder blocks: large enough that a record rarely spans two, small enough to free as taken. */
const blockBytes = 64 * 1024
/** Matches lone surrogates, which UTF-8 cannot carry (they would come back as U+FFFD). */
const loneSurrogate = /\p{Cs}/u

/** Builds a snapshot stream; bytes are taken out in chunks as they are produced. */
export class SnapshotEncoder {
  private readonly hash: Hash = createHash("sha256")
  /** Closed blocks (already hashed), oldest first; `queueHead`/`queueOffset` mark what take() has had. */
  private queue: Uint8Array[] = []
  private queueHead = 0
  private queueOffset = 0
  /** The block being written: bytes [0, pos) are produced, [0, blockTaken) already taken. */
  private block: Buffer = Buffer.allocUnsafe(blockBytes)
  private pos = 0
  private blockTaken = 0
  private producedBytes = 0
  private takenBytes = 0
  private digestHex: string | undefined

  constructor(header: SnapshotHeader) {
    const problem = headerProblem(header)
    if (problem !== undefined) throw new RangeError(`invalid snapshot header: ${problem}`)
    const json = Buffer.from(JSON.stringify(copyHeader(header)), "utf8")
    if (json.length > maxHeaderBytes) {
      throw new RangeError(`snapshot header is ${json.length} bytes, over the ${maxHeaderBytes}-byte limit`)
    }
    this.reserve(magic.length + 6)
    this.block.set(magic, 0)
    this.block.writeUInt16BE(snapshotFormatVersion, magic.length)
    this.block.writeUInt32BE(json.length, magic.length + 2)
    this.pos = magic.length + 6
    this.producedBytes = this.pos
    this.append(json)
  }

  record(section: SnapshotSection, key: string, value: Uint8Array): void {
    if (this.digestHex !== undefined) throw new Error("SnapshotEncoder.record() called after finish()")
    const code = sectionCodes[section]
    // Callers from plain JS (or a cast) could pass any string; never write an unreadable byte.
    if (code === undefined) throw new RangeError(`unknown snapshot section ${JSON.stringify(section)}`)
    if (loneSurrogate.test(key)) throw new RangeError("snapshot key contains a lone surrogate, which UTF-8 cannot carry")
    const keyLength = Buffer.byteLength(key, "utf8")
    if (keyLength > maxKeyBytes) {
      throw new RangeError(`snapshot key is ${keyLength} bytes, over the ${maxKeyBytes}-byte limit`)
    }
    if (value.length > maxValueBytes) {
      throw new RangeError(`snapshot value is ${value.length} bytes, over the ${maxValueBytes}-byte limit`)
    }
    // Section, key length, key and value length are written contiguously into one block.
    const fixed = 1 + 4 + keyLength + 4
    this.reserve(fixed)
    const at = this.pos
    this.block[at] = code
    this.block.writeUInt32BE(keyLength, at + 1)
    this.block.write(key, at + 5, "utf8")
    this.block.writeUInt32BE(value.length, at + 5 + keyLength)
    this.pos += fixed
    this.producedBytes += fixed
    this.append(value)
  }

  /** Appends the trailer; after this the stream is complete and `digest` is known. */
  finish(): void {
    if (this.digestHex !== undefined) return
    this.reserve(1 + digestBytes)
    this.block[this.pos++] = trailerMarker
    // Everything before the current block was hashed when its block was closed.
    this.hash.update(this.block.subarray(0, this.pos))
    const digest = this.hash.digest()
    this.block.set(digest, this.pos)
    this.pos += digestBytes
    this.producedBytes += 1 + digestBytes
    this.digestHex = digest.toString("hex")
  }

  /** Bytes produced and not yet taken. */
  get buffered(): number {
    return this.producedBytes - this.takenBytes
  }

  /** Total bytes produced so far (taken or not). */
  get produced(): number {
    return this.producedBytes
  }

  get finished(): boolean {
    return this.digestHex !== undefined
  }

  /** Hex SHA-256 of the stream (as stored in the trailer); only once finished. */
  get digest(): string {
    if (this.digestHex === undefined) throw new Error("SnapshotEncoder.digest is only known after finish()")
    return this.digestHex
  }

  /** Up to `maxBytes` of the buffered bytes, in order, as a fresh copy the caller may keep. */
  take(maxBytes: number): Uint8Array {
    if (!Number.isInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`take() needs a non-negative integer, got ${maxBytes}`)
    }
    const size = Math.min(maxBytes, this.buffered)
    const out = new Uint8Array(size)
    let filled = 0
    while (filled < size) {
      const head = this.queue[this.queueHead]
      if (head !== undefined) {
        const n = Math.min(size - filled, head.length - this.queueOffset)
        out.set(head.subarray(this.queueOffset, this.queueOffset + n), filled)
        filled += n
        this.queueOffset += n
        if (this.queueOffset === head.length) {
          this.queueHead++
          this.queueOffset = 0
        }
      } else {
        // The queue is drained, so the rest is in the current block.
        const n = size - filled
        out.set(this.block.subarray(this.blockTaken, this.blockTaken + n), filled)
        this.blockTaken += n
        filled += n
      }
    }
    this.takenBytes += size
    // Drop taken blocks so their memory goes; slicing only when the dead prefix dominates keeps this linear.
    if (this.queueHead === this.queue.length) {
      this.queue = []
      this.queueHead = 0
    } else if (this.queueHead > 64 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead)
      this.queueHead = 0
    }
    return out
  }

  /** Makes `bytes` contiguous room in the current block, closing it if needed. */
  private reserve(bytes: number): void {
    if (this.block.length - this.pos >= bytes) return
    this.closeBlock(bytes)
  }

  /** Hashes the current block, queues its untaken bytes and starts a new one of at least `atLeast` bytes. */
  private closeBlock(atLeast: number): void {
    if (this.pos > 0) this.hash.update(this.block.subarray(0, this.pos))
    if (this.pos > this.blockTaken) this.queue.push(this.block.subarray(this.blockTaken, this.pos))
    this.block = Buffer.allocUnsafe(Math.max(blockBytes, atLeast))
    this.pos = 0
    this.blockTaken = 0
  }

  /** Copies `bytes` in (the caller may reuse its buffer), spanning blocks as needed. */
  private append(bytes: Uint8Array): void {
    let from = 0
    while (from < bytes.length) {
      if (this.pos === this.block.length) this.closeBlock(blockBytes)
      const n = Math.min(bytes.length - from, this.block.length - this.pos)
      this.block.set(bytes.subarray(from, from + n), this.pos)
      this.pos += n
      from += n
    }
    this.producedBytes += bytes.length
  }
}

/** What the decoder waits for next; each step needs a known number of bytes. */
type Step =
  | "magic"
  | "version"
  | "headerLength"
  | "header"
  | "section"
  | "keyLength"
  | "key"
  | "valueLength"
  | "value"
  | "digest"
  | "done"

const stepNames: { readonly [S in Step]: string } = {
  magic: "magic",
  version: "format version",
  headerLength: "header length",
  header: "header",
  section: "section byte",
  keyLength: "key length",
  key: "key",
  valueLength: "value length",
  value: "value",
  digest: "trailer digest",
  done: "end"
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** Big-endian u16/u32 at the start of `b` (a field of exactly that many bytes); no DataView per field. */
const readU16 = (b: Uint8Array): number => ((b[0] ?? 0) << 8) | (b[1] ?? 0)
const readU32 = (b: Uint8Array): number => (b[0] ?? 0) * 0x1000000 + (((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0))

/** Parses a snapshot stream pushed in arbitrary chunks (a record or the header may span chunks). */
export class SnapshotDecoder {
  private readonly hash: Hash = createHash("sha256")
  private step: Step = "magic"
  /** Bytes the current step needs. */
  private need = magic.length
  /** Stream offset where the current step's bytes start, for error messages. */
  private stepStart = 0
  /** The current step's bytes gathered across pushes, exactly `need` long; undefined when none are pending. */
  private partial: Uint8Array | undefined
  private partialFilled = 0
  private receivedBytes = 0
  private parsedHeader: SnapshotHeader | undefined
  private section: SnapshotSection = "kv"
  private key = ""
  private records: SnapshotRecord[] = []
  private digestHex: string | undefined
  /** The first error thrown; every later call throws it again, since the stream cannot resync. */
  private failure: SnapshotFormatError | undefined

  push(bytes: Uint8Array): void {
    if (this.failure !== undefined) throw this.failure
    const base = this.receivedBytes
    this.receivedBytes += bytes.length
    // One hash update per push over the raw input, up to and including the trailer marker.
    let hashing = this.step !== "digest" && this.step !== "done"
    let at = 0
    while (at < bytes.length) {
      if (this.step === "done") {
        this.fail("corrupt", `${bytes.length - at} unexpected bytes after the trailer, at byte ${base + at}`)
      }
      let field: Uint8Array
      let owned: boolean
      if (this.partial !== undefined) {
        const n = Math.min(this.need - this.partialFilled, bytes.length - at)
        this.partial.set(bytes.subarray(at, at + n), this.partialFilled)
        this.partialFilled += n
        at += n
        if (this.partialFilled < this.need) break
        field = this.partial
        owned = true
        this.partial = undefined
      } else if (bytes.length - at >= this.need) {
        field = bytes.subarray(at, at + this.need)
        owned = false
        at += this.need
      } else {
        // Sized exactly to the step, so a value gathered here is already its own fresh copy.
        this.partial = new Uint8Array(this.need)
        this.partial.set(bytes.subarray(at), 0)
        this.partialFilled = bytes.length - at
        at = bytes.length
        break
      }
      this.consume(field, owned)
      if (hashing && this.step === "digest") {
        this.hash.update(bytes.subarray(0, at))
        hashing = false
      }
    }
    if (hashing) this.hash.update(bytes)
  }

  /** The snapshot's header once parsed; like the records, it is verified only when `done`. */
  get header(): SnapshotHeader | undefined {
    return this.parsedHeader
  }

  /** Records parsed since the last call; their values are fresh copies. */
  takeRecords(): SnapshotRecord[] {
    const out = this.records
    this.records = []
    return out
  }

  /** The trailer has been read, its digest matches the content and nothing followed it. */
  get done(): boolean {
    return this.step === "done" && this.failure === undefined
  }

  get received(): number {
    return this.receivedBytes
  }

  /** The input ended: throws unless the whole snapshot was read and verified. */
  end(): void {
    if (this.failure !== undefined) throw this.failure
    if (this.step === "done") return
    const inside = this.partialFilled > 0 && this.partial !== undefined ? "inside" : "before"
    this.fail(
      "truncated",
      this.receivedBytes === 0
        ? "snapshot is empty"
        : `snapshot ended after ${this.receivedBytes} bytes, ${inside} the ${stepNames[this.step]} at byte ${this.stepStart}`
    )
  }

  /** Hex SHA-256 of the stream, as verified against the trailer; only once done. */
  get digest(): string {
    if (this.digestHex === undefined) throw new Error("SnapshotDecoder.digest is only known once done")
    return this.digestHex
  }

  private fail(code: SnapshotFormatErrorCode, message: string): never {
    this.failure = new SnapshotFormatError(code, message)
    throw this.failure
  }

  private expect(step: Step, need: number): void {
    this.step = step
    this.need = need
  }

  /** Handles the complete bytes of the current step; `owned` says they are ours to keep. */
  private consume(field: Uint8Array, owned: boolean): void {
    const at = this.stepStart
    this.stepStart += field.length
    switch (this.step) {
      case "magic":
        if (!field.every((b, i) => b === magic[i])) {
          this.fail("not_snapshot", `not an Archio snapshot: the first 8 bytes are 0x${hex(field)}, not "ARCHIOSS"`)
        }
        return this.expect("version", 2)
      case "version": {
        const version = readU16(field)
        if (version !== snapshotFormatVersion) {
          this.fail(
            "version",
            `snapshot format version ${version} (at byte ${at}) is not supported; this build reads version ${snapshotFormatVersion}`
          )
        }
        return this.expect("headerLength", 4)
      }
      case "headerLength": {
        const length = readU32(field)
        if (length > maxHeaderBytes) {
          this.fail("corrupt", `header length ${length} at byte ${at} is over the ${maxHeaderBytes}-byte limit`)
        }
        return this.expectPayload("header", length)
      }
      case "header": {
        let parsed: unknown
        try {
          parsed = JSON.parse(strictUtf8.decode(field))
        } catch (error) {
          this.fail("corrupt", `header at byte ${at} is not valid UTF-8 JSON: ${(error as Error).message}`)
        }
        const problem = headerProblem(parsed)
        if (problem !== undefined) this.fail("corrupt", `header at byte ${at}: ${problem}`)
        this.parsedHeader = copyHeader(parsed as SnapshotHeader)
        return this.expect("section", 1)
      }
      case "section": {
        const code = field[0] ?? 0
        if (code === trailerMarker) return this.expect("digest", digestBytes)
        const section = sectionOfCode(code)
        if (section === undefined) {
          this.fail("corrupt", `unknown section byte 0x${code.toString(16).padStart(2, "0")} at byte ${at}`)
        }
        this.section = section
        return this.expect("keyLength", 4)
      }
      case "keyLength": {
        const length = readU32(field)
        if (length > maxKeyBytes) {
          this.fail("corrupt", `key length ${length} at byte ${at} is over the ${maxKeyBytes}-byte limit`)
        }
        return this.expectPayload("key", length)
      }
      case "key":
        try {
          this.key = strictUtf8.decode(field)
        } catch {
          this.fail("corrupt", `key at byte ${at} is not valid UTF-8`)
        }
        return this.expect("valueLength", 4)
      case "valueLength": {
        const length = readU32(field)
        if (length > maxValueBytes) {
          this.fail("corrupt", `value length ${length} at byte ${at} is over the ${maxValueBytes}-byte limit`)
        }
        return this.expectPayload("value", length)
      }
      case "value":
        // A view into the caller's chunk could be overwritten once push() returns: copy it.
        this.records.push({ section: this.section, key: this.key, value: owned ? field : field.slice() })
        return this.expect("section", 1)
      case "digest": {
        const computed = this.hash.digest("hex")
        const stored = hex(field)
        if (stored !== computed) {
          this.fail("checksum", `checksum mismatch: the trailer at byte ${at} holds ${stored}, the content hashes to ${computed}`)
        }
        this.digestHex = computed
        return this.expect("done", 0)
      }
      case "done":
        return
    }
  }

  /** A variable-length step; an empty one completes at once, since no byte will arrive for it. */
  private expectPayload(step: "header" | "key" | "value", length: number): void {
    this.expect(step, length)
    if (length === 0) this.consume(new Uint8Array(0), true)
  }
}
