/**
 * README.md's `nats req` lines are promises to someone typing them: this test finds every one
 * (in every fenced block, `[dev]` lines and `# or:` alternatives included), reads subject and
 * payload the way a shell would, and sends the same over a plain NATS connection to a fresh
 * three-node cluster named `dev`, in README order. Each must answer `ok`, decode with its reply
 * Schema from protocol/client.ts (strictly), and, where README shows the answer on the next
 * `# {...}` line, have the shape shown: the same fields, with values of the same JSON types.
 *
 * A line whose subject is no endpoint of protocol/client.ts, or that the shell reading here
 * cannot follow (expansions, several commands), fails the test before anything is sent.
 *
 * Some lines depend on earlier answers, and these are prepared or filled in, each stated:
 * `admin.backupChunk` gets the session the last `admin.backup` opened; `admin.transfer` to a
 * node first moves leadership off that node if it leads; a `# or:` alternative of
 * `jobs.ack|fail|extend|release` (the job is already acked by the line before it) gets a job
 * enqueued and leased like the README's last ones, with its id and token. Credentials flags
 * (`--user`, `--password`, `--inbox-prefix`, `-s`) are read and ignored: the lines go to a
 * cluster without NATS permissions (test/security covers those).
 */
import t from "tap"
import { connect, RequestError, type NatsConnection } from "@nats-io/transport-node"
import { Schema } from "effect"
import { readFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import * as Client from "../../protocol/client.ts"
import { errorCodeHeader } from "../../protocol/reply.ts"
import { testCluster } from "../support/cluster.ts"
import { sleep } from "../support/wait.ts"

const readmePath = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "README.md")

// ---------------------------------------------------------------------------------------------
// Reading README.md

/** One `nats req` from README.md. */
interface ReadmeRequest {
  /** 1-based line in README.md where the command starts. */
  readonly line: number
  readonly subject: string
  readonly payload: string
  /** A `# or: nats req ...` line: done instead of the command before it, not after it. */
  readonly alternative: boolean
  /** The answer README shows on the next line (`# {...}`), when it shows one. */
  shown?: unknown
}

interface Parsed {
  readonly requests: Array<ReadmeRequest>
  /** Lines the check cannot follow, or subjects that are no endpoint: each fails the test. */
  readonly problems: Array<string>
}

/**
 * Splits a command into words as a POSIX shell does for the quoting README uses: '...' literal,
 * "..." with \" \\ \$ \` escapes, \ outside quotes, # starting a comment. Expansions and
 * operators (`$`, backquotes, `;`, `|`, `&`, redirections) are refused rather than guessed at.
 */
const shellWords = (text: string): { readonly words: Array<string> } | { readonly problem: string } => {
  const words: Array<string> = []
  let word: string | undefined
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === " " || c === "\t") {
      if (word !== undefined) words.push(word)
      word = undefined
      i++
    } else if (c === "#" && word === undefined) {
      break
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) return { problem: "an unclosed '" }
      word = (word ?? "") + text.slice(i + 1, end)
      i = end + 1
    } else if (c === '"') {
      let j = i + 1
      let inner = ""
      for (; j < text.length && text[j] !== '"'; j++) {
        const d = text[j]!
        if (d === "$" || d === "`") return { problem: `a shell expansion (${d}) inside "..."` }
        if (d === "\\" && j + 1 < text.length && '"\\$`'.includes(text[j + 1]!)) inner += text[++j]!
        else inner += d
      }
      if (j >= text.length) return { problem: 'an unclosed "' }
      word = (word ?? "") + inner
      i = j + 1
    } else if (c === "\\") {
      if (i + 1 >= text.length) return { problem: "a trailing \\" }
      word = (word ?? "") + text[i + 1]!
      i += 2
    } else if ("$`;|&<>()".includes(c)) {
      return { problem: `an unquoted ${c} (expansions and several commands are not followed here)` }
    } else {
      word = (word ?? "") + c
      i++
    }
  }
  if (word !== undefined) words.push(word)
  return { words }
}

/** Global `nats` flags that take a value and may stand before `req`. */
const natsFlagsWithValue = new Set(["-s", "--server", "--user", "--password", "--inbox-prefix", "--context", "--creds", "--nkey", "--tlscert", "--tlskey", "--tlsca"])

/** The endpoint a subject names, as `<group>.<op>` of `Client.endpoints`, or why it names none. */
const endpointOf = (subject: string): { readonly group: keyof typeof Client.endpoints; readonly op: string } | { readonly problem: string } => {
  const tokens = subject.split(".")
  if (tokens[0] !== "archio" || tokens[1] !== "dev") return { problem: `${subject} is not under archio.dev. (README's examples use the cluster dev)` }
  // `archio.dev.<group>.<op>`, or a node's own `archio.dev.node.<id>.<group>.<op>`.
  const rest = tokens[2] === "node" ? tokens.slice(4) : tokens.slice(2)
  const [group, op, ...more] = rest
  const table: Record<string, Record<string, unknown>> = Client.endpoints
  if (group === undefined || op === undefined || more.length > 0 || !Object.hasOwn(table, group) || !Object.hasOwn(table[group]!, op)) {
    return { problem: `${subject} is no endpoint of protocol/client.ts (Client.endpoints)` }
  }
  return { group: group as keyof typeof Client.endpoints, op }
}

/** Every `nats req` in the fenced blocks of `markdown`, and what cannot be checked. */
const parseReadme = (markdown: string): Parsed => {
  const requests: Array<ReadmeRequest> = []
  const problems: Array<string> = []
  const lines = markdown.split("\n")
  let inBlock = false
  // The request on the logical line just before, which a `# {...}` line may show the answer of.
  let previous: ReadmeRequest | undefined
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!
    if (raw.trimStart().startsWith("```")) {
      inBlock = !inBlock
      previous = undefined
      continue
    }
    if (!inBlock) continue
    const line = n + 1
    // `[dev]   nats req ...` is what `archio dev` prints for the reader to type.
    let text = raw.trim().replace(/^\[\w+\]\s+/, "")
    let alternative = false
    if (text.startsWith("#")) {
      const or = /^#\s*or:\s*(nats\s.*)$/.exec(text)
      if (or === null) {
        // Output or a remark: the answer of the request just before when it is JSON.
        if (previous !== undefined && previous.shown === undefined && /^#\s*\{/.test(text)) {
          try {
            previous.shown = JSON.parse(text.replace(/^#\s*/, ""))
          } catch (e) {
            problems.push(`README.md:${line}: the answer shown is not JSON (${e instanceof Error ? e.message : String(e)})`)
          }
        }
        previous = undefined
        continue
      }
      text = or[1]!
      alternative = true
    }
    // A command continued with "\" at the end of its lines.
    while (text.endsWith("\\") && n + 1 < lines.length) text = `${text.slice(0, -1)} ${lines[++n]!.trim()}`
    previous = undefined
    const split = shellWords(text)
    const mentionsReq = /(^|\s)nats\s(.*\s)?req(\s|$)/.test(text)
    if ("problem" in split) {
      if (mentionsReq) problems.push(`README.md:${line}: cannot read this nats req line: ${split.problem}`)
      continue
    }
    const words = split.words
    if (words[0] !== "nats") {
      if (mentionsReq) problems.push(`README.md:${line}: a nats req inside another command is not checked; write it as a plain nats command`)
      continue
    }
    // The connection flags may stand before or after `req`; what is left is `req <subject> [payload]`.
    const positional: Array<string> = []
    let unknownFlag: string | undefined
    for (let i = 1; i < words.length; i++) {
      const w = words[i]!
      if (natsFlagsWithValue.has(w)) i++
      else if (w.startsWith("-") && w.length > 1) unknownFlag ??= w
      else positional.push(w)
    }
    if (positional[0] !== "req") {
      if (mentionsReq) problems.push(`README.md:${line}: a nats command that mentions req but is not nats req: ${text}`)
      continue
    }
    if (unknownFlag !== undefined) {
      problems.push(`README.md:${line}: the nats flag ${unknownFlag} is not one the check knows`)
      continue
    }
    const [, subject, payload = "", ...extra] = positional
    if (subject === undefined || extra.length > 0) {
      problems.push(`README.md:${line}: expected nats req <subject> [payload], got ${JSON.stringify(positional)}`)
      continue
    }
    const endpoint = endpointOf(subject)
    if ("problem" in endpoint) {
      problems.push(`README.md:${line}: ${endpoint.problem}`)
      continue
    }
    const request: ReadmeRequest = { line, subject, payload, alternative }
    requests.push(request)
    previous = request
  }
  return { requests, problems }
}

// ---------------------------------------------------------------------------------------------
// Sending

interface Answer {
  readonly body: Record<string, unknown>
  readonly errorCode: string | undefined
}

/**
 * One request as `nats req` sends it; retried, as a person would, only while no node has
 * subscribed yet or the cluster is between leaders (`unavailable`: nothing was written).
 */
const send = async (nc: NatsConnection, subject: string, payload: string): Promise<Answer> => {
  const giveUp = performance.now() + 15_000
  for (;;) {
    let answer: Answer | undefined
    try {
      const msg = await nc.request(subject, payload, { timeout: 10_000 })
      answer = { body: msg.json<Record<string, unknown>>(), errorCode: msg.headers?.get(errorCodeHeader) || undefined }
    } catch (e) {
      if (!(e instanceof RequestError && e.isNoResponders()) || performance.now() > giveUp) throw e
    }
    if (answer !== undefined && (answer.errorCode !== "503" || performance.now() > giveUp)) return answer
    await sleep(100)
  }
}

/** The JSON type of a value, as the shapes compare it. */
const kind = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v)

/** Where `actual` differs in shape from the answer README shows: fields, and JSON types of values. */
const shapeDifferences = (shown: unknown, actual: unknown, path = "$"): Array<string> => {
  if (kind(shown) !== kind(actual)) return [`${path}: README shows ${kind(shown)}, the cluster answered ${kind(actual)} (${JSON.stringify(actual)})`]
  if (Array.isArray(shown) && Array.isArray(actual)) {
    if (shown.length === 0) return []
    if (actual.length === 0) return [`${path}: README shows items, the cluster answered none`]
    return actual.flatMap((a, i) => shapeDifferences(shown[0], a, `${path}[${i}]`))
  }
  if (kind(shown) !== "object") return []
  const s = shown as Record<string, unknown>
  const a = actual as Record<string, unknown>
  return [
    ...Object.keys(s).filter((k) => !Object.hasOwn(a, k)).map((k) => `${path}.${k}: README shows it, the cluster's answer has no such field`),
    ...Object.keys(a).filter((k) => !Object.hasOwn(s, k)).map((k) => `${path}.${k}: the cluster answers it, README does not show it`),
    ...Object.keys(s).filter((k) => Object.hasOwn(a, k)).flatMap((k) => shapeDifferences(s[k], a[k], `${path}.${k}`))
  ]
}

// ---------------------------------------------------------------------------------------------

t.test("the nats req reading follows README's quoting and refuses what it cannot check", async (t) => {
  t.same(shellWords(`nats req archio.dev.kv.put '{"key":"a b","value":"it''s"}'   # a remark`), { words: ["nats", "req", "archio.dev.kv.put", '{"key":"a b","value":"its"}'] }, "single quotes, adjacent quoting, a trailing comment")
  t.same(shellWords(`nats req s "{\\"key\\":\\"k\\"}" ''`), { words: ["nats", "req", "s", '{"key":"k"}', ""] }, 'double quotes with \\" and an empty word')
  t.match(shellWords(`nats req s "$PAYLOAD"`), { problem: /expansion/ }, "an expansion is refused, not guessed at")

  const sample = [
    "```sh",
    "nats req archio.dev.kv.get '{\"key\":\"k\"}'",
    "# {\"ok\":true}",
    "nats req archio.dev.kv.nope '{}'",
    "nats -s nats://x:1 --user u \\",
    "  req -s nats://y:2 archio.dev.node.n1.admin.status ''",
    "# or: nats req archio.dev.jobs.fail '{}'",
    "nats req archio.dev.jobs.lease $X",
    "nats sub 'archio.dev.events.kv.>'",
    "```",
    "nats req archio.dev.kv.nope2 '{}' (outside a block: prose)"
  ].join("\n")
  const parsed = parseReadme(sample)
  t.same(
    parsed.requests.map((r) => [r.line, r.subject, r.payload, r.alternative, r.shown]),
    [
      [2, "archio.dev.kv.get", '{"key":"k"}', false, { ok: true }],
      [5, "archio.dev.node.n1.admin.status", "", false, undefined],
      [7, "archio.dev.jobs.fail", "{}", true, undefined]
    ],
    "requests with their lines, continuation lines joined, the shown answer attached"
  )
  t.same(
    parsed.problems,
    [
      "README.md:4: archio.dev.kv.nope is no endpoint of protocol/client.ts (Client.endpoints)",
      "README.md:8: cannot read this nats req line: an unquoted $ (expansions and several commands are not followed here)"
    ],
    "a line for an unknown subject and one the check cannot read are problems, which fail the README test"
  )
  t.same(shapeDifferences({ ok: true, n: 1, a: [{ x: "s" }] }, { ok: true, n: 2, a: [{ x: "t" }] }), [], "values may differ, shapes not")
  t.same(
    shapeDifferences({ ok: true, n: 1, a: [{ x: "s" }] }, { ok: true, n: null, a: [{ y: "t" }], extra: 1 }),
    [
      "$.extra: the cluster answers it, README does not show it",
      "$.n: README shows number, the cluster answered null (null)",
      "$.a[0].x: README shows it, the cluster's answer has no such field",
      "$.a[0].y: the cluster answers it, README does not show it"
    ],
    "a missing, extra or differently typed field is a difference"
  )
})

t.test("every nats req line of README.md answers as README says, on a real three-node cluster", async (t) => {
  const { requests, problems } = parseReadme(readFileSync(readmePath, "utf8"))
  t.same(problems, [], "every nats req line in README.md names an endpoint and can be read")
  const subjects = new Set(requests.map((r) => r.subject))
  for (const s of ["archio.dev.kv.put", "archio.dev.kv.get", "archio.dev.admin.status", "archio.dev.jobs.lease"]) {
    t.ok(subjects.has(s), `README's ${s} example was found`)
  }

  const { nats, cluster } = await testCluster(t)
  t.equal(cluster.cluster, "dev", "the cluster is named dev, as in README")
  const nc = await connect({ servers: nats.url, noAsyncTraces: true, name: "readme-nats-req" })
  t.teardown(() => nc.close())

  /** Sends a request the test makes itself (to prepare state) and returns its successful answer. */
  const prepare = async (subject: string, payload: unknown): Promise<Record<string, unknown>> => {
    const answer = await send(nc, subject, JSON.stringify(payload))
    if (answer.body["ok"] !== true) throw new Error(`preparing with ${subject} ${JSON.stringify(payload)} failed: ${JSON.stringify(answer.body)}`)
    return answer.body
  }

  let lastBackupSession: unknown
  let lastEnqueue: Record<string, unknown> | undefined
  let lastLease: Record<string, unknown> | undefined
  for (const r of requests) {
    const where = `README.md:${r.line} nats req ${r.subject}`
    const endpoint = endpointOf(r.subject)
    if ("problem" in endpoint) throw new Error(endpoint.problem)
    const op = `${endpoint.group}.${endpoint.op}`
    let payload = r.payload
    const json = (): Record<string, unknown> => JSON.parse(payload === "" ? "{}" : payload) as Record<string, unknown>

    if (op === "admin.backupChunk") {
      t.ok(lastBackupSession !== undefined, `${where}: an admin.backup line comes before it`)
      payload = JSON.stringify({ ...json(), session: lastBackupSession })
      t.comment(`${where}: sent with the session the admin.backup above opened (${String(lastBackupSession)})`)
    } else if (op === "admin.transfer" && typeof json()["id"] === "string") {
      const target = json()["id"] as string
      const status = await prepare("archio.dev.admin.status", {})
      if (status["leader"] === target) {
        const other = cluster.ids.find((id) => id !== target)!
        await prepare("archio.dev.admin.transfer", { id: other })
        t.comment(`${where}: ${target} led, so leadership was first moved to ${other}`)
      }
    } else if (r.alternative && ["jobs.ack", "jobs.fail", "jobs.extend", "jobs.release"].includes(op)) {
      if (lastEnqueue === undefined || lastLease === undefined) throw new Error(`${where}: no jobs.enqueue and jobs.lease lines before it to prepare a leased job from`)
      const enqueued = await prepare("archio.dev.jobs.enqueue", lastEnqueue)
      const leased = await prepare("archio.dev.jobs.lease", { ...lastLease, max: 1 })
      const job = (leased["jobs"] as Array<Record<string, unknown>>)[0]
      if (job === undefined || job["id"] !== enqueued["id"]) throw new Error(`${where}: the job enqueued to prepare it was not leased: ${JSON.stringify(leased)}`)
      payload = JSON.stringify({ ...json(), id: job["id"], token: job["token"] })
      t.comment(`${where}: an alternative to the line before, sent for a job enqueued and leased like README's (id ${String(job["id"])}, token ${String(job["token"])})`)
    }

    const answer = await send(nc, r.subject, payload)
    if (answer.body["ok"] !== true || answer.errorCode !== undefined) {
      t.fail(`${where}: answers ok`, { payload, answer: answer.body, errorCode: answer.errorCode })
      continue
    }
    t.pass(`${where}: answers ok`)
    const { response } = (Client.endpoints[endpoint.group] as Record<string, { readonly response: Schema.Schema<unknown, unknown, never> }>)[endpoint.op]!
    const decoded = Schema.decodeUnknownEither(response, { onExcessProperty: "error", errors: "all" })(answer.body)
    t.ok(decoded._tag === "Right", `${where}: the answer decodes with its reply Schema`, decoded._tag === "Left" ? { error: String(decoded.left), answer: answer.body } : {})
    if (r.shown !== undefined) t.same(shapeDifferences(r.shown, answer.body), [], `${where}: the answer has the shape README shows`)

    if (op === "admin.backup") lastBackupSession = answer.body["session"]
    if (op === "jobs.enqueue") lastEnqueue = json()
    if (op === "jobs.lease") lastLease = json()
  }
})
