/**
 * What `archio kv` commands are given, checked before anything is sent: keys, prefixes and
 * values against the cluster's limits, values from standard input, and the flags several
 * commands share.
 */
import { fitsUtf8, keyProblem, maxKeyBytes, maxValueBytes, utf8Length } from "../../protocol/limits.ts"
import type { Stdin } from "../clientCommand.ts"
import type { OptionSpec } from "../options.ts"

export const ttlOption = { flag: "--ttl", placeholder: "MS", help: "delete the key after this many milliseconds (leader time)" } as const satisfies OptionSpec

export const staleOption = { flag: "--stale", help: "read the answering node's copy, without confirming with the leader" } as const satisfies OptionSpec

export const checkKey = (what: string, key: string, problems: Array<string>): void => {
  const problem = keyProblem(key)
  if (problem !== undefined) problems.push(`${what} ${problem}`)
  else if (!fitsUtf8(key, maxKeyBytes)) problems.push(`${what} is ${utf8Length(key)} bytes, over the ${maxKeyBytes}-byte limit`)
}

/** The command's first argument, a key (the command's `minArgs` guarantees it is there). */
export const keyArg = (args: ReadonlyArray<string>, problems: Array<string>): string => {
  const key = args[0]!
  checkKey("<key>", key, problems)
  return key
}

/** A prefix or range bound: like a key, but may be empty. */
export const checkBound = (what: string, bound: string | undefined, problems: Array<string>): void => {
  if (bound !== undefined && bound !== "") checkKey(what, bound, problems)
}

export const checkValue = (what: string, value: string, problems: Array<string>): void => {
  if (!fitsUtf8(value, maxValueBytes)) problems.push(`${what} is ${utf8Length(value)} bytes, over the ${maxValueBytes}-byte limit`)
}

/** A value argument, or standard input for `-`; undefined when stdin may not be read. */
export const valueArg = async (arg: string, stdin: Stdin | undefined): Promise<string | undefined> =>
  arg !== "-" ? arg : stdin === undefined ? undefined : stdin()
