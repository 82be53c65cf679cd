/** `archio jobs get`: one job, every field the cluster keeps for it. */
import type { JobGetResponse } from "../../protocol/client.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { line } from "../clientOutput.ts"
import { jobIdArg } from "./arguments.ts"
import { defineJobsCommand } from "./jobsCommand.ts"
import { jobDetail } from "./output.ts"

export const getCommand = defineJobsCommand({
  name: "get",
  args: ["<id>"],
  summary: "show one job: state, attempts, times, payload, result or error",
  description: `Prints the job with id <id> (as enqueue printed it), one field per line: queue, state,
attempts, priority, when it was created, last changed and runs (as ages, "3s ago", and as UTC
times), its lease while a worker holds it, payload, progress, result and last error. With
--json, the jobs.get reply as the cluster sent it ({"ok":true,"job":{...},...}). A job that does
not exist (or was purged) prints "not found" on stderr and exits 1.`,
  flags: {},
  examples: ["archio jobs get 42", "archio jobs get 42 --json | jq .job.state"],
  prepare: (a) => {
    const problems: Array<string> = []
    const id = jobIdArg(a.args[0]!, problems)
    if (problems.length > 0) return { problems }
    return {
      run: async (s) => {
        // JobsClient.get returns the job alone; --json prints the whole reply.
        const reply = await s.client.call<JobGetResponse>(Subjects.jobs(s.cluster, "get"), { id })
        s.terminal.out(s.json ? line(reply) : jobDetail(reply.job, Date.now()))
        return 0
      }
    }
  }
})
