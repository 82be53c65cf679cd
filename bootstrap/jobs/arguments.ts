/**
 * What `archio jobs` commands are given, checked before anything is sent: queue names and job
 * ids as the cluster accepts them, payloads as JSON, states, signed integers and durations
 * (`30s`, `5m`; a bare number is milliseconds, as `--ttl MS` is for `archio kv`).
 */
import { JobState, type FinishedState } from "../../protocol/client.ts"
import { fitsUtf8, maxJobIdBytes, maxJsonDepth, nestsWithin, utf8Length } from "../../protocol/limits.ts"
import type { Stdin } from "../clientCommand.ts"
import { name, type Given } from "../options.ts"
import { span } from "./output.ts"

const jobStates: ReadonlyArray<JobState> = JobState.literals
const finishedStates: ReadonlyArray<FinishedState> = ["completed", "dead", "cancelled"]

/** A queue argument (`what` names it in messages): one NATS subject token. */
export const queueArg = (what: string, value: string, problems: Array<string>): string => {
  name({ source: what, value }, "a queue name", problems)
  return value
}

/** A job id argument: what `enqueue` printed; any other string the cluster answers `not_found`. */
export const jobIdArg = (value: string, problems: Array<string>): string => {
  if (value === "") problems.push('<id> expected a non-empty string, got ""')
  else if (!fitsUtf8(value, maxJobIdBytes)) problems.push(`<id> is ${utf8Length(value)} bytes, over the ${maxJobIdBytes}-byte limit`)
  return value
}

const units: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A duration in [min, max] ms: `500ms`, `30s`, `1.5m`, `2h`, `7d`, or a bare number of ms. */
export const duration = (given: Given, min: number, max: number, problems: Array<string>): number | undefined => {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(given.value.trim())
  const ms = m === null ? Number.NaN : Math.round(Number(m[1]) * units[m[2] ?? "ms"]!)
  if (Number.isSafeInteger(ms) && ms >= min && ms <= max) return ms
  const range = max === Number.MAX_SAFE_INTEGER ? (min === 0 ? "" : ` of at least ${span(min)}`) : ` from ${span(min)} to ${span(max)}`
  problems.push(`${given.source} must be a duration${range} such as 500ms, 30s, 5m, 2h or 1d (a bare number is milliseconds), got ${JSON.stringify(given.value)}`)
  return undefined
}

/** An integer in [min, max] that may be negative (`--priority -5`). */
export const signedInteger = (given: Given, min: number, max: number, problems: Array<string>): number | undefined => {
  const value = given.value.trim()
  const n = /^-?[0-9]+$/.test(value) ? Number(value) : Number.NaN
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n
  problems.push(`${given.source} must be an integer from ${min} to ${max}, got ${JSON.stringify(given.value)}`)
  return undefined
}

/** A number in [min, max] (`--backoff-jitter 0.2`). */
export const fraction = (given: Given, min: number, max: number, problems: Array<string>): number | undefined => {
  const value = given.value.trim()
  const n = /^[0-9]+(?:\.[0-9]+)?$/.test(value) ? Number(value) : Number.NaN
  if (n >= min && n <= max) return n
  problems.push(`${given.source} must be a number from ${min} to ${max}, got ${JSON.stringify(given.value)}`)
  return undefined
}

const oneOfText = (values: ReadonlyArray<string>): string => `${values.slice(0, -1).join(", ")} or ${values.at(-1)!}`

/** One job state (`list --state`). */
export const jobState = (given: Given, problems: Array<string>): JobState | undefined => {
  const found = jobStates.find((s) => s === given.value.trim())
  if (found === undefined) problems.push(`${given.source} must be one of ${oneOfText(jobStates)}, got ${JSON.stringify(given.value)}`)
  return found
}

/** Finished states, comma-separated, each once (`purge --state dead,cancelled`). */
export const finishedStateList = (given: Given, problems: Array<string>): ReadonlyArray<FinishedState> | undefined => {
  const out: Array<FinishedState> = []
  for (const word of given.value.split(",").map((w) => w.trim())) {
    const found = finishedStates.find((s) => s === word)
    if (found === undefined) {
      problems.push(`${given.source} must list finished states (${oneOfText(finishedStates)}), comma-separated, got ${JSON.stringify(word)}`)
      return undefined
    }
    if (!out.includes(found)) out.push(found)
  }
  return out
}

/**
 * A payload: JSON from the argument or, for `-`, standard input. Undefined when stdin may not
 * be read (other problems came first) or after adding a problem.
 */
export const payloadArg = async (arg: string, stdin: Stdin | undefined, problems: Array<string>): Promise<{ readonly payload: unknown } | undefined> => {
  if (arg === "-" && stdin === undefined) return undefined
  const text = arg === "-" ? await stdin!() : arg
  let payload: unknown
  try {
    payload = JSON.parse(text)
  } catch (e) {
    const hint = /^\s*["{[0-9tfn-]/.test(text) ? "" : ` (a string needs JSON quotes: '"${clipText(text)}"')`
    problems.push(`the payload is not valid JSON: ${e instanceof Error ? e.message : String(e)}${hint}`)
    return undefined
  }
  if (!nestsWithin(payload, maxJsonDepth)) {
    problems.push(`the payload nests arrays and objects more than ${maxJsonDepth} deep (the limit is ${maxJsonDepth})`)
    return undefined
  }
  return { payload }
}

const clipText = (s: string): string => {
  const first = s.trim().split("\n")[0] ?? ""
  return first.length > 30 ? `${first.slice(0, 27)}...` : first
}
