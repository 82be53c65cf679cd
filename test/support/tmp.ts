/** Temporary folders removed when the test ends, pass or fail. */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"

interface Teardown {
  teardown(fn: () => unknown): void
}

export const tempDir = async (t: Teardown, prefix = "archio-test-"): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}
