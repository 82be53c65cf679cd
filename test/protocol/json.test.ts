import { Either, Schema } from "effect"
import t from "tap"
import { archioError, isErrorCode, statusOf, toEnvelope } from "../../protocol/errors.ts"
import {
  describeIssues,
  describeValue,
  encodeJson,
  formatPath,
  makeDecoder,
  TooLargeAnnotationId
} from "../../protocol/json.ts"
import { maxRequestBytes } from "../../protocol/limits.ts"

const utf8 = new TextEncoder()
const bytes = (text: string): Uint8Array => utf8.encode(text)
const json = (value: unknown): Uint8Array => bytes(JSON.stringify(value))

/** A schema with Effect's default messages (no annotations), to test the generic wording. */
const Plain = Schema.Struct({
  name: Schema.String,
  count: Schema.Number,
  flag: Schema.optionalWith(Schema.Boolean, { exact: true }),
  mode: Schema.optionalWith(Schema.Literal("a", "b"), { exact: true }),
  list: Schema.optionalWith(Schema.Array(Schema.Number), { exact: true }),
  inner: Schema.optionalWith(Schema.Struct({ x: Schema.Number }), { exact: true }),
  union: Schema.optionalWith(Schema.Union(Schema.String, Schema.Number, Schema.Literal("x")), { exact: true }),
  even: Schema.optionalWith(Schema.Number.pipe(Schema.filter((n) => n % 2 === 0 || "must be even")), { exact: true }),
  parsed: Schema.optionalWith(Schema.NumberFromString, { exact: true }),
  small: Schema.optionalWith(
    Schema.String.pipe(Schema.filter((s) => s.length <= 3 || "too large: over 3", { [TooLargeAnnotationId]: true })),
    { exact: true }
  ),
  smallParsed: Schema.optionalWith(
    Schema.compose(
      Schema.NumberFromString,
      Schema.Number.pipe(Schema.filter((n) => n <= 3 || "too large: over 3", { [TooLargeAnnotationId]: true }))
    ),
    { exact: true }
  )
})
const decodePlain = makeDecoder(Plain)

const fails = (result: Either.Either<unknown, import("../../protocol/errors.ts").ArchioError>) =>
  Either.isLeft(result) ? result.left : undefined

t.test("payload handling before the schema", async (t) => {
  const Empty = Schema.Struct({ a: Schema.optionalWith(Schema.Number, { exact: true }) })
  const decodeEmpty = makeDecoder(Empty)
  t.same(Either.getOrThrow(decodeEmpty(new Uint8Array(0))), {}, "empty payload is {}")
  t.same(Either.getOrThrow(decodeEmpty(bytes("\ufeff{\"a\":1}"))), { a: 1 }, "a UTF-8 BOM is skipped")

  const big = fails(decodeEmpty(new Uint8Array(maxRequestBytes + 1)))
  t.equal(big?.code, "too_large")
  t.equal(big?.message, `request is ${maxRequestBytes + 1} bytes, over the ${maxRequestBytes}-byte limit`)
  t.same(big?.detail, { size: maxRequestBytes + 1, limit: maxRequestBytes })
  const atLimit = fails(decodeEmpty(new Uint8Array(maxRequestBytes).fill(0x20)))
  t.equal(atLimit?.code, "bad_request", "exactly at the limit is parsed (and here is not JSON)")

  const notUtf8 = fails(decodeEmpty(Uint8Array.of(0x7b, 0xff, 0x7d)))
  t.equal(notUtf8?.code, "bad_request")
  t.equal(notUtf8?.message, "invalid JSON: the payload is not valid UTF-8")

  for (const text of ["{", "{\"a\":}", "nope", "{'a':1}", "{\"a\":1}x"]) {
    const e = fails(decodeEmpty(bytes(text)))
    t.equal(e?.code, "bad_request", text)
    t.match(e?.message, /^invalid JSON: /, text)
  }
})

t.test("schema failures name the field and the problem in plain words", async (t) => {
  const cases: ReadonlyArray<readonly [unknown, string]> = [
    [{ name: 1, count: 1 }, "name: expected a string, got 1"],
    [{ name: "n", count: "1" }, "count: expected a number, got \"1\""],
    [{ name: "n", count: 1, flag: "yes" }, "flag: expected a boolean, got \"yes\""],
    [{ name: "n", count: 1, mode: "c" }, "mode: expected one of \"a\", \"b\", got \"c\""],
    [{ name: "n", count: 1, list: 5 }, "list: expected an array, got 5"],
    [{ name: "n", count: 1, list: [1, "x"] }, "list[1]: expected a number, got \"x\""],
    [{ name: "n", count: 1, inner: 5 }, "inner: expected a JSON object, got 5"],
    [{ name: "n", count: 1, union: true }, "union: expected one of a string, a number, \"x\", got true"],
    [{ name: "n", count: 1, inner: { x: 1, y: 2 } }, "inner: unknown field \"y\""],
    [{ name: "n", count: 1, inner: {} }, "inner: missing required field \"x\""],
    [{ name: "n", count: 1, even: 3 }, "even: must be even"],
    [{ name: "n", count: 1, parsed: "abc" }, "parsed: Unable to decode \"abc\" into a number"],
    [{ count: 1 }, "missing required field \"name\""],
    [{ name: "n", count: 1, "weird key": 1 }, "unknown field \"weird key\""],
    [null, "expected a JSON object, got null"],
    [[1], "expected a JSON object, got [1]"]
  ]
  for (const [input, message] of cases) {
    const e = fails(decodePlain(json(input)))
    t.equal(e?.code, "bad_request", JSON.stringify(input))
    t.equal(e?.message, message, JSON.stringify(input))
  }
  const several = fails(decodePlain(json({ name: 1, count: "x", vaule: 1 })))
  t.equal(several?.message, "unknown field \"vaule\"; name: expected a string, got 1; count: expected a number, got \"x\"")
  t.same(several?.detail, {
    problems: [
      { field: "vaule", message: "unknown field \"vaule\"" },
      { field: "name", message: "name: expected a string, got 1" },
      { field: "count", message: "count: expected a number, got \"x\"" }
    ]
  })
  const many = fails(decodePlain(json({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7 })))
  t.match(many?.message, /; and 4 more$/, "at most five problems in the message")
})

t.test("a failed size cap is too_large, anywhere in the issue tree", async (t) => {
  const small = fails(decodePlain(json({ name: "n", count: 1, small: "abcd" })))
  t.equal(small?.code, "too_large")
  t.equal(small?.message, "small: too large: over 3")
  const inTransformation = fails(decodePlain(json({ name: "n", count: 1, smallParsed: "7" })))
  t.equal(inTransformation?.code, "too_large", "through a transformation")
  const mixed = fails(decodePlain(json({ name: 1, count: 1, small: "abcd" })))
  t.equal(mixed?.code, "too_large", "too_large wins when mixed with other problems")
  t.match(mixed?.message, /name: expected a string/)
  const single = fails(makeDecoder(Schema.Array(Schema.String.pipe(Schema.filter((s) => s.length <= 3, { [TooLargeAnnotationId]: true }))))(json(["abcd"])))
  t.equal(single?.code, "too_large", "array element")
  t.equal(fails(decodePlain(json({ name: "n", count: 1, parsed: "x" })))?.code, "bad_request", "other transformations are bad_request")
})

t.test("helpers", async (t) => {
  t.equal(describeValue(undefined), "nothing")
  t.equal(describeValue(null), "null")
  t.equal(describeValue([1]), "an array")
  t.equal(describeValue({}), "an object")
  t.equal(describeValue("abc"), "\"abc\"")
  t.equal(describeValue("x".repeat(100)), `"${"x".repeat(37)}"... (100 characters)`)
  t.equal(describeValue(42), "42")
  t.equal(describeValue(false), "false")
  t.equal(formatPath([]), "")
  t.equal(formatPath(["success", 0, "key"]), "success[0].key")
  t.equal(formatPath(["a b", "c"]), "[\"a b\"].c")
  t.equal(formatPath([Symbol.for("s")]), "[\"Symbol(s)\"]")
  t.same(
    describeIssues([
      { _tag: "Type", path: ["a"], message: "first" },
      { _tag: "Type", path: ["a"], message: "second" },
      { _tag: "Type", path: ["b"], message: "Expected string, actual 1" },
      { _tag: "Type", path: ["b"], message: "Expected number, actual 2" },
      { _tag: "Type", path: ["b"], message: "Expected \"x\" | \"y\", actual 1" },
      { _tag: "Type", path: ["b"], message: "Expected string, actual 1" },
      { _tag: "Missing", path: ["a"], message: "is missing" },
      { _tag: "Type", path: [], message: "whole" }
    ]),
    [
      { field: "a", message: "a: first" },
      { field: "b", message: "b: expected one of a string, \"x\", \"y\", got 1" },
      { field: "", message: "whole" }
    ],
    "first problem per field"
  )
})

t.test("encoding replies and errors", async (t) => {
  const text = (b: Uint8Array) => new TextDecoder().decode(b)
  t.equal(text(encodeJson({ ok: true, revision: 3 })), "{\"ok\":true,\"revision\":3}")
  t.equal(text(encodeJson(undefined)), "null")
  t.equal(text(encodeJson("é")), "\"é\"")
  const body = JSON.parse(text(encodeJson(toEnvelope(archioError("not_found", "key \"a\" not found")))))
  t.same(body, { ok: false, error: { code: "not_found", message: "key \"a\" not found" } })
  const withDetail = JSON.parse(text(encodeJson(toEnvelope(archioError("unavailable", "no leader", { leader: "n2" })))))
  t.same(withDetail, { ok: false, error: { code: "unavailable", message: "no leader", detail: { leader: "n2" } } })
  t.equal(statusOf("too_large"), 413)
  t.ok(isErrorCode("bad_request"))
  t.notOk(isErrorCode("nope"))
})
