/**
 * Invariants that must hold in every run (TigerBeetle style): a broken one is a bug, never a
 * condition to handle, so it throws and the simulator reports the seed.
 */
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation"
}

export function invariant(condition: boolean, what: string): asserts condition {
  if (!condition) throw new InvariantViolation(`invariant violated: ${what}`)
}
