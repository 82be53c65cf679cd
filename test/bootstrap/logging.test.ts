/**
 * The JSON log format: every event one line that parses, with time, level, message, the node's
 * fields, annotations and the cause; and the option that picks it.
 */
import t from "tap"
import { Cause, Data, Effect, Logger, LogLevel } from "effect"
import { exitLine, jsonLine, jsonLogger } from "../../bootstrap/logging.ts"
import { parseConfig } from "../../bootstrap/config.ts"

class DiskFull extends Data.TaggedError("DiskFull")<{ readonly message: string }> {}

/** Runs `effect` with the JSON logger writing into a list; returns the lines. */
const logged = async (effect: Effect.Effect<void>): Promise<Array<string>> => {
  const lines: Array<string> = []
  const logger = jsonLogger({ node: "n1", cluster: "prod" }, (line) => lines.push(line))
  await Effect.runPromise(effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.provide(Logger.minimumLogLevel(LogLevel.All))))
  return lines
}

const parse = (line: string): Record<string, unknown> => {
  if (!line.endsWith("\n") || line.slice(0, -1).includes("\n")) throw new Error(`not one line: ${JSON.stringify(line)}`)
  return JSON.parse(line) as Record<string, unknown>
}

t.test("each event is one JSON line with time, level, message, node, cluster and annotations", async (t) => {
  const lines = await logged(
    Effect.gen(function* () {
      yield* Effect.logInfo("elected leader (term 5, last index 812, commit 811)").pipe(Effect.annotateLogs({ term: 5, peers: ["n2", "n3"] }))
      yield* Effect.logWarning("stepped down as leader\nsecond line \"quoted\" \\ and\ttab")
      yield* Effect.logDebug("debug")
      yield* Effect.logTrace("trace")
      yield* Effect.logError("error")
      yield* Effect.logFatal("fatal")
    })
  )
  t.equal(lines.length, 6)
  const [info, warn, ...rest] = lines.map(parse)
  t.match(info, { level: "info", message: "elected leader (term 5, last index 812, commit 811)", node: "n1", cluster: "prod", term: 5, peers: ["n2", "n3"] })
  t.ok(!Number.isNaN(Date.parse(info!["time"] as string)) && new Date(info!["time"] as string).toISOString() === info!["time"], "time is ISO 8601")
  t.same(Object.keys(info!).slice(0, 3), ["time", "level", "message"], "time, level and message first")
  t.equal(warn!["level"], "warn")
  t.equal(warn!["message"], "stepped down as leader\nsecond line \"quoted\" \\ and\ttab", "a multi-line message comes back whole from one line")
  t.same(rest.map((l) => l["level"]), ["debug", "trace", "error", "fatal"], "levels as --log-level names them")
  t.notOk("cause" in info!, "no cause field without a cause")
})

t.test("a failure's cause is a field: a tagged error, a defect with its stack", async (t) => {
  const lines = await logged(
    Effect.gen(function* () {
      yield* Effect.logError("actor applier failed, stopping the node", Cause.fail(new DiskFull({ message: "no space left on device" })))
      yield* Effect.logError("actor consensus failed", Cause.die(new Error("invariant broken: commit went back")))
    })
  )
  const [failed, died] = lines.map(parse)
  t.equal(failed!["level"], "error")
  t.equal(failed!["message"], "actor applier failed, stopping the node")
  t.match(failed!["cause"], /DiskFull|no space left on device/)
  t.match(died!["cause"], /invariant broken: commit went back/)
  t.match(died!["cause"], /\n\s+at /, "the stack, its newlines inside the one line")
})

t.test("annotations named like a line's own fields do not replace them; odd values are kept as text", async (t) => {
  const cyclic: Record<string, unknown> = {}
  cyclic["self"] = cyclic
  const lines = await logged(
    Effect.logInfo("m").pipe(Effect.annotateLogs({ message: "annotation", level: "x", time: "y", big: 10n, ratio: Number.NaN, cyclic, nothing: null }))
  )
  const line = parse(lines[0]!)
  t.match(line, { message: "m", level: "info", message_: "annotation", level_: "x", time_: "y", big: "10", ratio: "NaN", cyclic: "[object Object]", nothing: null })
  t.match(line["time"], /^\d{4}-\d\d-\d\dT/)
})

t.test("a message of several parts and non-strings", async (t) => {
  const line = parse(`${jsonLine({ date: new Date(0), level: "INFO", message: ["a", { b: 1 }, 2] })}\n`)
  t.same(line, { time: "1970-01-01T00:00:00.000Z", level: "info", message: 'a {"b":1} 2' })
})

t.test("exit lines: as given in text, an error JSON line in json", async (t) => {
  t.equal(exitLine("text", "archio node n1: boom\n"), "archio node n1: boom\n")
  const line = parse(exitLine("json", "archio node n1: boom\nmore\n", { node: "n1", cluster: "c" }))
  t.match(line, { level: "error", message: "archio node n1: boom\nmore", node: "n1", cluster: "c" })
})

t.test("LOG_FORMAT and --log-format pick the format; text by default; a bad one is refused", async (t) => {
  const config = (argv: ReadonlyArray<string>, env: Record<string, string>) => parseConfig(argv, { NODE_ID: "n1", ...env })
  const format = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    const c = config(argv, env)
    if (c._tag === "Left") throw new Error(c.left.message)
    return c.right.logFormat ?? "text"
  }
  t.equal(format([]), "text")
  t.equal(format([], { LOG_FORMAT: "JSON" }), "json")
  t.equal(format(["--log-format", "json"]), "json")
  t.equal(format(["--log-format=text"], { LOG_FORMAT: "json" }), "text", "the flag wins")
  const bad = config([], { LOG_FORMAT: "yaml" })
  t.equal(bad._tag, "Left")
  if (bad._tag === "Left") t.same(bad.left.problems, ['LOG_FORMAT must be one of text, json, got "yaml"'])
})
