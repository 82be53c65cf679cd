/** How `archio kv` commands print: JSON lines for machines, one line per key for people. */

/** One JSON object on its own line (`--json`). */
export const line = (value: unknown): string => `${JSON.stringify(value)}\n`

/** A key or value on one line of human output: JSON-quoted when it holds control characters. */
// eslint-disable-next-line no-control-regex
export const show = (s: string): string => (/[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s)

export const withNewline = (s: string): string => (s.endsWith("\n") ? s : `${s}\n`)
