/**
 * A strict reader of the Prometheus text format (version 0.0.4) for tests of /metrics: it
 * throws on any line it cannot read, a sample before its family's TYPE, a TYPE before its HELP
 * or given twice, and an escape the format does not allow; label values come back unescaped.
 */
import type { Test } from "tap"

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  readonly samples: ReadonlyArray<Sample>
  /** Family name -> its TYPE. */
  readonly types: ReadonlyMap<string, string>
  readonly helps: ReadonlyMap<string, string>
}

const metaLine = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/
const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(?:,|$)/g

/** A label value as written, unescaped; only `\\`, `\"` and `\n` are escapes. */
const unescape = (written: string, line: string): string =>
  written.replace(/\\(.)/g, (_, c: string) => {
    if (c === "\\" || c === '"') return c
    if (c === "n") return "\n"
    throw new Error(`bad escape \\${c} in: ${line}`)
  })

export const parseExposition = (text: string): Exposition => {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline")
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  const helps = new Map<string, string>()
  for (const line of text.slice(0, -1).split("\n")) {
    const meta = metaLine.exec(line)
    if (meta !== null) {
      const [, kind, name, rest] = meta
      if (kind === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest!)) throw new Error(`bad TYPE: ${line}`)
        if (types.has(name!)) throw new Error(`TYPE given twice for ${name}`)
        if (!helps.has(name!)) throw new Error(`TYPE before HELP for ${name}`)
        types.set(name!, rest!)
      } else {
        if (helps.has(name!)) throw new Error(`HELP given twice for ${name}`)
        if (/\\[^\\n]/.test(rest!)) throw new Error(`bad escape in HELP: ${line}`)
        helps.set(name!, rest!)
      }
      continue
    }
    const m = sampleLine.exec(line)
    if (m === null) throw new Error(`unreadable line: ${JSON.stringify(line)}`)
    const [, name, labelText, valueText] = m
    const labels: Record<string, string> = {}
    if (labelText !== undefined && labelText !== "") {
      let consumed = 0
      for (const pair of labelText.matchAll(labelPair)) {
        if (pair[1]! in labels) throw new Error(`label ${pair[1]} twice: ${line}`)
        labels[pair[1]!] = unescape(pair[2]!, line)
        consumed += pair[0].length
      }
      if (consumed !== labelText.length) throw new Error(`bad labels: ${line}`)
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText)
    if (Number.isNaN(value) && valueText !== "NaN") throw new Error(`bad value: ${line}`)
    const family = types.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, "")
    if (!types.has(family)) throw new Error(`sample before its TYPE: ${line}`)
    samples.push({ name: name!, labels, value })
  }
  return { samples, types, helps }
}

/** The value of the first sample named `name` whose labels include `labels`. */
export const value = (e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined =>
  e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

/** Buckets of every histogram series rise with `le`, end at `+Inf` = `_count`, and have a `_sum`. */
export const checkHistograms = (t: Test, e: Exposition): void => {
  for (const [family, type] of e.types) {
    if (type !== "histogram") continue
    const bySeries = new Map<string, { labels: Record<string, string>; buckets: Array<Sample> }>()
    for (const s of e.samples.filter((s) => s.name === `${family}_bucket`)) {
      const labels = Object.fromEntries(Object.entries(s.labels).filter(([k]) => k !== "le"))
      const key = JSON.stringify(labels)
      const series = bySeries.get(key) ?? { labels, buckets: [] }
      series.buckets.push(s)
      bySeries.set(key, series)
    }
    for (const [key, { labels, buckets }] of bySeries) {
      const les = buckets.map((b) => (b.labels["le"] === "+Inf" ? Infinity : Number(b.labels["le"])))
      t.same(les, [...les].sort((a, b) => a - b), `${family}${key} le ascending`)
      t.equal(les[les.length - 1], Infinity, `${family}${key} ends at +Inf`)
      const counts = buckets.map((b) => b.value)
      t.ok(counts.every((c, i) => i === 0 || c >= counts[i - 1]!), `${family}${key} cumulative`)
      const count = e.samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key)?.value
      t.equal(counts[counts.length - 1], count, `${family}${key} +Inf = count`)
      t.ok(e.samples.some((s) => s.name === `${family}_sum` && JSON.stringify(s.labels) === JSON.stringify(labels)), `${family}${key} has a sum`)
    }
  }
}
