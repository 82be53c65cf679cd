/** `archio jobs cancel`: stops a job that has not finished; a worker holding it loses its lease. */
import { line } from "../clientOutput.ts"
import { jobIdArg } from "./arguments.ts"
import { defineJobsCommand, jobsOf } from "./jobsCommand.ts"

export const cancelCommand = defineJobsCommand({
  name: "cancel",
  args: ["<id>"],
  summary: "cancel a job that has not finished",
  description: `Cancels job <id>: from scheduled, ready, leased or failed it goes to cancelled and is never
handed out again (a worker still running it gets lease_lost on its next ack, fail or extend).
A job that already finished is a conflict ("job 42 is already completed") and a missing one
not found; both exit 1. "archio jobs retry" brings a cancelled job back.`,
  flags: {},
  examples: ["archio jobs cancel 42"],
  prepare: (a) => {
    const problems: Array<string> = []
    const id = jobIdArg(a.args[0]!, problems)
    if (problems.length > 0) return { problems }
    return {
      run: async (s) => {
        const r = await jobsOf(s).cancel(id)
        s.terminal.out(s.json ? line(r) : `cancelled job ${id} (revision ${r.revision})\n`)
        return 0
      }
    }
  }
})
