/**
 * The node's message bus as a service: its NATS connection in `archio node`
 * (bootstrap/nats.ts), the simulated network in the simulator (ops/sim). See protocol/bus.ts.
 */
import { Context } from "effect"
import type { Bus as BusShape } from "../../protocol/bus.ts"

export type { BusMessage, BusSubscription } from "../../protocol/bus.ts"
export type { BusShape }

export class Bus extends Context.Tag("archio/Bus")<Bus, BusShape>() {}

/**
 * The bus Raft's messages travel on: in `archio node` a second NATS connection of the node's
 * own, so heartbeats never wait in one socket behind a flood of client requests (which cost a
 * leader its term under overload when both shared one); the simulator gives the same network.
 */
export class RaftBus extends Context.Tag("archio/RaftBus")<RaftBus, BusShape>() {}
