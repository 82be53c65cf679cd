/** `archio kv del`: deletes a key; a missing key is not an error. */
import { keyArg } from "./arguments.ts"
import { defineKvCommand } from "./kvCommand.ts"
import { line } from "../clientOutput.ts"

export const delCommand = defineKvCommand({
  name: "del",
  args: ["<key>"],
  summary: "delete a key",
  description: `Deletes <key>. Deleting a key that does not exist is not an error (exit 0): it says so and
changes nothing.`,
  flags: {},
  examples: ["archio kv del users/42"],
  prepare: (a) => {
    const problems: Array<string> = []
    const key = keyArg(a.args, problems)
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
})
