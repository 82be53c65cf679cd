/**
 * Reading a command's options. Each command describes its settings in option tables
 * (`OptionSpec`: flag, variable, older variable names, placeholder, default, help); parsing,
 * `--help` and the messages are all derived from them.
 *
 * `parseCommandLine` splits argv with `node:util`'s `parseArgs` (`--flag value`, `--flag=value`,
 * switches, `--`, `-` as an argument) and adds what it leaves to us: every problem at once, each
 * naming the flag; a value never taken from a following `--flag`; values from the environment
 * (a flag wins over its variable, a variable over its older names, an empty variable counts as
 * unset). Checking what a value means is the command's job, with `integer` and `name` below.
 */
import { Data } from "effect"
import { parseArgs } from "node:util"
import { validToken } from "../protocol/subjects.ts"

/** Environment as `process.env` gives it. */
export type Env = Readonly<Record<string, string | undefined>>

/** One setting of a command. */
export interface OptionSpec {
  /** `--nats`; absent for a setting read only from the environment (`archio dev`). */
  readonly flag?: `--${string}`
  /** A one-letter alias, `-v`. */
  readonly short?: `-${string}`
  /** The variable read when the flag is not given. */
  readonly env?: string
  /** Older names of the variable, read in this order when it is unset. */
  readonly legacy?: ReadonlyArray<string>
  /** The value as help shows it (`URLS`); a flag without one is a switch (`--json`). */
  readonly placeholder?: string
  /** The default as help shows it (`5000`, `required`, `the node's own id`). */
  readonly default?: string
  readonly help: string
}

export type OptionTable = Readonly<Record<string, OptionSpec>>

/** A value and the flag or variable it came from, which every message about it names. */
export interface Given {
  readonly source: string
  readonly value: string
}

/** A parsed command line: its arguments, and its settings by their key in the option table. */
export interface CommandLine<Key extends string = string> {
  readonly args: ReadonlyArray<string>
  /** The flag's value, else the variable's, else an older variable's. */
  readonly get: (key: Key) => Given | undefined
  /** Every value given for the setting, in the order `get` prefers them: to find two that disagree. */
  readonly all: (key: Key) => ReadonlyArray<Given>
  /** Whether a switch was given. */
  readonly has: (key: Key) => boolean
}

/** What a command accepts besides its options, for checking and messages. */
export interface CommandShape {
  /** The words after `archio`: `node`, `kv get`. */
  readonly path: string
  /** Positional arguments as usage shows them; `[...]` ones are optional. */
  readonly args: ReadonlyArray<string>
  /** How many arguments must be given. */
  readonly minArgs: number
}

export class ConfigError extends Data.TaggedError("ConfigError")<{
  /** One sentence per problem, each naming the flag or variable and the value. */
  readonly problems: ReadonlyArray<string>
}> {
  override get message(): string {
    return this.problems.join("\n")
  }
}

export const usageLine = (shape: Pick<CommandShape, "path" | "args">): string => ["archio", shape.path, ...shape.args, "[flags]"].join(" ")

/** `--help` or `-h` anywhere before a `--`: help wins over every other argument. */
export const wantsHelp = (argv: ReadonlyArray<string>): boolean => {
  const end = argv.indexOf("--")
  const head = end === -1 ? argv : argv.slice(0, end)
  return head.includes("--help") || head.includes("-h")
}

interface ParseArgsOption {
  readonly type: "string" | "boolean"
  readonly short?: string
}

/** One piece of argv after parseArgs: a flag (with its value, if it took one) or an argument. */
type Word =
  | { readonly kind: "flag"; readonly name: string; readonly written: string; readonly value: string | undefined }
  | { readonly kind: "arg"; readonly value: string }

/**
 * parseArgs gives a value-taking flag the next argument whatever it is; we refuse one that is
 * itself a `--flag` (`--id --cluster x` is a missing id, not the id "--cluster") and parse again
 * from there. A value starting with one dash stays a value (`--expect -1`).
 */
const words = (argv: ReadonlyArray<string>, config: Record<string, ParseArgsOption>): Array<Word> => {
  const out: Array<Word> = []
  let from = 0
  for (;;) {
    const rest = argv.slice(from)
    const { tokens } = parseArgs({ args: [...rest], options: config, strict: false, allowPositionals: true, tokens: true })
    let resumeAt: number | undefined
    let shortGroupAt = -1
    for (const token of tokens) {
      if (token.kind === "positional") out.push({ kind: "arg", value: token.value })
      if (token.kind !== "option") continue
      // An unknown short group (`-abc`, or a key like `-v1`) comes as one token per letter:
      // keep one, named as written.
      const unknownShort = !token.rawName.startsWith("--") && !Object.hasOwn(config, token.name)
      if (unknownShort && token.index === shortGroupAt) continue
      if (unknownShort) shortGroupAt = token.index
      const written = unknownShort ? rest[token.index]! : token.rawName
      if (token.value !== undefined && !token.inlineValue && token.value.startsWith("--")) {
        out.push({ kind: "flag", name: token.name, written, value: undefined })
        resumeAt = from + token.index + 1
        break
      }
      out.push({ kind: "flag", name: token.name, written, value: token.value })
    }
    if (resumeAt === undefined) return out
    from = resumeAt
  }
}

/**
 * Reads `argv` (the words after the command's path) and `env` against `table`. Problems with the
 * command line itself (unknown flags, missing values, a value given to a switch, too few or too
 * many arguments) come back together; after an unknown flag the arguments are not counted, as
 * its value cannot be told from an argument.
 */
export const parseCommandLine = <Table extends OptionTable>(
  argv: ReadonlyArray<string>,
  table: Table,
  env: Env,
  shape: CommandShape
): { readonly line: CommandLine<keyof Table & string>; readonly problems: ReadonlyArray<string> } => {
  const keyOf = new Map<string, string>()
  const config: Record<string, ParseArgsOption> = {}
  for (const [key, spec] of Object.entries(table)) {
    if (spec.flag === undefined) continue
    const name = spec.flag.slice(2)
    keyOf.set(name, key)
    config[name] = { type: spec.placeholder === undefined ? "boolean" : "string", ...(spec.short === undefined ? {} : { short: spec.short.slice(1) }) }
  }
  const see = `see archio ${shape.path} --help`
  const values = new Map<string, string>()
  const switches = new Set<string>()
  const args: Array<string> = []
  const problems: Array<string> = []
  let unknown = false
  for (const word of words(argv, config)) {
    if (word.kind === "arg") {
      args.push(word.value)
      continue
    }
    const key = keyOf.get(word.name)
    const spec = key === undefined ? undefined : table[key]
    if (key === undefined || spec === undefined) {
      unknown = true
      const dash = !word.written.startsWith("--") && shape.args.length > 0 ? `put "--" before an argument that starts with "-"; ` : ""
      problems.push(`unknown flag ${JSON.stringify(word.written)} (${dash}${see})`)
    } else if (spec.placeholder === undefined) {
      if (word.value !== undefined) problems.push(`${word.written} takes no value, got ${JSON.stringify(word.value)}`)
      else switches.add(key)
    } else if (word.value === undefined) {
      problems.push(`${word.written} needs a value (${word.written} ${spec.placeholder})`)
    } else {
      // Given twice, the last one wins: a flag added after a script's own overrides it.
      values.set(key, word.value)
    }
  }
  if (!unknown) {
    const usage = `usage: ${usageLine(shape)}`
    if (args.length < shape.minArgs) problems.push(`missing ${shape.args[args.length]} (${usage})`)
    for (const extra of args.slice(shape.args.length)) problems.push(`unexpected argument ${JSON.stringify(extra)} (${usage})`)
  }
  const all = (key: string): Array<Given> => {
    const spec = table[key]
    if (spec === undefined) return []
    const given: Array<Given> = []
    const fromFlag = values.get(key)
    if (fromFlag !== undefined && spec.flag !== undefined) given.push({ source: spec.flag, value: fromFlag })
    for (const name of [...(spec.env === undefined ? [] : [spec.env]), ...(spec.legacy ?? [])]) {
      const value = env[name]
      if (value !== undefined && value !== "") given.push({ source: name, value })
    }
    return given
  }
  return { line: { args, get: (key) => all(key)[0], all, has: (key) => switches.has(key) }, problems }
}

// ---------------------------------------------------------------------------------------------
// Values

/** An integer in [min, max], or undefined after a problem naming where it came from. */
export const integer = (given: Given, min: number, max: number, problems: Array<string>): number | undefined => {
  const value = given.value.trim()
  const n = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n
  problems.push(`${given.source} must be an integer from ${min} to ${max}, got ${JSON.stringify(given.value)}`)
  return undefined
}

export const nameRule = "letters, digits, _ or - (1 to 64 characters)"

/** A name that is one NATS subject token (node id, cluster, queue); `what` says which. */
export const name = (given: Given, what: string, problems: Array<string>): string | undefined => {
  if (validToken(given.value)) return given.value
  problems.push(`${given.source} must be ${what} made of ${nameRule}, got ${JSON.stringify(given.value)}`)
  return undefined
}
