/**
 * `archio kv`: read, write and watch keys of a running cluster from a shell.
 *
 *   archio kv get|put|del|cas|scan|txn|watch ... [--json] [connection flags]
 *
 * Output is for people by default and one JSON object per line with `--json` (the reply as the
 * cluster sent it; `watch` prints one line per change). Exit codes as for every archio command:
 * 0 done, 1 failed at run time (no cluster, a missing key for `get`, a revision mismatch for
 * `cas`), 2 bad usage (including a request the cluster refused as malformed or too large).
 *
 * Every argument is checked before we connect, so a typo never waits on the network. Requests
 * go through `ArchioClient`: retries while the cluster elects a leader, idempotency tokens on
 * writes, and `--timeout` as the deadline of each request.
 */
import { connect } from "@nats-io/transport-node"
import { Effect, Either, Schema } from "effect"
import { ArchioClient, type ScanItem, type ScanQuery, type Txn } from "../protocol/archioClient.ts"
import * as Client from "../protocol/client.ts"
import { ArchioError, toEnvelope } from "../protocol/errors.ts"
import { makeDecoder } from "../protocol/json.ts"
import { fitsUtf8, keyProblem, maxKeyBytes, maxPageLimit, maxValueBytes, utf8Length } from "../protocol/limits.ts"
import * as Subjects from "../protocol/subjects.ts"
import type { Command as ArchioCommand } from "./command.ts"
import { kvClientConfig, kvOptions, redactUrl, type KvClientConfig } from "./config.ts"
import { renderSections } from "./help.ts"
import { ConfigError, parseCommandLine } from "./options.ts"
import { clientOptions } from "./nats.ts"
import { readStdin, stopRequest, type Terminal } from "./terminal.ts"

// ---------------------------------------------------------------------------------------------
// Arguments

/** A subcommand flag: with a placeholder it takes a value, without one it is a switch. */
interface FlagSpec {
  readonly placeholder?: string
  readonly help: string
}

/** A subcommand's arguments after splitting: positionals, its own flags, the connection flags. */
interface Args {
  readonly positional: ReadonlyArray<string>
  readonly flags: ReadonlyMap<string, string | true>
}

const isSet = (a: Args, flag: string): boolean => a.flags.get(flag) === true

const valueOf = (a: Args, flag: string): string | undefined => {
  const v = a.flags.get(flag)
  return typeof v === "string" ? v : undefined
}

/** What a run needs once connected. */
interface Session {
  readonly client: ArchioClient
  readonly terminal: Terminal
  readonly json: boolean
  readonly cluster: string
  readonly name: string
}

/** A checked command line: either every problem found, or the work to do once connected. */
type Prepared = { readonly problems: ReadonlyArray<string> } | { readonly run: (s: Session) => Promise<number> }

interface Command {
  /** Positional arguments as shown in usage; `[...]` ones are optional. */
  readonly args: ReadonlyArray<string>
  readonly minArgs: number
  readonly summary: string
  readonly about: string
  readonly flags: Readonly<Record<string, FlagSpec>>
  readonly examples: ReadonlyArray<string>
  /**
   * Checks the arguments and returns the work to do. `stdin` reads standard input; it is
   * undefined when other problems were already found, so a command line that is wrong anyway
   * never waits for input (its other problems are still reported).
   */
  readonly prepare: (a: Args, stdin: Stdin | undefined) => Prepared | Promise<Prepared>
}

type Stdin = () => Promise<string>

const jsonFlag: FlagSpec = { help: "print the reply as JSON (one object per line)" }

const connectionFlags: ReadonlySet<string> = new Set(Object.values(kvOptions).map((o) => o.flag))

/** `--help`/`-h` anywhere before a `--`. */
const wantsHelp = (argv: ReadonlyArray<string>): boolean => {
  const end = argv.indexOf("--")
  const head = end === -1 ? argv : argv.slice(0, end)
  return head.includes("--help") || head.includes("-h")
}

const usageLine = (name: string, c: Command): string => `archio kv ${name} ${[...c.args, "[flags]"].join(" ")}`

/**
 * Splits a subcommand's argv: its own flags (`--flag value`, `--flag=value`, `--switch`), the
 * connection flags (left for `parseKvConfig`), and positionals. `-` alone is a positional
 * (stdin); after `--` everything is, so keys and values may start with `-`.
 */
const splitArgs = (
  argv: ReadonlyArray<string>,
  name: string,
  c: Command
): { readonly args: Args; readonly connection: ReadonlyArray<string>; readonly problems: ReadonlyArray<string> } => {
  const own: Readonly<Record<string, FlagSpec>> = { ...c.flags, "--json": jsonFlag }
  const positional: Array<string> = []
  const flags = new Map<string, string | true>()
  const connection: Array<string> = []
  const problems: Array<string> = []
  let rest = false
  let unknown = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (rest || arg === "-" || !arg.startsWith("-")) {
      positional.push(arg)
      continue
    }
    if (arg === "--") {
      rest = true
      continue
    }
    if (!arg.startsWith("--")) {
      problems.push(`unknown flag ${JSON.stringify(arg)} (put "--" before a key or value that starts with "-"; see archio kv ${name} --help)`)
      unknown = true
      continue
    }
    const eq = arg.indexOf("=")
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const spec = Object.hasOwn(own, flag) ? own[flag] : undefined
    if (spec !== undefined && spec.placeholder === undefined) {
      if (eq !== -1) problems.push(`${flag} takes no value, got ${JSON.stringify(arg.slice(eq + 1))}`)
      else flags.set(flag, true)
      continue
    }
    if (spec !== undefined) {
      if (eq !== -1) {
        flags.set(flag, arg.slice(eq + 1))
        continue
      }
      const next = argv[i + 1]
      if (next === undefined || next.startsWith("--")) problems.push(`${flag} needs a value (${flag} ${spec.placeholder})`)
      else {
        flags.set(flag, next)
        i++
      }
      continue
    }
    if (connectionFlags.has(flag)) {
      connection.push(arg)
      const next = argv[i + 1]
      if (eq === -1 && next !== undefined && !next.startsWith("--")) {
        connection.push(next)
        i++
      }
      continue
    }
    problems.push(`unknown flag ${JSON.stringify(flag)} (see archio kv ${name} --help)`)
    unknown = true
  }
  // After an unknown flag we cannot tell its value from a positional: count nothing.
  if (unknown) return { args: { positional, flags }, connection, problems }
  const max = c.args.length
  if (positional.length < c.minArgs) problems.push(`missing ${c.args[positional.length]} (usage: ${usageLine(name, c)})`)
  for (const extra of positional.slice(max)) problems.push(`unexpected argument ${JSON.stringify(extra)} (usage: ${usageLine(name, c)})`)
  return { args: { positional, flags }, connection, problems }
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the subcommands

const checkKey = (what: string, key: string, problems: Array<string>): void => {
  const problem = keyProblem(key)
  if (problem !== undefined) problems.push(`${what} ${problem}`)
  else if (!fitsUtf8(key, maxKeyBytes)) problems.push(`${what} is ${utf8Length(key)} bytes, over the ${maxKeyBytes}-byte limit`)
}

/** The command's first argument, a key (`minArgs` guarantees it is there). */
const keyArg = (a: Args, problems: Array<string>): string => {
  const key = a.positional[0]!
  checkKey("<key>", key, problems)
  return key
}

/** A prefix or range bound: like a key, but may be empty. */
const checkBound = (what: string, bound: string | undefined, problems: Array<string>): void => {
  if (bound !== undefined && bound !== "") checkKey(what, bound, problems)
}

const checkValue = (what: string, value: string, problems: Array<string>): void => {
  if (!fitsUtf8(value, maxValueBytes)) problems.push(`${what} is ${utf8Length(value)} bytes, over the ${maxValueBytes}-byte limit`)
}

/** An integer flag in [min, max], or a problem naming the flag. */
const integerFlag = (a: Args, flag: string, min: number, max: number, problems: Array<string>): number | undefined => {
  const raw = valueOf(a, flag)
  if (raw === undefined) return undefined
  const n = /^[0-9]+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n
  problems.push(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return undefined
}

/**
 * A value argument, or standard input for `-`; undefined when stdin may not be read (see
 * `Command.prepare`).
 */
const valueArg = async (arg: string, stdin: Stdin | undefined): Promise<string | undefined> =>
  arg !== "-" ? arg : stdin === undefined ? undefined : stdin()

// ---------------------------------------------------------------------------------------------
// Output

const line = (value: unknown): string => `${JSON.stringify(value)}\n`

/** A key or value on one line of human output: JSON-quoted when it holds control characters. */
// eslint-disable-next-line no-control-regex
const show = (s: string): string => (/[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s)

const withNewline = (s: string): string => (s.endsWith("\n") ? s : `${s}\n`)

const errorText = (e: ArchioError, cluster: string): string => {
  const text = `${e.code.replace("_", " ")}: ${e.message}`
  return e.code === "unavailable" && e.message.startsWith("no Archio node answers")
    ? `${text}: is the cluster running, and is its cluster name "${cluster}"?`
    : text
}

/** Reports a failed request; a malformed or oversized request is bad usage (2), the rest 1. */
const failed = (s: Session, e: unknown): number => {
  if (e instanceof ArchioError) {
    if (s.json) s.terminal.out(line(toEnvelope(e)))
    s.terminal.err(`archio kv ${s.name}: ${errorText(e, s.cluster)}\n`)
    return e.code === "bad_request" || e.code === "too_large" ? 2 : 1
  }
  s.terminal.err(`archio kv ${s.name}: ${e instanceof Error ? e.message : String(e)}\n`)
  return 1
}

const scanLine = (item: ScanItem): string => (item.value === undefined ? `${show(item.key)}\n` : `${show(item.key)}\t${show(item.value)}\n`)

// ---------------------------------------------------------------------------------------------
// get, put, del, cas

const get: Command = {
  args: ["<key>"],
  minArgs: 1,
  summary: "print the value of a key",
  about: `Prints the value of <key> (followed by a newline unless it ends with one); with --json, the
whole reply (value, createRevision, modRevision, version, revision, consistency, node). A key
that does not exist prints "not found" on stderr and exits 1.`,
  flags: { "--stale": { help: "read the answering node's copy, without confirming with the leader" } },
  examples: ["archio kv get users/42", "archio kv get users/42 --json --stale"],
  prepare: (a) => {
    const problems: Array<string> = []
    const key = keyArg(a, problems)
    if (problems.length > 0) return { problems }
    return {
      run: async (s) => {
        const rec = await s.client.get(key, isSet(a, "--stale") ? { consistency: "stale" } : {})
        if (rec === undefined) {
          const message = `key ${JSON.stringify(key)} not found`
          if (s.json) s.terminal.out(line({ ok: false, error: { code: "not_found", message } }))
          s.terminal.err(`archio kv get: ${message}\n`)
          return 1
        }
        s.terminal.out(s.json ? line(rec) : withNewline(rec.value))
        return 0
      }
    }
  }
}

const ttlFlag: FlagSpec = { placeholder: "MS", help: "delete the key after this many milliseconds (leader time)" }

const put: Command = {
  args: ["<key>", "<value|->"],
  minArgs: 2,
  summary: "set a key (- reads the value from stdin)",
  about: `Sets <key> to <value> and prints the new revision. With "-" as the value it is read from
standard input, byte for byte (a trailing newline is kept).`,
  flags: { "--ttl": ttlFlag },
  examples: ["archio kv put users/42 luffy", "archio kv put session/ab token --ttl 60000", "archio kv put config/app - < app.json"],
  prepare: async (a, stdin) => {
    const problems: Array<string> = []
    const key = keyArg(a, problems)
    const ttl = integerFlag(a, "--ttl", 1, Number.MAX_SAFE_INTEGER, problems)
    const value = await valueArg(a.positional[1]!, problems.length > 0 ? undefined : stdin)
    if (value !== undefined) checkValue("<value>", value, problems)
    if (problems.length > 0 || value === undefined) return { problems }
    return {
      run: async (s) => {
        const r = await s.client.put(key, value, ttl === undefined ? {} : { ttl })
        s.terminal.out(s.json ? line(r) : `revision ${r.revision}\n`)
        return 0
      }
    }
  }
}

const del: Command = {
  args: ["<key>"],
  minArgs: 1,
  summary: "delete a key",
  about: `Deletes <key>. Deleting a key that does not exist is not an error (exit 0): it says so and
changes nothing.`,
  flags: {},
  examples: ["archio kv del users/42"],
  prepare: (a) => {
    const problems: Array<string> = []
    const key = keyArg(a, problems)
    if (problems.length > 0) return { problems }
    return {
      run: async (s) => {
        const r = await s.client.del(key)
        if (s.json) s.terminal.out(line(r))
        else if (r.deleted === false) s.terminal.out(`key ${JSON.stringify(key)} not found; nothing deleted (revision ${r.revision})\n`)
        else s.terminal.out(`deleted ${JSON.stringify(key)} (revision ${r.revision})\n`)
        return 0
      }
    }
  }
}

const cas: Command = {
  args: ["<key>", "<value|->"],
  minArgs: 2,
  summary: "set a key only if it is at a given revision",
  about: `Sets <key> to <value> only if the key's modRevision is --expect (0: only if the key does not
exist), and prints the new revision. On a mismatch nothing is written: it prints the conflict
with the key's current revision and exits 1. "-" reads the value from standard input.`,
  flags: {
    "--expect": { placeholder: "REVISION", help: "the key's current modRevision (archio kv get --json), or 0 for \"absent\"; required" },
    "--ttl": ttlFlag
  },
  examples: ["archio kv cas lock/job7 worker-3 --expect 0", "archio kv cas users/42 zoro --expect 12"],
  prepare: async (a, stdin) => {
    const problems: Array<string> = []
    const key = keyArg(a, problems)
    const ttl = integerFlag(a, "--ttl", 1, Number.MAX_SAFE_INTEGER, problems)
    const expect = integerFlag(a, "--expect", 0, Number.MAX_SAFE_INTEGER, problems)
    if (valueOf(a, "--expect") === undefined) {
      problems.push("--expect is required: the key's current modRevision (see archio kv get --json), or 0 to create it only if absent")
    }
    const value = await valueArg(a.positional[1]!, problems.length > 0 ? undefined : stdin)
    if (value !== undefined) checkValue("<value>", value, problems)
    if (problems.length > 0 || value === undefined || expect === undefined) return { problems }
    return {
      run: async (s) => {
        const r = await s.client.cas(key, value, expect, ttl === undefined ? {} : { ttl })
        s.terminal.out(s.json ? line(r) : `revision ${r.revision}\n`)
        return 0
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// scan

const scan: Command = {
  args: [],
  minArgs: 0,
  summary: "list keys in order (--prefix, or --start/--end)",
  about: `Lists keys in UTF-8 byte order, one per line as "key<TAB>value" (a key or value holding
control characters is printed JSON-quoted; --json gives them exactly). Without --prefix,
--start or --end it lists every key. One page (--limit items, default 100) is printed; when
more follow, stderr says how to continue (--cursor), or --all follows every page.
With --json it prints the reply; with --all, one reply holding every item, whose revision is
that of the first page.`,
  flags: {
    "--prefix": { placeholder: "PREFIX", help: "keys starting with PREFIX" },
    "--start": { placeholder: "KEY", help: "keys from KEY (inclusive)" },
    "--end": { placeholder: "KEY", help: "keys before KEY (exclusive)" },
    "--limit": { placeholder: "N", help: `items per page, 1 to ${maxPageLimit} (default 100)` },
    "--cursor": { placeholder: "CURSOR", help: "continue after the page that printed this cursor" },
    "--all": { help: "follow cursors and print every page" },
    "--keys-only": { help: "print keys without values" },
    "--stale": { help: "read the answering node's copy, without confirming with the leader" }
  },
  examples: ["archio kv scan --prefix users/", "archio kv scan --start a --end m --keys-only --all", "archio kv scan --prefix users/ --all --json"],
  prepare: (a) => {
    const problems: Array<string> = []
    const prefix = valueOf(a, "--prefix")
    const start = valueOf(a, "--start")
    const end = valueOf(a, "--end")
    const cursor = valueOf(a, "--cursor")
    if (prefix !== undefined && (start !== undefined || end !== undefined)) {
      problems.push("--prefix cannot be combined with --start or --end: use one form")
    }
    checkBound("--prefix", prefix, problems)
    checkBound("--start", start, problems)
    checkBound("--end", end, problems)
    if (cursor === "") problems.push("--cursor must be the cursor a previous page printed, got \"\"")
    const limit = integerFlag(a, "--limit", 1, maxPageLimit, problems)
    if (problems.length > 0) return { problems }
    const query: ScanQuery = {
      ...(prefix === undefined ? {} : { prefix }),
      ...(start === undefined ? {} : { start }),
      ...(end === undefined ? {} : { end }),
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
      ...(isSet(a, "--keys-only") ? { keysOnly: true } : {}),
      ...(isSet(a, "--stale") ? { consistency: "stale" as const } : {})
    }
    return {
      run: async (s) => {
        if (!isSet(a, "--all")) {
          const page = await s.client.scan(query)
          if (s.json) s.terminal.out(line(page))
          else {
            for (const item of page.items) s.terminal.out(scanLine(item))
            if (page.items.length === 0) s.terminal.err("no keys match\n")
          }
          if (!s.json && page.cursor !== undefined) s.terminal.err(`more keys follow: add --cursor ${page.cursor} for the next page, or --all\n`)
          return 0
        }
        const items: Array<ScanItem> = []
        let first: { readonly revision: number; readonly consistency: Client.Consistency } | undefined
        let count = 0
        for await (const page of s.client.scanAll(query)) {
          first ??= page
          count += page.items.length
          if (s.json) items.push(...page.items)
          else for (const item of page.items) s.terminal.out(scanLine(item))
        }
        if (s.json) s.terminal.out(line({ ok: true, items, revision: first?.revision ?? 0, consistency: first?.consistency ?? "linearizable" }))
        else if (count === 0) s.terminal.err("no keys match\n")
        return 0
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// txn

const decodeTxn = makeDecoder(Client.KvTxnRequest)

const txn: Command = {
  args: ["[JSON|-]"],
  minArgs: 0,
  summary: "run an atomic transaction (JSON from the argument or stdin)",
  about: `Runs one kv.txn: if every compare holds, the success operations apply, otherwise the failure
ones, all at one revision. The JSON is {"compare":[...],"success":[...],"failure":[...]} (a
missing list counts as empty), given as the argument or on standard input (no argument, or
"-"). Compares: {"key","target":"value"|"mod"|"create"|"version","op":"=="|"!="|">"|"<","value"};
operations: {"op":"put","key","value","ttl"?} or {"op":"del","key"}. Prints which branch ran
and the revision; either way the txn was applied and the exit code is 0.`,
  flags: {},
  examples: [
    `archio kv txn '{"compare":[{"key":"lock","target":"create","op":"==","value":0}],"success":[{"op":"put","key":"lock","value":"me"}]}'`,
    "archio kv txn < txn.json"
  ],
  prepare: async (a, stdin) => {
    const arg = a.positional[0]
    const fromStdin = arg === undefined || arg === "-"
    if (fromStdin && stdin === undefined) return { problems: [] }
    const text = fromStdin ? await stdin!() : arg
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      return { problems: [`the txn is not valid JSON: ${e instanceof Error ? e.message : String(e)}`] }
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return { problems: [`the txn must be a JSON object {"compare":[...],"success":[...],"failure":[...]}, got ${text.trim().slice(0, 40)}`] }
    }
    if ("token" in parsed) return { problems: ["the txn must not carry a token: archio kv adds its own idempotency token"] }
    const full = { compare: [], success: [], failure: [], ...parsed }
    const decoded = decodeTxn(new TextEncoder().encode(JSON.stringify(full)))
    if (Either.isLeft(decoded)) return { problems: [`the txn is invalid: ${decoded.left.message}`] }
    const request: Txn = decoded.right
    return {
      run: async (s) => {
        const r = await s.client.txn(request)
        if (s.json) s.terminal.out(line(r))
        else if (r.succeeded) s.terminal.out(`succeeded: every compare held; ran the success branch (revision ${r.revision})\n`)
        else s.terminal.out(`failed: a compare did not hold; ran the failure branch (revision ${r.revision})\n`)
        return 0
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// watch

const decodeEvent = Schema.decodeUnknownEither(Client.KvWatchEvent)
const utf8 = new TextDecoder()

/** An event as received (printed as is with --json) and decoded. */
interface Received {
  readonly raw: unknown
  readonly event: Client.KvWatchEvent
}

const readEvent = (data: Uint8Array): Received | undefined => {
  let raw: unknown
  try {
    raw = JSON.parse(utf8.decode(data))
  } catch {
    return undefined
  }
  const decoded = decodeEvent(raw)
  return Either.isRight(decoded) ? { raw, event: decoded.right } : undefined
}

const eventLine = (e: Client.KvWatchEvent): string =>
  e.type === "put" && e.value !== undefined ? `put\t${e.revision}\t${show(e.key)}\t${show(e.value)}\n` : `${e.type}\t${e.revision}\t${show(e.key)}\n`

const watch: Command = {
  args: ["[KEY|PREFIX]"],
  minArgs: 0,
  summary: "print changes to a key (or keys by --prefix) until Ctrl-C",
  about: `Prints every change to KEY, or with --prefix to every key starting with PREFIX (no PREFIX:
every key), as "put|del|expire<TAB>revision<TAB>key[<TAB>value]" lines (--json: one event
object per line, as published), until Ctrl-C (exit 0). With --initial it first prints the
current keys as "current<TAB>modRevision<TAB>key<TAB>value" lines (--json: {"type":"current",...}
with the scan's revision) and then only changes above that revision.

It subscribes before it reads, so with --initial no change published after the read is
missed. Events are core NATS (at most once): a change made while the connection is down, or
while leadership moves, may not be seen; stderr says when the connection drops.`,
  flags: {
    "--prefix": { help: "watch every key starting with the argument (or every key, without one)" },
    "--initial": { help: "print the current keys first, then changes after them" }
  },
  examples: ["archio kv watch users/42", "archio kv watch --prefix users/ --initial", "archio kv watch --prefix --json"],
  prepare: (a) => {
    const problems: Array<string> = []
    const prefix = isSet(a, "--prefix")
    const arg = a.positional[0]
    if (!prefix && arg === undefined) problems.push(`missing KEY (or --prefix [PREFIX] to watch keys by prefix; usage: ${usageLine("watch", watch)})`)
    const target = arg ?? ""
    if (prefix) checkBound("the prefix", target, problems)
    else if (arg !== undefined) checkKey("KEY", arg, problems)
    if (problems.length > 0) return { problems }
    const initial = isSet(a, "--initial")
    return { run: (s) => runWatch(s, target, prefix, initial) }
  }
}

const runWatch = async (s: Session, target: string, prefix: boolean, initial: boolean): Promise<number> => {
  const { client, terminal, cluster } = s
  const nc = client.nc
  const subject = prefix ? Subjects.kvPrefixEvents(cluster, target) : Subjects.kvKeyEvent(cluster, target)
  // The subject can be wider than the prefix (`users/4` listens on `users.>`): filter by key.
  const matches = prefix ? (k: string) => k.startsWith(target) : (k: string) => k === target
  /** Events at or below this revision are already in the printed state. */
  let after = -1
  /** While the initial read runs, events wait here. */
  let held: Array<Received> | undefined = initial ? [] : undefined
  const emit = (r: Received): void => {
    if (r.event.revision <= after) return
    terminal.out(s.json ? line(r.raw) : eventLine(r.event))
  }
  const sub = nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err !== null) return
      const r = readEvent(msg.data)
      if (r === undefined || !matches(r.event.key)) return
      if (held !== undefined) held.push(r)
      else emit(r)
    }
  })
  const stop = stopRequest(terminal)
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") terminal.err("archio kv watch: disconnected from NATS; reconnecting (changes meanwhile will not be seen)\n")
      else if (status.type === "reconnect") terminal.err("archio kv watch: reconnected to NATS\n")
    }
  })()
  try {
    // The server has the subscription once flush returns: from here on nothing published is missed.
    await nc.flush()
    if (initial) {
      after = await printCurrent(s, target, prefix)
      const waiting = held ?? []
      held = undefined
      for (const r of waiting) emit(r)
    }
    terminal.err(`archio kv watch: watching ${prefix ? `keys starting with ${JSON.stringify(target)}` : JSON.stringify(target)} on ${subject} (Ctrl-C to stop)\n`)
    const why = await Promise.race([stop.stopped.then(() => "stopped" as const), nc.closed().then(() => "closed" as const)])
    if (why === "closed") {
      terminal.err("archio kv watch: the NATS connection closed\n")
      return 1
    }
    return 0
  } finally {
    stop.dispose()
    sub.unsubscribe()
  }
}

/** Prints the current keys; returns the revision they were read at (of the first page). */
const printCurrent = async (s: Session, target: string, prefix: boolean): Promise<number> => {
  const print = (item: ScanItem, revision: number): void => {
    if (s.json) s.terminal.out(line({ type: "current", ...item, revision }))
    else s.terminal.out(`current\t${item.modRevision}\t${show(item.key)}\t${show(item.value ?? "")}\n`)
  }
  if (!prefix) {
    // The key itself sorts first among the keys it prefixes.
    const page = await s.client.scan({ prefix: target, limit: 1 })
    const item = page.items[0]
    if (item !== undefined && item.key === target) print(item, page.revision)
    return page.revision
  }
  let first: number | undefined
  for await (const page of s.client.scanAll({ prefix: target, limit: maxPageLimit })) {
    first ??= page.revision
    for (const item of page.items) print(item, first)
  }
  return first ?? 0
}

// ---------------------------------------------------------------------------------------------
// The command

const commands: Readonly<Record<string, Command>> = { get, put, del, cas, scan, txn, watch }

const flagLines = (flags: Readonly<Record<string, FlagSpec>>): string => {
  const rows = Object.entries(flags).map(([flag, spec]) => [`  ${flag}${spec.placeholder === undefined ? "" : ` ${spec.placeholder}`}`, spec.help] as const)
  const width = Math.max(...rows.map((r) => r[0].length))
  return rows.map(([left, help]) => `${left.padEnd(width)}  ${help}`).join("\n")
}

const connectionSection = renderSections([{ title: "Connection flags (every kv command; a flag wins over its variable)", options: kvOptions }])

export const kvUsage = `Usage: archio kv <command> [arguments] [flags]

Reads, writes and watches keys of a running cluster over NATS.

Commands:
${flagLines(Object.fromEntries(Object.entries(commands).map(([name, c]) => [`${name} ${c.args.join(" ")}`.trim(), { help: c.summary }])))}

Every command takes --json for machine-readable output; "archio kv <command> --help" shows
its flags. Exit codes: 0 done, 1 failed (not found, conflict, no cluster answering), 2 bad usage.

${connectionSection}
`

/** The help of one subcommand. */
export const kvHelp = (name: string): string => {
  const c = commands[name]
  if (c === undefined) return kvUsage
  return `Usage: ${usageLine(name, c)}

${c.about}

Flags:
${flagLines({ ...c.flags, "--json": jsonFlag })}

${connectionSection}

Examples:
${c.examples.map((e) => `  ${e}`).join("\n")}
`
}

/** Connects with the settings; one-shot commands do not reconnect, `watch` does. */
const openClient = async (config: KvClientConfig, follow: boolean): Promise<ArchioClient> => {
  const where = config.nats.servers.map(redactUrl).join(",")
  const base = await Effect.runPromise(Effect.either(clientOptions(config.nats, "archio-kv")))
  if (Either.isLeft(base)) throw new Error(base.left.message)
  try {
    const nc = await connect({
      ...base.right,
      waitOnFirstConnect: false,
      timeout: config.timeoutMs,
      ...(follow ? {} : { reconnect: false, maxReconnectAttempts: 0 })
    })
    return new ArchioClient(nc, { cluster: config.cluster, deadlineMs: config.timeoutMs, attemptTimeoutMs: Math.min(2000, config.timeoutMs) }, true)
  } catch (e) {
    throw new Error(`cannot connect to NATS at ${where}: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** `archio kv ...` (argv without `kv`); resolves to the exit code. */
export const kvCommand = async (argv: ReadonlyArray<string>, terminal: Terminal): Promise<number> => {
  const [name, ...rest] = argv
  if (name === undefined) {
    terminal.err(kvUsage)
    return 2
  }
  if (name === "help" || name === "--help" || name === "-h") {
    terminal.out(kvUsage)
    return 0
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (command === undefined) {
    terminal.err(`archio kv: unknown command ${JSON.stringify(name)}\n\n${kvUsage}`)
    return 2
  }
  if (wantsHelp(rest)) {
    terminal.out(kvHelp(name))
    return 0
  }
  const split = splitArgs(rest, name, command)
  const connectionLine = parseCommandLine(split.connection, kvOptions, terminal.env, { path: `kv ${name}`, args: [], minArgs: 0 })
  const connectionProblems = [...connectionLine.problems]
  const connection = connectionProblems.length > 0 ? undefined : kvClientConfig(connectionLine.line, connectionProblems)
  const config = connection === undefined ? Either.left(new ConfigError({ problems: connectionProblems })) : Either.right(connection)
  const problems = [...split.problems, ...(Either.isLeft(config) ? config.left.problems : [])]
  // A positional count problem would make the command's own checks misread the arguments.
  const countOk = split.args.positional.length >= command.minArgs && split.args.positional.length <= command.args.length
  const prepared = countOk ? await command.prepare(split.args, problems.length === 0 ? () => readStdin(terminal) : undefined) : { problems: [] }
  if ("problems" in prepared) problems.push(...prepared.problems)
  if (problems.length > 0 || Either.isLeft(config) || "problems" in prepared) {
    for (const p of problems) terminal.err(`archio kv ${name}: ${p}\n`)
    terminal.err(`Run "archio kv ${name} --help" for its arguments and flags.\n`)
    return 2
  }
  let client: ArchioClient
  try {
    client = await openClient(config.right, name === "watch")
  } catch (e) {
    terminal.err(`archio kv ${name}: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
  const session: Session = { client, terminal, json: isSet(split.args, "--json"), cluster: config.right.cluster, name }
  try {
    return await prepared.run(session)
  } catch (e) {
    return failed(session, e)
  } finally {
    await closeClient(client)
  }
}

/** How long closing may wait for replies in flight to drain before the socket is closed outright. */
const drainGraceMs = 1000

/**
 * Drains the connection, but never hangs on it: a watch stopped while NATS is down would wait
 * for a reconnect that may never come.
 */
const closeClient = async (client: ArchioClient): Promise<void> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([
    client.close().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, drainGraceMs)))
  ])
  clearTimeout(timer)
  if (!client.nc.isClosed()) await client.nc.close().catch(() => undefined)
}

export const kvGroup: ArchioCommand = {
  path: "kv",
  summary: "get, put, del, cas, scan, txn and watch keys (archio kv --help lists them)",
  args: [],
  help: () => kvUsage,
  run: kvCommand
}
