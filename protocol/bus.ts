/**
 * The message bus as the node and the typed client use it: the few calls of a NATS connection
 * they need, narrowed so that a second implementation is small. A `NatsConnection` from
 * `@nats-io/transport-node` is a `Bus` as it is (no wrapper on the hot path); the simulator's
 * network (ops/sim) is the other one.
 *
 * Semantics are core NATS's: at most once, no ordering promise across publishers; a request
 * with no subscriber rejects with no-responders (a `RequestError` caused by
 * `NoRespondersError`), one with no answer in time with a `TimeoutError`.
 */
import { errors, type MsgHdrs } from "@nats-io/transport-node"

export interface BusMessage {
  readonly subject: string
  readonly data: Uint8Array
  /** Where the sender waits for an answer (its inbox), if anywhere. */
  readonly reply?: string | undefined
  readonly headers?: MsgHdrs | undefined
}

export type BusCallback = (err: Error | null, msg: BusMessage) => void

export interface BusSubscription {
  unsubscribe(): void
  /** Stops new deliveries and resolves once those already delivered were handled. */
  drain(): Promise<void>
  isClosed(): boolean
  /** Resolves when the subscription ends: with an Error when the server refused or closed it. */
  readonly closed: Promise<void | Error>
}

export interface Bus {
  publish(subject: string, payload?: Uint8Array, options?: { readonly reply?: string; readonly headers?: MsgHdrs }): void
  subscribe(subject: string, options: { readonly queue?: string; readonly callback: BusCallback }): BusSubscription
  request(subject: string, payload: Uint8Array, options: { readonly timeout: number; readonly headers?: MsgHdrs }): Promise<BusMessage>
  isClosed(): boolean
  /** Drains every subscription, then closes the connection. */
  drain(): Promise<void>
  /** What the server said when we connected; `max_payload` caps one message. */
  readonly info?: { readonly max_payload: number } | undefined
}

/** A request failed because nothing subscribes to its subject (NATS status 503). */
export const isNoResponders = (e: unknown): boolean =>
  e instanceof errors.NoRespondersError ||
  (e instanceof Error && e.cause instanceof errors.NoRespondersError) ||
  (e instanceof errors.RequestError && e.isNoResponders())

/** A request got no answer in time. */
export const isTimeout = (e: unknown): boolean => e instanceof errors.TimeoutError || (e instanceof Error && e.cause instanceof errors.TimeoutError)
