/**
 * `archio cluster`: who the members are and, as membership changes land, changing them; one
 * module per command. Exit codes as for every archio command: 0 done, 1 failed at run time,
 * 2 bad usage.
 */
import { defineGroup } from "../command.ts"
import { addCommand, promoteCommand, removeCommand } from "./change.ts"
import { membersCommand } from "./members.ts"
import { transferCommand } from "./transfer.ts"

export const clusterCommands = [membersCommand, addCommand, promoteCommand, removeCommand, transferCommand] as const

export const clusterGroup = defineGroup({
  path: "cluster",
  summary: "list, add, promote and remove members, move leadership (archio cluster --help lists the commands)",
  description: "Shows and manages the members of a running cluster over NATS (admin subjects).",
  commands: clusterCommands,
  notes: `Every command takes --json and the connection flags of archio status; "archio cluster
<command> --help" shows them. Exit codes: 0 done, 1 failed (no node answering, refused), 2 bad usage.`
})
