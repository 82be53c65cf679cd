import t from "tap"
import { resolve } from "node:path"
import { footprintArgs, keyName, parseProcStatus, payloadSource, perItem } from "../../ops/bench/footprintParts.ts"

t.test("footprint options: the issue's sizes by default, given ones as given", async (t) => {
  t.same(footprintArgs(["footprint"]), { jobs: 1_000_000, payloadBytes: 200, settleSeconds: 30, heapSnapshotDir: undefined })
  // Options of run.ts that are not this bench's are left alone.
  t.same(footprintArgs(["footprint", "--keys", "5", "--jobs", "20_000", "--payload-bytes=64", "--settle", "0", "--heap-snapshot", "heap"]), {
    jobs: 20_000,
    payloadBytes: 64,
    settleSeconds: 0,
    heapSnapshotDir: resolve("heap")
  })
})

t.test("footprint options: a bad value says which option and what it got", async (t) => {
  t.throws(() => footprintArgs(["--jobs", "many"]), { message: '--jobs must be an integer of at least 0, got "many"' })
  t.throws(() => footprintArgs(["--jobs", "-1"]), { message: '--jobs must be an integer of at least 0, got "-1"' })
  // A payload cannot be smaller than the JSON around its text.
  t.throws(() => footprintArgs(["--payload-bytes", "8"]), { message: '--payload-bytes must be an integer of at least 9, got "8"' })
  t.throws(() => footprintArgs(["--settle", "1.5"]), { message: '--settle must be an integer of at least 0, got "1.5"' })
  t.throws(() => footprintArgs(["--heap-snapshot"]), { message: "--heap-snapshot needs a folder" })
})

t.test("a payload's JSON is exactly the bytes asked for, and payloads differ", async (t) => {
  for (const bytes of [9, 64, 200, 1000]) {
    const payload = payloadSource(bytes)
    t.equal(Buffer.byteLength(JSON.stringify(payload(0))), bytes, `${bytes} bytes`)
    t.equal(Buffer.byteLength(JSON.stringify(payload(12345))), bytes, `${bytes} bytes, another job`)
  }
  const payload = payloadSource(200)
  t.not(payload(1).d, payload(2).d)
})

t.test("key names are distinct, sort as they count, and widen past 7 digits", async (t) => {
  t.equal(keyName(1, 1_000_000), "k/0000001")
  t.equal(keyName(999_999, 1_000_000), "k/0999999")
  t.equal(keyName(5, 100_000_000), "k/00000005")
  const names = Array.from({ length: 1000 }, (_, i) => keyName(i * 997, 1_000_000))
  t.same([...names].sort(), names)
  t.equal(new Set(names).size, names.length)
})

t.test("bytes per item: the difference over the count, or nothing without both readings", async (t) => {
  t.equal(perItem(1_500_000_000, 100_000_000, 1_000_000), 1400)
  // The heap can shrink between two readings (a GC): the figure says so rather than hide it.
  t.equal(perItem(100, 400, 3), -100)
  t.equal(perItem(undefined, 100, 10), undefined)
  t.equal(perItem(100, undefined, 10), undefined)
  t.equal(perItem(100, 50, 0), undefined)
})

t.test("/proc/<pid>/status: RSS, its peak, and its anonymous and file parts, in bytes", async (t) => {
  const text = ["Name:\tnode", "VmHWM:\t 3073536 kB", "VmRSS:\t 3001800 kB", "RssAnon:\t 2000000 kB", "RssFile:\t 1001000 kB", "RssShmem:\t     800 kB", "Threads:\t11"].join("\n")
  t.same(parseProcStatus(text), { rss: 3001800 * 1024, peak: 3073536 * 1024, anon: 2000000 * 1024, file: 1001000 * 1024 })
  // An older kernel without the split: what it has, and undefined for the rest.
  t.same(parseProcStatus("VmRSS:\t 100 kB\n"), { rss: 102400, peak: undefined, anon: undefined, file: undefined })
})
