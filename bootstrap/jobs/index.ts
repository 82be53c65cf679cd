/**
 * `archio jobs`: look at and steer the job queues of a running cluster from a shell, one module
 * per command, on the same flags, client and output conventions as `archio kv`. Tables for
 * people by default; `--json` prints each reply as the cluster sent it. Exit codes as for every
 * archio command: 0 done, 1 failed at run time (no cluster, a missing job, a job in the wrong
 * state for cancel or retry), 2 bad usage (including a request the cluster refused as
 * malformed or too large).
 */
import { defineGroup } from "../command.ts"
import { cancelCommand } from "./cancel.ts"
import { enqueueCommand } from "./enqueue.ts"
import { getCommand } from "./get.ts"
import { connectionSection } from "./jobsCommand.ts"
import { listCommand } from "./list.ts"
import { purgeCommand } from "./purge.ts"
import { retryCommand } from "./retry.ts"
import { statsCommand } from "./stats.ts"

export const jobsCommands = [enqueueCommand, getCommand, listCommand, statsCommand, retryCommand, cancelCommand, purgeCommand] as const

export const jobsGroup = defineGroup({
  path: "jobs",
  summary: "enqueue, get, list, stats, retry, cancel and purge jobs (archio jobs --help lists them)",
  description: "Adds jobs to queues and looks at and steers them, on a running cluster over NATS.",
  commands: jobsCommands,
  notes: `Every command takes --json for the cluster's reply as JSON; "archio jobs <command> --help" shows
its flags. Exit codes: 0 done, 1 failed (not found, conflict, no cluster answering), 2 bad usage.
Workers run with "archio worker".`,
  options: [connectionSection]
})
