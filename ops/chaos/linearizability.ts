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
 * `to`. Failed operations (`fail`: definitely not applied, e.g. a cas conflict) are left out, as
 * Knossos does; a read whose outcome is unknown says nothing and is left out too. An unknown
 * write or cas whose value nobody ever observed (no read returned it, no cas expected it) is
 * also left out: leaving it out can only keep a linearization valid (nothing depended on its
 * value), and without this each timeout would double the search space.
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
    }
  },
  hash: (state) => state
}

export interface KeyResult {
  readonly key: string
  readonly result: "ok" | "violation" | "unknown"
  /** Operations searched (after leaving out failed ones and unobserved unknown ones). */
  readonly ops: number
  readonly steps: number
  readonly ms: number
}

export interface Violation {
  readonly key: string
  /** A readable account: the operation that could not be placed, the longest valid prefix. */
  readonly explanation: string
  readonly deepest: Deepest<number>
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
  readonly results: ReadonlyArray<KeyResult>
  readonly violations: ReadonlyArray<Violation>
  readonly unknownKeys: ReadonlyArray<string>
}

const show = (v: unknown): string => (v === null || v === undefined ? "absent" : JSON.stringify(v))

const seconds = (ns: number | undefined): string => (ns === undefined || ns === Infinity ? "∞" : `${(ns / 1e9).toFixed(3)}s`)

/** One operation on one line, e.g. `#12 c3 cas r0-0 "a"→"b" ok [1.200s, 1.204s]`. */
export const describeOp = (op: PairedOp): string => {
  const inv = op.invoke
  let what: string
  if (op.f === "read") what = op.type === "ok" ? `read → ${show(op.complete?.value)}` : "read"
  else if (op.f === "cas" && Array.isArray(inv.value)) what = `cas ${show(inv.value[0])}→${show(inv.value[1])}`
  else what = `${op.f} ${show(inv.value)}`
  const err = op.complete?.error !== undefined ? ` (${op.complete.error})` : ""
  const node = typeof op.complete?.["node"] === "string" ? ` @${op.complete["node"]}` : ""
  return `#${op.id} ${op.client} ${what} ${op.type}${err}${node} [${seconds(inv.time)}, ${seconds(op.end)}]`
}

const asValue = (v: unknown, where: string): string | null => {
  if (v === null || v === undefined) return null
  if (typeof v === "string") return v
  throw new Error(`history: ${where}: register values are strings or null, got ${JSON.stringify(v)}`)
}

interface Prepared {
  readonly ops: Array<Operation<RegisterInput>>
  readonly pruned: number
  readonly names: ReadonlyArray<string | null>
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
  type Candidate = { readonly op: PairedOp; readonly input: RegisterInput; readonly unknown: boolean }
  const candidates: Candidate[] = []
  for (const op of ops) {
    if (op.type === "fail") continue
    const unknown = op.type === "info"
    if (op.f === "read") {
      if (unknown) continue
      candidates.push({ op, unknown, input: { f: "read", value: intern(asValue(op.complete?.value, `read #${op.id}`)) } })
    } else if (op.f === "write") {
      candidates.push({ op, unknown, input: { f: "write", value: intern(asValue(op.invoke.value, `write #${op.id}`)) } })
    } else if (op.f === "cas") {
      const v = op.invoke.value
      if (!Array.isArray(v) || v.length !== 2) throw new Error(`history: cas #${op.id}: value must be [expected, new]`)
      candidates.push({ op, unknown, input: { f: "cas", from: intern(asValue(v[0], `cas #${op.id}`)), to: intern(asValue(v[1], `cas #${op.id}`)) } })
    } else {
      throw new Error(`history: operation #${op.id} has f "${op.f}"; the register checker knows read, write and cas`)
    }
  }
  // Leave out unknown writes whose value nobody observed, until nothing changes (an unknown cas
  // left out no longer makes its expected value observed).
  const kept = new Set(candidates)
  for (;;) {
    const observed = new Set<number>()
    for (const c of kept) {
      if (c.input.f === "read") observed.add(c.input.value)
      else if (c.input.f === "cas") observed.add(c.input.from)
    }
    let changed = false
    for (const c of kept) {
      if (!c.unknown) continue
      const written = c.input.f === "write" ? c.input.value : c.input.f === "cas" ? c.input.to : -1
      if (!observed.has(written)) {
        kept.delete(c)
        changed = true
      }
    }
    if (!changed) break
  }
  const out: Array<Operation<RegisterInput>> = []
  for (const c of candidates) {
    if (!kept.has(c)) continue
    out.push({ id: c.op.id, call: c.op.invoke.time, ret: c.unknown ? Infinity : c.op.end!, input: c.input })
  }
  return { ops: out, pruned: candidates.length - kept.size, names }
}

const explain = (key: string, deepest: Deepest<number>, byId: ReadonlyMap<number, PairedOp>, names: ReadonlyArray<string | null>, keyOps: ReadonlyArray<PairedOp>): string => {
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
  for (const [key, keyOps] of [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const started = performance.now()
    const prepared = prepareRegisterKey(keyOps)
    searched += prepared.ops.length
    prunedUnknown += prepared.pruned
    const r = checkOperations(registerModel, prepared.ops, options)
    results.push({ key, result: r.result, ops: prepared.ops.length, steps: r.steps, ms: performance.now() - started })
    if (r.result === "violation") violations.push({ key, deepest: r.deepest, explanation: explain(key, r.deepest, byId, prepared.names, keyOps) })
    else if (r.result === "unknown") unknownKeys.push(key)
  }
  return {
    valid: violations.length > 0 ? false : unknownKeys.length > 0 ? "unknown" : true,
    counts: { ops: paired.length, ok, fail, info, byF },
    keys: byKey.size,
    searched,
    prunedUnknown,
    results,
    violations,
    unknownKeys
  }
}
