/**
 * The frame every `archio kv` command runs in: the client-command frame (../clientCommand.ts,
 * shared with `archio jobs`) under the group name `kv`. A command gives its arguments, its own
 * flags and `prepare`; the frame adds `--json` and the connection flags, checks everything
 * before it connects, runs the work and reports a failed request.
 */
import { connectionSection as sectionOf, defineClientCommand, type ClientCommandSpec } from "../clientCommand.ts"
import type { Command } from "../command.ts"
import type { OptionTable } from "../options.ts"

export type { Prepared, Session } from "../clientCommand.ts"

export const connectionSection = sectionOf("kv")

export const defineKvCommand = <const Flags extends OptionTable>(spec: ClientCommandSpec<Flags>): Command => defineClientCommand("kv", spec)
