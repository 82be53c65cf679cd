/**
 * JSON payloads of the client service: bytes in, a typed request or an `ArchioError` out, and
 * values back to bytes.
 *
 * `makeDecoder(schema)` compiles the schema's decoder once; the returned function runs per
 * request and never throws:
 *
 *   - empty payload            -> decoded as `{}` (so `nats req archio.c.admin.status ""` works)
 *   - over `maxRequestBytes`   -> `too_large`, before any parsing
 *   - not UTF-8 / not JSON     -> `bad_request` "invalid JSON: ..."
 *   - schema failure           -> `bad_request` (or `too_large` when a size cap failed) whose
 *                                 message names each field and its problem in plain words, e.g.
 *                                 `key: expected a non-empty string, got 42; unknown field "vaule"`
 */
import { Either, ParseResult, Schema } from "effect"
import { archioError, type ArchioError } from "./errors.ts"
import { maxRequestBytes } from "./limits.ts"
import { compileGuard } from "./schemaGuard.ts"

/**
 * Annotation on a refinement that checks a size cap: when it fails, the error code is
 * `too_large` rather than `bad_request`.
 */
export const TooLargeAnnotationId: unique symbol = Symbol.for("archio/protocol/TooLarge")

/** A short, plain rendering of a received value for error messages: `42`, `"abc"`, `an object`. */
export const describeValue = (u: unknown): string => {
  if (u === undefined) return "nothing"
  if (u === null) return "null"
  if (Array.isArray(u)) return "an array"
  switch (typeof u) {
    case "object":
      return "an object"
    case "string":
      return u.length > 40 ? `${JSON.stringify(u.slice(0, 37))}... (${u.length} characters)` : JSON.stringify(u)
    default:
      return String(u)
  }
}

/** Annotations that replace every failure message of a schema with `expected <what>, got <value>`. */
export const expecting = (what: string) => ({
  message: (issue: ParseResult.ParseIssue) => ({
    message: `expected ${what}, got ${describeValue(issue.actual)}`,
    override: true
  })
})

const identifier = /^[A-Za-z_$][\w$]*$/

/** `["success", 0, "key"]` -> `success[0].key`. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`
    else {
      const s = String(p)
      out += identifier.test(s) ? (out === "" ? s : `.${s}`) : `[${JSON.stringify(s)}]`
    }
  }
  return out
}

const expectedActual = /^Expected ([\s\S]+), actual ([\s\S]+)$/
const literalUnion = /^"[^"]*"( \| "[^"]*")+$/

/** Effect's name of an expected type, in words: `string` -> `a string`, `{ readonly a: ... }` -> `a JSON object`. */
const expectedInWords = (expected: string): ReadonlyArray<string> =>
  expected.startsWith("{") || expected.includes("Struct") ? ["a JSON object"]
  : expected.startsWith("ReadonlyArray") ? ["an array"]
  : expected === "string" || expected === "number" || expected === "boolean" ? [`a ${expected}`]
  : literalUnion.test(expected) ? expected.split(" | ")
  : [expected]

const expectation = (alternatives: ReadonlyArray<string>, actual: string): string =>
  alternatives.length === 1
    ? `expected ${alternatives[0]}, got ${actual}`
    : `expected one of ${alternatives.join(", ")}, got ${actual}`

export interface FieldProblem {
  /** Path of the field, `""` for the whole request. */
  readonly field: string
  readonly message: string
}

interface Pending {
  readonly field: string
  /** The problem; prefixed with the field path when rendered unless `whole`. */
  readonly text: string
  /** True when `text` already says where (unknown and missing fields name themselves). */
  readonly whole?: boolean
  /** Set while the problem is Effect's "Expected X, actual Y": alternatives seen so far. */
  readonly alternatives?: Array<string>
  readonly actual?: string
}

/**
 * Turns Effect's issue list into one problem per field. The first problem of a field wins,
 * except that several "Expected X, actual Y" for one field (a union, one issue per member)
 * merge into "expected one of X1, X2, got Y".
 */
export const describeIssues = (issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>): Array<FieldProblem> => {
  const byField = new Map<string, Pending>()
  for (const issue of issues) {
    const field = formatPath(issue.path)
    const seen = byField.get(field)
    if (issue._tag === "Unexpected" || issue._tag === "Missing") {
      if (seen !== undefined) continue
      const name = JSON.stringify(String(issue.path[issue.path.length - 1]))
      const text = issue._tag === "Unexpected" ? `unknown field ${name}` : `missing required field ${name}`
      const parent = formatPath(issue.path.slice(0, -1))
      byField.set(field, { field, text: parent === "" ? text : `${parent}: ${text}`, whole: true })
      continue
    }
    const m = expectedActual.exec(issue.message)
    if (seen !== undefined) {
      if (m !== null && seen.alternatives !== undefined && seen.actual === m[2]) {
        for (const alt of expectedInWords(m[1] as string)) if (!seen.alternatives.includes(alt)) seen.alternatives.push(alt)
      }
      continue
    }
    if (m === null) byField.set(field, { field, text: issue.message })
    else byField.set(field, { field, text: "", alternatives: [...expectedInWords(m[1] as string)], actual: m[2] as string })
  }
  const out: Array<FieldProblem> = []
  for (const p of byField.values()) {
    const text = p.alternatives === undefined ? p.text : expectation(p.alternatives, p.actual as string)
    out.push({ field: p.field, message: p.whole === true || p.field === "" ? text : `${p.field}: ${text}` })
  }
  return out
}

const maxProblemsInMessage = 5

const joinProblems = (problems: ReadonlyArray<FieldProblem>): string => {
  const shown = problems.slice(0, maxProblemsInMessage).map((p) => p.message)
  const more = problems.length - shown.length
  return more > 0 ? `${shown.join("; ")}; and ${more} more` : shown.join("; ")
}

/** True when some failed refinement in `issue` is a size cap. */
const failedSizeCap = (issue: ParseResult.ParseIssue): boolean => {
  switch (issue._tag) {
    case "Refinement":
      return (issue.kind === "Predicate" && issue.ast.annotations[TooLargeAnnotationId] === true) || failedSizeCap(issue.issue)
    case "Composite":
      return Array.isArray(issue.issues)
        ? issue.issues.some(failedSizeCap)
        : failedSizeCap(issue.issues as ParseResult.ParseIssue)
    case "Pointer":
    case "Transformation":
      return failedSizeCap(issue.issue)
    default:
      return false
  }
}

/** The client-facing error for a schema failure. */
const parseErrorToArchio = (error: ParseResult.ParseError): ArchioError => {
  const problems = describeIssues(ParseResult.ArrayFormatter.formatErrorSync(error))
  const code = failedSizeCap(error.issue) ? "too_large" : "bad_request"
  return archioError(code, joinProblems(problems), { problems })
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true })
const utf8 = new TextEncoder()

/** Options every client request is decoded with: unknown fields are errors, report them all. */
export const requestParseOptions = { onExcessProperty: "error", errors: "all", exact: true } as const

/**
 * A per-request decoder for `schema`, compiled once. Never throws; see the module note for
 * which code each failure gets.
 */
export const makeDecoder = <A, I>(schema: Schema.Schema<A, I, never>): ((bytes: Uint8Array) => Either.Either<A, ArchioError>) => {
  const decode = Schema.decodeUnknownEither(schema, requestParseOptions)
  // Valid requests skip the parser (see schemaGuard.ts); the rest get its full report.
  const valid = compileGuard(schema, requestParseOptions) ?? (() => false)
  return (bytes) => {
    if (bytes.length > maxRequestBytes) {
      return Either.left(archioError("too_large", `request is ${bytes.length} bytes, over the ${maxRequestBytes}-byte limit`, {
        size: bytes.length,
        limit: maxRequestBytes
      }))
    }
    let json: unknown
    if (bytes.length === 0) json = {}
    else {
      let text: string
      try {
        text = utf8Strict.decode(bytes)
      } catch {
        return Either.left(archioError("bad_request", "invalid JSON: the payload is not valid UTF-8"))
      }
      try {
        json = JSON.parse(text)
      } catch (e) {
        // JSON.parse only throws SyntaxError
        return Either.left(archioError("bad_request", `invalid JSON: ${(e as SyntaxError).message}`))
      }
    }
    if (valid(json)) return Either.right(json as A)
    const result = decode(json)
    return Either.isRight(result) ? Either.right(result.right) : Either.left(parseErrorToArchio(result.left))
  }
}

/** JSON bytes of `value` (`undefined` encodes as `null`). */
export const encodeJson = (value: unknown): Uint8Array => utf8.encode(JSON.stringify(value) ?? "null")
