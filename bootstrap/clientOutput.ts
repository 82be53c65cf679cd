/** How client commands (`archio kv`, `archio jobs`) print: JSON lines for machines, plain lines for people. */

/** One JSON object on its own line (`--json`). */
export const line = (value: unknown): string => `${JSON.stringify(value)}\n`

/** A key, value or cell on one line of human output: JSON-quoted when it holds control characters. */
// eslint-disable-next-line no-control-regex
export const show = (s: string): string => (/[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s)
