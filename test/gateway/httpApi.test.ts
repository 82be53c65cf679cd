/**
 * The dashboard's side of the HTTP shim on a real node (private nats-server, real classic-level):
 * the page and its files with their content types, caching and Content-Security-Policy, and
 * `POST /api/<group>.<op>` answering exactly what the same request over NATS answers, behind the
 * token for everything but reads, and refused to other sites' pages. The browser itself is
 * test/browser/dashboard.test.ts.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import t from "tap"
import * as Dashboard from "../../actors/gateway/httpDashboard.ts"
import { freePort } from "../../bootstrap/natsServer.ts"
import { maxRequestBytes } from "../../protocol/limits.ts"
import { ask, singleNode } from "../support/node.ts"
import { tempDir } from "../support/tmp.ts"
import { until } from "../support/wait.ts"

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: Record<string, unknown> | undefined
}

const request = async (port: number, method: string, path: string, body?: string, headers?: Record<string, string>): Promise<Answer> => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, ...(body === undefined ? {} : { body }), ...(headers === undefined ? {} : { headers }) })
  const text = await res.text()
  let json: Record<string, unknown> | undefined
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json }
}

const token = "dashboard-token-0123456789"
const bearer = { Authorization: `Bearer ${token}` }

t.test("the dashboard and its API on a node with an HTTP token", async (t) => {
  const port = await freePort()
  const nc = await singleNode(t, { HTTP_PORT: String(port), HTTP_TOKEN: token })
  const http = (method: string, path: string, body?: string, headers?: Record<string, string>) => request(port, method, path, body, headers)
  const api = (op: string, body: unknown, headers: Record<string, string> = bearer) =>
    http("POST", `/api/${op}`, typeof body === "string" ? body : JSON.stringify(body), { "Content-Type": "application/json", ...headers })
  await until("the shim answers", async () => (await http("GET", "/health").catch(() => undefined))?.status === 200)

  t.test("GET / is the page, with a strict policy, no inline code and nothing from elsewhere", async (t) => {
    const page = await http("GET", "/")
    t.equal(page.status, 200)
    t.equal(page.headers.get("content-type"), "text/html; charset=utf-8")
    t.equal(page.headers.get("content-security-policy"), Dashboard.contentSecurityPolicy)
    t.match(Dashboard.contentSecurityPolicy, /script-src 'self';/)
    t.notMatch(Dashboard.contentSecurityPolicy, /unsafe-inline|unsafe-eval|\*/, "no inline code, no eval, no wildcard")
    t.equal(page.headers.get("x-content-type-options"), "nosniff")
    t.equal(page.headers.get("x-frame-options"), "DENY")
    t.equal(page.headers.get("cache-control"), "no-cache")
    t.match(page.headers.get("etag"), /^"[A-Za-z0-9_-]{22}"$/)
    t.notMatch(page.text, /<script(?![^>]*\bsrc=)[^>]*>/, "every script is a file")
    t.notMatch(page.text, /\sstyle=|<style/, "every style is in the stylesheet")
    t.notMatch(page.text, /(src|href)="(https?:)?\/\//, "nothing loaded from another host")
    t.equal((await http("GET", "/dashboard/index.html")).text, page.text, "the same file under /dashboard/")
  })

  t.test("every file the page names is served with its type, and every module its imports name", async (t) => {
    const page = (await http("GET", "/")).text
    const named = new Set([...page.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)].map((m) => m[1]!))
    t.ok(named.has("/dashboard/app.js") && named.has("/dashboard/style.css"), "the script and the stylesheet")
    const types: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml" }
    const seen = new Set<string>()
    const pending = [...named]
    while (pending.length > 0) {
      const path = pending.pop()!
      if (seen.has(path)) continue
      seen.add(path)
      const r = await http("GET", path)
      t.equal(r.status, 200, path)
      t.equal(r.headers.get("content-type"), types[path.slice(path.lastIndexOf("."))], `${path}: content type`)
      t.equal(r.headers.get("content-security-policy"), Dashboard.contentSecurityPolicy, `${path}: policy`)
      if (path.endsWith(".js")) {
        t.notMatch(r.text, /\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function/, `${path}: no HTML from strings, no eval`)
        for (const m of r.text.matchAll(/from "\.\/([^"]+)"/g)) pending.push(`/dashboard/${m[1]!}`)
      }
    }
    t.ok(seen.has("/dashboard/api.js"), "modules imported by app.js were followed")
  })

  t.test("caching, HEAD, wrong methods and missing files", async (t) => {
    const first = await http("GET", "/dashboard/app.js")
    const again = await http("GET", "/dashboard/app.js", undefined, { "If-None-Match": first.headers.get("etag")! })
    t.equal(again.status, 304, "unchanged: 304")
    t.equal(again.text, "", "with no body")
    t.equal((await http("GET", "/dashboard/app.js", undefined, { "If-None-Match": '"other"' })).status, 200, "another version: the file")
    const head = await http("HEAD", "/")
    t.equal(head.status, 200)
    t.equal(head.text, "")
    t.equal(Number(head.headers.get("content-length")), Buffer.byteLength((await http("GET", "/")).text))
    const post = await http("POST", "/")
    t.equal(post.status, 405)
    t.equal(post.headers.get("allow"), "GET, HEAD")
    t.match(post.json, { ok: false, error: { code: "method_not_allowed" } })
    for (const path of ["/dashboard/nope.js", "/dashboard/", "/dashboard/%2e%2e/package.json", "/dashboard/..%2fpackage.json"]) {
      const r = await http("GET", path)
      t.equal(r.status, 404, path)
      t.match(r.json, { ok: false, error: { code: "not_found" } }, path)
    }
    t.match((await http("GET", "/nowhere")).json, { error: { code: "not_found", message: /\/api\/<group>\.<op>/ } }, "the 404 names the API route")
  })

  t.test("POST /api/<group>.<op> answers what NATS answers", async (t) => {
    const status = await api("admin.status", {})
    t.equal(status.status, 200)
    t.equal(status.headers.get("cache-control"), "no-store")
    const nats = await ask(nc, "archio.c.admin.status", "")
    t.same(Object.keys(status.json!).sort(), Object.keys(nats.body).sort(), "the fields of admin.status")
    t.match(status.json, { ok: true, id: "n1", cluster: "c", role: "leader", leader: "n1" })
    t.match((await api("admin.status", "")).json, { ok: true }, "an empty body is {} as on NATS")

    const enqueued = await api("jobs.enqueue", { queue: "mail", payload: { to: "a@b.c" } })
    t.equal(enqueued.status, 200)
    t.match(enqueued.json, { ok: true, id: String, existing: false, node: "n1" })
    const id = enqueued.json!["id"] as string
    t.match((await api("jobs.get", { id })).json, { ok: true, job: { id, queue: "mail", state: "ready", payload: { to: "a@b.c" } } })
    t.match((await api("jobs.stats", { queue: "mail" })).json, { ok: true, queues: [{ queue: "mail", ready: 1 }] })

    // A refusal is the API's: same code, same message, its HTTP status.
    const refusedHttp = await api("jobs.retry", { id })
    const refusedNats = await ask(nc, "archio.c.jobs.retry", { id })
    t.equal(refusedHttp.status, 409)
    t.equal(refusedNats.code, "409")
    t.same(refusedHttp.json!["error"], refusedNats.body["error"], "the same error as over NATS")
    t.match(refusedHttp.json, { ok: false, error: { code: "conflict", message: /only dead, failed or cancelled jobs can be retried/ } })

    const unknownField = await api("jobs.list", { queue: "mail", vaule: 1 })
    t.equal(unknownField.status, 400)
    t.match(unknownField.json, { error: { code: "bad_request", message: /unknown field "vaule"/ } }, "the schema's own message")
    t.match((await api("jobs.list", "{not json")).json, { error: { code: "bad_request", message: /invalid JSON/ } })
    const big = await api("kv.put", JSON.stringify({ key: "k", value: "x".repeat(maxRequestBytes) }))
    t.equal(big.status, 413)
    t.match(big.json, { error: { code: "too_large" } })

    t.match((await api("jobs.cancel", { id })).json, { ok: true }, "cancel")
    t.match((await api("jobs.purge", { queue: "mail" })).json, { ok: true, purged: 1 }, "purge")
  })

  t.test("unknown endpoints, methods and the token", async (t) => {
    const unknown = await api("jobs.nothing", {})
    t.equal(unknown.status, 404)
    t.match(unknown.json, { ok: false, error: { code: "not_found", message: "no endpoint jobs.nothing" } })
    t.equal((await api("__proto__", {})).status, 404, "no way into the object's prototype")
    const get = await http("GET", "/api/jobs.stats")
    t.equal(get.status, 405)
    t.equal(get.headers.get("allow"), "POST")
    t.match(get.json, { error: { code: "method_not_allowed", message: /takes POST/ } })

    for (const op of ["admin.status", "admin.members", "jobs.enqueue", "jobs.retry", "jobs.purge", "jobs.lease", "kv.put", "jobs.nothing"]) {
      const none = await api(op, {}, {})
      t.equal(none.status, 401, `${op} without the token`)
      t.match(none.json, { ok: false, error: { code: "unauthorized", message: /needs the node's HTTP token/ } })
      t.equal(none.headers.get("www-authenticate"), 'Bearer realm="archio"')
      t.equal((await api(op, {}, { Authorization: "Bearer wrong-token-wrong-token" })).status, 401, `${op} with a wrong token`)
    }
    for (const [op, body] of [["jobs.stats", {}], ["jobs.list", { queue: "mail" }], ["kv.scan", {}], ["kv.get", { key: "boot" }], ["jobs.get", { id: "404" }]] as const) {
      const open = await api(op, body, {})
      t.not(open.status, 401, `${op} is a read: open like /get`)
    }
  })

  t.test("another site's page may not call the API; this page and programs may", async (t) => {
    for (const headers of [{ "Sec-Fetch-Site": "cross-site" }, { "Sec-Fetch-Site": "same-site" }, { Origin: "http://evil.example" }, { Origin: "null" }]) {
      const r = await api("jobs.stats", {}, { ...bearer, ...headers })
      t.equal(r.status, 403, JSON.stringify(headers))
      t.match(r.json, { ok: false, error: { code: "forbidden", message: /another site/ } })
    }
    t.equal((await api("jobs.stats", {}, { "Sec-Fetch-Site": "same-origin" })).status, 200, "the dashboard's own fetches")
    t.equal((await api("jobs.stats", {}, { Origin: `http://127.0.0.1:${port}` })).status, 200, "an Origin naming this host")
  })
})

t.test("the shim's rules, without a node", async (t) => {
  t.test("apiOp, serves and openOps", async (t) => {
    t.equal(Dashboard.apiOp("/api/jobs.list"), "jobs.list")
    t.equal(Dashboard.apiOp("/dashboard/app.js"), undefined)
    t.ok(Dashboard.serves("/") && Dashboard.serves("/dashboard/x.css") && Dashboard.serves("/api/x"))
    t.notOk(Dashboard.serves("/health") || Dashboard.serves("/kv/a") || Dashboard.serves("/apix"))
    for (const op of Dashboard.openOps) t.match(op, /^(kv\.(get|scan)|jobs\.(get|list|stats))$/, `${op} only reads`)
  })

  t.test("fresh: If-None-Match lists, weak tags and *", async (t) => {
    const asset = { body: "x", contentType: "text/plain", etag: '"abc"' }
    t.ok(Dashboard.fresh({ "if-none-match": '"abc"' }, asset))
    t.ok(Dashboard.fresh({ "if-none-match": '"zzz", W/"abc"' }, asset))
    t.ok(Dashboard.fresh({ "if-none-match": "*" }, asset))
    t.notOk(Dashboard.fresh({ "if-none-match": '"abcd"' }, asset))
    t.notOk(Dashboard.fresh({}, asset))
  })

  t.test("loadAssets: files by URL path; a missing folder is said, not thrown", async (t) => {
    const dir = await tempDir(t)
    await mkdir(join(dir, "ui"))
    await writeFile(join(dir, "ui", "index.html"), "<!doctype html>")
    await writeFile(join(dir, "ui", "app.js"), "export {}")
    await writeFile(join(dir, "ui", "notes.txt"), "not served")
    const loaded = Dashboard.loadAssets([join(dir, "none"), join(dir, "ui")])
    t.equal(loaded.missing, undefined)
    t.same([...loaded.files.keys()].sort(), ["/", "/dashboard/app.js", "/dashboard/index.html"])
    t.equal(loaded.files.get("/")?.contentType, "text/html; charset=utf-8")
    const none = Dashboard.loadAssets([join(dir, "none")])
    t.equal(none.files.size, 0)
    t.match(none.missing, /not installed \(looked in .*none\)/)
    t.ok(Dashboard.assetDirs.some((d) => d.endsWith("/actors/gateway/dashboard/")), "the shipped folder is looked for")
  })
})
