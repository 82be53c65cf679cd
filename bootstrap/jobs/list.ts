/** `archio jobs list`: a queue's jobs in enqueue order, one page or (`--all`) every page. */
import type { JobView, ListResponse } from "../../protocol/client.ts"
import { maxPageLimit } from "../../protocol/limits.ts"
import { line } from "../clientOutput.ts"
import { integer } from "../options.ts"
import { jobState, queueArg } from "./arguments.ts"
import { defineJobsCommand, jobsOf } from "./jobsCommand.ts"
import { jobsTable } from "./output.ts"

export const listCommand = defineJobsCommand({
  name: "list",
  args: ["<queue>"],
  summary: "list a queue's jobs (--state to pick one state)",
  description: `Lists the jobs of <queue> in enqueue order as a table: id, state, attempts (made/allowed),
priority, when it was created and last changed, a note (when a scheduled or failed job runs, a
leased job's worker and lease end, a dead job's last error) and the payload, cut short (archio
jobs get shows it whole). --state lists jobs in one state only. One page (--limit jobs) is
printed; when more follow, stderr says how to continue (--cursor), or --all follows every page.
With --json it prints the jobs.list reply; with --all, one reply holding every job.`,
  flags: {
    state: { flag: "--state", placeholder: "STATE", help: "only jobs in STATE: scheduled, ready, leased, completed, failed, dead or cancelled" },
    limit: { flag: "--limit", placeholder: "N", default: "100", help: `jobs per page, 1 to ${maxPageLimit}` },
    cursor: { flag: "--cursor", placeholder: "CURSOR", help: "continue after the page that printed this cursor" },
    all: { flag: "--all", help: "follow cursors and print every page" }
  },
  examples: ["archio jobs list emails", "archio jobs list emails --state dead --all", "archio jobs list emails --state failed --json | jq '.jobs[].error'"],
  prepare: (a) => {
    const problems: Array<string> = []
    const queue = queueArg("<queue>", a.args[0]!, problems)
    const stateGiven = a.get("state")
    const state = stateGiven === undefined ? undefined : jobState(stateGiven, problems)
    const limitGiven = a.get("limit")
    const limit = limitGiven === undefined ? undefined : integer(limitGiven, 1, maxPageLimit, problems)
    const cursor = a.get("cursor")?.value
    if (cursor === "") problems.push('--cursor must be the cursor a previous page printed, got ""')
    if (problems.length > 0) return { problems }
    const options = { ...(state === undefined ? {} : { state }), ...(limit === undefined ? {} : { limit }) }
    const none = `no ${state === undefined ? "" : `${state} `}jobs in queue ${queue}\n`
    return {
      run: async (s) => {
        const jobs = jobsOf(s)
        if (!a.has("all")) {
          const page = await jobs.list(queue, cursor === undefined ? options : { ...options, cursor })
          if (s.json) s.terminal.out(line(page))
          else if (page.jobs.length === 0) s.terminal.err(none)
          else s.terminal.out(jobsTable(page.jobs, Date.now()))
          if (!s.json && page.cursor !== undefined) s.terminal.err(`more jobs follow: add --cursor ${page.cursor} for the next page, or --all\n`)
          return 0
        }
        // Every page first, then one table, so its columns line up across pages.
        const all: Array<JobView> = []
        let first: ListResponse | undefined
        let next = cursor
        for (;;) {
          const page = await jobs.list(queue, next === undefined ? options : { ...options, cursor: next })
          first ??= page
          all.push(...page.jobs)
          if (page.cursor === undefined || page.jobs.length === 0) break
          next = page.cursor
        }
        if (s.json) s.terminal.out(line({ ok: true, jobs: all, consistency: first.consistency }))
        else if (all.length === 0) s.terminal.err(none)
        else s.terminal.out(jobsTable(all, Date.now()))
        return 0
      }
    }
  }
})
