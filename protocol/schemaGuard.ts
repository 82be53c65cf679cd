/**
 * A plain predicate compiled from a request Schema, for the decoder's fast path: `true` means the
 * Schema would decode the value to an equal value, so the decoder may return it as it is.
 *
 * Effect's parser walks the AST and builds a fresh output, issue objects and Eithers for every
 * field of every request; on a node that shares two cores with nats-server and its peers, that
 * walk touches a lot of memory that other processes keep evicting, and it was a visible share
 * of a put's critical path (BENCHMARKS.md, "Side by side, warm"). The predicate reads each
 * field once and calls the Schema's own refinement filters, so the rules stay in one place
 * (the Schema); whenever it says `false`, the decoder runs the Schema anyway, which finds the
 * problem and words the error. `test/protocol/schemaGuard.test.ts` checks on random inputs that
 * it never accepts what the Schema refuses, nor anything it would decode differently.
 *
 * Only what transformation-free request schemas use is compiled: strings, numbers, booleans,
 * literals, unions, refinements, structs without index signatures (excess fields make it
 * `false`), arrays and `Unknown`. Anything else (transformations, declarations, suspensions)
 * leaves the schema without a guard: `compileGuard` returns `undefined`.
 */
import { Option, SchemaAST as AST, type Schema } from "effect"

export type Guard = (u: unknown) => boolean

const hasOwn = Object.prototype.hasOwnProperty

const compile = (ast: AST.AST, options: AST.ParseOptions): Guard | undefined => {
  switch (ast._tag) {
    case "StringKeyword":
      return (u) => typeof u === "string"
    case "NumberKeyword":
      return (u) => typeof u === "number"
    case "BooleanKeyword":
      return (u) => typeof u === "boolean"
    case "UnknownKeyword":
    case "AnyKeyword":
      return () => true
    case "Literal": {
      const literal = ast.literal
      return (u) => u === literal
    }
    case "Union": {
      const members = ast.types.map((t) => compile(t, options))
      if (members.some((m) => m === undefined)) return undefined
      const guards = members as Guard[]
      return (u) => guards.some((g) => g(u))
    }
    case "Refinement": {
      const from = compile(ast.from, options)
      if (from === undefined) return undefined
      return (u) => from(u) && Option.isNone(ast.filter(u, options, ast))
    }
    case "TupleType": {
      // Only `Schema.Array(item)`: no fixed elements, one rest element.
      if (ast.elements.length !== 0 || ast.rest.length !== 1) return undefined
      const item = compile(ast.rest[0]!.type, options)
      if (item === undefined) return undefined
      return (u) => Array.isArray(u) && u.every(item)
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0) return undefined
      const fields: Array<{ readonly name: PropertyKey; readonly optional: boolean; readonly guard: Guard }> = []
      for (const ps of ast.propertySignatures) {
        const guard = compile(ps.type, options)
        if (guard === undefined) return undefined
        fields.push({ name: ps.name, optional: ps.isOptional, guard })
      }
      return (u) => {
        if (typeof u !== "object" || u === null || Array.isArray(u)) return false
        const record = u as Record<PropertyKey, unknown>
        let present = 0
        for (const f of fields) {
          if (hasOwn.call(record, f.name)) {
            present++
            if (!f.guard(record[f.name])) return false
          } else if (!f.optional) return false
        }
        // Every own key was one of the fields: nothing excess (JSON has no symbol keys).
        return Reflect.ownKeys(record).length === present
      }
    }
    default:
      return undefined
  }
}

/** The guard of a request schema decoded with `options`, or `undefined` when it has parts the guard does not cover. */
export const compileGuard = <A, I>(schema: Schema.Schema<A, I, never>, options: AST.ParseOptions): Guard | undefined =>
  compile(schema.ast, options)
