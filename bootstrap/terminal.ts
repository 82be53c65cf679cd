/**
 * The terminal a command runs in: where it writes, the environment it reads, its standard input,
 * its working folder, and what asks it to stop. `processTerminal` is this process's; tests pass
 * their own to capture output and stop long-running commands without signals.
 */
import type { Env } from "./options.ts"

export interface Terminal {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  readonly env: Env
  /** All of standard input (`archio kv put k -`, `archio kv txn`); default: the process's. */
  readonly stdin?: () => Promise<string>
  /** Folder relative paths start from; default: the process's working folder. */
  readonly cwd?: string
  /** Stops a long-running command (kv watch, worker, dev) when aborted; default: SIGINT or SIGTERM. */
  readonly signal?: AbortSignal
  /** Whether `out` goes to a terminal (a screen to redraw) rather than a file or pipe; default false. */
  readonly isTTY?: boolean
}

export const processTerminal: Terminal = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  env: process.env,
  isTTY: process.stdout.isTTY === true
}

/** Standard input, whole: the terminal's when it has one (tests), else the process's. */
export const readStdin = async (terminal: Terminal): Promise<string> => {
  if (terminal.stdin !== undefined) return terminal.stdin()
  if (process.stdin.isTTY) terminal.err("(reading from standard input; end with Ctrl-D)\n")
  const chunks: Array<Buffer> = []
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer))
  return Buffer.concat(chunks).toString("utf8")
}

/**
 * Resolves `stopped` when the command should stop: the terminal's signal aborts or, without one,
 * SIGINT or SIGTERM arrive. `dispose` removes the listeners.
 */
export const stopRequest = (terminal: Terminal): { readonly stopped: Promise<void>; readonly dispose: () => void } => {
  let done = (): void => {}
  const stopped = new Promise<void>((resolve) => (done = resolve))
  const signal = terminal.signal
  if (signal !== undefined) {
    if (signal.aborted) done()
    signal.addEventListener("abort", done, { once: true })
    return { stopped, dispose: () => signal.removeEventListener("abort", done) }
  }
  process.on("SIGINT", done)
  process.on("SIGTERM", done)
  return {
    stopped,
    dispose: () => {
      process.off("SIGINT", done)
      process.off("SIGTERM", done)
    }
  }
}

/** Waits `ms`, or less when `stopped` settles first; true when stopped. */
export const pause = (ms: number, stopped: Promise<void>): Promise<boolean> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))), stopped.then(() => true)]).finally(() =>
    clearTimeout(timer)
  )
}
