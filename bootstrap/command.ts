/**
 * What an `archio` command is, and the one way every command runs: `--help` wins; then the
 * command line is parsed against the command's option tables, the command checks the values,
 * and only a clean command line runs. Exit codes: 0 done, 1 failed at run time, 2 bad usage
 * (every problem printed at once, each on its own line, then where to find help).
 *
 * A new command is one module that calls `defineCommand` with its option table and adds itself
 * to a group (`archio` in cli.ts, or a group of its own like `archio kv`).
 */
import { Either } from "effect"
import { commandName, renderCommandHelp, renderGroupHelp, type OptionSection } from "./help.ts"
import { parseCommandLine, wantsHelp, type CommandLine, type ConfigError, type OptionTable } from "./options.ts"
import type { Terminal } from "./terminal.ts"

export interface Command {
  /** The words after `archio`: `node`, `kv get`. */
  readonly path: string
  /** One line for the group's list. */
  readonly summary: string
  /** Positional arguments as usage shows them; `[...]` ones are optional. */
  readonly args: ReadonlyArray<string>
  readonly help: () => string
  /** Runs it with `argv`, the words after its path; resolves to the exit code. */
  readonly run: (argv: ReadonlyArray<string>, terminal: Terminal) => Promise<number>
}

/** The keys of every table in `Sections`, which a command's `check` may ask for. */
export type KeysOf<Sections extends ReadonlyArray<OptionSection>> = Sections[number]["options"] extends infer Table
  ? Table extends OptionTable
    ? keyof Table & string
    : never
  : never

export interface CommandSpec<Settings, Sections extends ReadonlyArray<OptionSection>> {
  readonly path: string
  readonly summary: string
  readonly args?: ReadonlyArray<string>
  /** How many of `args` must be given; default all of them. */
  readonly minArgs?: number
  readonly description: string
  /** The option tables, in the order help shows them; parsing reads them all. */
  readonly options: Sections
  readonly examples?: ReadonlyArray<string>
  /**
   * Turns a well-formed command line into the settings `run` needs, or every problem with its
   * values. Runs before anything is sent or started.
   */
  readonly check: (line: CommandLine<KeysOf<Sections>>, terminal: Terminal) => Either.Either<Settings, ConfigError> | Promise<Either.Either<Settings, ConfigError>>
  readonly run: (settings: Settings, terminal: Terminal) => Promise<number>
}

/** One table from the sections; two settings sharing a key or a flag is a bug in the tables. */
const mergeSections = (path: string, sections: ReadonlyArray<OptionSection>): OptionTable => {
  const table: Record<string, OptionTable[string]> = {}
  const flags = new Set<string>()
  for (const { options } of sections) {
    for (const [key, spec] of Object.entries(options)) {
      if (Object.hasOwn(table, key)) throw new Error(`archio ${path}: two options are called ${key}`)
      if (spec.flag !== undefined && flags.has(spec.flag)) throw new Error(`archio ${path}: two options use ${spec.flag}`)
      if (spec.flag !== undefined) flags.add(spec.flag)
      table[key] = spec
    }
  }
  return table
}

/** What the help lists, so a usage error points at the right part of it. */
const helpContents = (args: ReadonlyArray<string>, table: OptionTable): string => {
  const variables = Object.values(table).some((spec) => spec.env !== undefined)
  const parts = [...(args.length > 0 ? ["arguments"] : []), "flags", ...(variables ? ["variables"] : [])]
  return parts.length === 1 ? parts[0]! : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)!}`
}

export const defineCommand = <Settings, const Sections extends ReadonlyArray<OptionSection>>(spec: CommandSpec<Settings, Sections>): Command => {
  const args = spec.args ?? []
  const shape = { path: spec.path, args, minArgs: spec.minArgs ?? args.length }
  const table = mergeSections(spec.path, spec.options)
  const help = (): string => renderCommandHelp({ path: spec.path, args, description: spec.description, sections: spec.options, examples: spec.examples ?? [] })
  const usageProblems = (terminal: Terminal, problems: ReadonlyArray<string>): number => {
    for (const problem of problems) terminal.err(`archio ${spec.path}: ${problem}\n`)
    terminal.err(`Run "archio ${spec.path} --help" for the ${helpContents(args, table)}.\n`)
    return 2
  }
  return {
    path: spec.path,
    summary: spec.summary,
    args,
    help,
    run: async (argv, terminal) => {
      if (wantsHelp(argv)) {
        terminal.out(help())
        return 0
      }
      const parsed = parseCommandLine(argv, table, terminal.env, shape)
      if (parsed.problems.length > 0) return usageProblems(terminal, parsed.problems)
      const checked = await spec.check(parsed.line, terminal)
      if (Either.isLeft(checked)) return usageProblems(terminal, checked.left.problems)
      return spec.run(checked.right, terminal)
    }
  }
}

export interface GroupSpec {
  /** The words after `archio`; empty for `archio` itself. */
  readonly path: string
  readonly summary: string
  readonly description?: string
  readonly commands: ReadonlyArray<Command>
  /** A paragraph after the list of commands. */
  readonly notes?: string
  /** Options shown in the group's help: what every command of it takes. */
  readonly options?: ReadonlyArray<OptionSection>
}

/** A command made of commands: `archio kv get` runs `get` of the group `kv`. */
export const defineGroup = (spec: GroupSpec): Command => {
  const help = (): string =>
    renderGroupHelp({ path: spec.path, description: spec.description, commands: spec.commands, notes: spec.notes, sections: spec.options ?? [] })
  const name = spec.path === "" ? "archio" : `archio ${spec.path}`
  return {
    path: spec.path,
    summary: spec.summary,
    args: [],
    help,
    run: async (argv, terminal) => {
      const [word, ...rest] = argv
      if (word === undefined) {
        terminal.err(help())
        return 2
      }
      if (word === "help" || word === "--help" || word === "-h") {
        terminal.out(help())
        return 0
      }
      const command = spec.commands.find((c) => commandName(c.path) === word)
      if (command === undefined) {
        terminal.err(`${name}: unknown command ${JSON.stringify(word)}\n\n${help()}`)
        return 2
      }
      return command.run(rest, terminal)
    }
  }
}
