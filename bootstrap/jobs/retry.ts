/** `archio jobs retry`: puts a dead, failed or cancelled job back to ready now. */
import { line } from "../clientOutput.ts"
import { jobIdArg } from "./arguments.ts"
import { defineJobsCommand, jobsOf } from "./jobsCommand.ts"

export const retryCommand = defineJobsCommand({
  name: "retry",
  args: ["<id>"],
  summary: "run a dead, failed or cancelled job again now",
  description: `Makes job <id> ready at once: a dead or cancelled job with its attempts counted from zero
again, a failed one (waiting for its backoff) without waiting further. Any other state is a
conflict ("job 42 is leased; only dead, failed or cancelled jobs can be retried"), as is a job
whose unique key another job now holds; those and a missing job exit 1.`,
  flags: {},
  examples: ["archio jobs retry 42", "archio jobs list emails --state dead --json | jq -r '.jobs[].id' | xargs -n1 archio jobs retry"],
  prepare: (a) => {
    const problems: Array<string> = []
    const id = jobIdArg(a.args[0]!, problems)
    if (problems.length > 0) return { problems }
    return {
      run: async (s) => {
        const r = await jobsOf(s).retry(id)
        s.terminal.out(s.json ? line(r) : `job ${id} is ready again (revision ${r.revision})\n`)
        return 0
      }
    }
  }
})
