/**
 * The footprint bench's pure parts (footprint.ts): its options, key names, payloads, per-item
 * arithmetic and /proc parsing, in a module of their own so their tests load nothing else.
 */
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { valueSource } from "./values.ts"

/** The target, in bytes (1.5 GB as 1.5e9, the stricter reading). */
export const targetRss = 1.5e9

// --- Options beyond BenchOptions --------------------------------------------------------------

export interface FootprintArgs {
  readonly jobs: number
  readonly payloadBytes: number
  readonly settleSeconds: number
  readonly heapSnapshotDir: string | undefined
}

/** `{"d":""}`: the JSON around a payload's text. */
const payloadOverhead = 8

/**
 * This bench's own options, read from the command line (run.ts knows their names but not their
 * defaults: its `--jobs` defaults to the jobs benches' 60,000, this one's to 1,000,000). Throws
 * an Error that says what is wrong with a bad value.
 */
export const footprintArgs = (argv: ReadonlyArray<string>): FootprintArgs => {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    options: { jobs: { type: "string" }, "payload-bytes": { type: "string" }, settle: { type: "string" }, "heap-snapshot": { type: "string" } }
  })
  const integer = (name: string, min: number, fallback: number): number => {
    const raw = values[name]
    if (raw === undefined) return fallback
    const n = typeof raw === "string" ? Number(raw.replace(/_/g, "")) : NaN
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer of at least ${min}, got ${JSON.stringify(raw)}`)
    return n
  }
  const dir = values["heap-snapshot"]
  if (typeof dir === "boolean" || dir === "") throw new Error("--heap-snapshot needs a folder")
  return {
    jobs: integer("jobs", 0, 1_000_000),
    payloadBytes: integer("payload-bytes", payloadOverhead + 1, 200),
    settleSeconds: integer("settle", 0, 30),
    heapSnapshotDir: dir === undefined ? undefined : resolve(dir)
  }
}

/** Key `i` of `count`: `k/0000000`, zero-padded to at least 7 digits so keys sort as they count. */
export const keyName = (i: number, count: number): string => `k/${String(i).padStart(Math.max(7, String(count - 1).length), "0")}`

/** A job payload whose JSON is exactly `bytes` bytes: `{"d":"<bytes - 8 characters>"}`. */
export const payloadSource = (bytes: number): ((i: number) => { readonly d: string }) => {
  const text = valueSource(bytes - payloadOverhead)
  return (i) => ({ d: text(i) })
}

/** (after - before) / count, rounded; undefined when a reading is missing or count is 0. */
export const perItem = (after: number | undefined, before: number | undefined, count: number): number | undefined =>
  after === undefined || before === undefined || count === 0 ? undefined : Math.round((after - before) / count)

/** Resident memory of a process as /proc/<pid>/status tells it, bytes; a field is undefined when unknown. */
export interface ProcMemory {
  /** VmRSS: all of it, what `ps` and the target count. */
  readonly rss: number | undefined
  /** VmHWM: the most it ever was. */
  readonly peak: number | undefined
  /** RssAnon: the process's own memory (V8's heap, malloc, ArrayBuffers). */
  readonly anon: number | undefined
  /**
   * RssFile: pages of files it maps, such as LevelDB's table files (it reads them through mmap):
   * counted in RSS while cached, but the kernel drops them under memory pressure.
   */
  readonly file: number | undefined
}

/** The fields of ProcMemory from the text of /proc/<pid>/status. */
export const parseProcStatus = (text: string): ProcMemory => {
  const field = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, "m").exec(text)
    return m === null ? undefined : Number(m[1]) * 1024
  }
  return { rss: field("VmRSS"), peak: field("VmHWM"), anon: field("RssAnon"), file: field("RssFile") }
}
