/**
 * The layering rules in eslint.config.js report what they should and nothing else: each probe
 * is linted as if it were a file in that folder, with one import per line.
 */
import t from "tap"
import { ESLint } from "eslint"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))
const eslint = new ESLint({ cwd: root })
const layeringRules = new Set(["no-restricted-imports", "no-restricted-syntax"])

/** The lines of `lines` that a layering rule reports when they sit in the file at `path`. */
const reportedLines = async (path: string, lines: ReadonlyArray<string>): Promise<number[]> => {
  const [result] = await eslint.lintText(lines.join("\n"), { filePath: join(root, path) })
  if (result === undefined) throw new Error(`ESLint returned no result for ${path}`)
  if (result.messages.some((m) => m.fatal)) throw new Error(`${path} did not parse: ${JSON.stringify(result.messages)}`)
  return result.messages.filter((m) => m.ruleId !== null && layeringRules.has(m.ruleId)).map((m) => m.line)
}

t.test("protocol/ imports nothing from actors/, bootstrap/, ops/ or test/", async (t) => {
  const reported = await reportedLines("protocol/layeringProbe.ts", [
    'import { a } from "../actors/raft/core.ts"',
    'import type { B } from "../../bootstrap/config.ts"',
    'import { c } from "../ops/natsServer.ts"',
    'import { d } from "../test/support/wait.ts"',
    'export { e } from "../actors/gateway/service.ts"',
    'export const f = () => import("../bootstrap/node.ts")',
    // Legal from here on.
    'import { g } from "./errors.ts"',
    'import { h } from "../protocol/limits.ts"',
    'import { Schema } from "effect"',
    'import { i } from "./opsFriendly.ts"',
    "export const all = [a, c, d, g, h, i, Schema] as unknown as B"
  ])
  t.same(reported, [1, 2, 3, 4, 5, 6], "each reaching import reported, type-only, re-export and import() too; the rest allowed")
})

t.test("actors/ import neither bootstrap/ nor ops/", async (t) => {
  const reported = await reportedLines("actors/raft/layeringProbe.ts", [
    'import { a } from "../../bootstrap/storage.ts"',
    'import { b } from "../../ops/chaos/proxy.ts"',
    'export const c = () => import("../../ops/dev.ts")',
    // Legal from here on.
    'import { d } from "../../protocol/raft.ts"',
    'import { e } from "../applier/applier.ts"',
    'import { f } from "./core.ts"',
    'import { Effect } from "effect"',
    'import { g } from "../bootstrapping.ts"', // a sibling whose name only starts like a layer
    "export const all = [a, b, d, e, f, g, Effect]"
  ])
  t.same(reported, [1, 2, 3], "bootstrap/ and ops/ reported, protocol/ and other actors allowed")
})

t.test("bootstrap/ (shipped code) imports nothing from ops/", async (t) => {
  const reported = await reportedLines("bootstrap/layeringProbe.ts", [
    'import { a } from "../ops/chaos/proxy.ts"',
    'export const b = () => import("../ops/sim/run.ts")',
    // Legal from here on.
    'import { c } from "../actors/raft/core.ts"',
    'import { d } from "./node.ts"',
    'import { e } from "../protocol/raft.ts"',
    "export const all = [a, c, d, e]"
  ])
  t.same(reported, [1, 2], "ops/ reported, actors/, protocol/ and bootstrap/ allowed")
})

t.test("the layering rules stay in their folders", async (t) => {
  const lines = ['import { a } from "../actors/raft/core.ts"', 'import { b } from "../bootstrap/config.ts"', "export const all = [a, b]"]
  t.same(await reportedLines("ops/layeringProbe.ts", lines), [], "ops/ may import actors/ and bootstrap/")
  t.same(await reportedLines("test/layeringProbe.ts", lines), [], "and so may test/")
})
