import t from "tap"
import {
  fitsUtf8,
  isValidKey,
  isWellFormed,
  keyProblem,
  maxAppendBytes,
  maxJsonDepth,
  maxKeyBytes,
  maxRequestBytes,
  maxValueBytes,
  nestsWithin,
  utf8Length
} from "../../protocol/limits.ts"

t.test("the caps are the documented numbers and nest", async (t) => {
  t.equal(maxKeyBytes, 1024)
  t.equal(maxValueBytes, 256 * 1024)
  t.equal(maxRequestBytes, 512 * 1024)
  t.ok(maxKeyBytes + maxValueBytes < maxRequestBytes, "a maximal key and value fit in one request")
  t.ok(maxRequestBytes < maxAppendBytes, "one maximal request fits in one AppendEntries")
  t.ok(maxAppendBytes < 1024 * 1024, "AppendEntries stays below nats-server's default max_payload (1 MiB)")
})

t.test("UTF-8 lengths and well-formedness", async (t) => {
  t.equal(utf8Length(""), 0)
  t.equal(utf8Length("abc"), 3)
  t.equal(utf8Length("é"), 2)
  t.equal(utf8Length("日"), 3)
  t.equal(utf8Length("😀"), 4)
  t.equal(utf8Length("\ud800"), 3, "a lone surrogate counts as U+FFFD")
  t.ok(isWellFormed("a😀日"))
  t.notOk(isWellFormed("\ud800"))
  t.notOk(isWellFormed("a\udc00"))
  t.notOk(isWellFormed("\ude00\ud83d"), "a reversed pair is two lone surrogates")

  t.ok(fitsUtf8("x".repeat(10), 30), "obviously fits (3 bytes per unit at most)")
  t.notOk(fitsUtf8("x".repeat(31), 30), "obviously too long (at least 1 byte per unit)")
  t.ok(fitsUtf8("é".repeat(15), 30), "counted: exactly at the limit")
  t.notOk(fitsUtf8("é".repeat(16), 30), "counted: 32 bytes")
})

t.test("key rules", async (t) => {
  t.equal(keyProblem("users/42"), undefined)
  t.equal(keyProblem("ключ/😀"), undefined, "any valid UTF-8")
  t.match(keyProblem(""), /non-empty/)
  t.match(keyProblem("a\u0000b"), /NUL/)
  t.match(keyProblem("a\ud800"), /lone surrogate/)
  t.ok(isValidKey("k".repeat(maxKeyBytes)), "exactly maxKeyBytes")
  t.notOk(isValidKey("k".repeat(maxKeyBytes + 1)), "one byte over")
  t.notOk(isValidKey("日".repeat(342)), "342 characters but 1026 bytes")
  t.notOk(isValidKey(""), "empty")
})

t.test("nesting depth of free-form JSON values", async (t) => {
  t.equal(maxJsonDepth, 100)
  t.ok(nestsWithin("a", 0) && nestsWithin(null, 0) && nestsWithin(5, 0), "a scalar nests nothing")
  t.ok(nestsWithin([], 1) && !nestsWithin([], 0), "[] is one level")
  t.ok(nestsWithin({ a: [1, { b: [] }] }, 4), "{a:[1,{b:[]}]} is four levels")
  t.notOk(nestsWithin({ a: [1, { b: [] }] }, 3))
  t.notOk(nestsWithin([[], [[[]]], []], 3), "the deepest branch counts, wherever it is")
  const deep = JSON.parse(`${"[".repeat(200_000)}${"]".repeat(200_000)}`) as unknown
  t.notOk(nestsWithin(deep, maxJsonDepth), "200 000 levels: refused, without overflowing the stack")
})
