/**
 * The dashboard's half of the HTTP shim; http.ts does the I/O. Two things:
 *
 * - The page: plain HTML, CSS and ES modules in `dashboard/` next to this module, shipped in the
 *   package as they are (no build step, nothing loaded from anywhere else). They are read once
 *   when the shim starts and served from memory with a strict Content-Security-Policy (scripts
 *   and styles from this origin only, no inline code) and an ETag, so a browser revalidates
 *   cheaply and picks up a new version after an upgrade.
 * - `POST /api/<group>.<op>`: any service endpoint, run by the Gateway's own handlers
 *   (`Gateway.call`) with the JSON body a NATS client would send. The page calls nothing else,
 *   so what it shows and what it may do are exactly what the NATS API says, errors included.
 *
 * Pure apart from reading the files: routing decisions, header sets and the guard policy live
 * here so they can be read (and tested) in one place.
 */
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import type { IncomingHttpHeaders } from "node:http"
import { extname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** The page itself. */
export const pagePath = "/"
/** Its files: `/dashboard/app.js`, ... */
export const assetPrefix = "/dashboard/"
/** `POST /api/<group>.<op>`. */
export const apiPrefix = "/api/"

/** Whether the dashboard side answers `path` (the rest are http.ts's routes). */
export const serves = (path: string): boolean => path === pagePath || path.startsWith(assetPrefix) || path.startsWith(apiPrefix)

/** The `<group>.<op>` of an API path, or undefined when `path` is not under `/api/`. */
export const apiOp = (path: string): string | undefined => (path.startsWith(apiPrefix) ? path.slice(apiPrefix.length) : undefined)

/**
 * Endpoints open without the token, like `/get`: reads of data. Everything else (writes, leases,
 * every `admin.*`, and names the Gateway does not know) needs it when `HTTP_TOKEN` is set, so a
 * new endpoint is guarded until someone decides otherwise.
 */
export const openOps: ReadonlySet<string> = new Set(["kv.get", "kv.scan", "jobs.get", "jobs.list", "jobs.stats"])

/**
 * Sent with the page and its files. The policy allows this origin's scripts, styles, images and
 * fetches and nothing else: no inline script or style, no frames around the page, no forms
 * posting anywhere. Styles set from JavaScript (CSSOM) are not inline styles and stay allowed.
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

export const assetHeaders: Readonly<Record<string, string>> = {
  "Content-Security-Policy": contentSecurityPolicy,
  // Revalidate every time (a 304 costs a header): file names carry no version, so a cached copy
  // must never outlive an upgrade.
  "Cache-Control": "no-cache",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer"
}

/** Sent with every API answer: live data, never cached. */
export const apiHeaders: Readonly<Record<string, string>> = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff"
}

/**
 * Whether a browser sent this request from another site's page. Without a token the API is as
 * open as `/set`, but a page elsewhere (another local dev server, say) must not make a visitor's
 * browser purge a queue: `Sec-Fetch-Site` (every current browser sends it) must say
 * `same-origin`, or `none` for a request the user made directly; without it, an `Origin` must
 * name this host. curl and other programs send neither and are not affected.
 */
export const crossSite = (headers: IncomingHttpHeaders): boolean => {
  const site = headers["sec-fetch-site"]
  if (site !== undefined) return site !== "same-origin" && site !== "none"
  const origin = headers.origin
  if (origin === undefined) return false
  try {
    return new URL(origin).host !== headers.host
  } catch {
    return true
  }
}

const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml"
}

/** One file, ready to send. */
export interface Asset {
  readonly body: string
  readonly contentType: string
  /** A strong validator: the first 16 bytes of the content's SHA-256, quoted. */
  readonly etag: string
}

/**
 * Where the files are. From the sources this module sits next to `dashboard/`; the bundle
 * `bin/archio.js` runs sits in `dist/`, one level below the package root, so from there it is
 * `../actors/gateway/dashboard/`. Both ship in the package (no `files` list excludes them).
 */
export const assetDirs: ReadonlyArray<string> = [
  fileURLToPath(new URL("./dashboard/", import.meta.url)),
  fileURLToPath(new URL("../actors/gateway/dashboard/", import.meta.url))
]

/** The files by URL path (`/` is `index.html`); empty when no folder is found, which `missing` says. */
export interface Assets {
  readonly files: ReadonlyMap<string, Asset>
  /** Why the page cannot be served, when it cannot. */
  readonly missing: string | undefined
}

export const loadAssets = (dirs: ReadonlyArray<string> = assetDirs): Assets => {
  const dir = dirs.find((d) => existsSync(join(d, "index.html")))
  if (dir === undefined) return { files: new Map(), missing: `the dashboard's files are not installed (looked in ${dirs.join(" and ")})` }
  const files = new Map<string, Asset>()
  for (const name of readdirSync(dir).sort()) {
    const contentType = contentTypes[extname(name)]
    if (contentType === undefined) continue
    const body = readFileSync(join(dir, name), "utf8")
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`
    const asset = { body, contentType, etag }
    files.set(`${assetPrefix}${name}`, asset)
    if (name === "index.html") files.set(pagePath, asset)
  }
  return { files, missing: undefined }
}

/** Whether the client's cached copy (`If-None-Match`) is this one. */
export const fresh = (headers: IncomingHttpHeaders, asset: Asset): boolean => {
  const given = headers["if-none-match"]
  if (given === undefined) return false
  return given === "*" || given.split(",").some((tag) => tag.trim().replace(/^W\//, "") === asset.etag)
}
