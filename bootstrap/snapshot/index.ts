/**
 * `archio snapshot`: backups and restores of a cluster's state, one module per command.
 * `save` copies a consistent snapshot off a running cluster into a file, `restore` seeds a new
 * node's data dir from such a file, `now` has a node take a snapshot (and compact its log) at
 * once. Exit codes as for every archio command: 0 done, 1 failed at run time, 2 bad usage.
 */
import { defineGroup } from "../command.ts"
import { nowCommand } from "./now.ts"
import { restoreCommand } from "./restore.ts"
import { saveCommand } from "./save.ts"

export const snapshotCommands = [saveCommand, restoreCommand, nowCommand] as const

export const snapshotGroup = defineGroup({
  path: "snapshot",
  summary: "save, restore and take snapshots (archio snapshot --help lists them)",
  description: "Backs up a running cluster's state into a file, and seeds a new cluster's nodes from one.",
  commands: snapshotCommands,
  notes: `A backup is "archio snapshot save FILE"; a new cluster from it is one "archio snapshot restore
FILE --data DIR --id ID --peers IDS" per member, every member from the same file with its own
--id and --data, then "archio node" on each with the same --peers. Every command takes --json;
"archio snapshot <command> --help" shows its flags. Exit codes: 0 done, 1 failed (no node
answering, a truncated or corrupt file, a data dir in use), 2 bad usage.`
})
