/**
 * The `archio` command line. `main(argv)` runs the command `argv` names and returns its exit
 * code: 0 done, 1 failed at run time, 2 bad usage. Each command is a module with its option
 * table (see command.ts); this one lists them.
 */
import { clusterGroup } from "./cluster/index.ts"
import { defineGroup } from "./command.ts"
import { devCommand } from "./dev.ts"
import { jobsGroup } from "./jobs/index.ts"
import { kvGroup } from "./kv/index.ts"
import { version } from "./node.ts"
import { nodeCommand } from "./nodeCommand.ts"
import { snapshotGroup } from "./snapshot/index.ts"
import { statusCommand } from "./statusCommand.ts"
import { processTerminal, type Terminal } from "./terminal.ts"
import { workerCommand } from "./workerCommand.ts"

export const archio = defineGroup({
  path: "",
  summary: "a replicated key-value store and job queue: Raft over NATS, state in LevelDB",
  commands: [nodeCommand, devCommand, statusCommand, kvGroup, jobsGroup, workerCommand, snapshotGroup, clusterGroup],
  options: [{ title: "Global flags", options: { version: { flag: "--version", short: "-v", help: "print the version" } } }]
})

/** Runs the command line `argv` (without `node` and the script); resolves to the exit code. */
export const main = async (argv: ReadonlyArray<string>, terminal: Terminal = processTerminal): Promise<number> => {
  if (argv[0] === "--version" || argv[0] === "-v") {
    terminal.out(`${version}\n`)
    return 0
  }
  return archio.run(argv, terminal)
}
