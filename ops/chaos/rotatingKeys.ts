/**
 * Register keys that change every `opsPerKey` operations on a slot: each key's history stays
 * short, which keeps the linearizability search of each key small. Used by the chaos register
 * workload and the simulator's register clients.
 */
export class RotatingKeys {
  private readonly generation: number[]
  private readonly done: number[]
  /** Every key handed out, for the final reads. */
  readonly used = new Set<string>()

  constructor(
    slots: number,
    private readonly opsPerKey: number
  ) {
    this.generation = new Array<number>(slots).fill(0)
    this.done = new Array<number>(slots).fill(0)
  }

  /** The key of `slot` for one more operation: `r<slot>-<generation>`. */
  next(slot: number): string {
    if (++this.done[slot]! > this.opsPerKey) {
      this.generation[slot]!++
      this.done[slot] = 1
    }
    const key = `r${slot}-${this.generation[slot]}`
    this.used.add(key)
    return key
  }
}
