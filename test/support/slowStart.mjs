// Preload for node processes (NODE_OPTIONS=--import): the node whose --id is SLOW_START_ID
// blocks for SLOW_START_MS before anything else runs, as a node on a busy machine starts late.
const at = process.argv.indexOf("--id")
if (at !== -1 && process.argv[at + 1] === process.env.SLOW_START_ID) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.env.SLOW_START_MS ?? "0"))
}
