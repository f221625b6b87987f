// Herald demo client: WebSocket or SSE, subscriptions that survive reconnects.
// No framework; everything the page needs is in this file.
'use strict';

const $ = (id) => document.getElementById(id);
const MAX_LOG = 200;

const state = {
  transport: 'ws',
  wanted: false,        // the user asked to be connected
  ws: null,
  es: null,
  attempt: 0,           // reconnect attempts since the last successful open
  timer: 0,
  nextId: 1,
  pending: new Map(),   // request id -> what it was, to route replies and errors
  channels: new Map(),  // name -> { offset, epoch, subscribed }
  lastEventId: '',      // SSE: last id seen (opaque)
  sseResuming: false,
  sseSawReset: false,
};

function setState(name, detail) {
  const el = $('state');
  el.className = 'pill ' + name;
  el.textContent = detail ? name + ' · ' + detail : name;
  $('connect').disabled = state.wanted;
  $('disconnect').disabled = !state.wanted;
}

// The hint under Publish, for the transport chosen (constant markup only).
function publishHint() {
  const el = $('pub-result');
  el.className = 'note';
  el.innerHTML = state.transport === 'ws'
    ? 'Sent as <code>{"type":"message",…}</code> over the WebSocket; the token decides whether it is allowed (without one, <code>[auth] anonymous-publish</code>: <code>demo/*</code> on loopback defaults).'
    : 'SSE is receive-only: sent through <code>POST /api/publish</code> with the API key entered on the Admin page.';
}

function showConnection(id, user, transport) {
  $('conn-id').textContent = id || '—';
  $('user-id').textContent = user === undefined ? '—' : (user === null ? 'anonymous' : user);
  $('conn-transport').textContent = transport || '—';
}

function addLog(kind, channel, offset, payload, label) {
  const list = $('messages');
  const empty = list.querySelector('.empty');
  if (empty) empty.remove();
  const li = document.createElement('li');
  li.className = 'entry kind-' + kind;
  li.dataset.kind = kind;
  if (channel) li.dataset.channel = channel;
  if (offset !== undefined && offset !== null) li.dataset.offset = String(offset);
  const meta = document.createElement('div');
  meta.className = 'meta';
  const add = (cls, text) => {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    meta.append(s);
  };
  add('kind-' + kind, label || kind);
  if (channel) add('ch', channel);
  if (offset !== undefined && offset !== null) add('off', '#' + offset);
  add('time', new Date().toLocaleTimeString());
  const pre = document.createElement('pre');
  pre.textContent = typeof payload === 'string' ? payload : JSON.stringify(payload, null, 2);
  li.append(meta, pre);
  list.prepend(li);
  while (list.children.length > MAX_LOG) list.lastChild.remove();
}

function renderChannels() {
  const box = $('channels');
  box.replaceChildren();
  for (const [name, ch] of state.channels) {
    const chip = document.createElement('span');
    chip.className = 'chip';
    chip.dataset.channel = name;
    chip.dataset.subscribed = ch.subscribed ? 'true' : 'false';
    chip.append(name);
    const small = document.createElement('small');
    small.textContent = ch.subscribed ? (ch.offset != null ? '#' + ch.offset : '✓') : '…';
    chip.append(small);
    const x = document.createElement('button');
    x.type = 'button';
    x.title = 'Unsubscribe';
    x.textContent = '×';
    x.addEventListener('click', () => unsubscribe(name));
    chip.append(x);
    box.append(chip);
  }
}

function note(id, text, cls) {
  const el = $(id);
  el.className = 'note' + (cls ? ' ' + cls : '');
  el.textContent = text;
}

// ---- connecting and reconnecting ----

function connect() {
  state.wanted = true;
  state.attempt = 0;
  open();
}

function disconnect() {
  state.wanted = false;
  clearTimeout(state.timer);
  closeTransport();
  for (const ch of state.channels.values()) ch.subscribed = false;
  renderChannels();
  showConnection();
  setState('closed');
}

function closeTransport() {
  if (state.ws) {
    state.ws.onclose = state.ws.onmessage = state.ws.onopen = state.ws.onerror = null;
    state.ws.close(1000, 'bye');
    state.ws = null;
  }
  if (state.es) {
    state.es.close();
    state.es = null;
  }
}

function open() {
  clearTimeout(state.timer);
  closeTransport();
  if (state.transport === 'ws') openWebSocket();
  else openEventSource(false);
}

// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to 15 s.
function scheduleReconnect(why) {
  if (!state.wanted) return;
  const base = Math.min(15000, 500 * 2 ** state.attempt);
  const delay = Math.round(base / 2 + Math.random() * base / 2);
  state.attempt++;
  for (const ch of state.channels.values()) ch.subscribed = false;
  renderChannels();
  setState('reconnecting', 'in ' + (delay / 1000).toFixed(1) + ' s' + (why ? ' (' + why + ')' : ''));
  state.timer = setTimeout(open, delay);
}

function token() {
  return $('token').value.trim();
}

// ---- WebSocket ----

function send(obj) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(obj));
  return true;
}

function request(obj, what) {
  const id = state.nextId++;
  state.pending.set(id, what || obj);
  obj.id = id;
  return send(obj);
}

function sendSubscribe(name) {
  const ch = state.channels.get(name);
  const req = { type: 'subscribe', channel: name };
  if (ch && ch.offset != null) {
    req.since = ch.offset;         // resume: missed messages first, then `subscribed`
    if (ch.epoch) req.epoch = ch.epoch;
  }
  request(req, { type: 'subscribe', channel: name });
}

function openWebSocket() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const protocols = ['herald.v1'];
  // Browsers cannot set headers on a WebSocket: the token rides in the subprotocol list.
  if (token()) protocols.push('bearer.' + token());
  setState('connecting');
  let ws;
  try {
    ws = new WebSocket(scheme + '//' + location.host + '/ws', protocols);
  } catch (e) {
    addLog('error', null, null, String(e), 'error');
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  ws.onopen = () => setState('open');
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    onServerMessage(msg);
  };
  let opened = false;
  ws.addEventListener('open', () => { opened = true; });
  ws.onclose = (ev) => {
    state.ws = null;
    state.pending.clear();
    showConnection();
    // A refused handshake (401, 403, 409, 503) is only visible as 1006.
    const why = ev.code === 1006 ? (opened ? 'dropped' : 'refused: check the token')
                                 : ev.code + (ev.reason ? ' ' + ev.reason : '');
    if (opened) addLog('info', null, null, { close: ev.code, reason: ev.reason || undefined }, 'closed');
    scheduleReconnect(why);
  };
}

function onServerMessage(msg) {
  const what = msg.id !== undefined ? state.pending.get(msg.id) : undefined;
  if (msg.id !== undefined) state.pending.delete(msg.id);
  switch (msg.type) {
    case 'connected':
      state.attempt = 0;
      showConnection(msg.connection_id, msg.user_id, 'websocket');
      setState('open');
      for (const name of state.channels.keys()) sendSubscribe(name);
      break;
    case 'subscribed': {
      const ch = state.channels.get(msg.channel);
      if (!ch) break;
      ch.subscribed = true;
      if (msg.epoch) ch.epoch = msg.epoch;
      if (typeof msg.offset === 'number') ch.offset = Math.max(ch.offset ?? 0, msg.offset);
      if ('recovered' in msg)
        addLog('info', msg.channel, null, { recovered: msg.recovered }, 'resubscribed');
      renderChannels();
      break;
    }
    case 'unsubscribed':
      break;
    case 'message':
      onDelivery(msg);
      break;
    case 'published':
      note('pub-result', 'Published to ' + msg.channel + ' at offset ' + msg.offset + '.', 'ok');
      break;
    case 'ping':
      send({ type: 'pong' });
      break;
    case 'error':
      onError(msg, what);
      break;
    default:
      addLog('info', msg.channel, null, msg, msg.type);
  }
}

function onError(msg, what) {
  addLog('error', what && what.channel, null, { code: msg.code, message: msg.message }, 'error · ' + msg.code);
  if (what && what.type === 'message') {
    const text = msg.code === 'forbidden'
      ? 'Forbidden: ' + msg.message + '. The token’s "publish" claim (or [auth] anonymous-publish) must allow this channel.'
      : msg.code + ': ' + msg.message;
    note('pub-result', text, 'bad');
  } else if (what && what.type === 'subscribe') {
    state.channels.delete(what.channel);
    renderChannels();
    note('sub-note', 'Cannot subscribe to ' + what.channel + ': ' + msg.message, 'bad');
  }
}

function onDelivery(msg) {
  if (msg.channel === undefined) {
    addLog('direct', null, null, msg.data, 'direct');
    return;
  }
  const ch = state.channels.get(msg.channel);
  if (ch && typeof msg.offset === 'number') {
    ch.offset = msg.offset;
    renderChannels();
  }
  addLog('message', msg.channel, msg.offset, msg.data, 'message');
}

// ---- SSE ----

function openEventSource(keepPosition) {
  const names = [...state.channels.keys()];
  showConnection();
  if (names.length === 0) {
    setState('connecting', 'subscribe to a channel');
    return;
  }
  const q = new URLSearchParams();
  for (const n of names) q.append('channel', n);
  if (token()) q.set('token', token());
  // A new EventSource sends no Last-Event-ID: pass it in the query to resume.
  if (keepPosition && state.lastEventId) q.set('lastEventId', state.lastEventId);
  setState('connecting');
  const es = new EventSource('/events?' + q.toString());
  state.es = es;
  state.sseResuming = keepPosition && !!state.lastEventId;
  state.sseSawReset = false;
  es.onopen = () => setState('open');
  es.addEventListener('connected', (ev) => {
    const msg = JSON.parse(ev.data);
    state.attempt = 0;
    showConnection(msg.connection_id, msg.user_id, 'sse');
    for (const ch of state.channels.values()) ch.subscribed = true;
    renderChannels();
    if (state.sseResuming)
      addLog('info', null, null, { recovered: !state.sseSawReset }, 'resumed');
    state.sseResuming = false;
  });
  es.addEventListener('message', (ev) => {
    if (ev.lastEventId) state.lastEventId = ev.lastEventId;
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    onDelivery(msg);
  });
  es.addEventListener('reset', (ev) => {
    if (ev.lastEventId) state.lastEventId = ev.lastEventId;
    state.sseSawReset = true;
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CONNECTING) {
      // The browser reconnects by itself (after `retry:`) and sends Last-Event-ID.
      state.sseResuming = true;
      state.sseSawReset = false;
      for (const ch of state.channels.values()) ch.subscribed = false;
      renderChannels();
      setState('reconnecting', 'browser retry');
    } else {
      // Refused (401/403/400…) or closed for good: our own backoff.
      es.close();
      state.es = null;
      showConnection();
      if (state.wanted) {
        clearTimeout(state.timer);
        const base = Math.min(15000, 500 * 2 ** state.attempt++);
        const delay = Math.round(base / 2 + Math.random() * base / 2);
        setState('reconnecting', 'in ' + (delay / 1000).toFixed(1) + ' s (refused or closed)');
        state.timer = setTimeout(() => openEventSource(true), delay);
      }
    }
  };
}

// ---- subscriptions and publishing ----

function subscribe(name) {
  name = name.trim();
  if (!name || state.channels.has(name)) return;
  if (!/^[A-Za-z0-9_.:@\/-]{1,255}$/.test(name)) {
    note('sub-note', 'Channel names are 1–255 characters of A-Z a-z 0-9 _ . : @ / -', 'bad');
    return;
  }
  note('sub-note', '');
  state.channels.set(name, { offset: null, epoch: null, subscribed: false });
  renderChannels();
  if (!state.wanted) return;
  if (state.transport === 'ws') sendSubscribe(name);
  else { clearTimeout(state.timer); closeTransport(); openEventSource(true); }
}

function unsubscribe(name) {
  if (!state.channels.delete(name)) return;
  renderChannels();
  if (!state.wanted) return;
  if (state.transport === 'ws') request({ type: 'unsubscribe', channel: name });
  else { clearTimeout(state.timer); closeTransport(); openEventSource(true); }
}

async function publish(channel, text) {
  let data;
  try { data = JSON.parse(text); } catch (e) {
    note('pub-result', 'Data is not valid JSON: ' + e.message, 'bad');
    return;
  }
  if (state.transport === 'ws') {
    if (!request({ type: 'message', channel, data }, { type: 'message', channel }))
      note('pub-result', 'Not connected.', 'bad');
    else note('pub-result', 'Publishing…');
    return;
  }
  // SSE is receive-only: publish through the HTTP API when an API key is known.
  const key = sessionStorage.getItem('herald-api-key');
  if (!key) {
    note('pub-result', 'SSE is receive-only. Switch to WebSocket, or enter the API key on the Admin page to publish through POST /api/publish.', 'bad');
    return;
  }
  try {
    const r = await fetch('/api/publish', {
      method: 'POST',
      headers: { 'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel, data }),
    });
    const body = await r.json().catch(() => ({}));
    if (r.ok) note('pub-result', 'Published to ' + channel + ' at offset ' + body.offset + ' (HTTP API).', 'ok');
    else note('pub-result', 'HTTP ' + r.status + ': ' + (body.error || r.statusText), 'bad');
  } catch (e) {
    note('pub-result', 'Request failed: ' + e.message, 'bad');
  }
}

// ---- wiring ----

$('connect').addEventListener('click', connect);
$('disconnect').addEventListener('click', disconnect);
for (const radio of document.querySelectorAll('input[name=transport]')) {
  radio.addEventListener('change', () => {
    state.transport = radio.value;
    publishHint();
    if (state.wanted) { state.attempt = 0; open(); }
  });
}
$('sub-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  subscribe($('channel-input').value);
});
$('pub-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  publish($('pub-channel').value.trim(), $('pub-data').value);
});
$('clear').addEventListener('click', () => $('messages').replaceChildren());
state.transport = document.querySelector('input[name=transport]:checked').value;
publishHint();
setState('closed');
