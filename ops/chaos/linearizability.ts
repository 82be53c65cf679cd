/**
 * A linearizability checker: the Wing-Gong-Lowe search (as in Porcupine and Knossos' `wgl`),
 * with per-key partitioning and memoization, plus the register model the chaos register
 * workload needs.
 *
 * The search (Lowe, "Testing for linearizability", 2017): put every operation's call and return
 * on one time-ordered list. Walk it; at a call, try to linearize that operation now (the model
 * must accept it in the current state); if it fits, remove its call and return from the list,
 * push it on a stack and start again from the head. Reaching a return means an operation that
 * has already returned was never placed: undo the last choice (pop) and try the next candidate.
 * An empty list is a linearization. A cache of (set of linearized operations, model state)
 * configurations already explored keeps the search from repeating itself.
 *
 * Unknown outcomes (`info`): the operation may take effect at any point after its call, or
 * never. It gets a return at +infinity, after every other event; reaching such a return means
 * every operation that did complete has been placed, so the search succeeds there, leaving the
 * remaining unknown operations out (they "never happened").
 *
 * P-compositionality (Herlihy & Wing): a history is linearizable iff each key's sub-history is,
 * so each key is searched alone, which keeps the search small.
 *
 * Register model (per key): state = the value (null = absent). `read v` fits when the state is
 * v; `write v` always fits and sets v; `cas [from, to]` fits when the state is `from` and sets
 * `to`; a refused cas (`cas-refused`, below) fits when the state is not `from` and changes
 * nothing. A read whose outcome is unknown says nothing and is left out. Other failed
 * operations (`fail`: definitely not applied: a refused write, a `bad_request`) are left out, as
 * Knossos does.
 *
 * Refused cas. A cas refused with `conflict` was applied as a refusal: at some point while it
 * ran, the key's mod revision was not the expected one. Written values are unique and every
 * expectation names the revision that wrote its value (register.ts), so "not the expected
 * revision" is "the value was not `from`": the search places the refusal like a read that fits
 * any other value, and a wrong refusal is a violation instead of a dropped operation. (The
 * session's refusal of an out-of-date retry is also a `conflict`, but never reaches a recorded
 * operation: the client has one write per lane in flight, and moves on only when it ended.)
 *
 * When the refusal reports the key's revision (`revision` on the completion) and that revision
 * maps to one value on this key, the refusal also saw that value (`current`) and fits only
 * there. The map comes from `ok` writes and cas that recorded the revision they wrote; a
 * revision claimed by two of them, or by an `ok` read with another value, maps to nothing, and
 * so does a revision nobody acknowledged (an unknown write's). Revision 0 maps to "absent": the
 * model has no delete. Sound because a key's mod revision is the log revision of the entry that
 * last wrote the key, an entry writes a key at most once, and a refusal (retries included: the
 * session answers them with the recorded result) is decided at one point: "the key was at
 * revision r" and "the value was the one written at r" are one condition there.
 *
 * Leaving operations out, to keep the search small; each removal keeps the history's verdict:
 * - An unknown write or cas of w (w = what it writes) is left out when nothing could depend on
 *   it: no read returned w, no cas expected w, no refusal saw w (`current`), and no refusal that
 *   saw no named value, expected something other than w and returned after its call (so could
 *   be placed after it). In any linearization containing it, no operation then sits between it
 *   and the next write (each would need the state w), so removing it changes no other step;
 *   and a history valid without it is valid with it ("never happened"). Without this each
 *   timeout would double the search space. A refusal that names no value is what an unknown
 *   write can explain (the value differed from `from` only because the timed-out write took
 *   effect), so it keeps the unknown writes called before it returned.
 * - A refusal that names no value is left out when `from` was certainly gone before it was
 *   called: every operation writing `from` is acknowledged and was followed, in real time and
 *   before the refusal's call, by an acknowledged write of another value (so was the initial
 *   state, if `from` is absent). Wherever the refusal is placed, the last write before it wrote
 *   another value: it fits everywhere and constrains nothing. Most refusals that name no value
 *   are of this kind (the workload expects stale values on purpose), and leaving them out keeps
 *   them from pinning unknown writes in.
 * Both rules run until neither removes anything (each removal can enable the other).
 */
import { pairOps, type HistoryEntry, type PairedOp } from "./history.ts"

// ---------------------------------------------------------------------------------------------
// The generic search

export interface Model<S, I> {
  readonly init: S
  /** The state after `input` is applied in `state`, or undefined when it cannot happen there. */
  readonly step: (state: S, input: I) => S | undefined
  /** Equal for equal states (the memo key). */
  readonly hash: (state: S) => string | number
  readonly describeState?: (state: S) => string
}

export interface Operation<I> {
  readonly id: number
  /** Invocation time. */
  readonly call: number
  /** Completion time; `Infinity` when unknown: the operation may take effect after `call`, or never. */
  readonly ret: number
  readonly input: I
}

export interface SearchOptions {
  /** Give up ("unknown") after this many search steps; default 20 million. */
  readonly maxSteps?: number
}

/** The furthest the search got before it had to give up on every order. */
export interface Deepest<S> {
  /** Operation ids in the order they were linearized. */
  readonly linearized: ReadonlyArray<number>
  /** The model state after each of them. */
  readonly states: ReadonlyArray<S>
  /** The operation that returned but could not be placed after that prefix. */
  readonly blocked: number
  /** Operations that were candidates at that point (called, not yet placed). */
  readonly candidates: ReadonlyArray<number>
}

export type SearchResult<S> =
  | { readonly result: "ok"; readonly steps: number; readonly linearization: ReadonlyArray<number> }
  | { readonly result: "violation"; readonly steps: number; readonly deepest: Deepest<S> }
  | { readonly result: "unknown"; readonly steps: number; readonly reason: string }

interface Node {
  /** Index into the operation array; -1 for the head sentinel. */
  readonly op: number
  /** For a call: its return node. Undefined for returns. */
  match: Node | undefined
  prev: Node | undefined
  next: Node | undefined
}

const lift = (entry: Node): void => {
  entry.prev!.next = entry.next
  entry.next!.prev = entry.prev
  const match = entry.match!
  match.prev!.next = match.next
  if (match.next !== undefined) match.next.prev = match.prev
}

const unlift = (entry: Node): void => {
  const match = entry.match!
  match.prev!.next = match
  if (match.next !== undefined) match.next.prev = match
  entry.prev!.next = entry
  entry.next!.prev = entry
}

/** A small deterministic generator for the Zobrist hash words. */
const splitmix32 = (seed: number): (() => number) => {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

/**
 * Is there an order of `ops`, consistent with real time (an operation that returned before
 * another was called comes first), in which every step is accepted by `model`? Unknown
 * operations (`ret: Infinity`) may be placed anywhere after their call, or left out.
 */
export const checkOperations = <S, I>(model: Model<S, I>, ops: ReadonlyArray<Operation<I>>, options: SearchOptions = {}): SearchResult<S> => {
  const maxSteps = options.maxSteps ?? 20_000_000
  const n = ops.length
  for (const op of ops) {
    if (!(op.ret >= op.call)) throw new Error(`operation ${op.id} returns (${op.ret}) before it is called (${op.call})`)
  }
  // Events in time order; at equal times calls come first, so touching operations count as
  // concurrent (the lenient reading).
  const events: Array<{ readonly op: number; readonly call: boolean; readonly time: number }> = []
  ops.forEach((op, i) => {
    events.push({ op: i, call: true, time: op.call })
    events.push({ op: i, call: false, time: op.ret })
  })
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1))
  const head: Node = { op: -1, match: undefined, prev: undefined, next: undefined }
  const callNodes: Array<Node | undefined> = new Array(n)
  let tail = head
  const pendingCalls = new Map<number, Node>()
  for (const e of events) {
    const node: Node = { op: e.op, match: undefined, prev: tail, next: undefined }
    tail.next = node
    tail = node
    if (e.call) {
      pendingCalls.set(e.op, node)
      callNodes[e.op] = node
    } else {
      pendingCalls.get(e.op)!.match = node
    }
  }

  // Zobrist hashing of the linearized set, with the exact bitset kept to rule out collisions.
  const words = Math.max(1, Math.ceil(n / 32))
  const rand = splitmix32(0x5eed)
  const zob1 = new Uint32Array(n)
  const zob2 = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    zob1[i] = rand()
    zob2[i] = rand()
  }
  const bits = new Uint32Array(words)
  let h1 = 0
  let h2 = 0
  const cache = new Map<string, Array<Uint32Array>>()
  /** Adds operation i to the linearized set, or takes it out. */
  const toggle = (i: number): void => {
    const w = i >>> 5
    bits[w] = (bits[w] ?? 0) ^ (1 << (i & 31))
    h1 = (h1 ^ (zob1[i] ?? 0)) >>> 0
    h2 = (h2 ^ (zob2[i] ?? 0)) >>> 0
  }
  const sameBits = (a: Uint32Array): boolean => {
    for (let w = 0; w < words; w++) if (a[w] !== bits[w]) return false
    return true
  }

  const calls: Array<{ readonly node: Node; readonly state: S }> = []
  let state = model.init
  let steps = 0
  let deepest: Deepest<S> | undefined
  let entry = head.next
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { result: "unknown", steps, reason: `gave up after ${maxSteps} search steps` }
    const node = entry!
    const op = ops[node.op]!
    if (node.match !== undefined) {
      // A call: try to linearize this operation now.
      const next = model.step(state, op.input)
      let placed = false
      if (next !== undefined) {
        const i = node.op
        toggle(i)
        const key = `${h1}:${h2}:${model.hash(next)}`
        const bucket = cache.get(key)
        if (bucket === undefined || !bucket.some(sameBits)) {
          if (bucket === undefined) cache.set(key, [bits.slice()])
          else bucket.push(bits.slice())
          calls.push({ node, state })
          state = next
          lift(node)
          entry = head.next
          placed = true
        } else {
          toggle(i)
        }
      }
      if (!placed) entry = node.next
    } else {
      // A return: if it is an unknown operation's, every known one has been placed.
      if (op.ret === Infinity) {
        return { result: "ok", steps, linearization: calls.map((c) => ops[c.node.op]!.id) }
      }
      if (deepest === undefined || calls.length > deepest.linearized.length) {
        const candidates: number[] = []
        for (let c: Node | undefined = head.next; c !== undefined && c !== node; c = c.next) if (c.match !== undefined) candidates.push(ops[c.op]!.id)
        const states = calls.length === 0 ? [] : [...calls.slice(1).map((c) => c.state), state]
        deepest = { linearized: calls.map((c) => ops[c.node.op]!.id), states, blocked: op.id, candidates }
      }
      const top = calls.pop()
      if (top === undefined) return { result: "violation", steps, deepest: deepest! }
      toggle(top.node.op)
      state = top.state
      unlift(top.node)
      entry = top.node.next
    }
  }
  return { result: "ok", steps, linearization: calls.map((c) => ops[c.node.op]!.id) }
}

// ---------------------------------------------------------------------------------------------
// The register model

/** A register operation; values are interned (0 = absent). */
export type RegisterInput =
  | { readonly f: "read"; readonly value: number }
  | { readonly f: "write"; readonly value: number }
  | { readonly f: "cas"; readonly from: number; readonly to: number }
  /** A cas refused with `conflict`: the value was not `from`; it was `current` when known. */
  | { readonly f: "cas-refused"; readonly from: number; readonly current?: number }

export const registerModel: Model<number, RegisterInput> = {
  init: 0,
  step: (state, input) => {
    switch (input.f) {
      case "read":
        return input.value === state ? state : undefined
      case "write":
        return input.value
      case "cas":
        return input.from === state ? input.to : undefined
      case "cas-refused":
        return input.from !== state && (input.current === undefined || input.current === state) ? state : undefined
    }
  },
  hash: (state) => state
}

export interface KeyResult {
  readonly key: string
  readonly result: "ok" | "violation" | "unknown"
  /** Operations searched (after leaving out failed ones and those nothing depends on). */
  readonly ops: number
  /** Of those: unknown writes and cas kept in, and refused cas searched as observations. */
  readonly unknown: number
  readonly refused: number
  readonly steps: number
  readonly ms: number
}

export interface Violation {
  readonly key: string
  /** A readable account: the operation that could not be placed, the longest valid prefix. */
  readonly explanation: string
  readonly deepest: Deepest<number>
}

/** What became of the cas refused with `conflict` (see the module comment). */
export interface RefusedCasCounts {
  /** Searched as observations ("the value was not `from`"). */
  readonly searched: number
  /** Of those, the ones whose reported revision also named the value they saw. */
  readonly pinned: number
  /** Left out: their expected value was certainly overwritten before they were called. */
  readonly leftOut: number
}

export interface RegisterReport {
  /** true: linearizable; false: a violation; "unknown": the search gave up on some key. */
  readonly valid: boolean | "unknown"
  readonly counts: {
    readonly ops: number
    readonly ok: number
    readonly fail: number
    readonly info: number
    readonly byF: Readonly<Record<string, { ok: number; fail: number; info: number }>>
  }
  readonly keys: number
  /** Operations that entered the search, and unknown writes left out as unobserved. */
  readonly searched: number
  readonly prunedUnknown: number
  /** Unknown writes and cas that entered the search. */
  readonly keptUnknown: number
  readonly refusedCas: RefusedCasCounts
  readonly results: ReadonlyArray<KeyResult>
  readonly violations: ReadonlyArray<Violation>
  readonly unknownKeys: ReadonlyArray<string>
}

const show = (v: unknown): string => (v === null || v === undefined ? "absent" : JSON.stringify(v))

const seconds = (ns: number | undefined): string => (ns === undefined || ns === Infinity ? "∞" : `${(ns / 1e9).toFixed(3)}s`)

/** The key's mod revision an operation recorded: written, read, or seen by a refusal. */
const revisionOf = (op: PairedOp): number | undefined => {
  const revision = op.complete?.["revision"]
  return typeof revision === "number" ? revision : undefined
}

/** One operation on one line, e.g. `#12 c3 cas r0-0 "a"→"b" ok [1.200s, 1.204s]`. */
export const describeOp = (op: PairedOp): string => {
  const inv = op.invoke
  let what: string
  if (op.f === "read") what = op.type === "ok" ? `read → ${show(op.complete?.value)}` : "read"
  else if (op.f === "cas" && Array.isArray(inv.value)) what = `cas ${show(inv.value[0])}→${show(inv.value[1])}`
  else what = `${op.f} ${show(inv.value)}`
  const revision = revisionOf(op)
  const err = op.complete?.error !== undefined ? ` (${op.complete.error}${revision === undefined ? "" : ` at revision ${revision}`})` : ""
  const node = typeof op.complete?.["node"] === "string" ? ` @${op.complete["node"]}` : ""
  return `#${op.id} ${op.client} ${what} ${op.type}${err}${node} [${seconds(inv.time)}, ${seconds(op.end)}]`
}

const asValue = (v: unknown, where: string): string | null => {
  if (v === null || v === undefined) return null
  if (typeof v === "string") return v
  throw new Error(`history: ${where}: register values are strings or null, got ${JSON.stringify(v)}`)
}

const casValues = (op: PairedOp): readonly [string | null, string | null] => {
  const v = op.invoke.value
  if (!Array.isArray(v) || v.length !== 2) throw new Error(`history: cas #${op.id}: value must be [expected, new]`)
  return [asValue(v[0], `cas #${op.id}`), asValue(v[1], `cas #${op.id}`)]
}

/** A cas the server refused because the key was not at the expected revision. */
const isRefusedCas = (op: PairedOp): boolean => op.f === "cas" && op.type === "fail" && op.complete?.error === "conflict"

/** The value a revision of this key holds, and the acknowledged write that put it there. */
interface RevisionValue {
  readonly value: string | null
  /** The `ok` write or cas that recorded this revision; undefined for revision 0 (absent). */
  readonly writer: PairedOp | undefined
}

/**
 * Revision -> value for one key, from what `ok` operations recorded; only revisions for which
 * every claim agrees and an acknowledged write (or revision 0, absent) is the source.
 */
const revisionValues = (ops: ReadonlyArray<PairedOp>): ReadonlyMap<number, RevisionValue> => {
  const claims = new Map<number, { values: Set<string | null>; writers: PairedOp[] }>()
  const claim = (revision: number, value: string | null, writer: PairedOp | undefined): void => {
    let c = claims.get(revision)
    if (c === undefined) claims.set(revision, (c = { values: new Set(), writers: [] }))
    c.values.add(value)
    if (writer !== undefined) c.writers.push(writer)
  }
  claim(0, null, undefined)
  for (const op of ops) {
    const revision = revisionOf(op)
    if (op.type !== "ok" || revision === undefined) continue
    if (op.f === "read") claim(revision, asValue(op.complete?.value, `read #${op.id}`), undefined)
    else if (op.f === "write") claim(revision, asValue(op.invoke.value, `write #${op.id}`), op)
    else if (op.f === "cas") claim(revision, casValues(op)[1], op)
  }
  const out = new Map<number, RevisionValue>()
  for (const [revision, c] of claims) {
    const [value] = c.values
    if (c.values.size !== 1 || value === undefined) continue
    if (revision === 0) out.set(0, { value: null, writer: undefined })
    else if (c.writers.length === 1) out.set(revision, { value, writer: c.writers[0] })
  }
  return out
}

interface Prepared {
  readonly ops: Array<Operation<RegisterInput>>
  /** Unknown writes and cas left out: nothing could depend on them. */
  readonly pruned: number
  /** Unknown writes and cas searched. */
  readonly keptUnknown: number
  readonly refused: RefusedCasCounts
  readonly names: ReadonlyArray<string | null>
  /** For each searched refused cas that names the value it saw: that value's revision entry. */
  readonly pinnedBy: ReadonlyMap<number, RevisionValue>
}

/** Turns one key's paired operations into search operations (see the module comment). */
export const prepareRegisterKey = (ops: ReadonlyArray<PairedOp>): Prepared => {
  const names: Array<string | null> = [null]
  const ids = new Map<string, number>()
  const intern = (v: string | null): number => {
    if (v === null) return 0
    let id = ids.get(v)
    if (id === undefined) {
      id = names.length
      names.push(v)
      ids.set(v, id)
    }
    return id
  }
  const atRevision = revisionValues(ops)
  type Candidate = {
    readonly op: PairedOp
    readonly input: RegisterInput
    readonly unknown: boolean
    readonly call: number
    readonly ret: number
    readonly pinnedBy?: RevisionValue
  }
  const candidates: Candidate[] = []
  const add = (op: PairedOp, input: RegisterInput, pinnedBy?: RevisionValue): void => {
    const unknown = op.type === "info"
    const candidate = { op, input, unknown, call: op.invoke.time, ret: unknown ? Infinity : op.end! }
    candidates.push(pinnedBy === undefined ? candidate : { ...candidate, pinnedBy })
  }
  for (const op of ops) {
    if (op.f === "read") {
      if (op.type === "ok") add(op, { f: "read", value: intern(asValue(op.complete?.value, `read #${op.id}`)) })
    } else if (op.f === "write") {
      if (op.type !== "fail") add(op, { f: "write", value: intern(asValue(op.invoke.value, `write #${op.id}`)) })
    } else if (op.f === "cas") {
      const [from, to] = casValues(op)
      if (op.type !== "fail") add(op, { f: "cas", from: intern(from), to: intern(to) })
      else if (isRefusedCas(op)) {
        const revision = revisionOf(op)
        const seen = revision === undefined ? undefined : atRevision.get(revision)
        if (seen === undefined) add(op, { f: "cas-refused", from: intern(from) })
        else add(op, { f: "cas-refused", from: intern(from), current: intern(seen.value) }, seen)
      }
    } else {
      throw new Error(`history: operation #${op.id} has f "${op.f}"; the register checker knows read, write and cas`)
    }
  }

  const written = (input: RegisterInput): number | undefined => (input.f === "write" ? input.value : input.f === "cas" ? input.to : undefined)
  // Acknowledged operations are never left out, so these stay valid through the loop below.
  const acknowledgedWrites = candidates.filter((c) => !c.unknown && written(c.input) !== undefined)
  const kept = new Set(candidates)
  /** Some acknowledged write of a value other than `value` lies, in real time, inside (after, before). */
  const overwrittenBetween = (value: number, after: number, before: number): boolean =>
    acknowledgedWrites.some((x) => x.call > after && x.ret < before && written(x.input) !== value)
  /** No placement at or after `call` can find the state at `value` (see the module comment). */
  const certainlyGoneBy = (value: number, call: number): boolean => {
    if (value === 0 && !overwrittenBetween(0, -Infinity, call)) return false
    for (const c of kept) {
      if (written(c.input) !== value) continue
      if (c.unknown || !overwrittenBetween(value, c.ret, call)) return false
    }
    return true
  }
  // Until nothing changes: leaving out a refused cas can free an unknown write, and leaving out
  // an unknown write (or cas) can make an expected value unobserved or certainly gone.
  for (let changed = true; changed; ) {
    changed = false
    for (const c of kept) {
      if (c.input.f === "cas-refused" && c.input.current === undefined && certainlyGoneBy(c.input.from, c.call)) {
        kept.delete(c)
        changed = true
      }
    }
    const observed = new Set<number>()
    /** Refusals that name no value: they fit any state but `from`. */
    const openRefusals: Array<{ readonly from: number; readonly ret: number }> = []
    for (const c of kept) {
      if (c.input.f === "read") observed.add(c.input.value)
      else if (c.input.f === "cas") observed.add(c.input.from)
      else if (c.input.f === "cas-refused") {
        if (c.input.current !== undefined) observed.add(c.input.current)
        else openRefusals.push({ from: c.input.from, ret: c.ret })
      }
    }
    for (const c of kept) {
      if (!c.unknown) continue
      const value = written(c.input)!
      if (observed.has(value)) continue
      if (openRefusals.some((r) => r.ret >= c.call && r.from !== value)) continue
      kept.delete(c)
      changed = true
    }
  }

  const out: Array<Operation<RegisterInput>> = []
  const pinnedBy = new Map<number, RevisionValue>()
  let keptUnknown = 0
  let refused = 0
  let pinned = 0
  let refusedTotal = 0
  for (const c of candidates) {
    if (c.input.f === "cas-refused") refusedTotal++
    if (!kept.has(c)) continue
    if (c.unknown) keptUnknown++
    if (c.input.f === "cas-refused") {
      refused++
      if (c.pinnedBy !== undefined) {
        pinned++
        pinnedBy.set(c.op.id, c.pinnedBy)
      }
    }
    out.push({ id: c.op.id, call: c.call, ret: c.ret, input: c.input })
  }
  const unknownTotal = candidates.filter((c) => c.unknown).length
  return {
    ops: out,
    pruned: unknownTotal - keptUnknown,
    keptUnknown,
    refused: { searched: refused, pinned, leftOut: refusedTotal - refused },
    names,
    pinnedBy
  }
}

const explain = (
  key: string,
  deepest: Deepest<number>,
  byId: ReadonlyMap<number, PairedOp>,
  prepared: Prepared,
  keyOps: ReadonlyArray<PairedOp>
): string => {
  const names = prepared.names
  const lines: string[] = []
  const blocked = byId.get(deepest.blocked)!
  lines.push(`key ${key}: not linearizable.`)
  lines.push(`  No order of the operations explains ${describeOp(blocked)}.`)
  if (blocked.f === "read" && blocked.type === "ok") {
    const v = blocked.complete?.value
    const writers = keyOps.filter(
      (o) => (o.f === "write" && o.invoke.value === v) || (o.f === "cas" && Array.isArray(o.invoke.value) && o.invoke.value[1] === v)
    )
    if (v !== null && writers.length === 0) lines.push(`  No operation ever wrote ${show(v)} to ${key}.`)
    for (const w of writers) if (w.type === "fail") lines.push(`  It reads the value of a write reported as failed: ${describeOp(w)}.`)
  }
  if (isRefusedCas(blocked)) {
    const [from] = casValues(blocked)
    const seen = prepared.pinnedBy.get(blocked.id)
    const saw =
      seen === undefined
        ? ""
        : seen.writer === undefined
          ? ` and been absent (revision ${revisionOf(blocked)}: the key did not exist)`
          : ` and been ${show(seen.value)} (revision ${revisionOf(blocked)} is that of ${describeOp(seen.writer)})`
    lines.push(`  It was refused (conflict): at some point while it ran, the value must have differed from ${show(from)}${saw}.`)
  }
  const n = deepest.linearized.length
  const from = Math.max(0, n - 12)
  lines.push(`  The longest linearizable prefix has ${n} operation(s)${from > 0 ? `; its last ${n - from}` : ""}:`)
  for (let i = from; i < n; i++) {
    lines.push(`    ${describeOp(byId.get(deepest.linearized[i]!)!)}   ⇒ ${show(names[deepest.states[i]!])}`)
  }
  lines.push(`  State after it: ${show(names[deepest.states[n - 1] ?? 0])}. Operations that could come next, none of which fits:`)
  for (const id of deepest.candidates.slice(0, 20)) lines.push(`    ${describeOp(byId.get(id)!)}`)
  if (deepest.candidates.length > 20) lines.push(`    … and ${deepest.candidates.length - 20} more`)
  return lines.join("\n")
}

/** Checks a register history (all keys) for linearizability. */
export const checkRegisterHistory = (entries: Iterable<HistoryEntry>, options: SearchOptions = {}): RegisterReport => {
  const paired = pairOps(entries)
  const byF: Record<string, { ok: number; fail: number; info: number }> = {}
  let ok = 0
  let fail = 0
  let info = 0
  const byKey = new Map<string, PairedOp[]>()
  const byId = new Map<number, PairedOp>()
  for (const op of paired) {
    byId.set(op.id, op)
    const c = (byF[op.f] ??= { ok: 0, fail: 0, info: 0 })
    c[op.type]++
    if (op.type === "ok") ok++
    else if (op.type === "fail") fail++
    else info++
    let list = byKey.get(op.key)
    if (list === undefined) byKey.set(op.key, (list = []))
    list.push(op)
  }
  const results: KeyResult[] = []
  const violations: Violation[] = []
  const unknownKeys: string[] = []
  let searched = 0
  let prunedUnknown = 0
  let keptUnknown = 0
  const refusedCas = { searched: 0, pinned: 0, leftOut: 0 }
  for (const [key, keyOps] of [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const started = performance.now()
    const prepared = prepareRegisterKey(keyOps)
    searched += prepared.ops.length
    prunedUnknown += prepared.pruned
    keptUnknown += prepared.keptUnknown
    refusedCas.searched += prepared.refused.searched
    refusedCas.pinned += prepared.refused.pinned
    refusedCas.leftOut += prepared.refused.leftOut
    const r = checkOperations(registerModel, prepared.ops, options)
    results.push({
      key,
      result: r.result,
      ops: prepared.ops.length,
      unknown: prepared.keptUnknown,
      refused: prepared.refused.searched,
      steps: r.steps,
      ms: performance.now() - started
    })
    if (r.result === "violation") violations.push({ key, deepest: r.deepest, explanation: explain(key, r.deepest, byId, prepared, keyOps) })
    else if (r.result === "unknown") unknownKeys.push(key)
  }
  return {
    valid: violations.length > 0 ? false : unknownKeys.length > 0 ? "unknown" : true,
    counts: { ops: paired.length, ok, fail, info, byF },
    keys: byKey.size,
    searched,
    prunedUnknown,
    keptUnknown,
    refusedCas,
    results,
    violations,
    unknownKeys
  }
}
