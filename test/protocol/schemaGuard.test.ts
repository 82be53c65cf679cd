import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { isDeepStrictEqual } from "node:util"
import t from "tap"
import * as Client from "../../protocol/client.ts"
import { makeDecoder, requestParseOptions } from "../../protocol/json.ts"
import { compileGuard } from "../../protocol/schemaGuard.ts"

// Every request schema of the wire contract, by name.
const requests = Object.entries(Client as Record<string, unknown>).filter(
  (e): e is [string, Schema.Schema<unknown, unknown, never>] => e[0].endsWith("Request") && Schema.isSchema(e[1])
)

/** As the gateway sees a value: sent as JSON, parsed back (-0 becomes 0, undefined fields vanish). */
const overTheWire = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)))

const jsonValue = fc.jsonValue({ maxDepth: 2 })
const fieldName = fc.oneof(fc.constantFrom("key", "value", "ttl", "token", "seq", "client", "queue", "vaule", "__proto__", "constructor"), fc.string())

/** A valid request with one thing changed: a field set to any JSON value, a field removed, or the whole replaced. */
const mutated = (valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.tuple(valid, fieldName, jsonValue).map(([v, k, x]) => (typeof v === "object" && v !== null ? { ...v, [k]: x } : v)),
    fc.tuple(valid, fieldName).map(([v, k]) => {
      if (typeof v !== "object" || v === null) return v
      const copy: Record<string, unknown> = { ...v }
      delete copy[k]
      return copy
    }),
    jsonValue
  )

/** Requests that carry nothing (`{}`): there is no guard to compile. */
const emptyRequests = new Set(["StatusRequest", "MembersRequest", "SnapshotRequest", "BackupRequest"])

t.test("the guard of every request schema but the empty ones compiles (valid requests skip the parser)", async (t) => {
  for (const [name, schema] of requests) {
    if (emptyRequests.has(name)) continue
    t.ok(compileGuard(schema, requestParseOptions), name)
  }
})

t.test("valid requests pass the guard", async (t) => {
  for (const [name, schema] of requests) {
    const guard = compileGuard(schema, requestParseOptions)
    if (guard === undefined) continue
    fc.assert(
      fc.property(Arbitrary.make(schema).map(overTheWire), (v) => {
        // Generated values are valid by construction; one the Schema refuses after JSON is not a case here.
        if (Either.isLeft(Schema.decodeUnknownEither(schema, requestParseOptions)(v))) return
        if (!guard(v)) throw new Error(`${name}: the guard refused a valid ${JSON.stringify(v)}`)
      }),
      { numRuns: 200 }
    )
  }
  t.pass()
})

t.test("the guard never accepts what the Schema refuses or would decode differently", async (t) => {
  for (const [name, schema] of requests) {
    const guard = compileGuard(schema, requestParseOptions)
    if (guard === undefined) continue
    const decode = Schema.decodeUnknownEither(schema, requestParseOptions)
    let accepted = 0
    let refused = 0
    fc.assert(
      fc.property(mutated(Arbitrary.make(schema).map(overTheWire)), (v) => {
        if (!guard(v)) return void refused++
        accepted++
        const decoded = decode(v)
        if (Either.isLeft(decoded)) throw new Error(`${name}: the guard accepted ${JSON.stringify(v)}, which the Schema refuses`)
        if (!isDeepStrictEqual(decoded.right, v)) throw new Error(`${name}: ${JSON.stringify(v)} decodes to ${JSON.stringify(decoded.right)}`)
      }),
      { numRuns: 300 }
    )
    // Both sides must be exercised, or the property proves nothing for this schema.
    t.ok(accepted > 0 && refused > 0, `${name}: ${accepted} accepted, ${refused} refused`)
  }
})

t.test("a refused request still gets the Schema's error; an accepted one comes back as sent", async (t) => {
  const decodePut = makeDecoder(Client.KvPutRequest)
  const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))
  const sent = { key: "name", value: "luffy", ttl: 5000, token: { client: "c1", seq: 3 } }
  t.same(decodePut(bytes(sent)), Either.right(sent))
  const typo = decodePut(bytes({ key: "name", vaule: "luffy" }))
  t.ok(Either.isLeft(typo))
  if (Either.isLeft(typo)) t.match(typo.left.message, /vaule/)
  const badTtl = decodePut(bytes({ key: "name", value: "v", ttl: 0 }))
  t.ok(Either.isLeft(badTtl) && badTtl.left.code === "bad_request")
  const lone = decodePut(bytes({ key: "name", value: "\ud800" }))
  t.ok(Either.isLeft(lone) && /lone surrogate/.test(lone.left.message))
  const nul = decodePut(bytes({ key: "a\u0000b", value: "v" }))
  t.ok(Either.isLeft(nul))
  const big = decodePut(bytes({ key: "k".repeat(2000), value: "v" }))
  t.ok(Either.isLeft(big) && big.left.code === "too_large")
})
