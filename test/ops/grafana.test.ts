/**
 * The shipped dashboards: ops/grafana/archio-dashboard.json is a Grafana dashboard whose every
 * query names only metrics a real node's /metrics has, covering the cluster, key-value and job
 * views the issue asks for; ops/prometheus/prometheus.yml scrapes three nodes' /metrics.
 */
import t from "tap"
import { readFile } from "node:fs/promises"
import { freePort } from "../../bootstrap/natsServer.ts"
import { singleNode } from "../support/node.ts"
import { parseExposition, type Exposition } from "../support/exposition.ts"
import { until } from "../support/wait.ts"

const root = new URL("../../", import.meta.url)

interface Target {
  readonly refId: string
  readonly expr: string
  readonly legendFormat?: string
}
interface Panel {
  readonly id: number
  readonly type: string
  readonly title: string
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number }
  readonly targets?: ReadonlyArray<Target>
  readonly datasource?: { readonly type: string; readonly uid: string }
}
interface Dashboard {
  readonly title: string
  readonly uid: string
  readonly schemaVersion: number
  readonly panels: ReadonlyArray<Panel>
  readonly templating: { readonly list: ReadonlyArray<{ readonly name: string; readonly type: string; readonly query: string }> }
}

/** PromQL words that are not metric names: functions, aggregations, keywords, label names. */
const promql = new Set([
  "sum", "max", "min", "count", "avg", "by", "without", "rate", "increase", "irate", "histogram_quantile", "scalar", "vector", "or", "and", "unless", "on", "ignoring",
  "le", "queue", "state", "op", "code", "endpoint", "instance", "waiting", "phase", "status"
])

/** Metric names an expression queries: identifiers outside label matchers and strings, less PromQL's own words. */
const metricNames = (expr: string): Array<string> => {
  const bare = expr.replace(/\{[^}]*\}/g, "").replace(/"[^"]*"/g, "").replace(/\[[^\]]*\]/g, "")
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !promql.has(w))
}

/** The family a sample name belongs to in `e` (`x_bucket` of histogram `x` is `x`). */
const family = (e: Exposition, name: string): string | undefined => {
  if (e.types.has(name)) return name
  const base = name.replace(/_(bucket|sum|count)$/, "")
  return e.types.get(base) === "histogram" ? base : undefined
}

t.test("the Grafana dashboard queries only metrics a node exposes, and shows what operators need", async (t) => {
  const dashboard = JSON.parse(await readFile(new URL("ops/grafana/archio-dashboard.json", root), "utf8")) as Dashboard
  t.equal(dashboard.title, "Archio")
  t.match(dashboard.uid, /^[a-zA-Z0-9_-]{1,40}$/, "a uid Grafana accepts")
  t.ok(dashboard.schemaVersion >= 36, "a current schema")
  t.ok(dashboard.templating.list.some((v) => v.name === "datasource" && v.type === "datasource" && v.query === "prometheus"), "a Prometheus data source variable")

  const ids = dashboard.panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length, "panel ids are unique")
  const panels = dashboard.panels.filter((p) => p.type !== "row")
  t.same(dashboard.panels.filter((p) => p.type === "row").map((p) => p.title), ["Cluster", "Key-value store", "Jobs"])
  // No two panels overlap on the 24-column grid.
  for (const [i, a] of dashboard.panels.entries()) {
    t.ok(a.gridPos.x >= 0 && a.gridPos.x + a.gridPos.w <= 24 && a.gridPos.h > 0, `${a.title} fits the grid`)
    for (const b of dashboard.panels.slice(i + 1)) {
      const apart = a.gridPos.x + a.gridPos.w <= b.gridPos.x || b.gridPos.x + b.gridPos.w <= a.gridPos.x || a.gridPos.y + a.gridPos.h <= b.gridPos.y || b.gridPos.y + b.gridPos.h <= a.gridPos.y
      if (!apart) t.fail(`${a.title} overlaps ${b.title}`)
    }
  }

  const port = await freePort()
  const nc = await singleNode(t, { HTTP_PORT: String(port) })
  // The job families appear with the first queue.
  await nc.request("archio.c.jobs.enqueue", JSON.stringify({ queue: "dashboard", payload: null }), { timeout: 5_000 })
  const scrape = async () => parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())
  // The log's size on disk is read in the background: it appears after the first read.
  await until("the log disk gauge", async () => (await scrape()).types.has("archio_raft_log_disk_bytes"), { timeoutMs: 10_000, everyMs: 50 })
  const exposed = await scrape()

  const queried = new Set<string>()
  for (const p of panels) {
    t.ok(p.targets !== undefined && p.targets.length > 0, `${p.title} has queries`)
    t.equal(p.datasource?.uid, "${datasource}", `${p.title} uses the data source variable`)
    for (const target of p.targets ?? []) {
      const names = metricNames(target.expr)
      t.ok(names.length > 0, `${p.title} ${target.refId} queries a metric`)
      for (const name of names) {
        const f = family(exposed, name)
        t.ok(f !== undefined, `${p.title}: ${name} is in /metrics`)
        if (f !== undefined) queried.add(f)
      }
    }
  }
  for (const needed of [
    "archio_raft_term", "archio_raft_is_leader", "archio_raft_commit_index", "archio_raft_applied_index", "archio_nats_requests_total", "archio_requests_busy_total",
    "archio_kv_keys", "archio_kv_bytes", "archio_kv_writes_total",
    "archio_jobs", "archio_jobs_enqueued_total", "archio_jobs_completed_total", "archio_jobs_failed_total", "archio_jobs_enqueue_to_start_seconds", "archio_jobs_lease_expired_total"
  ]) {
    t.ok(queried.has(needed), `a panel shows ${needed}`)
  }
  t.same(metricNames('histogram_quantile(0.99, sum by (le) (rate(archio_x_bucket{code!="ok"}[5m]))) or vector(0)'), ["archio_x_bucket"], "the name reader skips PromQL's words")
})

t.test("the Prometheus configuration scrapes /metrics on three nodes", async (t) => {
  const text = await readFile(new URL("ops/prometheus/prometheus.yml", root), "utf8")
  t.match(text, /^scrape_configs:\n {2}- job_name: archio\n {4}metrics_path: \/metrics\n/m)
  const targets = [...text.matchAll(/- targets: \["([^"]+)"\]\n {8}labels:\n {10}instance: (n\d)/g)].map((m) => [m[1], m[2]])
  t.same(targets, [["127.0.0.1:8081", "n1"], ["127.0.0.1:8082", "n2"], ["127.0.0.1:8083", "n3"]], "the three nodes of archio dev, named by id")
  t.notMatch(text, /\t/, "YAML indents with spaces")
})
