/**
 * Node logs on stderr, one line per event, in one of two forms (`--log-format`, `LOG_FORMAT`):
 *
 * - `text` (the default): `time LEVEL message key=value`, for a person at a terminal;
 * - `json`: one JSON object per line, for Loki, Elasticsearch or `jq`: `time` (ISO 8601),
 *   `level` (the `--log-level` names: info, warn, ...), `message`, the node's static fields
 *   (`node`, `cluster`), every annotation as a field of its own, and `cause` (Effect's pretty
 *   rendering, stack included) when the event carries one. A message or cause spanning lines
 *   stays one line: JSON escapes the newlines, so a shipper never splits an event.
 */
import { Cause, HashMap, Layer, Logger, LogLevel } from "effect"
import type { LogFormat, LogLevelName } from "./config.ts"

const levelLiterals: Record<LogLevelName, LogLevel.Literal> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warning",
  error: "Error",
  fatal: "Fatal",
  none: "None"
}

/** Effect's level labels as the `--log-level` names, which JSON lines carry. */
const levelNames: Readonly<Record<string, string>> = {
  TRACE: "trace",
  DEBUG: "debug",
  INFO: "info",
  WARN: "warn",
  ERROR: "error",
  FATAL: "fatal"
}

const text = (message: unknown): string =>
  (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : JSON.stringify(m) ?? String(m))).join(" ")

export const lineLogger = Logger.make(({ logLevel, message, annotations, cause, date }) => {
  const extras = HashMap.reduce(annotations, "", (acc, value, key) => `${acc} ${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
  const failure = Cause.isEmpty(cause) ? "" : `\n${Cause.pretty(cause)}`
  const level = logLevel.label === "WARN" ? "WARN " : logLevel.label.padEnd(5)
  process.stderr.write(`${date.toISOString()} ${level} ${text(message)}${extras}${failure}\n`)
})

/** Fields every JSON line has; an annotation of the same name is written as `<name>_`. */
const reserved = new Set(["time", "level", "message", "cause"])

/** An annotation's value as JSON can hold it: a bigint, a function or a cycle would make stringify throw or drop it. */
const jsonValue = (value: unknown): unknown => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value)
  try {
    const encoded = JSON.stringify(value)
    return encoded === undefined ? String(value) : (JSON.parse(encoded) as unknown)
  } catch {
    return String(value)
  }
}

/** One event as one JSON line (no trailing newline); `fields` are the process's static ones (node, cluster). */
export const jsonLine = (event: {
  readonly date: Date
  readonly level: string
  readonly message: unknown
  readonly annotations?: Iterable<readonly [string, unknown]>
  readonly cause?: string
  readonly fields?: Readonly<Record<string, string>>
}): string => {
  const line: Record<string, unknown> = { time: event.date.toISOString(), level: levelNames[event.level] ?? event.level.toLowerCase(), message: text(event.message) }
  for (const [key, value] of Object.entries(event.fields ?? {})) line[reserved.has(key) ? `${key}_` : key] = value
  for (const [key, value] of event.annotations ?? []) line[reserved.has(key) ? `${key}_` : key] = jsonValue(value)
  if (event.cause !== undefined) line["cause"] = event.cause
  return JSON.stringify(line)
}

/** A logger writing `jsonLine`s to `write` (stderr in a node; a list in tests). */
export const jsonLogger = (fields: Readonly<Record<string, string>> = {}, write: (line: string) => void = (line) => void process.stderr.write(line)) =>
  Logger.make(({ logLevel, message, annotations, cause, date }) => {
    const failure = Cause.isEmpty(cause) ? undefined : Cause.pretty(cause)
    write(`${jsonLine({ date, level: logLevel.label, message, annotations, fields, ...(failure === undefined ? {} : { cause: failure }) })}\n`)
  })

/**
 * The node's logger and level. `fields` (node id, cluster) go on every JSON line, even one
 * logged before anything annotated it; text lines carry the `node=` annotation as before.
 */
export const loggerLayer = (level: LogLevelName, format: LogFormat = "text", fields: Readonly<Record<string, string>> = {}): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, format === "json" ? jsonLogger(fields) : lineLogger),
    Logger.minimumLogLevel(LogLevel.fromLiteral(levelLiterals[level]))
  )

/**
 * A line written outside the logger (the exit message of `archio node`) in the node's format:
 * plain text as given, or an `error` JSON line, so a JSON log holds nothing but JSON.
 */
export const exitLine = (format: LogFormat, message: string, fields: Readonly<Record<string, string>> = {}): string =>
  format === "json" ? `${jsonLine({ date: new Date(), level: "ERROR", message: message.trimEnd(), fields })}\n` : message
