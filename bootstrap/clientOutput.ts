/**
 * How the commands that talk to a cluster (`archio kv`, `archio jobs`, `archio status`,
 * `archio cluster`) print: JSON lines for machines, plain lines and aligned tables for people.
 */

/** One JSON object on its own line (`--json`). */
export const line = (value: unknown): string => `${JSON.stringify(value)}\n`

/** A key, value or cell on one line of human output: JSON-quoted when it holds control characters. */
// eslint-disable-next-line no-control-regex
export const show = (s: string): string => (/[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s)

/**
 * A header row and rows as aligned columns two spaces apart, one line each, every line ending in
 * a newline. The last column is not padded and no line ends in spaces, so output pasted or
 * compared line by line carries no invisible tails.
 */
export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const all = [headers, ...rows]
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)))
  return all.map((r) => `${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ").trimEnd()}\n`).join("")
}
