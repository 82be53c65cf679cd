/**
 * One life of a simulated process: every callback that reaches it (a message, a timer, a disk
 * write finishing) runs through `run`. A paused process (SIGSTOP, a long GC pause) runs nothing
 * until it resumes, then everything that came meanwhile, in order; a dead one never runs again.
 */
export class Life {
  private dead = false
  private paused = false
  private held: Array<() => void> = []

  get alive(): boolean {
    return !this.dead
  }

  get isPaused(): boolean {
    return this.paused
  }

  /** Runs `fn` now, when the process resumes, or never if it died first. */
  run(fn: () => void): void {
    if (this.dead) return
    if (this.paused) this.held.push(fn)
    else fn()
  }

  pause(): void {
    if (!this.dead) this.paused = true
  }

  /** Runs what waited, in arrival order, as the process would on waking. */
  resume(): void {
    this.paused = false
    const held = this.held
    this.held = []
    for (const fn of held) this.run(fn)
  }

  kill(): void {
    this.dead = true
    this.held = []
  }
}
