// herald-client: the JavaScript client of Herald (https://github.com/herald).
//
// One ES module, no dependency, for browsers and Node >= 20 (pass a
// WebSocket implementation such as the `ws` package where there is no
// global one). The protocol it speaks is docs/protocol.md; the API is in
// README.md and herald.d.ts.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

const VERSION = '1.0.0';

const DEFAULTS = {
  protocols: ['herald.v1'],
  minReconnectDelay: 250,
  maxReconnectDelay: 20000,
  timeout: 10000,
  refreshMargin: 10000,
  serverTimeout: 0,
  reconnect: true,
};

// Subscribe errors worth another try: the subscription is kept.
const TRANSIENT = new Set(['timeout', 'rate_limited', 'internal_error', 'unavailable']);

/** An error from the server (`{"type":"error",…}`) or from the client itself. */
export class HeraldError extends Error {
  constructor(code, message, extra) {
    super(message || code);
    this.name = 'HeraldError';
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

// The payload of a JWT, or null when @token is not one (the client then
// schedules no renewal: the server decides).
function jwtPayload(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const text = new TextDecoder().decode(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
    const payload = JSON.parse(text);
    return payload && typeof payload === 'object' ? payload : null;
  } catch (e) {
    return null;
  }
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** One channel subscription; made by Herald#subscribe. */
export class Subscription {
  constructor(client, channel, options) {
    this._client = client;
    this.channel = channel;
    this._options = options || {};
    /** Offset of the last message delivered (or the position of the last `subscribed`). */
    this.offset = typeof this._options.since === 'number' ? this._options.since : null;
    /** Epoch the offset belongs to. */
    this.epoch = typeof this._options.epoch === 'string' ? this._options.epoch : null;
    /** 'subscribing' | 'subscribed' | 'unsubscribed' */
    this.state = 'subscribing';
  }

  /** Stops the subscription; resolves once the server confirmed (or at once when offline). Never rejects. */
  unsubscribe() {
    return this._client._unsubscribe(this);
  }

  _call(name, ...args) {
    const fn = this._options[name];
    if (typeof fn !== 'function') return;
    try {
      fn(...args);
    } catch (e) {
      this._client._emit('error', new HeraldError('callback_error', name + ' threw: ' + (e && e.message || e), { cause: e }));
    }
  }
}

/** The client: one WebSocket, reconnected by itself. */
export class Herald {
  constructor(url, options) {
    if (typeof url !== 'string' || url === '') throw new TypeError('Herald: url must be a non-empty string');
    this.url = url;
    this.options = Object.assign({}, DEFAULTS, options || {});
    const WS = this.options.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : undefined);
    if (typeof WS !== 'function')
      throw new TypeError('Herald: no WebSocket implementation: pass options.WebSocket (e.g. the ws package)');
    this._WS = WS;
    this.state = 'disconnected';
    this.connectionId = null;
    this.userId = null;
    this._listeners = new Map();
    this._subs = new Map();       // channel -> Subscription
    this._serverSubs = new Map(); // channel -> { offset, epoch }: subscribed by the server, no subscribe() of ours
    this._pending = new Map();    // id -> { resolve, reject, timer, onReply }
    this._queue = [];             // requests waiting for a connection
    this._nextId = 1;
    this._ws = null;
    this._attempt = 0;
    this._timers = { reconnect: 0, handshake: 0, refresh: 0, silence: 0, hint: 0 };
    this._hint = null;            // { at: ms when the reconnect frame arrived, after: ms }
    this._token = null;
    this._generation = 0;         // a new number per WebSocket, so late events of an old one are ignored
    this._wanted = false;
    if (this.options.autoConnect !== false) this.connect();
  }

  // ---- events ----

  /** Adds a listener; returns a function that removes it. */
  on(event, fn) {
    if (typeof fn !== 'function') throw new TypeError('Herald.on: listener must be a function');
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    const set = this._listeners.get(event);
    if (set) set.delete(fn);
  }

  _emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        if (event !== 'error') this._emit('error', new HeraldError('callback_error', event + ' listener threw: ' + (e && e.message || e), { cause: e }));
      }
    }
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit('state', s);
  }

  // ---- connecting ----

  /** Starts connecting (the constructor does unless autoConnect is false). */
  connect() {
    if (this._wanted) return;
    this._wanted = true;
    this._attempt = 0;
    this._open();
  }

  /** Closes the connection for good (until connect()); pending requests reject with `closed`. */
  close() {
    this._wanted = false;
    this._clearTimers();
    this._hint = null;
    this._dropSocket(1000, 'client closed');
    this._failPending(new HeraldError('closed', 'Client closed'), true);
    for (const sub of this._subs.values()) {
      this._cancelRenewal(sub);
      sub._held = null;
      if (sub.state === 'subscribed') sub.state = 'subscribing';
    }
    this.connectionId = null;
    this._setState('disconnected');
  }

  _clearTimers() {
    for (const k of Object.keys(this._timers)) {
      clearTimeout(this._timers[k]);
      this._timers[k] = 0;
    }
  }

  _open() {
    this._openAsync().catch((e) => this._emit('error', new HeraldError('internal_error', String(e && e.message || e), { cause: e })));
  }

  async _openAsync() {
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = 0;
    if (!this._wanted) return;
    const generation = ++this._generation;
    this._heartbeat = 0;
    this._setState('connecting');
    let token = null;
    try {
      token = await this._fetchToken();
    } catch (e) {
      if (generation !== this._generation || !this._wanted) return;
      this._emit('error', new HeraldError('token_failed', 'The token function failed: ' + (e && e.message || e), { cause: e }));
      this._scheduleReconnect();
      return;
    }
    if (generation !== this._generation || !this._wanted) return;
    this._token = token;
    const protocols = [...this.options.protocols];
    if (token) protocols.push('bearer.' + token);
    let ws;
    try {
      ws = new this._WS(this.url, protocols);
    } catch (e) {
      this._emit('error', new HeraldError('connect_failed', 'Cannot open ' + this.url + ': ' + (e && e.message || e), { cause: e }));
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._attemptAtOpen = this._attempt;
    this._sawConnected = false;
    this._timers.handshake = setTimeout(() => {
      if (generation !== this._generation) return;
      this._emit('error', new HeraldError('timeout', 'No "connected" from the server in ' + this.options.timeout + ' ms'));
      this._lost(generation, 4000, 'handshake timeout');
    }, this.options.timeout);
    ws.onmessage = (ev) => this._onFrame(generation, ev.data);
    ws.onerror = (ev) => {
      if (generation !== this._generation) return;
      const detail = ev && (ev.message || (ev.error && ev.error.message));
      this._emit('error', new HeraldError('transport_error', 'WebSocket error' + (detail ? ': ' + detail : '')));
    };
    ws.onclose = (ev) => this._lost(generation, ev ? ev.code : 1006, ev ? ev.reason : '');
  }

  async _fetchToken() {
    const t = this.options.token;
    if (t === undefined || t === null) return null;
    const value = typeof t === 'function' ? await t() : t;
    if (value === undefined || value === null || value === '') return null;
    if (typeof value !== 'string') throw new TypeError('token must be a string');
    return value;
  }

  _dropSocket(code, reason) {
    const ws = this._ws;
    this._ws = null;
    this._generation++;
    if (!ws) return;
    ws.onmessage = ws.onerror = ws.onclose = null;
    if (typeof ws.on === 'function') ws.on('error', () => {}); // ws: errors after close
    try {
      ws.close(code, reason);
    } catch (e) {
      try { ws.close(); } catch (e2) { /* already closed */ }
    }
  }

  // The connection @generation ended (closed, timed out, failed): reconnect.
  _lost(generation, code, reason) {
    if (generation !== this._generation) return;
    const wasConnected = this._sawConnected;
    this._dropSocket(code >= 3000 && code <= 4999 ? code : 1000, 'closing');
    for (const k of ['handshake', 'refresh', 'silence']) {
      clearTimeout(this._timers[k]);
      this._timers[k] = 0;
    }
    this._failPending(new HeraldError('disconnected', 'Connection lost (' + code + (reason ? ' ' + reason : '') + ')'), false);
    for (const sub of this._subs.values()) {
      this._cancelRenewal(sub);
      sub._held = null;
      if (sub.state === 'subscribed') sub.state = 'subscribing';
    }
    this.connectionId = null;
    // Failed before `connected`, or a server speaking garbage after it:
    // keep backing off from where this attempt started.
    if (wasConnected && this._protocolError) this._attempt = this._attemptAtOpen;
    this._protocolError = false;
    const delay = this._scheduleReconnect();
    this._emit('close', { code, reason: reason || '', reconnectIn: delay });
  }

  // Returns the delay chosen (ms), or null when not reconnecting.
  _scheduleReconnect() {
    this._setState('disconnected');
    if (!this._wanted || this.options.reconnect === false) {
      this._wanted = false;
      return null;
    }
    let delay;
    if (this._hint) {
      // The server's drain hint counts from the frame's receipt.
      delay = Math.max(0, this._hint.at + this._hint.after - Date.now());
      this._hint = null;
      clearTimeout(this._timers.hint);
      this._timers.hint = 0;
    } else {
      delay = this._backoff();
    }
    this._attempt++;
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = setTimeout(() => this._open(), delay);
    return delay;
  }

  // Exponential backoff with full jitter, every delay between the bounds.
  _backoff() {
    const min = Math.max(0, this.options.minReconnectDelay);
    const max = Math.max(min, this.options.maxReconnectDelay);
    const cap = Math.min(max, min * 2 ** Math.min(this._attempt + 1, 30));
    return Math.round(min + Math.random() * (cap - min));
  }

  // ---- frames from the server ----

  _onFrame(generation, data) {
    if (generation !== this._generation) return;
    this._armSilence(generation);
    let msg;
    if (typeof data !== 'string') {
      this._protocolFault(generation, 'The server sent a binary frame');
      return;
    }
    try {
      msg = JSON.parse(data);
    } catch (e) {
      this._protocolFault(generation, 'The server sent a frame that is not JSON: ' + data.slice(0, 80));
      return;
    }
    if (!isObject(msg) || typeof msg.type !== 'string') {
      this._protocolFault(generation, 'The server sent a frame without a type: ' + data.slice(0, 80));
      return;
    }
    if (!this._sawConnected && msg.type !== 'connected') {
      this._protocolFault(generation, 'Expected "connected" first, got "' + msg.type + '"');
      return;
    }
    switch (msg.type) {
      case 'connected': return this._onConnected(generation, msg);
      case 'message': return this._onMessage(msg);
      case 'subscribed': return this._onSubscribed(msg);
      case 'unsubscribed': return this._onUnsubscribed(msg);
      case 'ping':
        this._send({ type: 'pong' });
        return;
      case 'reconnect': return this._onReconnectHint(generation, msg);
      case 'join':
      case 'leave': {
        const sub = this._subs.get(msg.channel);
        const info = { channel: msg.channel, userId: msg.user_id ?? null, connectionId: msg.connection_id ?? null };
        if (sub) sub._call(msg.type === 'join' ? 'onJoin' : 'onLeave', info);
        this._emit(msg.type, info);
        return;
      }
      case 'error':
        if (msg.id !== undefined && this._pending.has(msg.id)) return this._reply(msg);
        this._emit('error', new HeraldError(String(msg.code || 'error'), String(msg.message || 'server error'), { server: true }));
        return;
      default:
        if (msg.id !== undefined && this._pending.has(msg.id)) return this._reply(msg);
        // Replies nobody waits for (pong, published of a timed-out request) and future types.
        return;
    }
  }

  // A frame the client cannot use: report it and start over, keeping the backoff.
  _protocolFault(generation, text) {
    this._emit('error', new HeraldError('protocol_error', text));
    this._protocolError = true;
    this._lost(generation, 4000, 'protocol error');
  }

  // A server silent for twice its heartbeat interval (plus 5 s) is taken
  // for dead. One timer per connection, not one per frame.
  _armSilence(generation) {
    this._lastFrameAt = Date.now();
    if (!this._sawConnected || this._timers.silence) return;
    const hb = this._heartbeat;
    const limit = this.options.serverTimeout > 0 ? this.options.serverTimeout : hb ? hb * 1000 * 2 + 5000 : 0;
    if (!limit) return;
    const check = () => {
      this._timers.silence = 0;
      if (generation !== this._generation) return;
      const quiet = Date.now() - this._lastFrameAt;
      if (quiet < limit) {
        this._timers.silence = setTimeout(check, limit - quiet);
        return;
      }
      this._emit('error', new HeraldError('timeout', 'The server was silent for ' + limit + ' ms'));
      this._lost(generation, 4002, 'server silent');
    };
    this._timers.silence = setTimeout(check, limit);
  }

  _onConnected(generation, msg) {
    if (this._sawConnected) return;
    this._sawConnected = true;
    clearTimeout(this._timers.handshake);
    this._timers.handshake = 0;
    this._attempt = 0;
    this._hint = null;
    this.connectionId = msg.connection_id ?? null;
    this.userId = msg.user_id ?? null;
    this._heartbeat = typeof msg.heartbeat_interval === 'number' && msg.heartbeat_interval > 0 ? msg.heartbeat_interval : 0;
    this._armSilence(generation);
    this._scheduleRefresh(generation, jwtPayload(this._token));
    // Server subscriptions (`subs` claim, connect hook): the server made them
    // as the connection opened. Those of the server API (made on an earlier
    // connection) do not survive it: they end here.
    const before = this._serverSubs;
    const subscribed = [];
    this._serverSubs = new Map();
    if (isObject(msg.subs)) {
      for (const [channel, pos] of Object.entries(msg.subs)) {
        if (this._subs.has(channel)) continue; // our subscribe() goes out below, with since + epoch
        const offset = isObject(pos) && typeof pos.offset === 'number' ? pos.offset : null;
        const epoch = isObject(pos) && typeof pos.epoch === 'string' ? pos.epoch : null;
        const old = before.get(channel);
        this._serverSubs.set(channel, { offset, epoch });
        // recovered: nothing was published while away (the server replays nothing for these).
        const recovered = !!old && old.epoch !== null && old.epoch === epoch && old.offset === offset;
        subscribed.push({ channel, offset, epoch, server: true, resumed: !!old, recovered });
      }
    }
    this._setState('connected');
    this._emit('connected', { connectionId: this.connectionId, userId: this.userId, heartbeatInterval: this._heartbeat });
    for (const channel of before.keys()) {
      if (!this._serverSubs.has(channel) && !this._subs.has(channel)) this._emit('unsubscribed', { channel, reason: 'reconnected', server: true });
    }
    for (const info of subscribed) this._emit('subscribed', info);
    for (const sub of this._subs.values()) this._subscribeNow(sub);
    const queue = this._queue;
    this._queue = [];
    for (const req of queue) this._transmit(req);
  }

  _onMessage(msg) {
    if (msg.channel === undefined) {
      this._emit('message', msg.data, { channel: null, offset: null, epoch: null });
      return;
    }
    const sub = this._subs.get(msg.channel);
    const offset = typeof msg.offset === 'number' ? msg.offset : null;
    if (!sub) {
      // A server subscription (or a message nobody here subscribed to).
      const server = this._serverSubs.get(msg.channel);
      if (server && offset !== null) server.offset = offset;
      const ctx = { channel: msg.channel, offset, epoch: server ? server.epoch : null };
      if (typeof msg.key === 'string') ctx.key = msg.key;
      if (msg.conflated === true) ctx.conflated = true;
      this._emit('message', msg.data, ctx);
      return;
    }
    // Resubscribing: the replay and, on a channel the server subscribed the
    // connection to as well, live messages (which may come first) are held
    // until `subscribed`, then delivered in offset order.
    if (sub._resuming && sub.state === 'subscribing') {
      (sub._held || (sub._held = [])).push(msg);
      return;
    }
    this._deliver(sub, msg);
  }

  _deliver(sub, msg) {
    const offset = typeof msg.offset === 'number' ? msg.offset : null;
    if (offset !== null && sub.offset !== null && sub.epoch !== null && offset <= sub.offset) return; // seen
    if (offset !== null) sub.offset = offset;
    const ctx = { channel: msg.channel, offset, epoch: sub.epoch };
    if (typeof msg.key === 'string') ctx.key = msg.key;
    if (msg.conflated === true) ctx.conflated = true;
    sub._call('onMessage', msg.data, ctx);
  }

  // Held messages in offset order (unstored ones, without an offset, last).
  _flushHeld(sub) {
    const held = sub._held;
    sub._held = null;
    if (!held) return;
    const key = (m) => (typeof m.offset === 'number' ? m.offset : Infinity);
    held.sort((a, b) => key(a) - key(b));
    for (const m of held) if (this._subs.get(sub.channel) === sub) this._deliver(sub, m);
  }

  _onSubscribed(msg) {
    const sub = this._subs.get(msg.channel);
    const req = msg.id !== undefined ? this._pending.get(msg.id) : undefined;
    if (req) this._reply(msg);
    if (!sub) {
      if (msg.server === true) {
        const offset = typeof msg.offset === 'number' ? msg.offset : null;
        const epoch = typeof msg.epoch === 'string' ? msg.epoch : null;
        this._serverSubs.set(msg.channel, { offset, epoch });
        this._emit('subscribed', { channel: msg.channel, offset, epoch, server: true, resumed: false, recovered: false });
      }
      return;
    }
    // A renewed subscription token, or the server subscribing a channel we
    // already have: the subscription was live all along, its position stands.
    // But an unasked "recovered":false is a reset notice (Redis engine: the
    // node may have missed messages, or the epoch changed): handled as such a
    // reply, onSubscribed with recovered:false and the new position.
    if (req && req.renewal) return;
    if (!req && sub.state === 'subscribed' && msg.recovered !== false) return;
    // A fresh subscription recovers nothing: load the channel's state then.
    const resumed = sub._resuming === true;
    const recovered = resumed && msg.recovered === true;
    // Recovered: the held replay continues from the old position.
    if (recovered) this._flushHeld(sub);
    if (typeof msg.epoch === 'string') {
      if (sub.epoch !== msg.epoch || !recovered || sub.offset === null) sub.offset = typeof msg.offset === 'number' ? msg.offset : null;
      else if (typeof msg.offset === 'number' && msg.offset > sub.offset) sub.offset = msg.offset;
      sub.epoch = msg.epoch;
    } else if (typeof msg.offset === 'number') {
      sub.offset = msg.offset;
    }
    sub._resuming = false;
    sub.state = 'subscribed';
    this._flushHeld(sub); // not recovered: only what is past the new position
    sub._call('onSubscribed', { channel: sub.channel, recovered, resumed, offset: sub.offset, epoch: sub.epoch, server: msg.server === true });
  }

  _onUnsubscribed(msg) {
    if (msg.id !== undefined && this._pending.has(msg.id)) return this._reply(msg);
    const sub = this._subs.get(msg.channel);
    if (!sub) {
      if (this._serverSubs.delete(msg.channel)) this._emit('unsubscribed', { channel: msg.channel, reason: msg.reason ?? null, server: true });
      return;
    }
    this._cancelRenewal(sub);
    if (msg.reason === 'expired' && typeof sub._options.token === 'function') {
      sub.state = 'subscribing';
      this._subscribeNow(sub); // a fresh subscription token; since + epoch recover what came meanwhile
      return;
    }
    this._subs.delete(msg.channel);
    sub.state = 'unsubscribed';
    sub._call('onUnsubscribed', { channel: sub.channel, reason: msg.reason ?? null, server: true });
  }

  _onReconnectHint(generation, msg) {
    const after = typeof msg.after === 'number' && msg.after >= 0 ? Math.min(msg.after, 3600000) : 0;
    this._hint = { at: Date.now(), after };
    clearTimeout(this._timers.hint);
    // Still open when the hint is due: go now (the server is draining).
    this._timers.hint = setTimeout(() => {
      if (generation !== this._generation) return;
      this._lost(generation, 1000, 'reconnect hint');
    }, after);
  }

  // ---- token renewal ----

  _scheduleRefresh(generation, payload) {
    clearTimeout(this._timers.refresh);
    this._timers.refresh = 0;
    if (!payload || typeof payload.exp !== 'number' || typeof this.options.token !== 'function') return;
    const ttl = payload.exp * 1000 - Date.now();
    const margin = Math.min(this.options.refreshMargin, Math.max(0, ttl / 2));
    // At most one renewal a second, even when the clocks disagree.
    this._timers.refresh = setTimeout(() => this._refreshSoon(generation, 0), Math.max(1000, ttl - margin));
  }

  _refreshSoon(generation, failures) {
    this._refresh(generation, failures).catch((e) => this._emit('error', new HeraldError('internal_error', String(e && e.message || e), { cause: e })));
  }

  async _refresh(generation, failures) {
    if (generation !== this._generation) return;
    let token;
    try {
      token = await this._fetchToken();
      if (!token) throw new Error('the token function gave no token');
      if (generation !== this._generation) return;
      const reply = await this._request({ type: 'refresh', token }, false);
      if (generation !== this._generation) return;
      this._token = token;
      const payload = jwtPayload(token) || {};
      if (typeof reply.exp === 'number') payload.exp = reply.exp;
      this._emit('refreshed', { exp: payload.exp ?? null });
      this._scheduleRefresh(generation, payload);
    } catch (e) {
      if (generation !== this._generation) return;
      this._emit('error', new HeraldError(e && e.code || 'refresh_failed', 'Token renewal failed: ' + (e && e.message || e), { cause: e }));
      // Try again soon; when the token runs out the server closes with 4003 and we reconnect.
      const retry = Math.min(5000, Math.max(this.options.minReconnectDelay, 1000 * 2 ** failures));
      this._timers.refresh = setTimeout(() => this._refreshSoon(generation, failures + 1), retry);
    }
  }

  // ---- requests ----

  _send(obj) {
    const ws = this._ws;
    if (!ws || !this._sawConnected) return false;
    try {
      ws.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      this._emit('error', new HeraldError('transport_error', 'send failed: ' + (e && e.message || e)));
      return false;
    }
  }

  // Sends @frame with a fresh id; resolves with the reply, rejects with a
  // HeraldError. @queue: wait for a connection when there is none.
  _request(frame, queue = true, renewal = false) {
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      const req = { id, frame: Object.assign({}, frame, { id }), resolve, reject, timer: 0, sent: false, renewal };
      req.timer = setTimeout(() => {
        this._pending.delete(id);
        this._queue = this._queue.filter((r) => r !== req);
        reject(new HeraldError('timeout', 'No answer to "' + frame.type + '" in ' + this.options.timeout + ' ms'));
      }, this.options.timeout);
      if (this.state === 'connected' && this._sawConnected) this._transmit(req);
      else if (queue && this._wanted) this._queue.push(req);
      else {
        clearTimeout(req.timer);
        reject(new HeraldError('disconnected', 'Not connected'));
      }
    });
  }

  _transmit(req) {
    this._pending.set(req.id, req);
    req.sent = true;
    if (!this._send(req.frame)) {
      this._pending.delete(req.id);
      clearTimeout(req.timer);
      req.reject(new HeraldError('disconnected', 'Not connected'));
    }
  }

  _reply(msg) {
    const req = this._pending.get(msg.id);
    if (!req) return;
    this._pending.delete(msg.id);
    clearTimeout(req.timer);
    if (msg.type === 'error') {
      const extra = { server: true };
      if (msg.rpc_code !== undefined) extra.rpcCode = msg.rpc_code;
      req.reject(new HeraldError(String(msg.code || 'error'), String(msg.message || 'server error'), extra));
    } else {
      req.resolve(msg);
    }
  }

  // Sent requests fail (they may or may not have been done); queued ones wait
  // for the next connection unless @all.
  _failPending(err, all) {
    for (const req of this._pending.values()) {
      clearTimeout(req.timer);
      req.reject(err);
    }
    this._pending.clear();
    if (all) {
      for (const req of this._queue) {
        clearTimeout(req.timer);
        req.reject(err);
      }
      this._queue = [];
    }
  }

  // ---- public API ----

  /** Subscribes to @channel; the subscription survives reconnects. */
  subscribe(channel, options) {
    if (typeof channel !== 'string' || channel === '') throw new TypeError('Herald.subscribe: channel must be a non-empty string');
    if (this._subs.has(channel)) throw new HeraldError('already_subscribed', 'Already subscribed to ' + channel);
    const sub = new Subscription(this, channel, options);
    this._subs.set(channel, sub);
    if (this._sawConnected && this._ws) this._subscribeNow(sub);
    return sub;
  }

  /** The subscription to @channel, or null. */
  getSubscription(channel) {
    return this._subs.get(channel) || null;
  }

  _subscribeNow(sub) {
    this._sendSubscribe(sub).catch((e) => this._emit('error', new HeraldError('internal_error', String(e && e.message || e), { cause: e })));
  }

  async _sendSubscribe(sub) {
    const generation = this._generation;
    const frame = { type: 'subscribe', channel: sub.channel };
    if (sub.offset !== null && sub.epoch !== null) {
      frame.since = sub.offset;
      frame.epoch = sub.epoch;
      sub._resuming = true;
    } else if (sub.offset !== null) {
      frame.since = sub.offset;
      sub._resuming = true;
    }
    if (sub._options.presence) frame.presence = true;
    if (sub._options.data !== undefined) frame.data = sub._options.data;
    try {
      const t = sub._options.token;
      if (t !== undefined) frame.token = typeof t === 'function' ? await t(sub.channel) : t;
    } catch (e) {
      if (generation !== this._generation || this._subs.get(sub.channel) !== sub) return;
      // As a passing failure: asked again after a backoff delay, the subscription kept.
      sub.state = 'subscribing';
      sub._call('onError', new HeraldError('token_failed', 'The subscription token function failed: ' + (e && e.message || e), { cause: e }));
      this._retrySubscribe(sub, generation);
      return;
    }
    if (generation !== this._generation || this._subs.get(sub.channel) !== sub) return;
    sub.state = 'subscribing';
    this._request(frame, false).then(() => {
      sub._failures = 0;
      this._scheduleRenewal(sub, generation, frame.token);
    }, (e) => {
      if (e.code === 'disconnected' || e.code === 'closed' || this._subs.get(sub.channel) !== sub) return; // resubscribed later
      sub._held = null;
      if (TRANSIENT.has(e.code)) {
        // Try again on this connection after a backoff delay; keep the subscription.
        sub._call('onError', e);
        this._retrySubscribe(sub, generation);
        return;
      }
      this._subs.delete(sub.channel);
      sub.state = 'unsubscribed';
      sub._call('onError', e);
      sub._call('onUnsubscribed', { channel: sub.channel, reason: e.code, server: true });
      this._emit('error', e);
    });
  }

  // Subscribes again on this connection after a backoff delay (full jitter,
  // growing with the subscription's failures in a row).
  _retrySubscribe(sub, generation) {
    const failures = sub._failures = (sub._failures || 0) + 1;
    const min = Math.max(1, this.options.minReconnectDelay);
    const cap = Math.min(Math.max(min, this.options.maxReconnectDelay), min * 2 ** Math.min(failures, 30));
    setTimeout(() => {
      if (generation === this._generation && this._subs.get(sub.channel) === sub && sub.state === 'subscribing') this._subscribeNow(sub);
    }, Math.round(min + Math.random() * (cap - min)));
  }

  // ---- subscription tokens ----

  // A function-valued subscription token is renewed before its `exp` (as the
  // connection token is): another subscribe with a fresh token, on the live
  // subscription. Should that fail, the server ends the subscription with
  // reason "expired" and _onUnsubscribed subscribes again (since + epoch).
  _scheduleRenewal(sub, generation, token) {
    this._cancelRenewal(sub);
    const payload = jwtPayload(token);
    if (!payload || typeof payload.exp !== 'number' || typeof sub._options.token !== 'function') return;
    const ttl = payload.exp * 1000 - Date.now();
    const margin = Math.min(this.options.refreshMargin, Math.max(0, ttl / 2));
    sub._renewTimer = setTimeout(() => {
      sub._renewTimer = 0;
      this._renew(sub, generation).catch((e) => this._emit('error', new HeraldError('internal_error', String(e && e.message || e), { cause: e })));
    }, Math.max(1000, ttl - margin));
  }

  _cancelRenewal(sub) {
    if (!sub._renewTimer) return;
    clearTimeout(sub._renewTimer);
    sub._renewTimer = 0;
  }

  async _renew(sub, generation) {
    const current = () => generation === this._generation && this._subs.get(sub.channel) === sub && sub.state === 'subscribed';
    if (!current()) return;
    let token;
    try {
      token = await sub._options.token(sub.channel);
      if (typeof token !== 'string' || token === '') throw new TypeError('the token function gave no token');
    } catch (e) {
      if (current()) sub._call('onError', new HeraldError('token_failed', 'The subscription token function failed: ' + (e && e.message || e), { cause: e }));
      return;
    }
    if (!current()) return;
    try {
      await this._request({ type: 'subscribe', channel: sub.channel, token }, false, true);
    } catch (e) {
      if (current()) sub._call('onError', e);
      return;
    }
    if (current()) this._scheduleRenewal(sub, generation, token);
  }

  async _unsubscribe(sub) {
    if (this._subs.get(sub.channel) !== sub) return;
    this._cancelRenewal(sub);
    this._subs.delete(sub.channel);
    sub.state = 'unsubscribed';
    sub._call('onUnsubscribed', { channel: sub.channel, reason: null, server: false });
    if (this.state !== 'connected') return;
    try {
      await this._request({ type: 'unsubscribe', channel: sub.channel }, false);
    } catch (e) {
      // Offline or closed: the next connection does not resubscribe it anyway.
    }
  }

  /** Publishes @data to @channel; resolves with `{ channel, offset }` (offset null when Herald could not store it). */
  async publish(channel, data, options) {
    if (data === undefined) throw new TypeError('Herald.publish: data is required');
    const frame = { type: 'message', channel, data };
    if (options && options.key !== undefined) frame.key = options.key;
    const reply = await this._request(frame);
    return { channel: reply.channel ?? channel, offset: reply.offset ?? null };
  }

  /** Who is subscribed to @channel: `{ users, connections, next }`. */
  async presence(channel, options) {
    const frame = { type: 'presence', channel };
    if (options && options.limit !== undefined) frame.limit = options.limit;
    if (options && options.cursor !== undefined && options.cursor !== null) frame.cursor = options.cursor;
    const reply = await this._request(frame);
    return { channel: reply.channel ?? channel, users: reply.users || [], connections: reply.connections ?? 0, next: reply.next ?? null };
  }

  /** Counts only: `{ users, connections }`. */
  async presenceStats(channel) {
    const reply = await this._request({ type: 'presence_stats', channel });
    return { channel: reply.channel ?? channel, users: reply.users ?? 0, connections: reply.connections ?? 0 };
  }

  /** Calls @method on the backend (Herald's RPC proxy); resolves with the result's data. */
  async rpc(method, data) {
    if (typeof method !== 'string') throw new TypeError('Herald.rpc: method must be a string');
    const frame = { type: 'rpc', method };
    if (data !== undefined) frame.data = data;
    const reply = await this._request(frame);
    if (reply.type !== 'rpc_result') throw new HeraldError('protocol_error', 'Unexpected reply to rpc: ' + reply.type);
    return reply.data;
  }

  /** Round trip to the server; resolves with the time taken (ms). */
  async ping() {
    const start = Date.now();
    await this._request({ type: 'ping' });
    return Date.now() - start;
  }
}

Herald.VERSION = VERSION;
export default Herald;
