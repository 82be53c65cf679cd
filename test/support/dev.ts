/**
 * `archio dev` run in this process (as the launcher it is; its nodes are child processes), its
 * output collected, and every node process it reported killed when the test ends, pass or fail.
 */
import { devCommand } from "../../bootstrap/dev.ts"
import type { Env } from "../../bootstrap/options.ts"

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface DevRun {
  /** Everything it printed so far, stdout and stderr together. */
  readonly output: () => string
  /** Its exit code, once stopped. */
  readonly done: Promise<number>
  /** Asks it to stop, as Ctrl-C does. */
  readonly stop: () => void
  /** Node pids it reported (`started nN (pid P)`) so far; killed at teardown, with any pushed here. */
  readonly pids: Array<number>
  /** Adds the pids it reported since the last call. */
  readonly notePids: () => void
}

export const devInProcess = (t: Teardown, argv: ReadonlyArray<string>, options: { readonly cwd: string; readonly env: Env }): DevRun => {
  let out = ""
  const abort = new AbortController()
  const done = devCommand.run(argv, { cwd: options.cwd, env: options.env, out: (s) => void (out += s), err: (s) => void (out += s), signal: abort.signal })
  const pids: Array<number> = []
  t.teardown(() => {
    abort.abort()
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
  })
  return {
    output: () => out,
    done,
    stop: () => abort.abort(),
    pids,
    notePids: () => {
      for (const m of out.matchAll(/started n\d \(pid (\d+)\)/g)) if (!pids.includes(Number(m[1]))) pids.push(Number(m[1]))
    }
  }
}
