/**
 * The shipped NATS configuration (ops/nats/) made ready for one cluster, with fresh credentials
 * for its four roles: what `archio dev --secure` runs, and what the security tests run against.
 *
 * The shipped files hold no secret: passwords reach nats-server through environment variables
 * (`ARCHIO_<ROLE>_PASSWORD`), and the subjects are written for the cluster `dev`, which
 * `forCluster` renames. Each role's credentials are also written as a file of `NATS_*`
 * variables that `archio` commands read as they are (`env $(cat client.env) archio kv get x`).
 */
import { randomInt } from "node:crypto"
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The folder of the shipped files (this file and the bundle in dist/ both sit one level below the root). */
export const shippedDir = fileURLToPath(new URL("../ops/nats/", import.meta.url))

export const roles = ["node", "client", "worker", "admin"] as const
export type Role = (typeof roles)[number]

export interface Credentials {
  readonly user: string
  readonly password: string
  /** The only inbox prefix this user may read: `_INBOX_<user>`. */
  readonly inboxPrefix: string
}

export type RoleCredentials = { readonly [R in Role]: Credentials }

/** The shipped files: the two server files and what they include. */
export const shippedFiles = ["single.conf", "cluster.conf", "authorization.conf", "authorization-nkeys.conf", "permissions.conf", "tls.conf"] as const

// ---------------------------------------------------------------------------------------------
// Pure

/** The shipped text with the cluster `dev`'s subjects (quoted strings) renamed to `cluster`'s, as the sed line in permissions.conf does. */
export const forCluster = (text: string, cluster: string): string => text.replaceAll('"archio.dev.', `"archio.${cluster}.`)

/** `single.conf` or `cluster.conf` with its `include ./tls.conf` line switched on, as README tells operators. */
export const withTls = (text: string): string => {
  const switched = text.replace(/^# include \.\/tls\.conf$/m, "include ./tls.conf")
  if (switched === text) throw new Error("no commented-out `include ./tls.conf` line to switch on")
  return switched
}

/** `single.conf` or `cluster.conf` with users that sign with nkeys instead of passwords, as README tells operators. */
export const withNkeys = (text: string): string => {
  const switched = text.replace(/^include \.\/authorization\.conf$/m, "include ./authorization-nkeys.conf")
  if (switched === text) throw new Error("no `include ./authorization.conf` line to switch")
  return switched
}

/** The inbox prefix a user of the shipped configuration may read. */
export const inboxPrefixOf = (user: string): string => `_INBOX_${user}`

const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const alphabet = `${letters}0123456789`

/**
 * A password from `pick` (a random index below its argument): 32 letters and digits, starting
 * with a letter, because nats-server reads a `$VARIABLE` as a config value (a number, `true`
 * or a leading `-` would not be a string). About 190 bits.
 */
export const passwordFrom = (pick: (below: number) => number): string => {
  let password = letters[pick(letters.length)]!
  while (password.length < 32) password += alphabet[pick(alphabet.length)]!
  return password
}

export const newCredentials = (pick: (below: number) => number = randomInt): RoleCredentials => {
  const make = (user: Role): Credentials => ({ user, password: passwordFrom(pick), inboxPrefix: inboxPrefixOf(user) })
  return { node: make("node"), client: make("client"), worker: make("worker"), admin: make("admin") }
}

/** The nats-server environment `authorization.conf` reads the passwords from. */
export const serverEnvironment = (credentials: RoleCredentials): Record<string, string> =>
  Object.fromEntries(roles.map((role) => [`ARCHIO_${role.toUpperCase()}_PASSWORD`, credentials[role].password]))

/** The `archio` variables that connect as `credentials` (what `<role>.env` holds). */
export const clientEnvironment = (credentials: Credentials, url: string, cluster: string): Record<string, string> => ({
  NATS_URL: url,
  NATS_USER: credentials.user,
  NATS_PASS: credentials.password,
  NATS_INBOX_PREFIX: credentials.inboxPrefix,
  ...(cluster === "dev" ? {} : { CLUSTER: cluster })
})

/** `KEY=value` lines; values are letters, digits and URL characters, so a shell takes them as they are. */
export const envFileText = (env: Readonly<Record<string, string>>): string =>
  Object.entries(env)
    .map(([key, value]) => `${key}=${value}\n`)
    .join("")

// ---------------------------------------------------------------------------------------------
// Files

export interface ServerConfigOptions {
  readonly cluster: string
  /** Which server file to run: one server (default) or one of three (routes). */
  readonly server?: "single.conf" | "cluster.conf"
  /** Switch on `include ./tls.conf` (the server then needs the ARCHIO_NATS_TLS_* variables). */
  readonly tls?: boolean
  /** Users with nkeys (`authorization-nkeys.conf`, ARCHIO_<ROLE>_NKEY) instead of passwords. */
  readonly nkeys?: boolean
  /** Where the shipped files are read from; `shippedDir` by default. */
  readonly from?: string
}

/**
 * Writes the shipped files into `dir` (created, mode 0700), renamed for `options.cluster`, the
 * server file with the switches asked for; returns its path, for `nats-server -c`.
 */
export const writeServerConfig = async (dir: string, options: ServerConfigOptions): Promise<string> => {
  const server = options.server ?? "single.conf"
  await mkdir(dir, { recursive: true, mode: 0o700 })
  for (const file of shippedFiles) {
    let text = forCluster(await readFile(join(options.from ?? shippedDir, file), "utf8"), options.cluster)
    if (file === server && options.tls === true) text = withTls(text)
    if (file === server && options.nkeys === true) text = withNkeys(text)
    await writeFile(join(dir, file), text)
  }
  return join(dir, server)
}

/** Writes a file only its owner may read or write (mode 0600, also when it existed before). */
export const writePrivateFile = async (path: string, text: string): Promise<void> => {
  await writeFile(path, text, { mode: 0o600 })
  await chmod(path, 0o600)
}

/** Writes `<role>.env` for every role into `dir`, each mode 0600; returns their paths by role. */
export const writeCredentialFiles = async (
  dir: string,
  credentials: RoleCredentials,
  url: string,
  cluster: string
): Promise<{ readonly [R in Role]: string }> => {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  const pathOf = (role: Role): string => join(dir, `${role}.env`)
  const paths = { node: pathOf("node"), client: pathOf("client"), worker: pathOf("worker"), admin: pathOf("admin") }
  for (const role of roles) await writePrivateFile(paths[role], envFileText(clientEnvironment(credentials[role], url, cluster)))
  return paths
}
