/**
 * The JobWorker actor (active on the leader): hands ready jobs to worker processes and keeps
 * job time moving.
 *
 * - Lease requests park here until a job is ready in one of their queues or their wait ends.
 *   Which jobs a lease gets is decided by the state machine when the `jobs.lease` entry
 *   applies, so two leases can never take the same job; this actor only decides *when* to
 *   propose one, and how many to ask for (`planLeases`: never more than the ready jobs not
 *   already claimed by leases in flight).
 * - When a timer is due (a job's delay, retry wait, lease end or retention end, or a key's
 *   TTL) it proposes a `jobs.tick` entry so the state machines see the leader time pass
 *   (`tickDue`): a key expires, and its event is published, even when nothing else is written.
 * - On losing leadership it answers every parked request `unavailable` with the leader it
 *   knows, so clients go to the new leader, which resumes from the replicated state.
 *
 * The decisions are plain functions of their inputs (`planLeases`, `tickDue`); the shell
 * (`make`) feeds them the time, the applied state and the consensus role.
 */
import { Effect, type Scope } from "effect"
import type { JobSpec, LeaseRequest } from "../../protocol/client.ts"
import { archioError, ArchioError } from "../../protocol/errors.ts"
import { EntryKind, type NodeId } from "../../protocol/raft.ts"
import { encodeCommand, type AppliedBatch, type Applier, type ApplyOutcome, type LoggedJobCommand } from "../applier/applier.ts"
import type { Responder } from "../gateway/responder.ts"
import type { Proposal } from "../raft/replicator.ts"
import type { Consensus } from "../raft/shell.ts"
import { Supervisor } from "../services/supervisor.ts"
import { Timers } from "../services/timers.ts"

/**
 * How often the leader checks while requests are parked, a tick is in flight or a job timer is
 * due; with none of these it sleeps until the next due time (at most `followerPollEveryMs`).
 * Applied job transitions wake it at once; applied key changes only when a key now expires
 * before it would have looked.
 */
export const pollEveryMs = 5
/**
 * How often a follower looks whether it leads now: only the leader has work here, and 200
 * wake-ups a second on every follower were a visible share of an idle cluster's CPU. An
 * election takes longer than this, so a new leader starts its timers without a gap that matters.
 */
export const followerPollEveryMs = 50

export interface ParkedLease {
  readonly req: LeaseRequest
  readonly r: Responder
  /** When to answer with no jobs. */
  readonly deadline: number
  /** Jobs asked for by this request's lease entry in flight, per queue; null when none is. */
  claimed: Map<string, number> | null
}

/**
 * Which parked requests to propose a lease for now, and how many jobs each may claim: oldest
 * request first, each taking from the ready jobs of its queues (in its order) that no lease in
 * flight has claimed. `budget` is the ready count per queue minus what is in flight; it is
 * updated as claims are made.
 */
export const planLeases = (
  parked: ReadonlyArray<ParkedLease>,
  budget: Map<string, number>
): Array<{ readonly p: ParkedLease; readonly claim: Map<string, number> }> => {
  const plans: Array<{ p: ParkedLease; claim: Map<string, number> }> = []
  for (const p of parked) {
    if (p.claimed !== null) continue
    let want = p.req.max ?? 1
    const claim = new Map<string, number>()
    for (const q of p.req.queues) {
      const free = budget.get(q) ?? 0
      if (free <= 0 || want === 0) continue
      const take = Math.min(free, want)
      claim.set(q, (claim.get(q) ?? 0) + take)
      budget.set(q, free - take)
      want -= take
    }
    if (claim.size > 0) plans.push({ p, claim })
  }
  return plans
}

/** True when a job timer is due and no tick is already on its way (see `tickMs` slack below). */
export const tickDue = (nextDue: number | undefined, now: number, slackMs: number, inFlight: boolean): boolean =>
  !inFlight && nextDue !== undefined && nextDue + slackMs <= now

const earliest = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.min(a, b))

export interface JobWorkerOptions {
  readonly id: NodeId
  /** Raft tick length: entries carry the time of the last tick, so a tick waits this much more. */
  readonly tickMs: number
  /** Extra time a lease entry may take to commit before its request is answered `timeout`. */
  readonly requestTimeoutMs: number
}

/**
 * How many of an enqueue's jobs are ready the moment it applies, per queue (no delay, no run
 * time): those a parked lease can take in the same append.
 */
export const readyOnApply = (jobs: ReadonlyArray<JobSpec>): Map<string, number> => {
  const ready = new Map<string, number>()
  for (const j of jobs) if ((j.delay ?? 0) === 0 && j.runAt === undefined) ready.set(j.queue, (ready.get(j.queue) ?? 0) + 1)
  return ready
}

/** Lease entries to append right after an enqueue's entry, and how their requests learn the outcome. */
export interface Alongside {
  readonly proposals: ReadonlyArray<Proposal>
  /** The enqueue's entry was appended at `index` in `term`; the leases follow it in order. */
  appended(index: number, term: number): void
  /** The append was refused: the leases were not proposed. */
  refused(err: ArchioError): void
}

export interface JobWorker {
  /** A lease request on the leader: served now, or parked until jobs are ready or it times out. */
  lease(req: LeaseRequest, r: Responder): void
  /**
   * Parked lease requests that can take jobs `ready` (per queue) will make ready: their lease
   * entries go into the same append as the enqueue, so a parked worker gets a new job after one
   * commit instead of two (the enqueue's, then its lease's). Which jobs each lease takes is still
   * decided when it applies, after the enqueue. Undefined when no parked request wants them.
   */
  alongside(ready: ReadonlyMap<string, number>): Alongside | undefined
}

const actor = "jobWorker"

/**
 * Starts the JobWorker: it listens to what the Applier applies (job transitions may serve
 * parked requests; a key with a TTL may now expire before the next check) and keeps one timer.
 */
export const make = (
  options: JobWorkerOptions,
  consensus: Consensus,
  applier: Applier
): Effect.Effect<JobWorker, never, Timers | Supervisor | Scope.Scope> =>
  Effect.gen(function* () {
    const timers = yield* Timers
    const supervisor = yield* Supervisor
    let now = timers.now()
    let parked: ParkedLease[] = []
    /** Jobs claimed by lease entries in flight, per queue. */
    const inFlight = new Map<string, number>()
    let tickInFlight = false

    const propose = (cmd: LoggedJobCommand, done: (outcome: ApplyOutcome) => void): void => {
      consensus.propose([{ kind: EntryKind.Command, data: encodeCommand(cmd) }], (p) => {
        if (p.ok) applier.waitFor(p.firstIndex, p.term, done)
        else done(notLeader(p.leader))
      })
    }

    const notLeader = (leader: NodeId | null): ArchioError =>
      archioError("unavailable", leader === null ? "no leader is elected right now; retry shortly" : `node ${options.id} no longer leads; retry`, { leader })

    const answer = (p: ParkedLease, jobs: ReadonlyArray<unknown>): void => p.r.ok({ ok: true, jobs, node: options.id })

    const release = (claim: Map<string, number>): void => {
      for (const [q, n] of claim) inFlight.set(q, (inFlight.get(q) ?? 0) - n)
    }

    /** Marks `claim` as taken by `p`'s lease entry, which it returns. */
    const claimFor = (p: ParkedLease, claim: Map<string, number>): LoggedJobCommand => {
      p.claimed = claim
      let total = 0
      for (const [q, n] of claim) {
        inFlight.set(q, (inFlight.get(q) ?? 0) + n)
        total += n
      }
      return {
        op: "jobs.lease",
        queues: p.req.queues,
        max: total,
        workerId: p.req.workerId,
        ...(p.req.leaseMs === undefined ? {} : { leaseMs: p.req.leaseMs })
      }
    }

    /** What `p`'s lease entry did: its answer, or another wait when others took the jobs first. */
    const leased =
      (p: ParkedLease, claim: Map<string, number>) =>
      (outcome: ApplyOutcome): void => {
        release(claim)
        p.claimed = null
        if (outcome instanceof ArchioError) return settle(p, () => p.r.fail(outcome))
        if (!outcome.ok) return settle(p, () => p.r.fail(archioError(outcome.code, outcome.message, outcome.detail)))
        const jobs = (outcome as { jobs?: ReadonlyArray<unknown> }).jobs ?? []
        // Another lease took the jobs first: keep waiting if there is time left.
        if (jobs.length === 0 && now < p.deadline) return serve()
        settle(p, () => answer(p, jobs))
      }

    const serve = (): void => {
      if (parked.length === 0) return
      const budget = new Map<string, number>()
      for (const p of parked) {
        for (const q of p.req.queues) if (!budget.has(q)) budget.set(q, applier.jobs.readyCount([q]) - (inFlight.get(q) ?? 0))
      }
      for (const { p, claim } of planLeases(parked, budget)) propose(claimFor(p, claim), leased(p, claim))
    }

    const alongside = (ready: ReadonlyMap<string, number>): Alongside | undefined => {
      if (parked.length === 0 || ready.size === 0) return undefined
      const plans = planLeases(parked, new Map(ready))
      if (plans.length === 0) return undefined
      const done = plans.map(({ p, claim }) => leased(p, claim))
      return {
        proposals: plans.map(({ p, claim }) => ({ kind: EntryKind.Command, data: encodeCommand(claimFor(p, claim)) })),
        appended: (index, term) => done.forEach((d, i) => applier.waitFor(index + 1 + i, term, d)),
        refused: (err) => done.forEach((d) => d(err))
      }
    }

    const settle = (p: ParkedLease, reply: () => void): void => {
      parked = parked.filter((x) => x !== p)
      reply()
    }

    /** How long from `now` until a tick for `due` is worth proposing (see `tickDue`), at least `pollEveryMs`. */
    const untilDue = (due: number): number => Math.max(pollEveryMs, due + options.tickMs - now)

    /** One check; answers how long to wait before the next. */
    const poll = (): number => {
      now = timers.now()
      const status = consensus.status()
      leading = status.role === "leader"
      if (!leading) {
        if (parked.length > 0) {
          const stranded = parked
          parked = []
          for (const p of stranded) p.r.fail(notLeader(status.leader))
        }
        return followerPollEveryMs
      }
      // Requests whose wait ended with nothing ready get an empty answer; one whose lease
      // entry is still in flight waits for it, up to the request timeout.
      if (parked.length > 0) {
        const still: ParkedLease[] = []
        for (const p of parked) {
          if (p.r.done) continue
          if (p.claimed === null && p.deadline <= now) answer(p, [])
          else if (p.claimed !== null && p.deadline + options.requestTimeoutMs <= now) {
            p.r.fail(archioError("timeout", "the lease did not commit in time; a job it took returns when its lease ends"))
          } else still.push(p)
        }
        parked = still
      }
      const due = earliest(applier.jobs.nextDue(), applier.kv.nextExpiry())
      if (tickDue(due, now, options.tickMs, tickInFlight)) {
        tickInFlight = true
        propose({ op: "jobs.tick" }, () => {
          tickInFlight = false
        })
      }
      if (parked.length > 0 || tickInFlight) return pollEveryMs
      if (due === undefined) return followerPollEveryMs
      return Math.min(followerPollEveryMs, untilDue(due))
    }

    // Plain timers, not a fiber per check: the leader checks up to 200 times a second.
    let cancelTimer: (() => void) | undefined
    let timerAt = Infinity
    let stopped = false
    /** As of the last check: followers ignore wakes (they check every 50 ms anyway). */
    let leading = false
    const schedule = (waitMs: number): void => {
      const at = timers.now() + waitMs
      if (stopped || at >= timerAt) return
      cancelTimer?.()
      timerAt = at
      cancelTimer = timers.after(waitMs, check)
    }
    const check = supervisor.guard(actor, (): void => {
      cancelTimer = undefined
      timerAt = Infinity
      schedule(poll())
    })
    yield* Effect.acquireRelease(Effect.sync(check), () =>
      Effect.sync(() => {
        stopped = true
        cancelTimer?.()
      })
    )

    applier.onApplied(
      supervisor.guard(actor, (batch: AppliedBatch) => {
        if (batch.jobEvents.length > 0) {
          if (parked.length > 0 && batch.jobEvents.some((e) => e.state === "ready")) serve()
          if (leading) schedule(pollEveryMs)
        }
        // Not a check 5 ms after every applied put: with one client writing that was 200 timer
        // wake-ups a second on the leader, all but those for a TTL finding nothing to do.
        if (batch.kvEvents.length > 0 && leading) {
          const expiry = applier.kv.nextExpiry()
          if (expiry === undefined) return
          now = timers.now()
          schedule(untilDue(expiry))
        }
      })
    )

    const worker: JobWorker = {
      alongside,
      lease: (req, r) => {
        now = timers.now()
        parked.push({ req, r, deadline: now + (req.waitMs ?? 0), claimed: null })
        schedule(pollEveryMs)
        serve()
        // Nothing to take and no wait asked for: answer now rather than at the next poll.
        const p = parked[parked.length - 1]
        if (p !== undefined && p.r === r && p.claimed === null && (req.waitMs ?? 0) === 0) settle(p, () => answer(p, []))
      }
    }
    return worker
  })
