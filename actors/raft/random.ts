/**
 * A tiny seeded generator (mulberry32) kept in the consensus state, so election timeouts are
 * reproducible from one seed. The shell seeds it from Effect's `Random` service.
 */
export const nextRandom = (state: { rng: number }): number => {
  state.rng = (state.rng + 0x6d2b79f5) | 0
  let t = state.rng
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** An integer in [min, max). */
export const randomInt = (state: { rng: number }, min: number, max: number): number =>
  min + Math.floor(nextRandom(state) * (max - min))
