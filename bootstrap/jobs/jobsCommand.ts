/**
 * The frame every `archio jobs` command runs in: the client-command frame (../clientCommand.ts,
 * the one `archio kv` uses) under the group name `jobs`, so both groups take the same
 * connection flags, retry the same way and report a refused request the same way.
 */
import { JobsClient } from "../../protocol/jobsClient.ts"
import { connectionSection as sectionOf, defineClientCommand, type ClientCommandSpec, type Session } from "../clientCommand.ts"
import type { Command } from "../command.ts"
import type { OptionTable } from "../options.ts"

export const connectionSection = sectionOf("jobs")

export const defineJobsCommand = <const Flags extends OptionTable>(spec: ClientCommandSpec<Flags>): Command => defineClientCommand("jobs", spec)

/** The typed job calls over the session's client (its retries, deadline and idempotency tokens). */
export const jobsOf = (s: Session): JobsClient => new JobsClient(s.client)
