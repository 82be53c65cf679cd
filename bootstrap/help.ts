/**
 * `--help` for every command, rendered from the same option tables the parser reads: a usage
 * line, a description, the options section by section (each flag with its help, then its
 * variables and default), and examples. Groups (`archio`, `archio kv`) list their commands.
 */
import { usageLine, type OptionSpec, type OptionTable } from "./options.ts"

/** Options under one heading: a command's own flags, the NATS connection, the environment. */
export interface OptionSection {
  readonly title: string
  readonly options: OptionTable
}

export interface CommandHelp {
  readonly path: string
  readonly args: ReadonlyArray<string>
  readonly description: string
  readonly sections: ReadonlyArray<OptionSection>
  readonly examples: ReadonlyArray<string>
}

/** One line of a group's list of commands. */
export interface CommandEntry {
  readonly path: string
  readonly args: ReadonlyArray<string>
  readonly summary: string
}

export interface GroupHelp {
  /** The words after `archio`; empty for `archio` itself. */
  readonly path: string
  readonly description: string | undefined
  readonly commands: ReadonlyArray<CommandEntry>
  /** A paragraph after the list of commands. */
  readonly notes: string | undefined
  readonly sections: ReadonlyArray<OptionSection>
}

/** Every command takes it; the first section of every help lists it. */
const helpOption: OptionSpec = { flag: "--help", short: "-h", help: "show this help" }

const left = (spec: OptionSpec): string => {
  if (spec.flag === undefined) return `  ${spec.env ?? ""}`
  const names = spec.short === undefined ? spec.flag : `${spec.flag}, ${spec.short}`
  return `  ${names}${spec.placeholder === undefined ? "" : ` ${spec.placeholder}`}`
}

/** The second line of a row: where else the value comes from and what it is when unset. */
const detail = (spec: OptionSpec): string | undefined => {
  const variables = spec.flag === undefined ? (spec.legacy ?? []) : [...(spec.env === undefined ? [] : [spec.env]), ...(spec.legacy ?? [])]
  const parts = [
    ...(variables.length === 0 ? [] : [`${spec.flag === undefined ? "older names" : "env"} ${variables.join(", ")}`]),
    ...(spec.default === undefined ? [] : [spec.default === "required" ? "required" : `default ${spec.default}`])
  ]
  return parts.length === 0 ? undefined : `(${parts.join("; ")})`
}

/** The sections as aligned rows, one column width for all of them. */
const renderSections = (sections: ReadonlyArray<OptionSection>): string => {
  const withHelp = sections.map((s, i) => ({ title: s.title, specs: [...Object.values(s.options), ...(i === 0 ? [helpOption] : [])] }))
  const width = Math.max(...withHelp.flatMap(({ specs }) => specs.map((spec) => left(spec).length)))
  return withHelp
    .map(({ title, specs }) => {
      const rows = specs.flatMap((spec) => {
        const more = detail(spec)
        return [`${left(spec).padEnd(width)}  ${spec.help}`, ...(more === undefined ? [] : [`${"".padEnd(width)}  ${more}`])]
      })
      return `${title}:\n${rows.join("\n")}`
    })
    .join("\n\n")
}

const paragraphs = (parts: ReadonlyArray<string | undefined>): string => `${parts.filter((p): p is string => p !== undefined && p !== "").join("\n\n")}\n`

export const renderCommandHelp = (help: CommandHelp): string =>
  paragraphs([
    `Usage: ${usageLine(help)}`,
    help.description,
    renderSections(help.sections),
    help.examples.length === 0 ? undefined : `Examples:\n${help.examples.map((e) => `  ${e}`).join("\n")}`
  ])

/** The word that names a command in its group: `get` for `kv get`. */
export const commandName = (path: string): string => path.slice(path.lastIndexOf(" ") + 1)

export const renderGroupHelp = (help: GroupHelp): string => {
  const rows = [
    ...help.commands.map((c) => [`  ${[commandName(c.path), ...c.args].join(" ")}`, c.summary] as const),
    ["  help", "show this help"] as const
  ]
  const width = Math.max(...rows.map(([name]) => name.length))
  return paragraphs([
    `Usage: ${["archio", ...(help.path === "" ? [] : [help.path]), "<command>", "[arguments]", "[flags]"].join(" ")}`,
    help.description,
    `Commands:\n${rows.map(([name, summary]) => `${name.padEnd(width)}  ${summary}`).join("\n")}`,
    help.notes,
    help.sections.length === 0 ? undefined : renderSections(help.sections)
  ])
}
