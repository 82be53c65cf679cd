import { createHash } from "node:crypto"
import t, { type Test } from "tap"
import {
  SnapshotDecoder,
  SnapshotEncoder,
  SnapshotFormatError,
  snapshotFormatVersion,
  snapshotSections,
  type SnapshotFormatErrorCode,
  type SnapshotHeader,
  type SnapshotRecord,
  type SnapshotSection
} from "../../protocol/snapshotFormat.ts"

const utf8 = new TextEncoder()

const header: SnapshotHeader = {
  index: 12_345,
  term: 7,
  members: ["node-1", "node-2", "nöde-3"],
  cluster: "archio-test",
  createdAt: 1_700_000_000_123
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing split can be replayed. */
const random = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const bytesOf = (n: number, seed: number): Uint8Array => {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff
  return b
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Uint8Array.from(Buffer.concat(parts))

interface Content {
  readonly header: SnapshotHeader
  readonly records: ReadonlyArray<SnapshotRecord>
}

/** Values of 0, 1 and 300 KB bytes, unicode and empty keys, every section. */
const sampleRecords = (): SnapshotRecord[] => {
  const records: SnapshotRecord[] = [
    { section: "kv", key: "", value: new Uint8Array(0) },
    { section: "kv", key: "a", value: Uint8Array.of(0) },
    { section: "jobs", key: "job/🚀/émoji", value: bytesOf(300_000, 1) },
    { section: "sessions", key: "会话-ключ-κλειδί", value: Uint8Array.of(0xff) },
    { section: "meta", key: "e\u0301 combining", value: utf8.encode("{\"applied\":12345}") },
    { section: "kv", key: "x".repeat(64 * 1024), value: bytesOf(70_000, 2) }
  ]
  for (let i = 0; i < 500; i++) {
    const section = snapshotSections[i % snapshotSections.length] as SnapshotSection
    records.push({ section, key: `key-${i}-ü`, value: bytesOf(i % 37, i) })
  }
  return records
}

const encodeAll = (content: Content): { bytes: Uint8Array; digest: string } => {
  const encoder = new SnapshotEncoder(content.header)
  for (const r of content.records) encoder.record(r.section, r.key, r.value)
  encoder.finish()
  return { bytes: encoder.take(encoder.buffered), digest: encoder.digest }
}

/** Splits `bytes` into chunks whose sizes come from `size`, pushes them and ends the input. */
const decodeInChunks = (bytes: Uint8Array, size: () => number) => {
  const decoder = new SnapshotDecoder()
  const records: SnapshotRecord[] = []
  for (let at = 0; at < bytes.length; ) {
    const n = Math.max(1, Math.min(size(), bytes.length - at))
    // A scratch copy that is then scribbled over: the decoder must not keep views into it.
    const scratch = bytes.slice(at, at + n)
    decoder.push(scratch)
    scratch.fill(0xaa)
    records.push(...decoder.takeRecords())
    at += n
  }
  decoder.end()
  return { decoder, records }
}

/** Pushes all of `bytes` then ends, returning the error code thrown (undefined if none). */
const failureOf = (bytes: Uint8Array): { code: SnapshotFormatErrorCode | undefined; decoder: SnapshotDecoder } => {
  const decoder = new SnapshotDecoder()
  try {
    decoder.push(bytes)
    decoder.end()
    return { code: undefined, decoder }
  } catch (error) {
    if (!(error instanceof SnapshotFormatError)) throw error
    return { code: error.code, decoder }
  }
}

const sameRecords = (t: Test, got: ReadonlyArray<SnapshotRecord>, want: ReadonlyArray<SnapshotRecord>, label: string) => {
  t.equal(got.length, want.length, `${label}: record count`)
  let mismatches = 0
  for (let i = 0; i < want.length; i++) {
    const g = got[i]
    const w = want[i] as SnapshotRecord
    const same =
      g !== undefined && g.section === w.section && g.key === w.key && Buffer.from(g.value).equals(Buffer.from(w.value))
    if (!same && mismatches++ < 3) t.fail(`${label}: record ${i} differs`)
  }
  t.equal(mismatches, 0, `${label}: every record identical`)
}

/**
 * Builds a stream by hand from the documented layout, with a correct checksum, so corrupt
 * fields are reported as such rather than as a checksum mismatch.
 */
const u16 = (n: number) => {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
const handMade = (options: {
  magic?: string
  version?: number
  headerJson?: Uint8Array
  records?: ReadonlyArray<{ section: number; key: Uint8Array; value: Uint8Array; keyLength?: number; valueLength?: number }>
}): Uint8Array => {
  const json = options.headerJson ?? utf8.encode(JSON.stringify(header))
  const parts: Uint8Array[] = [
    utf8.encode(options.magic ?? "ARCHIOSS"),
    u16(options.version ?? snapshotFormatVersion),
    u32(json.length),
    json
  ]
  for (const r of options.records ?? []) {
    parts.push(Uint8Array.of(r.section), u32(r.keyLength ?? r.key.length), r.key, u32(r.valueLength ?? r.value.length), r.value)
  }
  parts.push(Uint8Array.of(0xff))
  const body = concat(parts)
  return concat([body, createHash("sha256").update(body).digest()])
}

t.test("the bytes follow the documented layout", async (t) => {
  const value = Uint8Array.of(1, 2, 3)
  const { bytes, digest } = encodeAll({ header, records: [{ section: "sessions", key: "kï", value }] })
  const buf = Buffer.from(bytes)
  t.equal(buf.subarray(0, 8).toString("latin1"), "ARCHIOSS", "magic")
  t.equal(buf.readUInt16BE(8), 1, "format version")
  const jsonLength = buf.readUInt32BE(10)
  t.same(JSON.parse(buf.subarray(14, 14 + jsonLength).toString("utf8")), header, "header JSON")
  let at = 14 + jsonLength
  t.equal(buf[at], 3, "sessions is section 3")
  t.equal(buf.readUInt32BE(at + 1), 3, "key length in UTF-8 bytes")
  t.equal(buf.subarray(at + 5, at + 8).toString("utf8"), "kï")
  t.equal(buf.readUInt32BE(at + 8), 3, "value length")
  t.same([...buf.subarray(at + 12, at + 15)], [1, 2, 3])
  at += 15
  t.equal(buf[at], 0xff, "trailer marker")
  t.equal(buf.length, at + 1 + 32, "the digest ends the stream")
  const expected = createHash("sha256").update(buf.subarray(0, at + 1)).digest("hex")
  t.equal(buf.subarray(at + 1).toString("hex"), expected, "digest covers every byte before it, marker included")
  t.equal(digest, expected, "encoder.digest is that digest")
  t.same(
    Object.fromEntries(snapshotSections.map((s) => [s, encodeAll({ header, records: [{ section: s, key: "", value: new Uint8Array(0) }] }).bytes[14 + jsonLength]])),
    { kv: 1, jobs: 2, sessions: 3, meta: 4 },
    "section bytes"
  )
  t.equal(failureOf(bytes).code, undefined, "a hand-checked stream decodes")
  t.equal(failureOf(handMade({ records: [{ section: 3, key: utf8.encode("kï"), value }] })).code, undefined, "so does one built by hand")
})

t.test("round trip across chunk splits", async (t) => {
  const content: Content = { header, records: sampleRecords() }
  const { bytes, digest } = encodeAll(content)
  const splits: Array<[string, () => number]> = [
    ["one chunk", () => bytes.length],
    ["1-byte chunks", () => 1],
    ["3-byte chunks", () => 3]
  ]
  for (const seed of [1, 2, 3]) {
    const next = random(seed)
    splits.push([`random small chunks, seed ${seed}`, () => 1 + Math.floor(next() * 40)])
    splits.push([`random large chunks, seed ${seed}`, () => 1 + Math.floor(next() * 200_000)])
  }
  for (const [label, size] of splits) {
    const { decoder, records } = decodeInChunks(bytes, size)
    t.ok(decoder.done, `${label}: done`)
    t.same(decoder.header, header, `${label}: header`)
    t.equal(decoder.received, bytes.length, `${label}: received`)
    t.equal(decoder.digest, digest, `${label}: digest`)
    sameRecords(t, records, content.records, label)
    t.same(decoder.takeRecords(), [], `${label}: nothing left to take`)
  }

  const empty = encodeAll({ header: { ...header, members: [] }, records: [] })
  const { decoder, records } = decodeInChunks(empty.bytes, () => 1)
  t.ok(decoder.done, "a snapshot with no records")
  t.same(records, [])
  t.same(decoder.header?.members, [])
})

t.test("records come out as soon as they are complete, and the header before them", async (t) => {
  const { bytes } = encodeAll({ header, records: [{ section: "kv", key: "k", value: new Uint8Array(0) }, { section: "kv", key: "l", value: Uint8Array.of(9) }] })
  const decoder = new SnapshotDecoder()
  const headerEnd = 14 + Buffer.from(bytes).readUInt32BE(10)
  decoder.push(bytes.subarray(0, headerEnd - 1))
  t.equal(decoder.header, undefined, "no header until its last byte")
  decoder.push(bytes.subarray(headerEnd - 1, headerEnd))
  t.same(decoder.header, header)
  decoder.push(bytes.subarray(headerEnd, headerEnd + 10))
  t.same(decoder.takeRecords(), [{ section: "kv", key: "k", value: new Uint8Array(0) }], "an empty value completes with its length")
  t.notOk(decoder.done)
  t.throws(() => decoder.digest, "no digest before done")
  decoder.push(bytes.subarray(headerEnd + 10))
  t.same(decoder.takeRecords().map((r) => [...r.value]), [[9]])
  t.ok(decoder.done)
  t.doesNotThrow(() => decoder.end())
  t.doesNotThrow(() => decoder.push(new Uint8Array(0)), "an empty push after the end is harmless")
})

t.test("take() in small pieces reproduces identical bytes", async (t) => {
  const content: Content = { header, records: sampleRecords() }
  const reference = encodeAll(content).bytes
  const next = random(42)
  for (const [label, size] of [
    ["1-byte pieces", () => 1],
    ["7-byte pieces", () => 7],
    ["random pieces", () => Math.floor(next() * 5000)]
  ] as Array<[string, () => number]>) {
    const encoder = new SnapshotEncoder(header)
    const pieces: Uint8Array[] = []
    let takenSoFar = 0
    let miscounted = 0
    const drainSome = () => {
      // Take part of what is buffered while records are still being written, as a sender would.
      let budget = encoder.buffered / 2
      while (budget > 0 && encoder.buffered > 0) {
        const before = encoder.buffered
        const piece = encoder.take(size())
        if (encoder.buffered !== before - piece.length || piece.length > before) miscounted++
        pieces.push(piece)
        takenSoFar += piece.length
        budget -= Math.max(piece.length, 1)
      }
    }
    for (const r of content.records) {
      encoder.record(r.section, r.key, r.value)
      if (next() < 0.2) drainSome()
    }
    t.notOk(encoder.finished)
    t.throws(() => encoder.digest, "no digest before finish")
    encoder.finish()
    t.ok(encoder.finished)
    t.equal(miscounted, 0, `${label}: buffered drops by each piece taken`)
    t.equal(encoder.produced, reference.length, `${label}: produced counts every byte`)
    t.equal(encoder.buffered, reference.length - takenSoFar)
    while (encoder.buffered > 0) pieces.push(encoder.take(size()))
    t.equal(encoder.take(10).length, 0, "nothing more once drained")
    t.ok(Buffer.from(concat(pieces)).equals(Buffer.from(reference)), `${label}: identical bytes`)
  }

  const encoder = new SnapshotEncoder(header)
  const value = Uint8Array.of(1, 2, 3)
  encoder.record("kv", "k", value)
  value.fill(0)
  const first = encoder.take(encoder.buffered)
  const kept = first.slice()
  encoder.record("kv", "l", bytesOf(200_000, 5))
  encoder.finish()
  t.same(first, kept, "a taken piece is not overwritten by later records")
  const decoder = new SnapshotDecoder()
  decoder.push(first)
  decoder.push(encoder.take(encoder.buffered))
  decoder.end()
  t.same([...(decoder.takeRecords()[0]?.value ?? [])], [1, 2, 3], "the encoder copied the value, so reusing it is safe")
  t.throws(() => encoder.take(-1), RangeError)
  t.throws(() => encoder.take(1.5), RangeError)
})

t.test("every truncation point ends as truncated, never as a success", async (t) => {
  const { bytes } = encodeAll({
    header: { ...header, members: ["a"] },
    records: [
      { section: "kv", key: "k1", value: Uint8Array.of(1, 2) },
      { section: "meta", key: "", value: new Uint8Array(0) },
      { section: "jobs", key: "ж", value: Uint8Array.of(3) }
    ]
  })
  const wrong: string[] = []
  for (let cut = 0; cut < bytes.length; cut++) {
    for (const oneByOne of [false, true]) {
      const decoder = new SnapshotDecoder()
      let code: string | undefined
      try {
        if (oneByOne) for (let i = 0; i < cut; i++) decoder.push(bytes.subarray(i, i + 1))
        else decoder.push(bytes.subarray(0, cut))
        if (decoder.done) code = "done early"
        decoder.end()
        code = "ended without error"
      } catch (error) {
        code = error instanceof SnapshotFormatError ? error.code : String(error)
      }
      if (code !== "truncated") wrong.push(`cut at ${cut}${oneByOne ? " (1-byte pushes)" : ""}: ${code}`)
    }
  }
  t.same(wrong, [], `all ${bytes.length} prefixes are truncated`)
  t.equal(failureOf(bytes).code, undefined, "and the whole stream is fine")

  const decoder = new SnapshotDecoder()
  decoder.push(bytes.subarray(0, 20))
  t.throws(() => decoder.end(), { name: "SnapshotFormatError", code: "truncated", message: /ended after 20 bytes, inside the header at byte 14/ })
  t.throws(() => new SnapshotDecoder().end(), { code: "truncated", message: /empty/ })
})

t.test("flipping any single byte is detected", async (t) => {
  const records: SnapshotRecord[] = [
    { section: "kv", key: "k1", value: Uint8Array.of(1, 2) },
    { section: "sessions", key: "s", value: new Uint8Array(0) }
  ]
  const { bytes } = encodeAll({ header: { ...header, members: ["a", "b"] }, records })
  const seen = new Map<string, number>()
  const undetected: string[] = []
  const misnamed: string[] = []
  for (let at = 0; at < bytes.length; at++) {
    for (const mask of [0x01, 0x02, 0x10, 0x80, 0xff]) {
      const flipped = bytes.slice()
      flipped[at] = (flipped[at] as number) ^ mask
      const { code, decoder } = failureOf(flipped)
      seen.set(code ?? "none", (seen.get(code ?? "none") ?? 0) + 1)
      // A length made larger leaves the decoder waiting for bytes that never come: truncated.
      if (code === undefined || decoder.done) undetected.push(`byte ${at} ^ 0x${mask.toString(16)}`)
      const expected = at < 8 ? "not_snapshot" : at < 10 ? "version" : at >= bytes.length - 32 ? "checksum" : undefined
      if (expected !== undefined && code !== expected) misnamed.push(`byte ${at} ^ 0x${mask.toString(16)}: ${code}`)
    }
  }
  t.same(undetected, [], "no flip decodes successfully")
  t.same(misnamed, [], "flips in the magic, version and digest get their own codes")
  for (const code of ["not_snapshot", "version", "corrupt", "checksum"]) t.ok(seen.has(code), `some flips are ${code}`)
  t.same([...seen.keys()].filter((c) => !["not_snapshot", "version", "corrupt", "checksum", "truncated"].includes(c)), [])
})

t.test("specific failures", async (t) => {
  const { bytes } = encodeAll({ header, records: [{ section: "kv", key: "k", value: Uint8Array.of(1) }] })

  await t.test("wrong magic is not_snapshot as soon as 8 bytes arrived", async (t) => {
    const decoder = new SnapshotDecoder()
    decoder.push(utf8.encode("{\"not\":"))
    t.equal(decoder.received, 7)
    t.throws(() => decoder.push(utf8.encode("1}")), { code: "not_snapshot", message: /not an Archio snapshot/ })
    t.throws(() => decoder.push(bytes), { code: "not_snapshot" }, "the failure sticks")
    t.throws(() => decoder.end(), { code: "not_snapshot" })
    t.equal(failureOf(handMade({ magic: "ARCHIOSX" })).code, "not_snapshot")
  })

  await t.test("an unknown version is refused before anything else", async (t) => {
    t.equal(failureOf(handMade({ version: 2 })).code, "version")
    t.equal(failureOf(handMade({ version: 0 })).code, "version")
    const v2 = bytes.slice()
    v2[9] = 2
    t.throws(() => new SnapshotDecoder().push(v2.subarray(0, 10)), { code: "version", message: /version 2 .*reads version 1/ })
  })

  await t.test("bytes after the trailer are corrupt", async (t) => {
    const sameChunk = new SnapshotDecoder()
    t.throws(() => sameChunk.push(concat([bytes, Uint8Array.of(0)])), { code: "corrupt", message: new RegExp(`1 unexpected bytes after the trailer, at byte ${bytes.length}`) })
    t.notOk(sameChunk.done, "not done once it failed")
    const later = new SnapshotDecoder()
    later.push(bytes)
    t.ok(later.done)
    t.throws(() => later.push(utf8.encode("junk")), { code: "corrupt" })
    t.notOk(later.done)
    t.throws(() => later.end(), { code: "corrupt" })
    const twice = concat([bytes, bytes])
    t.equal(failureOf(twice).code, "corrupt", "two snapshots back to back")
  })

  await t.test("a digest mismatch is checksum", async (t) => {
    const bad = bytes.slice()
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1
    t.throws(() => new SnapshotDecoder().push(bad), { code: "checksum", message: /checksum mismatch/ })
  })

  await t.test("malformed fields are corrupt", async (t) => {
    const k = utf8.encode("k")
    const v = Uint8Array.of(1)
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ["section byte 0", handMade({ records: [{ section: 0, key: k, value: v }] }), /unknown section byte 0x00 at byte \d+/],
      ["section byte 5", handMade({ records: [{ section: 5, key: k, value: v }] }), /unknown section byte 0x05/],
      ["header not JSON", handMade({ headerJson: utf8.encode("{index:1}") }), /header at byte 14 is not valid UTF-8 JSON/],
      ["header not UTF-8", handMade({ headerJson: Uint8Array.of(0x7b, 0xff, 0x7d) }), /not valid UTF-8 JSON/],
      ["header empty", handMade({ headerJson: new Uint8Array(0) }), /not valid/],
      ["header an array", handMade({ headerJson: utf8.encode("[]") }), /not a JSON object/],
      ["header null", handMade({ headerJson: utf8.encode("null") }), /not a JSON object/]
    ]
    const fields: Array<[string, Record<string, unknown>, RegExp]> = [
      ["index missing", { ...header, index: undefined }, /index must be/],
      ["index negative", { ...header, index: -1 }, /index must be a non-negative safe integer/],
      ["index fractional", { ...header, index: 1.5 }, /index must be/],
      ["index unsafe", { ...header, index: 2 ** 53 }, /index must be/],
      ["term a string", { ...header, term: "7" }, /term must be/],
      ["members missing", { ...header, members: undefined }, /members must be an array of strings/],
      ["members not strings", { ...header, members: ["a", 1] }, /members must be/],
      ["cluster missing", { ...header, cluster: undefined }, /cluster must be a string/],
      ["createdAt a string", { ...header, createdAt: "now" }, /createdAt must be a number/]
    ]
    for (const [label, value, message] of fields) {
      cases.push([label, handMade({ headerJson: utf8.encode(JSON.stringify(value)) }), message])
    }
    cases.push(
      ["key over 64 KiB", handMade({ records: [{ section: 1, key: k, value: v, keyLength: 64 * 1024 + 1 }] }), /key length 65537 at byte \d+ is over the 65536-byte limit/],
      ["value over 64 MiB", handMade({ records: [{ section: 1, key: k, value: v, valueLength: 64 * 1024 * 1024 + 1 }] }), /value length 67108865 .* over the 67108864-byte limit/],
      ["key not UTF-8", handMade({ records: [{ section: 1, key: Uint8Array.of(0xc3), value: v }] }), /key at byte \d+ is not valid UTF-8/],
      ["header length over 1 MiB", concat([utf8.encode("ARCHIOSS"), u16(1), u32(1024 * 1024 + 1)]), /header length 1048577 at byte 10/]
    )
    for (const [label, stream, message] of cases) {
      t.throws(() => new SnapshotDecoder().push(stream), { name: "SnapshotFormatError", code: "corrupt", message }, label)
    }
    // Absurd lengths are refused on their own 4 bytes, before anything is allocated for them.
    const huge = handMade({ records: [{ section: 1, key: k, value: v, valueLength: 0xffffffff }] })
    const decoder = new SnapshotDecoder()
    const valueLengthEnd = huge.length - 32 - 1 - v.length
    t.throws(() => decoder.push(huge.subarray(0, valueLengthEnd)), { code: "corrupt" })
    t.equal(
      failureOf(handMade({ records: [{ section: 1, key: utf8.encode("k".repeat(64 * 1024)), value: v }] })).code,
      undefined,
      "a 64 KiB key is at the limit, not over it"
    )
  })
})

t.test("the encoder refuses what the decoder would", async (t) => {
  const encoder = new SnapshotEncoder(header)
  encoder.record("kv", "k", Uint8Array.of(1))
  encoder.finish()
  const digest = encoder.digest
  encoder.finish()
  t.equal(encoder.digest, digest, "finish() twice is harmless")
  t.throws(() => encoder.record("kv", "k2", Uint8Array.of(2)), /after finish/)

  const open = new SnapshotEncoder(header)
  t.throws(() => open.record("kv", "k".repeat(64 * 1024 + 1), new Uint8Array(0)), RangeError)
  t.throws(() => open.record("kv", "ключ".repeat(10_000), new Uint8Array(0)), /80000 bytes, over the 65536-byte limit/, "key length is counted in UTF-8 bytes")
  t.throws(() => open.record("kv", "bad \ud800 key", new Uint8Array(0)), /lone surrogate/)
  t.throws(() => open.record("nope" as SnapshotSection, "k", new Uint8Array(0)), /unknown snapshot section/)
  t.throws(() => new SnapshotEncoder({ ...header, index: -1 }), /index must be a non-negative safe integer/)
  t.throws(() => new SnapshotEncoder({ ...header, createdAt: Number.NaN }), /createdAt/)
  t.throws(() => new SnapshotEncoder({ ...header, members: [1] as unknown as string[] }), /members/)
  // A refused record leaves nothing behind: the stream still decodes.
  open.record("meta", "ok", Uint8Array.of(4))
  open.finish()
  const decoder = new SnapshotDecoder()
  decoder.push(open.take(open.buffered))
  decoder.end()
  t.same(decoder.takeRecords().map((r) => r.key), ["ok"])

  const extra = new SnapshotEncoder({ ...header, extra: "dropped" } as SnapshotHeader)
  extra.finish()
  const read = new SnapshotDecoder()
  read.push(extra.take(extra.buffered))
  t.same(read.header, header, "only the known header fields are written")
})
