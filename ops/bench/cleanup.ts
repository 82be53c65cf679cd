/**
 * Ctrl-C (or SIGTERM) in the middle of a benchmark must not leave servers behind: a Redis, a
 * JetStream cluster, etcd members or workers left running would load the machine for the next
 * run (and other people's tests) and keep their temp folders. Each part that starts processes
 * registers how to stop them for as long as they run (`atInterrupt`); on the first signal
 * the registered stops run (newest first, 10 s at most), then any child process of this one
 * still alive is killed and the process exits 130 (SIGINT) or 143 (SIGTERM). A second signal
 * kills the children at once.
 */
import { readdirSync, readFileSync } from "node:fs"

type Stop = () => Promise<unknown> | unknown

const stops = new Set<Stop>()
let installed = false
let stopping = false

/** Pids of this process's living children (Linux /proc; empty elsewhere). */
const childPids = (): number[] => {
  if (process.platform !== "linux") return []
  const pids: number[] = []
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      // Fields after "(comm)": state ppid ...; a zombie has exited already.
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (Number(ppid) === process.pid && state !== "Z") pids.push(Number(pid))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

const killChildren = (): void => {
  for (const pid of childPids()) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone meanwhile
    }
  }
}

const onSignal = (signal: "SIGINT" | "SIGTERM"): void => {
  const code = signal === "SIGINT" ? 130 : 143
  if (stopping) {
    killChildren()
    process.exit(code)
  }
  stopping = true
  console.error(`\n${signal}: stopping the benchmark's servers and workers (again to kill them at once)`)
  const all = [...stops].reverse()
  const timeout = new Promise((resolve) => setTimeout(resolve, 10_000).unref())
  void Promise.race([Promise.allSettled(all.map(async (stop) => stop())), timeout]).then(() => {
    killChildren()
    process.exit(code)
  })
}

const install = (): void => {
  if (installed) return
  installed = true
  process.on("SIGINT", () => onSignal("SIGINT"))
  process.on("SIGTERM", () => onSignal("SIGTERM"))
}

/** Runs `stop` if the run is interrupted before the returned function is called. */
export const atInterrupt = (stop: Stop): (() => void) => {
  install()
  stops.add(stop)
  return () => {
    stops.delete(stop)
  }
}

/**
 * `run`, then `stop` (also when `run` fails); `stop` also runs on Ctrl-C meanwhile. `stop`
 * must be safe to call twice (an interrupt may come while it runs).
 */
export const withStop = async <A>(stop: Stop, run: () => Promise<A>): Promise<A> => {
  const off = atInterrupt(stop)
  try {
    return await run()
  } finally {
    off()
    await stop()
  }
}
