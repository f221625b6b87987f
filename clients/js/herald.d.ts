// Type declarations for herald-client (herald.js).
// SPDX-License-Identifier: LGPL-2.1-or-later

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** 'connecting' | 'connected' (after the server's `connected` frame) | 'disconnected'. */
export type HeraldState = 'connecting' | 'connected' | 'disconnected';

/** A WebSocket constructor: the browser's, Node's global one (Node ≥ 22), or the `ws` package. */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[]): any;
}

export interface HeraldOptions {
  /** A token (JWT), or a function giving one; called at every connect and before the token expires. */
  token?: string | null | (() => string | null | undefined | Promise<string | null | undefined>);
  /** A WebSocket implementation where there is no global one (e.g. `import WebSocket from 'ws'`). */
  WebSocket?: WebSocketConstructor;
  /** Subprotocols offered before `bearer.<token>` (default `['herald.v1']`). */
  protocols?: string[];
  /** Smallest reconnect delay in ms (default 250). */
  minReconnectDelay?: number;
  /** Largest reconnect delay in ms (default 20000). */
  maxReconnectDelay?: number;
  /** Time in ms for the server's `connected` and for each request's answer (default 10000). */
  timeout?: number;
  /** Renew the token this many ms before `exp`, at most half its lifetime (default 10000). */
  refreshMargin?: number;
  /** A server silent this long (ms) is taken for dead; default 2 × heartbeat_interval + 5 s. */
  serverTimeout?: number;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /** Connect in the constructor (default true); otherwise call connect(). */
  autoConnect?: boolean;
}

/** An error from the server (`code` as in docs/protocol.md, `server: true`) or from the client. */
export class HeraldError extends Error {
  constructor(code: string, message?: string, extra?: object);
  name: 'HeraldError';
  /**
   * Server codes: invalid_json, unknown_type, bad_request, forbidden, rate_limited,
   * internal_error, unavailable, rpc_error. Client codes: timeout, disconnected, closed,
   * transport_error, protocol_error, token_failed, connect_failed, refresh_failed,
   * callback_error, already_subscribed, internal_error.
   */
  code: string;
  /** True when the server sent the error. */
  server?: boolean;
  /** The backend's code of an `rpc_error`. */
  rpcCode?: number;
  cause?: unknown;
}

export interface MessageContext {
  /** The channel; null for a direct message (to a user, a connection, or broadcast). */
  channel: string | null;
  /** The message's offset in its channel; null for direct messages and unstored publishes. */
  offset: number | null;
  /** The epoch the offset belongs to. */
  epoch: string | null;
  /** The publish's conflation key, when it had one. */
  key?: string;
  /** True when this message replaced older ones with the same key. */
  conflated?: boolean;
}

export interface SubscribedInfo {
  channel: string;
  /**
   * True when a resubscription (with `since` + `epoch`) got every missed message.
   * False on a first subscription or when history no longer held them: reload the
   * channel's state from your backend then.
   */
  recovered: boolean;
  /** True when this was a resubscription that asked for recovery. */
  resumed: boolean;
  /** The position the live stream continues after. */
  offset: number | null;
  epoch: string | null;
  /** True when the server subscribed the connection by itself, or sent a reset notice (Redis engine: `recovered` false, reload). */
  server: boolean;
}

export interface UnsubscribedInfo {
  channel: string;
  /** The server's reason (e.g. `expired`, `not allowed by the refreshed token`) or an error code; null when asked by the client. */
  reason: string | null;
  server: boolean;
}

/**
 * A channel the server subscribed the connection to (the token's or the connect
 * hook's `subs`, `POST /api/users/{id}/subscribe`), with no `subscribe()` of its own.
 * Its messages come as the client's `message` event.
 */
export interface ServerSubscribedInfo {
  channel: string;
  /** The channel's latest offset when subscribed: messages after it follow. */
  offset: number | null;
  epoch: string | null;
  server: true;
  /** True when the channel was a server subscription of the previous connection too (`subs` after a reconnect). */
  resumed: boolean;
  /** True when resumed and nothing was published meanwhile (same epoch and offset); otherwise reload the channel's state. */
  recovered: boolean;
}

/** A server subscription ended: by the server (`reason` as the server sent it, null for the server API), or `'reconnected'`: not made again on the new connection. */
export interface ServerUnsubscribedInfo {
  channel: string;
  reason: string | null;
  server: true;
}

export interface PresenceEvent {
  channel: string;
  userId: string | null;
  connectionId: string | null;
}

export interface SubscribeOptions {
  onMessage?: (data: Json, ctx: MessageContext) => void;
  /** Called after every (re)subscribe. */
  onSubscribed?: (info: SubscribedInfo) => void;
  onUnsubscribed?: (info: UnsubscribedInfo) => void;
  /** The subscribe was refused (the subscription is dropped) or failed for a passing reason (timeout, rate_limited, internal_error, unavailable, token_failed: sent again after a backoff delay). */
  onError?: (error: HeraldError) => void;
  /** Join and leave events (namespaces with join-leave, or `presence: true`). */
  onJoin?: (event: PresenceEvent) => void;
  onLeave?: (event: PresenceEvent) => void;
  /** Ask for join/leave events (`"presence":true` on subscribe). */
  presence?: boolean;
  /** Start from this position (with `epoch`): the first subscribe recovers what came after it. */
  since?: number;
  epoch?: string;
  /**
   * A subscription token (namespaces with `subscribe=token`), or a function giving one
   * per (re)subscribe. A function's JWT is renewed before its `exp` (as `refreshMargin`
   * says), on the live subscription; after `"reason":"expired"` the channel is subscribed
   * again with a fresh one (since + epoch: nothing missed). A string token just ends.
   */
  token?: string | ((channel: string) => string | Promise<string>);
  /** `data` for the backend's subscribe proxy. */
  data?: Json;
}

export class Subscription {
  readonly channel: string;
  /** Offset of the last message delivered, or the position of the last `subscribed`. */
  offset: number | null;
  epoch: string | null;
  state: 'subscribing' | 'subscribed' | 'unsubscribed';
  /** Ends the subscription; resolves when the server confirmed, or at once when offline. Never rejects. */
  unsubscribe(): Promise<void>;
}

export interface ConnectedInfo {
  connectionId: string | null;
  userId: string | null;
  heartbeatInterval: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** The delay before the next attempt (ms), or null when not reconnecting. */
  reconnectIn: number | null;
}

export interface PublishResult {
  channel: string;
  /** null when Herald could not store the message (it was still delivered locally). */
  offset: number | null;
}

export interface PresenceResult {
  channel: string;
  users: string[];
  connections: number;
  /** Cursor of the next page, or null. */
  next: string | null;
}

export interface PresenceStats {
  channel: string;
  users: number;
  connections: number;
}

export interface HeraldEvents {
  state: (state: HeraldState) => void;
  /** Protocol errors, failed attempts, errors nobody asked for. */
  error: (error: HeraldError) => void;
  connected: (info: ConnectedInfo) => void;
  close: (info: CloseInfo) => void;
  /** Direct messages, and messages of channels the server subscribed the connection to. */
  message: (data: Json, ctx: MessageContext) => void;
  /** A channel the server subscribed the connection to (`subs` claim, server API), at every (re)connect for `subs`. */
  subscribed: (info: ServerSubscribedInfo) => void;
  /** A server subscription ended. */
  unsubscribed: (info: ServerUnsubscribedInfo) => void;
  refreshed: (info: { exp: number | null }) => void;
  join: (event: PresenceEvent) => void;
  leave: (event: PresenceEvent) => void;
}

export class Herald {
  /** Starts connecting at once unless `autoConnect: false`. */
  constructor(url: string, options?: HeraldOptions);
  static readonly VERSION: string;
  readonly url: string;
  readonly state: HeraldState;
  /** The server's id for this connection while connected, else null. */
  readonly connectionId: string | null;
  readonly userId: string | null;

  on<E extends keyof HeraldEvents>(event: E, listener: HeraldEvents[E]): () => void;
  off<E extends keyof HeraldEvents>(event: E, listener: HeraldEvents[E]): void;

  connect(): void;
  /** Closes for good (until connect()); pending requests reject with `closed`. */
  close(): void;

  /** Throws `already_subscribed` when the channel has a subscription. */
  subscribe(channel: string, options?: SubscribeOptions): Subscription;
  getSubscription(channel: string): Subscription | null;

  /** Waits for a connection (up to `timeout`) when there is none. */
  publish(channel: string, data: Json, options?: { key?: string }): Promise<PublishResult>;
  presence(channel: string, options?: { limit?: number; cursor?: string | null }): Promise<PresenceResult>;
  presenceStats(channel: string): Promise<PresenceStats>;
  /** Calls the backend through Herald's RPC proxy; resolves with the result's `data`. */
  rpc(method: string, data?: Json): Promise<Json>;
  /** Round trip time in ms. */
  ping(): Promise<number>;
}

export default Herald;
