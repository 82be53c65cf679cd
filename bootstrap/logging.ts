/** Node logs: one line per message on stderr, `time LEVEL message key=value`. */
import { Cause, HashMap, Layer, Logger, LogLevel } from "effect"
import type { LogLevelName } from "./config.ts"

const levelLiterals: Record<LogLevelName, LogLevel.Literal> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warning",
  error: "Error",
  fatal: "Fatal",
  none: "None"
}

const text = (message: unknown): string =>
  (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : JSON.stringify(m) ?? String(m))).join(" ")

export const lineLogger = Logger.make(({ logLevel, message, annotations, cause, date }) => {
  const extras = HashMap.reduce(annotations, "", (acc, value, key) => `${acc} ${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
  const failure = Cause.isEmpty(cause) ? "" : `\n${Cause.pretty(cause)}`
  const level = logLevel.label === "WARN" ? "WARN " : logLevel.label.padEnd(5)
  process.stderr.write(`${date.toISOString()} ${level} ${text(message)}${extras}${failure}\n`)
})

export const loggerLayer = (level: LogLevelName): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, lineLogger), Logger.minimumLogLevel(LogLevel.fromLiteral(levelLiterals[level])))
