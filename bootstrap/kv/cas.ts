/** `archio kv cas`: sets a key only if it is still at the revision the caller saw. */
import { integer } from "../options.ts"
import { checkValue, keyArg, ttlOption, valueArg } from "./arguments.ts"
import { defineKvCommand } from "./kvCommand.ts"
import { line } from "../clientOutput.ts"

export const casCommand = defineKvCommand({
  name: "cas",
  args: ["<key>", "<value|->"],
  summary: "set a key only if it is at a given revision",
  description: `Sets <key> to <value> only if the key's modRevision is --expect (0: only if the key does not
exist), and prints the new revision. On a mismatch nothing is written: it prints the conflict
with the key's current revision and exits 1. "-" reads the value from standard input.`,
  flags: {
    expect: { flag: "--expect", placeholder: "REVISION", default: "required", help: "the key's current modRevision (archio kv get --json), or 0 for \"absent\"" },
    ttl: ttlOption
  },
  examples: ["archio kv cas lock/job7 worker-3 --expect 0", "archio kv cas users/42 zoro --expect 12"],
  prepare: async (a, stdin) => {
    const problems: Array<string> = []
    const key = keyArg(a.args, problems)
    const ttlGiven = a.get("ttl")
    const ttl = ttlGiven === undefined ? undefined : integer(ttlGiven, 1, Number.MAX_SAFE_INTEGER, problems)
    const expectGiven = a.get("expect")
    const expect = expectGiven === undefined ? undefined : integer(expectGiven, 0, Number.MAX_SAFE_INTEGER, problems)
    if (expectGiven === undefined) {
      problems.push("--expect is required: the key's current modRevision (see archio kv get --json), or 0 to create it only if absent")
    }
    const value = await valueArg(a.args[1]!, problems.length > 0 ? undefined : stdin)
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
})
