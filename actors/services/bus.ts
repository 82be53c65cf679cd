/**
 * The node's message bus as a service: its NATS connection in `archio node`
 * (bootstrap/nats.ts), the simulated network in the simulator (ops/sim). See protocol/bus.ts.
 */
import { Context } from "effect"
import type { Bus as BusShape } from "../../protocol/bus.ts"

export type { BusMessage, BusSubscription } from "../../protocol/bus.ts"
export type { BusShape }

export class Bus extends Context.Tag("archio/Bus")<Bus, BusShape>() {}
