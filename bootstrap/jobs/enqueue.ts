/**
 * `archio jobs enqueue`: adds one job to a queue, its payload JSON from the argument or standard
 * input, with every option `jobs.enqueue` has. Sent with an idempotency token, like kv writes:
 * a retry after a lost reply never makes a second job.
 */
import { Either } from "effect"
import * as Client from "../../protocol/client.ts"
import { makeDecoder } from "../../protocol/json.ts"
import { maxLeaseMs, maxRetainMs } from "../../protocol/limits.ts"
import { line } from "../clientOutput.ts"
import { integer, type Given } from "../options.ts"
import { duration, fraction, payloadArg, queueArg, signedInteger } from "./arguments.ts"
import { defineJobsCommand, jobsOf } from "./jobsCommand.ts"

/** The cluster's own check of the whole request, after the flags' own: the same rules, so nothing it would refuse is sent. */
const decodeEnqueue = makeDecoder(Client.EnqueueRequest)

/** `--run-at`: ms since the epoch, or a date and time `Date.parse` reads (ISO 8601). */
const runAtOf = (given: Given, problems: Array<string>): number | undefined => {
  const value = given.value.trim()
  const ms = /^[0-9]+$/.test(value) ? Number(value) : Date.parse(value)
  if (Number.isSafeInteger(ms) && ms >= 0) return ms
  problems.push(`${given.source} must be a time such as 2030-01-31T09:00:00Z or milliseconds since the epoch, got ${JSON.stringify(given.value)}`)
  return undefined
}

/** `--backoff fixed:5s` or `exponential:1s`, with `--backoff-max` and `--backoff-jitter`. */
const backoffOf = (kind: Given | undefined, max: Given | undefined, jitter: Given | undefined, problems: Array<string>): Client.Backoff | undefined => {
  if (kind === undefined) {
    for (const g of [max, jitter]) if (g !== undefined) problems.push(`${g.source} only applies with --backoff`)
    return undefined
  }
  const m = /^(fixed|exponential):(.*)$/.exec(kind.value.trim())
  if (m === null) {
    problems.push(`${kind.source} must be fixed:DELAY or exponential:DELAY (for example exponential:1s), got ${JSON.stringify(kind.value)}`)
    return undefined
  }
  const delay = duration({ source: `${kind.source} delay`, value: m[2]! }, 0, Number.MAX_SAFE_INTEGER, problems)
  const maxMs = max === undefined ? undefined : duration(max, 1, Number.MAX_SAFE_INTEGER, problems)
  const spread = jitter === undefined ? undefined : fraction(jitter, 0, 1, problems)
  if (delay === undefined) return undefined
  return {
    type: m[1] === "fixed" ? "fixed" : "exponential",
    delay,
    ...(maxMs === undefined ? {} : { max: maxMs }),
    ...(spread === undefined ? {} : { jitter: spread })
  }
}

export const enqueueCommand = defineJobsCommand({
  name: "enqueue",
  args: ["<queue>", "<payload|->"],
  summary: "add a job to a queue (payload as JSON; - reads it from stdin)",
  description: `Adds a job to <queue> and prints its id. <payload> is any JSON value: '{"to":"a@b.c"}', '42',
'"text"' (a string needs its JSON quotes); "-" reads it from standard input. The flags are the
options of jobs.enqueue; durations take ms, s, m, h or d (a bare number is milliseconds).
With --unique-key, while a job of the queue with that key is unfinished, that job's id is
printed instead and nothing is enqueued (--json: "existing":true). Exit 0 either way.`,
  flags: {
    priority: { flag: "--priority", placeholder: "N", default: "0", help: "higher runs first among ready jobs (-1000000 to 1000000)" },
    delay: { flag: "--delay", placeholder: "DURATION", help: "run no earlier than this long from now (leader time)" },
    runAt: { flag: "--run-at", placeholder: "TIME", help: "run no earlier than this time: 2030-01-31T09:00:00Z, or ms since the epoch" },
    maxAttempts: { flag: "--max-attempts", placeholder: "N", default: "3", help: "attempts before the job is dead (1 to 1000)" },
    backoff: { flag: "--backoff", placeholder: "KIND:DELAY", default: "none: a failed job is ready again at once", help: "wait before each retry: fixed:5s, or exponential:1s (1s, 2s, 4s, ...)" },
    backoffMax: { flag: "--backoff-max", placeholder: "DURATION", help: "longest wait before one retry" },
    backoffJitter: { flag: "--backoff-jitter", placeholder: "F", help: "take off up to this fraction of each wait, at random (0 to 1)" },
    lease: { flag: "--lease", placeholder: "DURATION", default: "30s", help: "how long a worker holds the job before the attempt counts as failed" },
    uniqueKey: { flag: "--unique-key", placeholder: "KEY", help: "while a job of the queue with KEY is unfinished, return it instead" },
    retain: { flag: "--retain", placeholder: "DURATION", default: "7d", help: "how long the job is kept after it finishes" }
  },
  examples: [
    `archio jobs enqueue emails '{"to":"a@b.c"}'`,
    `archio jobs enqueue emails '{"to":"a@b.c"}' --delay 10m --max-attempts 5 --backoff exponential:1s --backoff-max 5m`,
    `archio jobs enqueue reports - --unique-key daily-2030-01-31 < report.json`
  ],
  prepare: async (a, stdin) => {
    const problems: Array<string> = []
    const queue = queueArg("<queue>", a.args[0]!, problems)
    /** The flag's value through `parse`, or undefined when it is not given. */
    const read = <T>(key: "priority" | "delay" | "runAt" | "maxAttempts" | "lease" | "retain", parse: (g: Given) => T | undefined): T | undefined => {
      const g = a.get(key)
      return g === undefined ? undefined : parse(g)
    }
    const priority = read("priority", (g) => signedInteger(g, -1_000_000, 1_000_000, problems))
    const delay = read("delay", (g) => duration(g, 0, Number.MAX_SAFE_INTEGER, problems))
    const runAt = read("runAt", (g) => runAtOf(g, problems))
    if (a.get("delay") !== undefined && a.get("runAt") !== undefined) problems.push("--delay and --run-at cannot be combined: use one")
    const maxAttempts = read("maxAttempts", (g) => integer(g, 1, 1000, problems))
    const backoff = backoffOf(a.get("backoff"), a.get("backoffMax"), a.get("backoffJitter"), problems)
    const leaseMs = read("lease", (g) => duration(g, 1, maxLeaseMs, problems))
    const retainMs = read("retain", (g) => duration(g, 0, maxRetainMs, problems))
    const uniqueKey = a.get("uniqueKey")?.value
    const given = await payloadArg(a.args[1]!, problems.length > 0 ? undefined : stdin, problems)
    if (problems.length > 0 || given === undefined) return { problems }
    const spec: Client.JobSpec = {
      queue,
      payload: given.payload,
      ...(priority === undefined ? {} : { priority }),
      ...(delay === undefined ? {} : { delay }),
      ...(runAt === undefined ? {} : { runAt }),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
      ...(backoff === undefined ? {} : { backoff }),
      ...(leaseMs === undefined ? {} : { leaseMs }),
      ...(uniqueKey === undefined ? {} : { uniqueKey }),
      ...(retainMs === undefined ? {} : { retainMs })
    }
    const checked = decodeEnqueue(new TextEncoder().encode(JSON.stringify(spec)))
    if (Either.isLeft(checked)) return { problems: [`the job is invalid: ${checked.left.message}`] }
    return {
      run: async (s) => {
        const r = await jobsOf(s).enqueue(spec)
        if (s.json) s.terminal.out(line(r))
        else if (r.existing) s.terminal.out(`job ${r.id} of queue ${queue} already holds unique key ${JSON.stringify(uniqueKey)}: nothing enqueued (revision ${r.revision})\n`)
        else s.terminal.out(`enqueued job ${r.id} on queue ${queue} (revision ${r.revision})\n`)
        return 0
      }
    }
  }
})
