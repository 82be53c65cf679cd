/** `archio kv scan`: lists keys in order, one page or (`--all`) every page. */
import type { ScanItem, ScanQuery } from "../../protocol/archioClient.ts"
import type * as Client from "../../protocol/client.ts"
import { maxPageLimit } from "../../protocol/limits.ts"
import { integer } from "../options.ts"
import { checkBound, staleOption } from "./arguments.ts"
import { defineKvCommand } from "./kvCommand.ts"
import { line, show } from "../clientOutput.ts"

const scanLine = (item: ScanItem): string => (item.value === undefined ? `${show(item.key)}\n` : `${show(item.key)}\t${show(item.value)}\n`)

export const scanCommand = defineKvCommand({
  name: "scan",
  summary: "list keys in order (--prefix, or --start/--end)",
  description: `Lists keys in UTF-8 byte order, one per line as "key<TAB>value" (a key or value holding
control characters is printed JSON-quoted; --json gives them exactly). Without --prefix,
--start or --end it lists every key. One page (--limit items) is printed; when more follow,
stderr says how to continue (--cursor), or --all follows every page.
With --json it prints the reply; with --all, one reply holding every item, whose revision is
that of the first page.`,
  flags: {
    prefix: { flag: "--prefix", placeholder: "PREFIX", help: "keys starting with PREFIX" },
    start: { flag: "--start", placeholder: "KEY", help: "keys from KEY (inclusive)" },
    end: { flag: "--end", placeholder: "KEY", help: "keys before KEY (exclusive)" },
    limit: { flag: "--limit", placeholder: "N", default: "100", help: `items per page, 1 to ${maxPageLimit}` },
    cursor: { flag: "--cursor", placeholder: "CURSOR", help: "continue after the page that printed this cursor" },
    all: { flag: "--all", help: "follow cursors and print every page" },
    keysOnly: { flag: "--keys-only", help: "print keys without values" },
    stale: staleOption
  },
  examples: ["archio kv scan --prefix users/", "archio kv scan --start a --end m --keys-only --all", "archio kv scan --prefix users/ --all --json"],
  prepare: (a) => {
    const problems: Array<string> = []
    const prefix = a.get("prefix")?.value
    const start = a.get("start")?.value
    const end = a.get("end")?.value
    const cursor = a.get("cursor")?.value
    if (prefix !== undefined && (start !== undefined || end !== undefined)) {
      problems.push("--prefix cannot be combined with --start or --end: use one form")
    }
    checkBound("--prefix", prefix, problems)
    checkBound("--start", start, problems)
    checkBound("--end", end, problems)
    if (cursor === "") problems.push("--cursor must be the cursor a previous page printed, got \"\"")
    const limitGiven = a.get("limit")
    const limit = limitGiven === undefined ? undefined : integer(limitGiven, 1, maxPageLimit, problems)
    if (problems.length > 0) return { problems }
    const query: ScanQuery = {
      ...(prefix === undefined ? {} : { prefix }),
      ...(start === undefined ? {} : { start }),
      ...(end === undefined ? {} : { end }),
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
      ...(a.has("keysOnly") ? { keysOnly: true } : {}),
      ...(a.has("stale") ? { consistency: "stale" as const } : {})
    }
    return {
      run: async (s) => {
        if (!a.has("all")) {
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
})
