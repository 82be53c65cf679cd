/** `archio jobs purge`: deletes a queue's finished jobs now instead of when their retention ends. */
import type { FinishedState } from "../../protocol/client.ts"
import { line } from "../clientOutput.ts"
import { duration, finishedStateList, queueArg } from "./arguments.ts"
import { defineJobsCommand, jobsOf } from "./jobsCommand.ts"

export const purgeCommand = defineJobsCommand({
  name: "purge",
  args: ["<queue>"],
  summary: "delete a queue's finished (completed, dead, cancelled) jobs",
  description: `Deletes the finished jobs of <queue> now: completed, dead and cancelled ones, or those in
--state only, and with --older-than only those that finished at least that long ago (leader
time). Jobs that have not finished are never touched. Prints how many were deleted; a queue
with nothing to delete is not an error.`,
  flags: {
    state: { flag: "--state", placeholder: "STATES", default: "completed,dead,cancelled", help: "which finished states, comma-separated" },
    olderThan: { flag: "--older-than", placeholder: "DURATION", help: "only jobs that finished at least this long ago (30s, 2h, 7d)" }
  },
  examples: ["archio jobs purge emails", "archio jobs purge emails --state completed --older-than 1d"],
  prepare: (a) => {
    const problems: Array<string> = []
    const queue = queueArg("<queue>", a.args[0]!, problems)
    const statesGiven = a.get("state")
    const states: ReadonlyArray<FinishedState> | undefined = statesGiven === undefined ? undefined : finishedStateList(statesGiven, problems)
    const olderGiven = a.get("olderThan")
    const olderThanMs = olderGiven === undefined ? undefined : duration(olderGiven, 0, Number.MAX_SAFE_INTEGER, problems)
    if (problems.length > 0) return { problems }
    const options = { ...(states === undefined ? {} : { states }), ...(olderThanMs === undefined ? {} : { olderThanMs }) }
    return {
      run: async (s) => {
        const r = await jobsOf(s).purge(queue, options)
        s.terminal.out(s.json ? line(r) : `purged ${r.purged} finished ${r.purged === 1 ? "job" : "jobs"} of queue ${queue} (revision ${r.revision})\n`)
        return 0
      }
    }
  }
})
