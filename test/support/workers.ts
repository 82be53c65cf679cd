/**
 * `archio worker` processes for multi-process tests: each runs a handler module from a temp
 * folder, and its stdout (one JSON line per job outcome) is collected for checks. Lease
 * requests wait 1 s at most, so a SIGTERM is not held up by a long poll.
 */
import { createInterface } from "node:readline"
import { spawn, type ChildProcess } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { binPath } from "../../ops/cluster.ts"

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface WorkerOutcome {
  readonly event: "acked" | "failed" | "released" | "lost"
  readonly id: string
  readonly token: number
}

export interface WorkerProcess {
  readonly id: string
  readonly outcomes: WorkerOutcome[]
  readonly proc: ChildProcess
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>
  kill(signal: NodeJS.Signals): Promise<number | string>
}

/**
 * A handler module: sleeps `payload.sleep` ms when given, fails when `payload.fail` is set,
 * and returns `payload.n`. It is plain JavaScript loaded by the worker process, so it keeps its
 * own one-line sleep (the simulated work) rather than importing test/support/wait.ts.
 */
export const writeHandler = async (dir: string): Promise<string> => {
  const file = join(dir, "handler.mjs")
  await writeFile(
    file,
    `export default async (payload) => {
  if (payload && payload.sleep) await new Promise((r) => setTimeout(r, payload.sleep))
  if (payload && payload.fail) throw new Error("asked to fail")
  return payload ? payload.n : null
}
`
  )
  return file
}

export const startWorker = (
  t: Teardown,
  options: {
    readonly id: string
    readonly natsUrl: string
    readonly handler: string
    readonly queues: ReadonlyArray<string>
    readonly args?: ReadonlyArray<string>
    /** Extra environment (for example the NATS_* credentials of a worker user). */
    readonly env?: Readonly<Record<string, string>>
  }
): WorkerProcess => {
  const proc = spawn(
    process.execPath,
    [binPath, "worker", "--queue", options.queues.join(","), "--handler", options.handler, "--nats", options.natsUrl, "--worker-id", options.id, "--wait-ms", "1000", ...(options.args ?? [])],
    { env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: "0", ...options.env }, stdio: ["ignore", "pipe", "pipe"] }
  )
  const outcomes: WorkerOutcome[] = []
  createInterface({ input: proc.stdout!, crlfDelay: Infinity }).on("line", (line) => {
    if (line.startsWith("{")) outcomes.push(JSON.parse(line) as WorkerOutcome)
  })
  proc.stderr!.resume()
  const exited = new Promise<number | string>((resolve) => proc.once("exit", (code, signal) => resolve(code ?? signal ?? "?")))
  const kill = (signal: NodeJS.Signals) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
    return exited
  }
  t.teardown(() => kill("SIGKILL"))
  return { id: options.id, outcomes, proc, exited, kill }
}
