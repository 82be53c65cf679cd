/**
 * `archio jobs stats`: every queue (or one) as a table of counts by state, the longest wait of a
 * ready job and the last minute's throughput; once, or with `--watch` again every `--interval`
 * until Ctrl-C, the way `archio status --watch` does (redrawn on a terminal, one block per
 * round elsewhere).
 */
import type { StatsResponse } from "../../protocol/client.ts"
import * as Subjects from "../../protocol/subjects.ts"
import { failed, type Session } from "../clientCommand.ts"
import { line } from "../clientOutput.ts"
import { clearScreen } from "../statusCommand.ts"
import { pause, stopRequest } from "../terminal.ts"
import { duration, queueArg } from "./arguments.ts"
import { defineJobsCommand } from "./jobsCommand.ts"
import { span, statsTable } from "./output.ts"

const defaultIntervalMs = 1000

/** The reply as people read it. */
const render = (reply: StatsResponse): string => (reply.queues.length === 0 ? "no queues yet\n" : statsTable(reply.queues))

/**
 * Asks every `intervalMs` until stopped (exit 0). A round that fails prints its error as a
 * one-shot command would and the next round tries again: the cluster may be electing a leader.
 */
const watch = async (s: Session, ask: () => Promise<StatsResponse>, intervalMs: number): Promise<number> => {
  const stop = stopRequest(s.terminal)
  const redraw = s.terminal.isTTY === true && !s.json
  try {
    for (;;) {
      const round = await Promise.race([
        ask().then(
          (reply) => ({ reply }),
          (error: unknown) => ({ error })
        ),
        stop.stopped.then(() => undefined)
      ])
      if (round === undefined) return 0
      const now = new Date().toISOString()
      if ("error" in round) failed(s, round.error)
      else if (s.json) s.terminal.out(line(round.reply))
      else if (redraw) s.terminal.out(`${clearScreen}archio jobs stats --watch: every ${span(intervalMs)}, Ctrl-C stops; ${now}\n\n${render(round.reply)}`)
      else s.terminal.out(`--- ${now}\n${render(round.reply)}`)
      if (await pause(intervalMs, stop.stopped)) return 0
    }
  } finally {
    stop.dispose()
  }
}

export const statsCommand = defineJobsCommand({
  name: "stats",
  args: ["[queue]"],
  minArgs: 0,
  summary: "counts by state per queue, once or --watch",
  description: `Prints one row per queue (or only [queue]): how many jobs are scheduled, ready, leased,
failed (waiting for a retry), dead, completed and cancelled; how long the oldest ready job has
waited; and the jobs completed and attempts failed in the last minute (leader time). With
--json, the jobs.stats reply as the cluster sent it.

--watch asks again every --interval until Ctrl-C (exit 0): on a terminal it redraws the
screen, otherwise it prints one block per round after a "--- <time>" line (with --json, one
reply per line). A round the cluster does not answer prints the error and the next one tries
again.`,
  flags: {
    watch: { flag: "--watch", short: "-w", help: "ask again every --interval and redraw, until Ctrl-C" },
    interval: { flag: "--interval", placeholder: "DURATION", default: "1s", help: "how often --watch asks (500ms, 2s, 1m; a bare number is milliseconds)" }
  },
  follows: (a) => a.has("watch"),
  examples: ["archio jobs stats", "archio jobs stats emails --watch --interval 2s", "archio jobs stats --json | jq '.queues[] | {queue, ready, dead}'"],
  prepare: (a) => {
    const problems: Array<string> = []
    const arg = a.args[0]
    const queue = arg === undefined ? undefined : queueArg("[queue]", arg, problems)
    const intervalGiven = a.get("interval")
    const intervalMs = intervalGiven === undefined ? defaultIntervalMs : duration(intervalGiven, 100, 3_600_000, problems)
    if (intervalGiven !== undefined && !a.has("watch")) problems.push("--interval only applies with --watch")
    if (problems.length > 0 || intervalMs === undefined) return { problems }
    return {
      run: async (s) => {
        // JobsClient.stats returns the rows alone; --json prints the whole reply.
        const ask = () => s.client.call<StatsResponse>(Subjects.jobs(s.cluster, "stats"), queue === undefined ? {} : { queue })
        if (a.has("watch")) return watch(s, ask, intervalMs)
        const reply = await ask()
        if (s.json) s.terminal.out(line(reply))
        else if (reply.queues.length === 0) s.terminal.err(render(reply))
        else s.terminal.out(render(reply))
        return 0
      }
    }
  }
})
