/**
 * Seed and run count of a fuzz file, from the environment, so a failure replays:
 *
 *   FUZZ_SEED=123 npx tap test/fuzz/endpoints.test.ts   # the same inputs again
 *   FUZZ_RUNS=2000 npx tap test/fuzz/raftCodec.test.ts  # more runs of every property
 *   FUZZ_PATH=3:1:0 FUZZ_SEED=123 ...                   # straight to fast-check's shrunk case
 *
 * Without FUZZ_SEED each run draws a fresh seed (more ground covered over many CI runs) and says
 * which; fast-check's failure report carries the seed and path too.
 */
import fc from "fast-check"

interface Commenter {
  comment(...message: ReadonlyArray<unknown>): void
}

export interface Fuzz {
  readonly seed: number
  /** Runs per property: FUZZ_RUNS, or the property's own default. */
  runs(defaultRuns: number): number
  /** `fc.assert`'s parameters for a property whose default run count is `defaultRuns`. */
  parameters<T>(defaultRuns: number): fc.Parameters<T>
  /** The command that replays this file's inputs. */
  readonly replay: string
}

const positiveInt = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined || text === "") return undefined
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`)
  return n
}

/** The seed and run counts for `file` (printed as a comment of `t`, so a failing CI log shows them). */
export const fuzzSetup = (t: Commenter, file: string): Fuzz => {
  const env = process.env
  // fast-check seeds are 32-bit integers.
  const seed = positiveInt("FUZZ_SEED", env["FUZZ_SEED"]) ?? Math.floor(Math.random() * 0x7fffffff)
  const runsOverride = positiveInt("FUZZ_RUNS", env["FUZZ_RUNS"])
  const path = env["FUZZ_PATH"] === undefined || env["FUZZ_PATH"] === "" ? undefined : env["FUZZ_PATH"]
  const replay = `FUZZ_SEED=${seed}${runsOverride === undefined ? "" : ` FUZZ_RUNS=${runsOverride}`} npx tap ${file}`
  const line = `fuzz seed ${seed}; replay: ${replay}`
  t.comment(line)
  process.stderr.write(`${line}\n`)
  const runs = (defaultRuns: number): number => runsOverride ?? defaultRuns
  return {
    seed,
    runs,
    replay,
    parameters: <T>(defaultRuns: number): fc.Parameters<T> => ({
      seed,
      numRuns: runs(defaultRuns),
      ...(path === undefined ? {} : { path })
    })
  }
}
