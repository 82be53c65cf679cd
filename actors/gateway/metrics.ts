/**
 * Prometheus metrics of one node, rendered in the text exposition format (version 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Our own small module rather than `prom-client`: every label set here is known when the node
 * starts (endpoint × result code), so a request costs one `Map` update of an existing key and
 * one bucket increment, with no label hashing, no string building and no allocation; the Raft
 * gauges are read from the node's status only when scraped. `prom-client` hashes its label
 * object into a string on every `inc`/`observe`, keeps a process-global default registry (two
 * in-process nodes in one test would share it) and would be our first dependency for ~150
 * lines of formatting.
 *
 * Plain data and I/O-free: the HTTP shell renders it, callers pass the latency they measured
 * and the snapshot events they saw. The one gauge whose reading is I/O (`SampledGauge`, the log's
 * size on disk) is given its reader by the node and reads it at most every few seconds. The
 * key-value and job families (`StateMetrics`) are read on scrape from the Applier's state
 * machines, which count their own transitions with plain increments as they apply them.
 */
import { QueueTotals, startDelayBuckets, type QueueMetrics } from "../applier/jobQueue.ts"
import type { KvWrites } from "../applier/kvState.ts"

/** Latency buckets in seconds: 0.5 ms to 10 s, covering a local fsync up to a client deadline. */
export const latencyBuckets: ReadonlyArray<number> = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Where an answered request is recorded: its result code and how long it took. */
export interface Meter {
  record(code: string | number, seconds: number): void
}

/** Requests of one endpoint: a count per result code and one latency histogram. */
export class EndpointMeter implements Meter {
  readonly endpoint: string
  /** Result code -> requests answered with it. */
  readonly codes = new Map<string | number, number>()
  /** Observations per bucket, not cumulative; the last slot is `+Inf`. */
  readonly buckets: Float64Array
  readonly bounds: ReadonlyArray<number>
  sum = 0
  count = 0

  constructor(endpoint: string, bounds: ReadonlyArray<number> = latencyBuckets) {
    this.endpoint = endpoint
    this.bounds = bounds
    this.buckets = new Float64Array(bounds.length + 1)
  }

  record(code: string | number, seconds: number): void {
    this.codes.set(code, (this.codes.get(code) ?? 0) + 1)
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && seconds > bounds[i]!) i++
    this.buckets[i]!++
    this.sum += seconds
    this.count++
  }
}

/** One counter family (`<prefix>_requests_total`) and one histogram family (`<prefix>_request_duration_seconds`). */
export class RequestMetrics {
  readonly prefix: string
  readonly countHelp: string
  readonly durationHelp: string
  readonly #meters = new Map<string, EndpointMeter>()

  /**
   * @param prefix metric name prefix, e.g. `archio_http`
   * @param countHelp HELP text of `<prefix>_requests_total`
   * @param durationHelp HELP text of `<prefix>_request_duration_seconds`
   */
  constructor(prefix: string, countHelp: string, durationHelp: string, endpoints: ReadonlyArray<string> = []) {
    this.prefix = prefix
    this.countHelp = countHelp
    this.durationHelp = durationHelp
    for (const e of endpoints) this.endpoint(e)
  }

  /** The meter of `endpoint`, made on first use. Look it up once, not per request. */
  endpoint(endpoint: string): EndpointMeter {
    let m = this.#meters.get(endpoint)
    if (m === undefined) {
      m = new EndpointMeter(endpoint)
      this.#meters.set(endpoint, m)
    }
    return m
  }

  get meters(): ReadonlyArray<EndpointMeter> {
    return [...this.#meters.values()]
  }

  render(out: Array<string>): void {
    const meters = this.meters
    const total = `${this.prefix}_requests_total`
    out.push(`# HELP ${total} ${this.countHelp}`, `# TYPE ${total} counter`)
    for (const m of meters) {
      const ep = `endpoint="${escapeLabel(m.endpoint)}"`
      for (const [code, n] of m.codes) out.push(`${total}{${ep},code="${escapeLabel(String(code))}"} ${n}`)
    }
    const hist = `${this.prefix}_request_duration_seconds`
    out.push(`# HELP ${hist} ${this.durationHelp}`, `# TYPE ${hist} histogram`)
    for (const m of meters) {
      const ep = `endpoint="${escapeLabel(m.endpoint)}"`
      let cumulative = 0
      m.bounds.forEach((bound, i) => {
        cumulative += m.buckets[i]!
        out.push(`${hist}_bucket{${ep},le="${formatNumber(bound)}"} ${cumulative}`)
      })
      out.push(`${hist}_bucket{${ep},le="+Inf"} ${m.count}`, `${hist}_sum{${ep}} ${formatNumber(m.sum)}`, `${hist}_count{${ep}} ${m.count}`)
    }
  }
}

/** Observations of one unlabelled histogram. */
export class Histogram {
  /** Observations per bucket, not cumulative; the last slot is `+Inf`. */
  readonly buckets: Float64Array
  sum = 0
  count = 0

  constructor(readonly bounds: ReadonlyArray<number>) {
    this.buckets = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.buckets[i]!++
    this.sum += value
    this.count++
  }

  render(out: Array<string>, name: string, help: string): void {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`)
    let cumulative = 0
    this.bounds.forEach((bound, i) => {
      cumulative += this.buckets[i]!
      out.push(`${name}_bucket{le="${formatNumber(bound)}"} ${cumulative}`)
    })
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${formatNumber(this.sum)}`, `${name}_count ${this.count}`)
  }
}

/** Seconds a snapshot or a restore took: 1 ms to 10 minutes. */
export const snapshotSecondsBuckets: ReadonlyArray<number> = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

/** Snapshot sizes in bytes: 1 KiB to 4 GiB, by powers of 4. */
export const snapshotSizeBuckets: ReadonlyArray<number> = Array.from({ length: 12 }, (_, i) => 1024 * 4 ** i)

export const snapshotPhases = ["snapshot", "persist", "restore"] as const
export const snapshotStatuses = ["started", "succeeded", "failed"] as const

/** One step of the snapshot lifecycle, as the Snapshotter reports it (`onEvent`). */
export interface SnapshotObservation {
  readonly phase: (typeof snapshotPhases)[number]
  readonly status: (typeof snapshotStatuses)[number]
  readonly seconds?: number
  readonly bytes?: number
}

/**
 * The snapshot families, under the older Go service's names so its dashboards and alerts keep
 * working: operations by phase and status, and histograms of succeeded snapshots (duration,
 * size) and restores (duration).
 */
export class SnapshotMetrics {
  /** Count per phase x status, in the order of `snapshotPhases` then `snapshotStatuses`. */
  readonly operations = new Float64Array(snapshotPhases.length * snapshotStatuses.length)
  readonly duration = new Histogram(snapshotSecondsBuckets)
  readonly size = new Histogram(snapshotSizeBuckets)
  readonly restoreDuration = new Histogram(snapshotSecondsBuckets)

  record(e: SnapshotObservation): void {
    const phase = snapshotPhases.indexOf(e.phase)
    const status = snapshotStatuses.indexOf(e.status)
    if (phase < 0 || status < 0) return
    this.operations[phase * snapshotStatuses.length + status]!++
    if (e.status !== "succeeded") return
    if (e.phase === "snapshot") {
      if (e.seconds !== undefined) this.duration.observe(e.seconds)
      if (e.bytes !== undefined) this.size.observe(e.bytes)
    } else if (e.phase === "restore" && e.seconds !== undefined) this.restoreDuration.observe(e.seconds)
  }

  /** How many `phase` steps ended (or started) with `status`. */
  count(phase: SnapshotObservation["phase"], status: SnapshotObservation["status"]): number {
    return this.operations[snapshotPhases.indexOf(phase) * snapshotStatuses.length + snapshotStatuses.indexOf(status)]!
  }

  render(out: Array<string>): void {
    const ops = "kvstore_snapshot_operations_total"
    out.push(
      `# HELP ${ops} Snapshot lifecycle steps by phase (snapshot: taking one; persist: recording it and compacting the log; restore: installing one) and status.`,
      `# TYPE ${ops} counter`
    )
    for (const phase of snapshotPhases) {
      for (const status of snapshotStatuses) out.push(`${ops}{phase="${phase}",status="${status}"} ${this.count(phase, status)}`)
    }
    this.duration.render(out, "kvstore_snapshot_duration_seconds", "Seconds to take a snapshot (succeeded ones).")
    this.size.render(out, "kvstore_snapshot_size_bytes", "Bytes of each snapshot taken (succeeded ones).")
    this.restoreDuration.render(out, "kvstore_snapshot_restore_duration_seconds", "Seconds to receive and install a snapshot (succeeded ones).")
  }
}

/**
 * A gauge read through I/O (an async call), on scrape but at most every `everyMs`: a scrape gets
 * the last value read and, when it is old, starts the next read. Unknown until the first read
 * ends; a failed read keeps the last value.
 */
export class SampledGauge {
  value: number | undefined
  #readAt = -Infinity
  #reading = false

  constructor(
    private readonly read: () => Promise<number>,
    private readonly now: () => number,
    readonly everyMs: number
  ) {}

  /** The last value read; starts a new read when it is older than `everyMs`. */
  sample(): number | undefined {
    const now = this.now()
    if (!this.#reading && now - this.#readAt >= this.everyMs) {
      this.#reading = true
      this.#readAt = now
      let reading: Promise<number>
      try {
        reading = this.read()
      } catch (e) {
        reading = Promise.reject(e)
      }
      reading.then(
        (v) => {
          this.value = v
          this.#reading = false
        },
        () => {
          this.#reading = false
        }
      )
    }
    return this.value
  }
}

/** What the key-value and job families are read from: the Applier (see applier.ts). */
export interface StateSource {
  readonly kv: { readonly records: { readonly size: number }; readonly bytes: number; readonly writes: Readonly<KvWrites> }
  readonly jobs: { metrics(): ReadonlyArray<QueueMetrics> }
  /** Called each time an installed snapshot replaced the state machines (`kv`, `jobs` are new objects). */
  onInstalled(listener: (index: number) => void): void
}

const jobStates = ["scheduled", "ready", "leased", "completed", "failed", "dead", "cancelled"] as const

/** Job counter families: name, field of `QueueTotals`, HELP. */
const jobCounters: ReadonlyArray<readonly [string, "enqueued" | "leased" | "completed" | "failed" | "dead" | "leaseExpired", string]> = [
  ["archio_jobs_enqueued_total", "enqueued", "New jobs enqueued, by queue (a unique key's existing job is not counted again)."],
  ["archio_jobs_leased_total", "leased", "Leases handed to workers (every attempt), by queue."],
  ["archio_jobs_completed_total", "completed", "Jobs acked as completed, by queue."],
  ["archio_jobs_failed_total", "failed", "Failed attempts (a worker's fail or an expired lease, retried or not), by queue."],
  ["archio_jobs_dead_total", "dead", "Jobs that failed for good (out of attempts, or not retryable), by queue."],
  ["archio_jobs_lease_expired_total", "leaseExpired", "Leases that ran out before their worker acked, failed or extended, by queue."]
]

/** Every replica applies the same transitions: what a counter of the state families counts. */
const clusterWide = "Cluster-wide: every node applies the same log, so each counts the same transitions (as far as it applied them, since it started)."

/**
 * The key-value and job families. Gauges (keys, bytes, jobs by state) are read from the state
 * machines now; counters from what they counted. An installed snapshot replaces the state
 * machines with fresh objects whose counts start at 0: what the replaced ones counted is added
 * up here, so these counters only reset when the process restarts, as Prometheus expects.
 */
export class StateMetrics {
  #kv: StateSource["kv"]
  #jobs: StateSource["jobs"]
  readonly #kvBefore: KvWrites = { put: 0, del: 0, expire: 0 }
  readonly #jobsBefore = new Map<string, QueueTotals>()

  constructor(private readonly source: StateSource) {
    this.#kv = source.kv
    this.#jobs = source.jobs
    source.onInstalled(() => this.#fold())
  }

  /** Adds what replaced state machines counted to the totals before them. */
  #fold(): void {
    if (this.source.kv !== this.#kv) {
      const w = this.#kv.writes
      this.#kvBefore.put += w.put
      this.#kvBefore.del += w.del
      this.#kvBefore.expire += w.expire
      this.#kv = this.source.kv
    }
    if (this.source.jobs !== this.#jobs) {
      for (const { queue, totals } of this.#jobs.metrics()) {
        let sum = this.#jobsBefore.get(queue)
        if (sum === undefined) this.#jobsBefore.set(queue, (sum = new QueueTotals()))
        addTotals(sum, totals)
      }
      this.#jobs = this.source.jobs
    }
  }

  render(out: Array<string>): void {
    this.#fold()
    const kv = this.#kv
    gauge(out, "gauge", "archio_kv_keys", "Keys in the key-value store (a key whose TTL ran out counts until the next entry removes it).", kv.records.size)
    gauge(out, "gauge", "archio_kv_bytes", "UTF-8 bytes of every key and value in the key-value store (revisions and TTLs not counted).", kv.bytes)
    const writes = "archio_kv_writes_total"
    out.push(`# HELP ${writes} Keys written by applied entries, by op (put, del, expire). ${clusterWide}`, `# TYPE ${writes} counter`)
    for (const op of ["put", "del", "expire"] as const) out.push(`${writes}{op="${op}"} ${kv.writes[op] + this.#kvBefore[op]}`)

    // Every queue either state machine knows, in name order; totals are the replaced ones' plus the current ones'.
    const now = new Map<string, QueueMetrics>()
    for (const m of this.#jobs.metrics()) now.set(m.queue, m)
    const queues = [...new Set([...now.keys(), ...this.#jobsBefore.keys()])].sort()
    const totals = new Map<string, QueueTotals>()
    for (const queue of queues) {
      const sum = new QueueTotals()
      const before = this.#jobsBefore.get(queue)
      if (before !== undefined) addTotals(sum, before)
      const current = now.get(queue)
      if (current !== undefined) addTotals(sum, current.totals)
      totals.set(queue, sum)
    }
    const label = (queue: string): string => `queue="${escapeLabel(queue)}"`
    // Families without a series until the first queue: a histogram with no series at all would
    // be a header with nothing under it.
    if (queues.length === 0) return

    out.push("# HELP archio_jobs Jobs by queue and state now (scheduled, ready, leased, completed, failed, dead, cancelled).", "# TYPE archio_jobs gauge")
    for (const queue of queues) {
      const counts = now.get(queue)?.counts
      for (const state of jobStates) out.push(`archio_jobs{${label(queue)},state="${state}"} ${counts?.[state] ?? 0}`)
    }
    for (const [name, field, help] of jobCounters) {
      out.push(`# HELP ${name} ${help} ${clusterWide}`, `# TYPE ${name} counter`)
      for (const queue of queues) out.push(`${name}{${label(queue)}} ${totals.get(queue)![field]}`)
    }
    const hist = "archio_jobs_enqueue_to_start_seconds"
    out.push(
      `# HELP ${hist} Seconds from a job becoming ready (its enqueue, or its run-at time when delayed) to its first lease, by queue (leader time). ${clusterWide}`,
      `# TYPE ${hist} histogram`
    )
    for (const queue of queues) {
      const t = totals.get(queue)!
      let cumulative = 0
      startDelayBuckets.forEach((bound, i) => {
        cumulative += t.startDelay[i]!
        out.push(`${hist}_bucket{${label(queue)},le="${formatNumber(bound)}"} ${cumulative}`)
      })
      out.push(`${hist}_bucket{${label(queue)},le="+Inf"} ${t.startDelayCount}`, `${hist}_sum{${label(queue)}} ${formatNumber(t.startDelaySum)}`, `${hist}_count{${label(queue)}} ${t.startDelayCount}`)
    }
  }
}

const addTotals = (into: QueueTotals, from: QueueTotals): void => {
  into.enqueued += from.enqueued
  into.leased += from.leased
  into.completed += from.completed
  into.failed += from.failed
  into.dead += from.dead
  into.leaseExpired += from.leaseExpired
  for (let i = 0; i < into.startDelay.length; i++) into.startDelay[i]! += from.startDelay[i]!
  into.startDelaySum += from.startDelaySum
  into.startDelayCount += from.startDelayCount
}

/** What the Raft gauges are read from: the node's `admin.status` (see `Gateway.make`). */
export interface RaftSample {
  readonly id: string
  readonly cluster: string
  readonly role: string
  readonly term: number
  readonly leader: string | null
  readonly commitIndex: number
  readonly appliedIndex: number
  readonly firstIndex: number
  readonly lastIndex: number
  readonly leaderChanges: number
  /** The last index compacted away: the log holds lastIndex - logBaseIndex entries. */
  readonly logBaseIndex: number
  /** The last snapshot taken or installed, or null. */
  readonly snapshot: { readonly index: number } | null
  /** Waiting requests held now and answered `busy` since start, by kind (see admission.ts). */
  readonly admission: { readonly held: Readonly<Record<string, number>>; readonly busy: Readonly<Record<string, number>> }
}

/** Every metric of one node. */
export interface Registry {
  /** Client requests over NATS, `code` = `ok` or the error code (`bad_request`, ...). */
  readonly nats: RequestMetrics
  /** Requests to the HTTP shim, `code` = the HTTP status. */
  readonly http: RequestMetrics
  /** Snapshot lifecycle steps (fed by the Snapshotter's events). */
  readonly snapshots: SnapshotMetrics
  /** Bytes of the Raft log on disk, when the store can tell (classic-level's `approximateSize`). */
  readonly logDiskBytes: SampledGauge | undefined
  /** The key-value and job families, when the node gave its Applier. */
  readonly state: StateMetrics | undefined
  /** Static labels of `archio_node_info`. */
  readonly version: string
}

export const make = (version: string, logDiskBytes?: SampledGauge, state?: StateSource): Registry => ({
  nats: new RequestMetrics(
    "archio_nats",
    "Client requests over NATS answered by this node, by endpoint and code (ok or the error code).",
    "Seconds from receiving a client request over NATS to answering it, by endpoint."
  ),
  http: new RequestMetrics(
    "archio_http",
    "HTTP requests answered, by endpoint (the route, or other) and code (the HTTP status).",
    "Seconds from receiving an HTTP request to answering it, by endpoint."
  ),
  snapshots: new SnapshotMetrics(),
  logDiskBytes,
  state: state === undefined ? undefined : new StateMetrics(state),
  version
})

/** The Content-Type of `render`'s output. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const gauge = (out: Array<string>, type: "gauge" | "counter", name: string, help: string, value: number): void => {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${formatNumber(value)}`)
}

const byKind = (out: Array<string>, type: "gauge" | "counter", name: string, help: string, values: Readonly<Record<string, number>>): void => {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
  for (const [kind, value] of Object.entries(values)) out.push(`${name}{waiting="${escapeLabel(kind)}"} ${formatNumber(value)}`)
}

/** The whole exposition: request families, then the Raft state read from `raft` now. */
export const render = (registry: Registry, raft: RaftSample): string => {
  const out: Array<string> = []
  out.push(
    "# HELP archio_node_info This node's id, cluster and version (always 1).",
    "# TYPE archio_node_info gauge",
    `archio_node_info{node="${escapeLabel(raft.id)}",cluster="${escapeLabel(raft.cluster)}",version="${escapeLabel(registry.version)}"} 1`
  )
  registry.nats.render(out)
  registry.http.render(out)
  gauge(out, "gauge", "archio_raft_term", "Current Raft term.", raft.term)
  gauge(out, "gauge", "archio_raft_commit_index", "Highest log index known to be committed.", raft.commitIndex)
  gauge(out, "gauge", "archio_raft_applied_index", "Highest log index applied to the state machine.", raft.appliedIndex)
  gauge(out, "gauge", "archio_raft_log_entries", "Entries in the log after its compaction base (last index - base index).", Math.max(0, raft.lastIndex - raft.logBaseIndex))
  gauge(out, "gauge", "archio_raft_last_index", "Index of the last entry in the log.", raft.lastIndex)
  gauge(out, "gauge", "archio_raft_log_base_index", "Index of the last entry compacted into a snapshot (0 while none is).", raft.logBaseIndex)
  const disk = registry.logDiskBytes?.sample()
  if (disk !== undefined) gauge(out, "gauge", "archio_raft_log_disk_bytes", "Approximate bytes of the Raft log in the database's files on disk (read at most every few seconds).", disk)
  gauge(out, "gauge", "archio_snapshot_last_index", "Log index of the last snapshot taken or installed (0 while none is).", raft.snapshot?.index ?? 0)
  gauge(out, "counter", "archio_raft_leader_changes_total", "Times this node saw the leader change since it started.", raft.leaderChanges)
  gauge(out, "gauge", "archio_raft_is_leader", "1 when this node is the leader, else 0.", raft.role === "leader" ? 1 : 0)
  gauge(out, "gauge", "archio_raft_has_leader", "1 when this node knows a leader, else 0.", raft.leader === null ? 0 : 1)
  byKind(out, "gauge", "archio_requests_held", "Client requests this node holds while they wait, by what they wait for (writes, reads, leases, forwards).", raft.admission.held)
  byKind(out, "counter", "archio_requests_busy_total", "Client requests answered busy because this node held as many of their kind as it may.", raft.admission.busy)
  registry.snapshots.render(out)
  registry.state?.render(out)
  return `${out.join("\n")}\n`
}

/** Label values escape `\`, `"` and newlines. */
export const escapeLabel = (value: string): string => value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))

/** Go-style float text: `+Inf`, `-Inf`, `NaN`, otherwise JavaScript's shortest form. */
export const formatNumber = (n: number): string =>
  Number.isNaN(n) ? "NaN" : n === Infinity ? "+Inf" : n === -Infinity ? "-Inf" : String(n)
