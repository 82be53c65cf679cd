/**
 * One BullMQ worker process for `jobs-vs-bullmq` (the counterpart of `archio worker`): a
 * `Worker` with `--concurrency` on `--queue` of the Redis at 127.0.0.1:`--port`. Its handlers
 * do what the Archio bench's handler modules do (jobs.ts): `noop` returns at once; `stamp`
 * prints "started <i> <ms>", the wall-clock time since the producer stamped the payload, when
 * the job starts. Says "taking jobs from <queue>" on stderr once connected, as `archio worker`
 * does, so one start-up check serves both; SIGTERM or SIGINT closes the worker (active jobs
 * finish) and exits.
 *
 *   node --import tsx ops/bench/bullmqWorker.ts --port 6390 --queue e2e --concurrency 64 --worker-id w1 --handler noop
 */
import { parseArgs } from "node:util"
import { Worker, type Job } from "bullmq"

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    queue: { type: "string" },
    concurrency: { type: "string", default: "64" },
    "worker-id": { type: "string", default: "w1" },
    handler: { type: "string", default: "noop" }
  }
})

const port = Number(values.port)
const queue = values.queue
if (!Number.isInteger(port) || port < 1 || queue === undefined || (values.handler !== "noop" && values.handler !== "stamp")) {
  console.error("usage: bullmqWorker.ts --port PORT --queue NAME [--concurrency 64] [--worker-id w1] [--handler noop|stamp]")
  process.exit(2)
}

const wallMs = (): number => performance.timeOrigin + performance.now()

const stamp = (job: Job<{ t: number; i: number }>): Promise<null> => {
  process.stdout.write(`started ${job.data.i} ${(wallMs() - job.data.t).toFixed(3)}\n`)
  return Promise.resolve(null)
}

const worker = new Worker(queue, values.handler === "stamp" ? stamp : () => Promise.resolve(null), {
  connection: { host: "127.0.0.1", port },
  concurrency: Number(values.concurrency)
})
worker.on("error", (e) => console.error(`bullmq worker ${values["worker-id"]}: ${e.message}`))
await worker.waitUntilReady()
process.stderr.write(`bullmq worker ${values["worker-id"]} taking jobs from ${queue}\n`)

let closing = false
const close = (): void => {
  if (closing) return
  closing = true
  void worker.close().then(
    () => process.exit(0),
    () => process.exit(1)
  )
}
process.on("SIGTERM", close)
process.on("SIGINT", close)
