/** Values for the benches that load big states (snapshot.ts, memory.ts, footprint.ts). */

/** Incompressible values: slices of one random pool, each a different slice. */
export const valueSource = (bytes: number): ((i: number) => string) => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  let pool = ""
  let x = 0x9e3779b9
  for (let i = 0; i < 1 << 16; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    pool += alphabet[(x >>> 0) & 63]
  }
  return (i) => {
    const at = (i * 7919) % (pool.length - bytes)
    return pool.slice(at, at + bytes)
  }
}
