/** How `archio kv` commands print values; JSON lines and quoting are shared with `archio jobs` (../clientOutput.ts). */

export const withNewline = (s: string): string => (s.endsWith("\n") ? s : `${s}\n`)
