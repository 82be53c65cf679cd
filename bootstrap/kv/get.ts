/** `archio kv get`: prints the value of one key. */
import { keyArg, staleOption } from "./arguments.ts"
import { defineKvCommand } from "./kvCommand.ts"
import { line } from "../clientOutput.ts"
import { withNewline } from "./output.ts"

export const getCommand = defineKvCommand({
  name: "get",
  args: ["<key>"],
  summary: "print the value of a key",
  description: `Prints the value of <key> (followed by a newline unless it ends with one); with --json, the
whole reply (value, createRevision, modRevision, version, revision, consistency, node). A key
that does not exist prints "not found" on stderr and exits 1.`,
  flags: { stale: staleOption },
  examples: ["archio kv get users/42", "archio kv get users/42 --json --stale"],
  prepare: (a) => {
    const problems: Array<string> = []
    const key = keyArg(a.args, problems)
    if (problems.length > 0) return { problems }
    return {
      run: async (s) => {
        const rec = await s.client.get(key, a.has("stale") ? { consistency: "stale" } : {})
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
})
