/** `archio kv txn`: one atomic transaction, given as JSON in the argument or on standard input. */
import { Either } from "effect"
import type { Txn } from "../../protocol/archioClient.ts"
import * as Client from "../../protocol/client.ts"
import { makeDecoder } from "../../protocol/json.ts"
import { defineKvCommand } from "./kvCommand.ts"
import { line } from "../clientOutput.ts"

const decodeTxn = makeDecoder(Client.KvTxnRequest)

export const txnCommand = defineKvCommand({
  name: "txn",
  args: ["[JSON|-]"],
  minArgs: 0,
  summary: "run an atomic transaction (JSON from the argument or stdin)",
  description: `Runs one kv.txn: if every compare holds, the success operations apply, otherwise the failure
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
    const arg = a.args[0]
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
})
