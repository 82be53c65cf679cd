/**
 * `archio snapshot restore FILE --data DIR --id ID --peers IDS`: seeds a new node's data dir
 * from a snapshot file. The whole file is read and verified first; only a valid snapshot and a
 * data dir that is absent (or an empty folder) get as far as writing (seed.ts).
 */
import { Either } from "effect"
import { resolve } from "node:path"
import { SnapshotFormatError } from "../../protocol/snapshotFormat.ts"
import { validToken } from "../../protocol/subjects.ts"
import { defineCommand } from "../command.ts"
import { ConfigError, name, nameRule, type CommandLine, type OptionSpec } from "../options.ts"
import type { Terminal } from "../terminal.ts"
import { jsonOption } from "./connection.ts"
import { dataDirProblem, seed } from "./seed.ts"
import { readSnapshotFile } from "./snapshotFile.ts"
import { problemOf, type SnapshotSummary } from "./verify.ts"

export const restoreOptions = {
  data: { flag: "--data", placeholder: "DIR", default: "required", help: "the new node's data dir; must not exist, or be an empty folder" },
  id: { flag: "--id", placeholder: "ID", default: "required", help: "the new node's id (its archio node --id)" },
  peers: { flag: "--peers", placeholder: "IDS", default: "required", help: "comma-separated ids of every member of the new cluster, this one included" },
  cluster: { flag: "--cluster", placeholder: "NAME", default: "the snapshot's cluster", help: "the new cluster's name, for the archio node command it prints" },
  json: jsonOption
} as const satisfies Record<string, OptionSpec>

export interface RestoreSettings {
  /** FILE as given, for messages. */
  readonly shown: string
  /** FILE from the working folder. */
  readonly file: string
  readonly dataDir: string
  readonly id: string
  readonly peers: ReadonlyArray<string>
  readonly cluster: string | undefined
  readonly json: boolean
}

const required = (line: CommandLine<keyof typeof restoreOptions>, key: "data" | "id" | "peers", example: string, problems: Array<string>) => {
  const given = line.get(key)
  if (given === undefined) problems.push(`${restoreOptions[key].flag} is required: ${example}`)
  return given
}

export const restoreSettings = (line: CommandLine<keyof typeof restoreOptions>, terminal: Terminal): Either.Either<RestoreSettings, ConfigError> => {
  const problems: Array<string> = []
  const cwd = terminal.cwd ?? process.cwd()
  const file = line.args[0]!
  if (file === "") problems.push('FILE must be a path, got ""')
  const dataGiven = required(line, "data", "the folder the new node will keep its database in", problems)
  if (dataGiven !== undefined && dataGiven.value.trim() === "") problems.push(`--data must be a folder path, got ${JSON.stringify(dataGiven.value)}`)
  const idGiven = required(line, "id", "the id of the node this data dir is for, for example n1", problems)
  const id = idGiven === undefined ? undefined : name(idGiven, "a node id", problems)
  const peersGiven = required(line, "peers", "the ids of every member of the new cluster, for example n1,n2,n3", problems)
  let peers: ReadonlyArray<string> | undefined
  if (peersGiven !== undefined) {
    const list = peersGiven.value.split(",").map((s) => s.trim())
    const seen = new Set<string>()
    const dup = list.find((p) => (seen.has(p) ? true : (seen.add(p), false)))
    if (list.some((p) => !validToken(p))) {
      problems.push(`--peers must be a comma-separated list of node ids made of ${nameRule}, got ${JSON.stringify(peersGiven.value)}`)
    } else if (dup !== undefined) {
      problems.push(`--peers lists ${JSON.stringify(dup)} twice, got ${JSON.stringify(peersGiven.value)}`)
    } else if (id !== undefined && !list.includes(id)) {
      problems.push(`--peers must include this node's own id ${JSON.stringify(id)} (--id), got ${JSON.stringify(peersGiven.value)}`)
    } else {
      peers = list
    }
  }
  const clusterGiven = line.get("cluster")
  const cluster = clusterGiven === undefined ? undefined : name(clusterGiven, "a cluster name", problems)
  if (problems.length > 0 || dataGiven === undefined || id === undefined || peers === undefined) return Either.left(new ConfigError({ problems }))
  return Either.right({ shown: file, file: resolve(cwd, file), dataDir: resolve(cwd, dataGiven.value), id, peers, cluster, json: line.has("json") })
}

const report = (s: RestoreSettings, restored: SnapshotSummary): string => {
  const { header, counts } = restored
  const cluster = s.cluster ?? header.cluster
  const others = s.peers.filter((p) => p !== s.id)
  if (s.json) {
    return `${JSON.stringify({
      ok: true,
      file: s.file,
      data: s.dataDir,
      id: s.id,
      peers: s.peers,
      cluster,
      index: header.index,
      term: header.term,
      keys: counts.kv,
      jobs: counts.jobs,
      sessions: counts.sessions,
      size: restored.size,
      sha256: restored.checksum,
      snapshotCluster: header.cluster,
      snapshotMembers: header.members
    })}\n`
  }
  return [
    `restored ${s.shown} into ${s.dataDir} for node ${s.id}`,
    `  snapshot: index ${header.index}, term ${header.term}, ${counts.kv} keys, ${counts.jobs} jobs, ${counts.sessions} sessions, ${restored.size} bytes, sha256 ${restored.checksum}`,
    `  taken in cluster ${header.cluster} (members ${header.members.join(",") || "none recorded"}); new members ${s.peers.join(",")}`,
    `start it with: archio node --id ${s.id} --peers ${s.peers.join(",")} --cluster ${cluster} --data ${s.dataDir}`,
    ...(others.length === 0 ? [] : [`restore ${others.join(", ")} from the same file too, each with its own --id and --data, before starting the cluster`]),
    ""
  ].join("\n")
}

export const runRestore = async (s: RestoreSettings, terminal: Terminal): Promise<number> => {
  const fail = (message: string): number => {
    terminal.err(`archio snapshot restore: ${message}\n`)
    return 1
  }
  const problem = await dataDirProblem(s.dataDir)
  if (problem !== undefined) return fail(`${problem}; nothing was written`)
  let verified: SnapshotSummary
  try {
    verified = await readSnapshotFile(s.file)
  } catch (e) {
    if (e instanceof SnapshotFormatError) return fail(`${s.shown} ${problemOf(e.code)}: ${e.message}; nothing was written`)
    return fail(`cannot read ${s.shown}: ${e instanceof Error ? e.message : String(e)}; nothing was written`)
  }
  try {
    const restored = await seed(s.file, { dataDir: s.dataDir, peers: s.peers, now: Date.now() }, verified)
    terminal.out(report(s, restored))
    return 0
  } catch (e) {
    if (e instanceof SnapshotFormatError) return fail(`${s.shown} ${problemOf(e.code)}: ${e.message}; nothing was restored`)
    return fail(`${e instanceof Error ? e.message : String(e)}; nothing was restored`)
  }
}

export const restoreCommand = defineCommand({
  path: "snapshot restore",
  summary: "seed a new node's data dir from a snapshot file",
  args: ["FILE"],
  description: `Seeds the data dir of a node of a new cluster from FILE (written by archio snapshot save).
It first reads the whole file and checks it: a file that is truncated, corrupt (its SHA-256 does
not match), of a format version this build cannot read, or not a snapshot at all is refused with
one message naming the problem, and nothing is written. DIR must not exist or be an empty
folder; the database is built in a temporary folder beside it and renamed to DIR when complete.

The node starts at the snapshot's index and term with the members given by --peers. Restore
every member of the new cluster from the same file, each with its own --id and --data, then
start them all with those --peers: they elect a leader and serve exactly the saved state.
Exit codes: 0 restored, 1 refused (bad file, DIR in use, cannot write), 2 bad usage.`,
  options: [{ title: "Flags", options: restoreOptions }],
  examples: [
    "archio snapshot restore backup.snap --data /var/lib/archio/n1 --id n1 --peers n1,n2,n3",
    "archio snapshot restore backup.snap --data /var/lib/archio/n2 --id n2 --peers n1,n2,n3 --cluster prod"
  ],
  check: restoreSettings,
  run: runRestore
})
