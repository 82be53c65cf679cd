/**
 * Request payloads a careless or hostile client sends, as bytes, for any request schema of the
 * wire contract (`protocol/client.ts`): random and malformed JSON, the schema's own field names
 * with values of the wrong type, valid requests with one field broken, huge strings at and
 * around every size cap of `protocol/limits.ts`, deeply nested values, long arrays, invalid
 * UTF-8, empty payloads and payloads at and over `maxRequestBytes` and NATS' `max_payload`.
 *
 * Values are built as data and rendered to JSON text here (`render`), so a value can hold text
 * `JSON.stringify` would never produce (nesting 100 000 deep, broken fragments).
 */
import fc from "fast-check"
import { Arbitrary, FastCheck as EffectFastCheck, SchemaAST as AST, type Schema } from "effect"
import * as Limits from "../../protocol/limits.ts"

/** JSON text placed into a rendered payload exactly as it is. */
export class RawJson {
  constructor(readonly text: string) {}
  /** fast-check prints counterexamples with this; a 400 KB text would bury the report. */
  [fc.toStringMethod](): string {
    return this.toString()
  }
  toString(): string {
    return this.text.length <= 80 ? `RawJson(${this.text})` : `RawJson(${this.text.slice(0, 40)}... ${this.text.length} chars)`
  }
}

/** JSON text of `v`; `RawJson` parts go in verbatim. Keys such as `__proto__` stay plain keys. */
export const render = (v: unknown): string => {
  if (v instanceof RawJson) return v.text
  if (Array.isArray(v)) return `[${v.map(render).join(",")}]`
  if (typeof v === "object" && v !== null) {
    return `{${Object.keys(v).map((k) => `${JSON.stringify(k)}:${render((v as Record<string, unknown>)[k])}`).join(",")}}`
  }
  return JSON.stringify(v) ?? "null"
}

const utf8 = new TextEncoder()
export const bytesOf = (text: string): Uint8Array => utf8.encode(text)

/** `[[[...]]]` or `{"a":{"a":...}}` nested `depth` levels (never through JSON.stringify, which would overflow). */
export const deep = (depth: number, kind: "array" | "object"): RawJson =>
  kind === "array" ? new RawJson(`${"[".repeat(depth)}${"]".repeat(depth)}`) : new RawJson(`${'{"a":'.repeat(depth)}0${"}".repeat(depth)}`)

// ---------------------------------------------------------------------------------------------
// Field names of a request schema

/** Every property name anywhere in `ast` (nested objects, union members, array items). */
const collectNames = (ast: AST.AST, out: Set<string>, seen: Set<AST.AST>): void => {
  if (seen.has(ast)) return
  seen.add(ast)
  switch (ast._tag) {
    case "TypeLiteral":
      for (const ps of ast.propertySignatures) {
        if (typeof ps.name === "string") out.add(ps.name)
        collectNames(ps.type, out, seen)
      }
      return
    case "Union":
      for (const t of ast.types) collectNames(t, out, seen)
      return
    case "Refinement":
      return collectNames(ast.from, out, seen)
    case "Transformation":
      return collectNames(ast.from, out, seen)
    case "TupleType":
      for (const e of ast.elements) collectNames(e.type, out, seen)
      for (const r of ast.rest) collectNames(r.type, out, seen)
      return
    case "Suspend":
      return collectNames(ast.f(), out, seen)
    default:
      return
  }
}

export const fieldNames = (schema: Schema.Schema<unknown, unknown, never>): ReadonlyArray<string> => {
  const names = new Set<string>()
  collectNames(schema.ast, names, new Set())
  return [...names]
}

/**
 * Up to `count` valid requests of `schema`, as they look after a JSON round trip, drawn with
 * Effect's own Arbitrary (its bundled fast-check) from `seed`: the bases the fuzzer breaks one
 * field at a time. `{}` when the schema has no Arbitrary.
 */
export const validSamples = (schema: Schema.Schema<unknown, unknown, never>, seed: number, count = 12): ReadonlyArray<unknown> => {
  try {
    const drawn = EffectFastCheck.sample(Arbitrary.make(schema), { seed, numRuns: count })
    // Effect's generator may draw values JSON cannot carry (-0, undefined fields): as the server would see them.
    const samples = drawn.map((v) => JSON.parse(JSON.stringify(v) ?? "null") as unknown)
    return samples.length === 0 ? [{}] : samples
  } catch {
    return [{}]
  }
}

// ---------------------------------------------------------------------------------------------
// Values

const sizeCaps = [
  Limits.maxKeyBytes,
  Limits.maxValueBytes,
  Limits.maxClientIdBytes,
  Limits.maxJobIdBytes,
  Limits.maxCursorBytes,
  Limits.maxErrorTextBytes
]

/** Strings one below, at and one above a size cap, in 1- to 4-byte characters (3 bytes for `€`). */
const cappedString: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...sizeCaps), fc.constantFrom(-1, 0, 1), fc.constantFrom("a", "é", "€", "😀"))
  .map(([cap, delta, ch]) => ch.repeat(Math.max(0, Math.ceil((cap + delta) / Buffer.byteLength(ch)))))

const specialNumbers = fc.constantFrom(
  -1, 0, -0, 1, 1.5, -0.5, 0.1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e308, -1e308, 5e-324,
  Limits.maxLeaseMs, Limits.maxLeaseMs + 1, Limits.maxLeaseWaitMs + 1, Limits.maxPageLimit + 1, Limits.maxRetainMs + 1, 1_000_001
)

/** Strings that are nearly right somewhere (enum members, node ids, cursors) or wrong in a special way. */
const specialStrings = fc.constantFrom(
  "", " ", "\u0000", "a\u0000b", "\ud800", "\udc00", "x\ud83d", "\ud83d\ude00", "\ufeff", "..", "*", ">", "a.b", "a b", "~",
  "__proto__", "constructor", "n1", "n2", "n3", "dev", "n1:1", "n9:0", "0", "-1", "1e3", "AA", "AAAA", "YQ", "linearizable",
  "stale", "put", "del", "value", "mod", "create", "version", "==", "!=", "fixed", "exponential", "completed", "dead",
  "cancelled", "ready", "leased", "q", "emails"
)

/** Nesting at the boundaries a decoder or a recursive walk may have, and far past them. */
const deepValue = fc
  .tuple(fc.oneof(fc.integer({ min: 1, max: 200 }), fc.constantFrom(32, 63, 64, 65, 100, 101, 1_000, 10_000, 100_000)), fc.constantFrom("array" as const, "object" as const))
  .map(([depth, kind]) => deep(depth, kind))

/** Arrays longer than `maxTxnOps`, `maxLeaseQueues` and `maxBatchJobs`, of small items. */
const longArray = fc
  .tuple(fc.constantFrom(Limits.maxLeaseQueues + 1, Limits.maxTxnOps + 1, Limits.maxBatchJobs + 1, 5_000), fc.constantFrom("0", "{}", '"q"', "null"))
  .map(([n, item]) => new RawJson(`[${new Array<string>(n).fill(item).join(",")}]`))

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: specialNumbers },
  { weight: 3, arbitrary: specialStrings },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)) },
  { weight: 1, arbitrary: cappedString },
  { weight: 1, arbitrary: deepValue },
  { weight: 1, arbitrary: longArray },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) }
)

const fieldName = (names: ReadonlyArray<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: names.length > 0 ? fc.constantFrom(...names) : fc.constant("key") },
    { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "toString", "vaule", "", "ok", "a.b") },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }
  )

/** A value of any shape: a leaf, or a small array or object of such values. */
const nastyValue = (names: ReadonlyArray<string>): fc.Arbitrary<unknown> =>
  fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      { weight: 6, arbitrary: leaf },
      { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.dictionary(fieldName(names), tie("value"), { maxKeys: 4 }) }
    )
  })).value

// ---------------------------------------------------------------------------------------------
// Requests

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/** A valid request with one thing broken: a field set to a nasty value, a field dropped, a field added. */
const brokenValid = (samples: ReadonlyArray<unknown>, names: ReadonlyArray<string>): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.tuple(fc.constantFrom(...samples), fieldName(names), nastyValue(names)).map(([v, k, x]) => (isObject(v) ? { ...v, [k]: x } : x)),
    fc.tuple(fc.constantFrom(...samples), fieldName(names)).map(([v, k]) => {
      if (!isObject(v)) return v
      const copy: Record<string, unknown> = { ...v }
      delete copy[k]
      return copy
    }),
    // One level down: a nested object (a token, a compare, a job of a batch) broken instead.
    fc.tuple(fc.constantFrom(...samples), fieldName(names), nastyValue(names)).map(([v, k, x]) => {
      if (!isObject(v)) return v
      const out: Record<string, unknown> = {}
      for (const [name, inner] of Object.entries(v)) {
        out[name] = isObject(inner) ? { ...inner, [k]: x } : Array.isArray(inner) && isObject(inner[0]) ? [{ ...inner[0], [k]: x }, ...inner.slice(1)] : inner
      }
      return out
    })
  )

/** Requests as values: broken valid ones, objects of the schema's names with wrong values, anything. */
const requestValue = (samples: ReadonlyArray<unknown>, names: ReadonlyArray<string>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 5, arbitrary: brokenValid(samples, names) },
    { weight: 3, arbitrary: fc.dictionary(fieldName(names), nastyValue(names), { maxKeys: 6 }) },
    { weight: 1, arbitrary: nastyValue(names) },
    { weight: 1, arbitrary: fc.constantFrom(...samples) }
  )

/** Text that is not JSON, or not quite. */
const brokenText = (text: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    fc.tuple(text, fc.nat()).map(([s, i]) => s.slice(0, s.length === 0 ? 0 : i % s.length)),
    fc.tuple(text, fc.nat(), fc.constantFrom("{", "}", "[", "]", '"', ",", ":", "\\", "'", "\u0000", "\n", "NaN", "-", "e", "/*"))
      .map(([s, i, c]) => { const at = s.length === 0 ? 0 : i % (s.length + 1); return s.slice(0, at) + c + s.slice(at) }),
    fc.tuple(text, fc.nat()).map(([s, i]) => { const at = s.length === 0 ? 0 : i % s.length; return s.slice(0, at) + s.slice(at + 1) }),
    text.map((s) => `${s}${s}`),
    text.map((s) => `${s} trailing`),
    text.map((s) => s.replaceAll('"', "'")),
    text.map((s) => `// comment\n${s}`),
    fc.constantFrom("{", "[", "}", "]", '"', "nul", "tru", "{,}", "[,]", '{"a"}', '{"a":}', '{"a":1,}', "[1,]", "01", "+1", ".5", "1.", "0x10",
      "NaN", "Infinity", "-Infinity", "undefined", '{"a":1}{"a":1}', "\u0000", '"\\x41"', '"\\u12"', '"\\ud800"'),
    fc.string({ unit: "binary", maxLength: 40 })
  )

/** Bytes that are not UTF-8, spliced into a payload (lone continuation, overlong, surrogate, truncated). */
const badUtf8 = fc.constantFrom(
  [0xff], [0xfe], [0x80], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98]
)

const splice = (bytes: Uint8Array, at: number, insert: ReadonlyArray<number>): Uint8Array => {
  const i = bytes.length === 0 ? 0 : at % (bytes.length + 1)
  const out = new Uint8Array(bytes.length + insert.length)
  out.set(bytes.subarray(0, i), 0)
  out.set(insert, i)
  out.set(bytes.subarray(i), i + insert.length)
  return out
}

/** `text` padded with spaces (still the same JSON) to exactly `size` bytes, when it is shorter. */
const padded = (text: string, size: number): Uint8Array => {
  const body = bytesOf(text)
  if (body.length >= size) return body
  const out = new Uint8Array(size).fill(0x20)
  out.set(body, 0)
  return out
}

export interface PayloadOptions {
  /** The server's `max_payload` (nats-server's default is 1 MiB). */
  readonly maxPayload: number
}

/**
 * Sizes around the caps: one under, at and over `maxRequestBytes`, and just under NATS'
 * `max_payload` (room left for the subject, reply and headers the client adds).
 */
export const sizesNearLimits = (options: PayloadOptions): ReadonlyArray<number> => [
  Limits.maxRequestBytes - 1,
  Limits.maxRequestBytes,
  Limits.maxRequestBytes + 1,
  options.maxPayload - 4096
]

/**
 * Payloads for an endpoint whose requests `schema` describes: mostly invalid, now and then
 * valid. All fit in a NATS message (a few capped strings in one object could pass `max_payload`,
 * which the client refuses to send; the endpoint tests send those on purpose, once).
 */
export const requestPayload = (
  schema: Schema.Schema<unknown, unknown, never>,
  samples: ReadonlyArray<unknown>,
  options: PayloadOptions
): fc.Arbitrary<Uint8Array> => {
  const names = fieldNames(schema)
  const value = requestValue(samples, names)
  const text = value.map(render)
  const fits = (b: Uint8Array): boolean => b.length <= options.maxPayload - 4096
  return fc.oneof(
    { weight: 12, arbitrary: text.map(bytesOf) },
    { weight: 5, arbitrary: brokenText(text).map(bytesOf) },
    { weight: 2, arbitrary: fc.tuple(text, fc.nat(), badUtf8).map(([s, at, bad]) => splice(bytesOf(s), at, bad)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map(bytesOf) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...samples).map(render), fc.constantFrom(...sizesNearLimits(options))).map(([s, size]) => padded(s, size)) }
  ).filter(fits)
}

export interface NamedPayload {
  readonly name: string
  readonly bytes: Uint8Array
}

/**
 * Fixed payloads every endpoint gets whatever the seed: the classic bad inputs, each field of a
 * valid request replaced by a value nested 10 000 deep (past the call stack of any recursive
 * walk), and the sizes around the caps.
 */
export const corpus = (schema: Schema.Schema<unknown, unknown, never>, samples: ReadonlyArray<unknown>, options: PayloadOptions): ReadonlyArray<NamedPayload> => {
  const fixed: Array<NamedPayload> = [
    { name: "empty payload", bytes: new Uint8Array(0) },
    ...["{", "[", "null", "0", '"x"', "[]", "true", "{}{}", "\ufeff{}", " ", '{"__proto__":{}}', '{"constructor":1}', "[".repeat(100_000)].map(
      (s) => ({ name: `text ${JSON.stringify(s.length > 20 ? `${s.slice(0, 10)}... (${s.length})` : s)}`, bytes: bytesOf(s) })
    ),
    { name: "bytes 0xff 0xfe", bytes: new Uint8Array([0xff, 0xfe]) },
    { name: "overlong {} (0xc0 0xbb ...)", bytes: new Uint8Array([0xc0, 0xfb, 0xc0, 0xfd]) },
    { name: "a UTF-8-encoded surrogate in a string", bytes: new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d]) },
    { name: "array nested 100000 deep", bytes: bytesOf(deep(100_000, "array").text) },
    { name: "object nested 20000 deep", bytes: bytesOf(deep(20_000, "object").text) }
  ]
  const base = samples.find(isObject) ?? {}
  for (const field of fieldNames(schema)) {
    fixed.push({ name: `${field}: an array nested 10000 deep`, bytes: bytesOf(render({ ...base, [field]: deep(10_000, "array") })) })
    fixed.push({ name: `${field}: an array nested 1000 deep`, bytes: bytesOf(render({ ...base, [field]: deep(1_000, "array") })) })
    fixed.push({ name: `${field}: a lone surrogate`, bytes: bytesOf(render({ ...base, [field]: "\ud800" })) })
    fixed.push({ name: `${field}: 5000 items`, bytes: bytesOf(render({ ...base, [field]: new RawJson(`[${new Array<string>(5000).fill("{}").join(",")}]`) })) })
  }
  // At and just over the request cap (the random payloads try the other sizes of sizesNearLimits).
  for (const size of [Limits.maxRequestBytes, Limits.maxRequestBytes + 1]) {
    fixed.push({ name: `a valid request padded to ${size} bytes`, bytes: padded(render(base), size) })
  }
  // Just under max_payload, most of it a `value` field.
  const overhead = bytesOf(render({ ...base, value: "" })).length
  const size = options.maxPayload - 4096
  fixed.push({ name: `a ${size}-byte request, most of it one value`, bytes: bytesOf(render({ ...base, value: "v".repeat(Math.max(0, size - overhead)) })) })
  return fixed
}
