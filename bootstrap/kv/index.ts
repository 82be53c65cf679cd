/**
 * `archio kv`: read, write and watch keys of a running cluster from a shell, one module per
 * command. Output is for people by default and one JSON object per line with `--json`. Exit
 * codes as for every archio command: 0 done, 1 failed at run time (no cluster, a missing key
 * for `get`, a revision mismatch for `cas`), 2 bad usage (including a request the cluster
 * refused as malformed or too large).
 */
import { defineGroup } from "../command.ts"
import { casCommand } from "./cas.ts"
import { delCommand } from "./del.ts"
import { getCommand } from "./get.ts"
import { connectionSection } from "./kvCommand.ts"
import { putCommand } from "./put.ts"
import { scanCommand } from "./scan.ts"
import { txnCommand } from "./txn.ts"
import { watchCommand } from "./watch.ts"

export const kvCommands = [getCommand, putCommand, delCommand, casCommand, scanCommand, txnCommand, watchCommand] as const

export const kvGroup = defineGroup({
  path: "kv",
  summary: "get, put, del, cas, scan, txn and watch keys (archio kv --help lists them)",
  description: "Reads, writes and watches keys of a running cluster over NATS.",
  commands: kvCommands,
  notes: `Every command takes --json for machine-readable output; "archio kv <command> --help" shows
its flags. Exit codes: 0 done, 1 failed (not found, conflict, no cluster answering), 2 bad usage.`,
  options: [connectionSection]
})
