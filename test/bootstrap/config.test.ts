import t from "tap"
import { Either } from "effect"
import { describe, nodeOptions, parseConfig, redactUrl, type Config } from "../../bootstrap/config.ts"
import { nodeCommand } from "../../bootstrap/nodeCommand.ts"
import { parseCommandLine, type Env } from "../../bootstrap/options.ts"
import { statusCommand, statusConfig, statusOptions } from "../../bootstrap/statusCommand.ts"

const ok = (argv: ReadonlyArray<string>, env: Env = {}): Config => {
  const result = parseConfig(argv, env)
  if (Either.isLeft(result)) throw new Error(`expected a config, got: ${result.left.message}`)
  return result.right
}

const problems = (argv: ReadonlyArray<string>, env: Env = {}): ReadonlyArray<string> => {
  const result = parseConfig(argv, env)
  if (Either.isRight(result)) throw new Error("expected a ConfigError")
  return result.left.problems
}

t.test("defaults: only the node id is required", async (t) => {
  const c = ok([], { NODE_ID: "n1" })
  t.same(c, {
    id: "n1",
    cluster: "dev",
    nats: { servers: ["nats://127.0.0.1:4222"], user: undefined, pass: undefined, token: undefined, credsFile: undefined, nkeyFile: undefined, inboxPrefix: undefined, tls: undefined },
    peers: ["n1"],
    dataDir: "./.archio/n1",
    httpPort: undefined,
    httpHost: "127.0.0.1",
    httpToken: undefined,
    snapshotThreshold: 10000,
    maxHeld: 1024,
    tickMs: 10,
    electionTicks: 15,
    heartbeatTicks: 3,
    logLevel: "info"
  })
  t.same(problems([]), ["NODE_ID (or --id) is required: the id of this node, for example n1"])
})

t.test("every variable", async (t) => {
  const c = ok([], {
    NODE_ID: "n2",
    CLUSTER: "prod-eu",
    NATS_URL: "nats://a:4222, tls://b:4443,c:4222",
    PEERS: "n1,n2,n3",
    DATA_DIR: "/var/lib/archio/n2",
    HTTP_PORT: "8082",
    SNAPSHOT_THRESHOLD: "500",
    MAX_HELD: "64",
    TICK_MS: "20",
    ELECTION_TICKS: "10",
    HEARTBEAT_TICKS: "2",
    NATS_USER: "archio",
    NATS_PASS: "s3cret",
    NATS_TLS_CA: "/etc/ca.pem",
    NATS_TLS_CERT: "/etc/cert.pem",
    NATS_TLS_KEY: "/etc/key.pem",
    LOG_LEVEL: "DEBUG"
  })
  t.equal(c.id, "n2")
  t.equal(c.cluster, "prod-eu")
  t.same(c.nats.servers, ["nats://a:4222", "tls://b:4443", "c:4222"])
  t.same(c.peers, ["n1", "n2", "n3"])
  t.equal(c.dataDir, "/var/lib/archio/n2")
  t.equal(c.httpPort, 8082)
  t.equal(c.snapshotThreshold, 500)
  t.equal(c.maxHeld, 64)
  t.equal(c.tickMs, 20)
  t.equal(c.electionTicks, 10)
  t.equal(c.heartbeatTicks, 2)
  t.equal(c.nats.user, "archio")
  t.equal(c.nats.pass, "s3cret")
  t.same(c.nats.tls, { caFile: "/etc/ca.pem", certFile: "/etc/cert.pem", keyFile: "/etc/key.pem" })
  t.equal(c.logLevel, "debug")
})

t.test("token and creds", async (t) => {
  t.equal(ok([], { NODE_ID: "n1", NATS_TOKEN: "tok" }).nats.token, "tok")
  t.equal(ok([], { NODE_ID: "n1", NATS_CREDS: "/x/user.creds" }).nats.credsFile, "/x/user.creds")
  t.same(ok([], { NODE_ID: "n1", NATS_URL: "tls://h:4443" }).nats.tls, { caFile: undefined, certFile: undefined, keyFile: undefined }, "tls:// turns TLS on")
})

t.test("every flag, in both spellings", async (t) => {
  const c = ok([
    "--id", "n1",
    "--cluster=c1",
    "--nats", "nats://x:1",
    "--peers=n1,n2",
    "--data", "./d",
    "--http-port", "9000",
    "--snapshot-threshold", "7",
    "--max-held", "3",
    "--tick-ms", "5",
    "--election-ticks", "8",
    "--heartbeat-ticks", "1",
    "--nats-token", "t",
    "--nats-tls-ca", "ca.pem",
    "--log-level", "warn"
  ])
  t.match(c, {
    id: "n1",
    cluster: "c1",
    peers: ["n1", "n2"],
    dataDir: "./d",
    httpPort: 9000,
    snapshotThreshold: 7,
    maxHeld: 3,
    tickMs: 5,
    electionTicks: 8,
    heartbeatTicks: 1,
    logLevel: "warn"
  })
  t.same(c.nats.servers, ["nats://x:1"])
  t.equal(c.nats.token, "t")
  t.equal(c.nats.tls?.caFile, "ca.pem")
  const u = ok(["--id", "n1", "--nats-user", "u", "--nats-pass", "p"])
  t.equal(u.nats.user, "u")
  t.equal(u.nats.pass, "p")
  t.equal(ok(["--id", "n1", "--nats-creds", "f"]).nats.credsFile, "f")
  t.same(ok(["--id", "n1", "--nats-tls-cert", "c", "--nats-tls-key", "k"]).nats.tls, { caFile: undefined, certFile: "c", keyFile: "k" })
})

t.test("flags win over the environment; a repeated flag's last value wins", async (t) => {
  const c = ok(["--id", "n9", "--cluster", "flag", "--http-port", "1234", "--data", "/flag", "--peers", "n9"], {
    NODE_ID: "n1",
    CLUSTER: "env",
    HTTP_PORT: "80a",
    DATA_DIR: "/env",
    PEERS: "n1,n2"
  })
  t.match(c, { id: "n9", cluster: "flag", httpPort: 1234, dataDir: "/flag", peers: ["n9"] })
  t.equal(ok(["--id", "a", "--id", "b"]).id, "b")
})

t.test("older variable names count when the new one is unset", async (t) => {
  t.equal(ok([], { NODE_ID: "n1", KVSTORE_PORT: "7001" }).httpPort, 7001)
  t.equal(ok([], { NODE_ID: "n1", PORT: "7002" }).httpPort, 7002)
  t.equal(ok([], { NODE_ID: "n1", KVSTORE_PORT: "7001", PORT: "7002" }).httpPort, 7001, "KVSTORE_PORT before PORT")
  t.equal(ok([], { NODE_ID: "n1", HTTP_PORT: "7000", KVSTORE_PORT: "7001", PORT: "7002" }).httpPort, 7000)
  t.equal(ok([], { NODE_ID: "n1", RAFT_DATA_DIR: "/old" }).dataDir, "/old/n1", "RAFT_DATA_DIR is a root: the node's folder is <root>/<id>")
  t.equal(ok([], { NODE_ID: "n1", RAFT_DATA_DIR: "/old", DATA_DIR: "/new" }).dataDir, "/new")
  t.equal(ok([], { NODE_ID: "n1", RAFT_SNAPSHOT_THRESHOLD: "42" }).snapshotThreshold, 42)
  t.equal(ok([], { NODE_ID: "n1", RAFT_SNAPSHOT_THRESHOLD: "42", SNAPSHOT_THRESHOLD: "43" }).snapshotThreshold, 43)
  t.same(problems([], { NODE_ID: "n1", PORT: "http" }), ['PORT must be an integer from 1 to 65535, got "http"'], "the message names the variable used")
  t.equal(ok([], { NODE_ID: "n1", HTTP_PORT: "", PORT: "7002" }).httpPort, 7002, "an empty variable counts as unset")
})

t.test("each validation message names the source and the bad value", async (t) => {
  const id = { NODE_ID: "n1" }
  t.same(problems([], { ...id, HTTP_PORT: "80a" }), ['HTTP_PORT must be an integer from 1 to 65535, got "80a"'])
  t.same(problems([], { ...id, HTTP_PORT: "0" }), ['HTTP_PORT must be an integer from 1 to 65535, got "0"'])
  t.same(problems([], { ...id, HTTP_PORT: "65536" }), ['HTTP_PORT must be an integer from 1 to 65535, got "65536"'])
  t.same(problems(["--http-port", "-1"], id), ['--http-port must be an integer from 1 to 65535, got "-1"'])
  t.same(problems([], { ...id, KVSTORE_PORT: "1.5" }), ['KVSTORE_PORT must be an integer from 1 to 65535, got "1.5"'])
  t.same(problems([], { NODE_ID: "n 1" }), ['NODE_ID must be a node id made of letters, digits, _ or - (1 to 64 characters), got "n 1"'])
  t.same(problems(["--id", "a.b"]), ['--id must be a node id made of letters, digits, _ or - (1 to 64 characters), got "a.b"'])
  t.same(problems([], { ...id, CLUSTER: "dev.*" }), ['CLUSTER must be a cluster name made of letters, digits, _ or - (1 to 64 characters), got "dev.*"'])
  t.same(problems([], { ...id, CLUSTER: "x".repeat(65) }), [
    `CLUSTER must be a cluster name made of letters, digits, _ or - (1 to 64 characters), got "${"x".repeat(65)}"`
  ])
  t.same(problems([], { ...id, PEERS: "n2,n3" }), [`PEERS must include this node's own id "n1", got "n2,n3"`])
  t.same(problems([], { ...id, PEERS: "n1,,n2" }), ['PEERS must be a comma-separated list of node ids made of letters, digits, _ or - (1 to 64 characters), got "n1,,n2"'])
  t.same(problems([], { ...id, PEERS: "n1,n2,n1" }), ['PEERS lists "n1" twice, got "n1,n2,n1"'])
  t.same(problems([], { ...id, NATS_URL: "http://x:4222" }), [
    'NATS_URL must be a comma-separated list of nats://host:port or tls://host:port URLs, got "http://x:4222"'
  ])
  t.same(problems(["--nats", "nats://a:4222,nats://b:99999"], id), [
    '--nats must be a comma-separated list of nats://host:port or tls://host:port URLs, got "nats://b:99999"'
  ])
  t.same(problems([], { ...id, NATS_URL: "nats://a:4222," }), [
    'NATS_URL must be a comma-separated list of nats://host:port or tls://host:port URLs, got "nats://a:4222,"'
  ])
  t.same(problems([], { ...id, NATS_URL: "nats://a/b" }), ['NATS_URL must be a comma-separated list of nats://host:port or tls://host:port URLs, got "nats://a/b"'])
  t.same(problems([], { ...id, NATS_URL: "nats://:4222" }), ['NATS_URL must be a comma-separated list of nats://host:port or tls://host:port URLs, got "nats://:4222"'])
  t.same(problems([], { ...id, NATS_URL: "nats://[bad" }), ['NATS_URL must be a comma-separated list of nats://host:port or tls://host:port URLs, got "nats://[bad"'])
  t.same(problems(["--data", " "], id), ['--data must be a folder path, got " "'])
  t.same(problems([], { ...id, MAX_HELD: "0" }), ['MAX_HELD must be an integer from 1 to 10000000, got "0"'])
  t.same(problems([], { ...id, SNAPSHOT_THRESHOLD: "0" }), ['SNAPSHOT_THRESHOLD must be an integer from 1 to 1000000000, got "0"'])
  t.same(problems([], { ...id, RAFT_SNAPSHOT_THRESHOLD: "lots" }), ['RAFT_SNAPSHOT_THRESHOLD must be an integer from 1 to 1000000000, got "lots"'])
  t.same(problems([], { ...id, TICK_MS: "0" }), ['TICK_MS must be an integer from 1 to 60000, got "0"'])
  t.same(problems([], { ...id, ELECTION_TICKS: "1" }), ['ELECTION_TICKS must be an integer from 2 to 1000000, got "1"'])
  t.same(problems([], { ...id, HEARTBEAT_TICKS: "x" }), ['HEARTBEAT_TICKS must be an integer from 1 to 1000000, got "x"'])
  t.same(problems([], { ...id, HEARTBEAT_TICKS: "15" }), [
    "HEARTBEAT_TICKS (15) must be less than ELECTION_TICKS (15): followers would call elections between heartbeats"
  ])
  t.same(problems(["--election-ticks", "4"], { ...id, HEARTBEAT_TICKS: "5" }), [
    "HEARTBEAT_TICKS (5) must be less than --election-ticks (4): followers would call elections between heartbeats"
  ])
  t.same(problems([], { ...id, LOG_LEVEL: "loud" }), ['LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, none, got "loud"'])
})

t.test("NATS authentication must be one coherent method; secrets are never echoed", async (t) => {
  const id = { NODE_ID: "n1" }
  t.same(problems([], { ...id, NATS_USER: "u" }), ["NATS_USER is set but NATS_PASS (or --nats-pass) is not: give the NATS user and password together"])
  t.same(problems([], { ...id, NATS_PASS: "hunter2" }), ["NATS_PASS is set but NATS_USER (or --nats-user) is not: give the NATS user and password together"])
  const both = problems([], { ...id, NATS_TOKEN: "hunter2", NATS_CREDS: "/c" })
  t.same(both, ["choose one NATS authentication method, got NATS_TOKEN, NATS_CREDS"])
  t.notMatch(both.join(" "), /hunter2/)
  t.same(problems([], { ...id, NATS_TLS_CERT: "c" }), ["NATS_TLS_CERT is set but NATS_TLS_KEY (or --nats-tls-key) is not: a client certificate needs its key"])
  t.same(problems(["--nats-tls-key", "k"], id), ["--nats-tls-key is set but NATS_TLS_CERT (or --nats-tls-cert) is not: a client certificate needs its key"])
})

t.test("flag syntax errors", async (t) => {
  t.same(problems(["--id"]), ["--id needs a value (--id ID)"])
  t.same(problems(["--id", "--cluster", "x"]), ["--id needs a value (--id ID)"], "a --flag is never taken as a value")
  t.same(problems(["--bogus", "1", "--id", "n1"]), ['unknown flag "--bogus" (see archio node --help)'])
  t.same(problems(["--bogus=1", "--id", "n1"]), ['unknown flag "--bogus" (see archio node --help)'])
  t.same(problems(["n1"]), ['unexpected argument "n1" (usage: archio node [flags])'])
  t.same(problems(["--id", "n1", "-x"]), ['unknown flag "-x" (see archio node --help)'])
  t.same(problems(["--id", "n1", "--bogus", "--frob=2"]), ['unknown flag "--bogus" (see archio node --help)', 'unknown flag "--frob" (see archio node --help)'], "every one reported")
})

t.test("all problems are reported together", async (t) => {
  const result = parseConfig([], { HTTP_PORT: "x" })
  if (Either.isLeft(result)) {
    t.equal(result.left._tag, "ConfigError")
    t.equal(result.left.message, result.left.problems.join("\n"), "the message lists every problem, one a line")
  } else t.fail("expected a ConfigError")
  const all = problems([], { HTTP_PORT: "x", CLUSTER: "a b", TICK_MS: "0" })
  t.equal(all.length, 4)
  t.match(all[0], /NODE_ID/)
})

t.test("help documents every flag with its variable and default", async (t) => {
  const nodeHelp = nodeCommand.help()
  for (const spec of Object.values(nodeOptions)) {
    t.match(nodeHelp, spec.flag)
    t.match(nodeHelp, spec.env)
    for (const old of "legacy" in spec ? spec.legacy : []) t.match(nodeHelp, old)
    if ("default" in spec) t.match(nodeHelp, spec.default, `${spec.flag} default shown`)
  }
  for (const spec of Object.values(statusOptions)) t.match(statusCommand.help(), spec.flag)
})

t.test("describe leaves secrets out", async (t) => {
  const line = describe(ok([], { NODE_ID: "n1", NATS_URL: "nats://me:pw@h:4222", NATS_USER: "u", NATS_PASS: "pw" }))
  t.notMatch(line, /pw/)
  t.match(line, /auth=user u/)
  t.match(describe(ok([], { NODE_ID: "n1", NATS_TOKEN: "tok" })), /auth=token/)
  t.notMatch(describe(ok([], { NODE_ID: "n1", NATS_TOKEN: "tok" })), /tok\b/)
  t.match(describe(ok([], { NODE_ID: "n1", NATS_CREDS: "/a.creds" })), /auth=creds \/a\.creds/)
  t.match(describe(ok([], { NODE_ID: "n1" })), /auth=none tls=off/)
  t.equal(redactUrl("nats://u:p@h:1"), "nats://u:***@h:1")
  t.equal(redactUrl("nats://h:1"), "nats://h:1")
})

/** `archio status` settings from a command line and environment, as the command reads them. */
const parseStatus = (argv: ReadonlyArray<string>, env: Env) => {
  const { line, problems } = parseCommandLine(argv, statusOptions, env, { path: "status", args: [], minArgs: 0 })
  return problems.length > 0 ? Either.left({ problems }) : statusConfig(line)
}

t.test("archio status settings", async (t) => {
  const c = parseStatus(["--node", "n2", "--timeout", "500"], { CLUSTER: "x", NATS_URL: "nats://h:1" })
  t.ok(Either.isRight(c))
  if (Either.isRight(c)) t.match(c.right, { cluster: "x", node: "n2", timeoutMs: 500, nats: { servers: ["nats://h:1"] } })
  const d = parseStatus([], {})
  if (Either.isRight(d)) t.match(d.right, { cluster: "dev", node: undefined, timeoutMs: 2000, nats: { servers: ["nats://127.0.0.1:4222"] } })
  else t.fail("defaults should parse")
  const bad = parseStatus(["--timeout", "soon", "--node", "a b"], {})
  t.ok(Either.isLeft(bad))
  if (Either.isLeft(bad)) {
    t.same(bad.left.problems, [
      '--node must be a node id made of letters, digits, _ or - (1 to 64 characters), got "a b"',
      '--timeout must be an integer from 1 to 600000, got "soon"'
    ])
  }
  const unknown = parseStatus(["--id", "n1"], {})
  if (Either.isLeft(unknown)) t.same(unknown.left.problems, ['unknown flag "--id" (see archio status --help)'])
  else t.fail("--id is not a status flag")
})

t.test("--join: no --peers, an empty seed; both at once is an error", async (t) => {
  t.match(ok(["--join"], { NODE_ID: "n4" }), { id: "n4", peers: [] })
  t.match(ok([], { NODE_ID: "n4", JOIN: "1" }), { peers: [] })
  t.match(ok([], { NODE_ID: "n4", JOIN: "no" }), { peers: ["n4"] })
  t.match(problems(["--join", "--peers", "n1,n4"], { NODE_ID: "n4" }), [/--join and --peers exclude each other/])
})

t.test("NATS inbox prefix and nkey file (the shipped roles need them)", async (t) => {
  const id = { NODE_ID: "n1" }
  t.equal(ok([], { ...id, NATS_INBOX_PREFIX: "_INBOX_node" }).nats.inboxPrefix, "_INBOX_node")
  t.equal(ok(["--id", "n1", "--nats-inbox-prefix", "_INBOX.apps.billing"]).nats.inboxPrefix, "_INBOX.apps.billing", "several tokens")
  t.equal(ok([], id).nats.inboxPrefix, undefined, "unset: nats.js's _INBOX")
  for (const bad of ["_INBOX.*", "_INBOX.>", "a..b", "has space", ".x", "x."]) {
    t.same(problems([], { ...id, NATS_INBOX_PREFIX: bad }), [`NATS_INBOX_PREFIX must be a subject prefix without wildcards or spaces, such as _INBOX_client, got ${JSON.stringify(bad)}`], bad)
  }
  t.equal(ok([], { ...id, NATS_NKEY: "/keys/node.nk" }).nats.nkeyFile, "/keys/node.nk")
  t.equal(ok(["--id", "n1", "--nats-nkey", "node.nk"]).nats.nkeyFile, "node.nk")
  t.same(problems([], { ...id, NATS_NKEY: "/k", NATS_USER: "u", NATS_PASS: "p" }), ["choose one NATS authentication method, got NATS_USER, NATS_NKEY"])
  const line = describe(ok([], { ...id, NATS_NKEY: "/keys/node.nk", NATS_INBOX_PREFIX: "_INBOX_node" }))
  t.match(line, "auth=nkey /keys/node.nk inbox=_INBOX_node tls=off")
})

t.test("RAFT_NODES is the older name of PEERS; both set to different members is an error", async (t) => {
  t.same(ok([], { NODE_ID: "n1", RAFT_NODES: "n1,n2,n3" }).peers, ["n1", "n2", "n3"])
  t.same(ok([], { NODE_ID: "n1", PEERS: "n1,n2,n3", RAFT_NODES: "n3, n2,n1" }).peers, ["n1", "n2", "n3"], "the same members in another order agree")
  t.same(problems([], { NODE_ID: "n1", PEERS: "n1,n2,n3", RAFT_NODES: "n1,n2" }), [
    'PEERS ("n1,n2,n3") and RAFT_NODES ("n1,n2") name different members: RAFT_NODES is the older name of PEERS, set only one (or both the same)'
  ])
  t.same(ok(["--peers", "n1,n4"], { NODE_ID: "n1", PEERS: "n1,n2,n3", RAFT_NODES: "n1,n2" }).peers, ["n1", "n4"], "--peers wins over both variables")
  t.same(problems([], { NODE_ID: "n1", RAFT_NODES: "n1,,n2" }), ['RAFT_NODES must be a comma-separated list of node ids made of letters, digits, _ or - (1 to 64 characters), got "n1,,n2"'])
  t.same(problems([], { NODE_ID: "n1", RAFT_NODES: "n2" }), [`RAFT_NODES must include this node's own id "n1", got "n2"`])
  t.match(problems(["--join"], { NODE_ID: "n4", RAFT_NODES: "n1,n4" }), [/--join and RAFT_NODES exclude each other/])
  t.match(nodeCommand.help(), /--peers IDS[^]*env PEERS, RAFT_NODES/, "help names the older variable")
})

t.test("RAFT_DATA_DIR and --data-root: one root, a folder per node id; --data names the folder itself", async (t) => {
  t.equal(ok([], { NODE_ID: "n2", RAFT_DATA_DIR: "/var/lib/raft" }).dataDir, "/var/lib/raft/n2")
  t.equal(ok([], { NODE_ID: "n2", RAFT_DATA_DIR: "/var/lib/raft/" }).dataDir, "/var/lib/raft/n2", "no doubled slash")
  t.equal(ok([], { NODE_ID: "n2", DATA_ROOT: "./data" }).dataDir, "./data/n2")
  t.equal(ok(["--data-root", "/r"], { NODE_ID: "n2", RAFT_DATA_DIR: "/old" }).dataDir, "/r/n2", "the flag wins over the older variable")
  t.equal(ok([], { NODE_ID: "n2", DATA_ROOT: "/new", RAFT_DATA_DIR: "/old" }).dataDir, "/new/n2", "DATA_ROOT wins over its older name")
  t.equal(ok(["--data", "/exact"], { NODE_ID: "n2", RAFT_DATA_DIR: "/old" }).dataDir, "/exact", "--data wins over any root")
  t.equal(ok([], { NODE_ID: "n2" }).dataDir, "./.archio/n2", "the default root")
  t.same(problems([], { NODE_ID: "n2", RAFT_DATA_DIR: " " }), ['RAFT_DATA_DIR must be a folder path, got " "'])
})

t.test("--http-follower-writes and --http-peers", async (t) => {
  const id = { NODE_ID: "n1" }
  const plain = ok([], id)
  t.notOk("httpFollowerWrites" in plain, "unset: forward")
  t.notOk("httpPeers" in plain, "unset: no URLs")
  t.equal(ok([], { ...id, HTTP_FOLLOWER_WRITES: "reject" }).httpFollowerWrites, "reject")
  t.equal(ok(["--http-follower-writes", "Forward"], { ...id, HTTP_FOLLOWER_WRITES: "reject" }).httpFollowerWrites, "forward", "the flag wins; any case")
  t.same(problems([], { ...id, HTTP_FOLLOWER_WRITES: "redirect" }), ['HTTP_FOLLOWER_WRITES must be forward or reject, got "redirect"'])
  t.same(ok([], { ...id, HTTP_PEERS: "n1=http://10.0.0.1:8081/, n2=https://kv.example.com/archio" }).httpPeers, {
    n1: "http://10.0.0.1:8081",
    n2: "https://kv.example.com/archio"
  })
  t.same(ok(["--http-peers", "n3=http://h:1"], id).httpPeers, { n3: "http://h:1" })
  const entry = (bad: string) =>
    `HTTP_PEERS must be a comma-separated list of <node id>=<http(s) URL> entries such as n1=http://10.0.0.1:8081, got ${JSON.stringify(bad)}`
  for (const bad of ["http://h:1", "=http://h:1", "n.1=http://h:1", "n1=h:1", "n1=nats://h:1", "n1=http://h:1/?x=1", "n1=", ""]) {
    t.same(problems([], { ...id, HTTP_PEERS: `n9=http://ok:1,${bad}` }), [entry(bad)], bad)
  }
  t.same(problems([], { ...id, HTTP_PEERS: "n1=http://a:1,n1=http://b:1" }), ['HTTP_PEERS names "n1" twice, got "n1=http://a:1,n1=http://b:1"'])
  const line = describe(ok([], { ...id, HTTP_PORT: "8081", HTTP_FOLLOWER_WRITES: "reject", HTTP_PEERS: "n1=http://a:1,n2=http://b:2" }))
  t.match(line, "http=127.0.0.1:8081 http-follower-writes=reject http-peers=n1,n2")
  t.notMatch(describe(plain), /follower-writes|http-peers/)
})
