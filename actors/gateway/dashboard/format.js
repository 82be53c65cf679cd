/**
 * Numbers, sizes, durations and times as people read them on the dashboard.
 */

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })

/** 12345 -> "12,345"; undefined or null -> "—". */
export const count = (n) => (n === undefined || n === null ? "—" : integer.format(n))

/** Per-second rates: "0", "0.02", "3.4", "1,250". */
export const rate = (r) => {
  if (r === undefined || r === null || Number.isNaN(r)) return "—"
  if (r === 0) return "0"
  if (r < 0.1) return r.toFixed(2)
  if (r < 10) return r.toFixed(1)
  return integer.format(Math.round(r))
}

/** 1536 -> "1.5 KiB". */
export const bytes = (b) => {
  if (b === undefined || b === null) return "—"
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let v = b
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`
}

/** 950 -> "950 ms", 4200 -> "4.2 s", 260000 -> "4m 20s", 9000000 -> "2h 30m", days likewise. */
export const duration = (ms) => {
  if (ms === undefined || ms === null) return "—"
  const a = Math.abs(ms)
  if (a < 1000) return `${Math.round(a)} ms`
  if (a < 10_000) return `${(a / 1000).toFixed(1)} s`
  const s = Math.round(a / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h ${m % 60}m`
  return `${Math.floor(h / 24)}d ${h % 24}h`
}

/** A past time as "12 s ago", a future one as "in 3 s", relative to `now`. */
export const ago = (time, now = Date.now()) => {
  if (time === undefined || time === null) return "—"
  const d = now - time
  if (Math.abs(d) < 1000) return "just now"
  return d > 0 ? `${duration(d)} ago` : `in ${duration(-d)}`
}

const pad = (n) => String(n).padStart(2, "0")

/** Local date and time, `2025-01-31 14:05:09`: sortable, and the same in every locale. */
export const when = (time) => {
  if (time === undefined || time === null) return ""
  const d = new Date(time)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** A JSON value, indented. */
export const json = (value) => JSON.stringify(value, null, 2)
