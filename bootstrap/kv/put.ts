/** `archio kv put`: sets a key, its value from the argument or standard input. */
import { integer } from "../options.ts"
import { checkValue, keyArg, ttlOption, valueArg } from "./arguments.ts"
import { defineKvCommand } from "./kvCommand.ts"
import { line } from "../clientOutput.ts"

export const putCommand = defineKvCommand({
  name: "put",
  args: ["<key>", "<value|->"],
  summary: "set a key (- reads the value from stdin)",
  description: `Sets <key> to <value> and prints the new revision. With "-" as the value it is read from
standard input, byte for byte (a trailing newline is kept).`,
  flags: { ttl: ttlOption },
  examples: ["archio kv put users/42 luffy", "archio kv put session/ab token --ttl 60000", "archio kv put config/app - < app.json"],
  prepare: async (a, stdin) => {
    const problems: Array<string> = []
    const key = keyArg(a.args, problems)
    const ttlGiven = a.get("ttl")
    const ttl = ttlGiven === undefined ? undefined : integer(ttlGiven, 1, Number.MAX_SAFE_INTEGER, problems)
    const value = await valueArg(a.args[1]!, problems.length > 0 ? undefined : stdin)
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
})
