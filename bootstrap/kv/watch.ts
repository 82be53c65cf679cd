/**
 * `archio kv watch`: prints every change to a key, or to keys by prefix, until stopped; with
 * `--initial`, the current keys first and then only the changes after them.
 */
import { Either, Schema } from "effect"
import type { ScanItem } from "../../protocol/archioClient.ts"
import * as Client from "../../protocol/client.ts"
import { maxPageLimit } from "../../protocol/limits.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { usageLine } from "../options.ts"
import { stopRequest } from "../terminal.ts"
import { checkBound, checkKey } from "./arguments.ts"
import { defineKvCommand, type Session } from "./kvCommand.ts"
import { line, show } from "../clientOutput.ts"

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

const watchArgs = ["[KEY|PREFIX]"]

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

export const watchCommand = defineKvCommand({
  name: "watch",
  args: watchArgs,
  minArgs: 0,
  summary: "print changes to a key (or keys by --prefix) until Ctrl-C",
  description: `Prints every change to KEY, or with --prefix to every key starting with PREFIX (no PREFIX:
every key), as "put|del|expire<TAB>revision<TAB>key[<TAB>value]" lines (--json: one event
object per line, as published), until Ctrl-C (exit 0). With --initial it first prints the
current keys as "current<TAB>modRevision<TAB>key<TAB>value" lines (--json: {"type":"current",...}
with the scan's revision) and then only changes above that revision.

It subscribes before it reads, so with --initial no change published after the read is
missed. Events are core NATS (at most once): a change made while the connection is down, or
while leadership moves, may not be seen; stderr says when the connection drops.`,
  flags: {
    prefix: { flag: "--prefix", help: "watch every key starting with the argument (or every key, without one)" },
    initial: { flag: "--initial", help: "print the current keys first, then changes after them" }
  },
  follows: true,
  examples: ["archio kv watch users/42", "archio kv watch --prefix users/ --initial", "archio kv watch --prefix --json"],
  prepare: (a) => {
    const problems: Array<string> = []
    const prefix = a.has("prefix")
    const arg = a.args[0]
    if (!prefix && arg === undefined) problems.push(`missing KEY (or --prefix [PREFIX] to watch keys by prefix; usage: ${usageLine({ path: "kv watch", args: watchArgs })})`)
    const target = arg ?? ""
    if (prefix) checkBound("the prefix", target, problems)
    else if (arg !== undefined) checkKey("KEY", arg, problems)
    if (problems.length > 0) return { problems }
    const initial = a.has("initial")
    return { run: (s) => runWatch(s, target, prefix, initial) }
  }
})
