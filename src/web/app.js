// Herald demo client: WebSocket or SSE, subscriptions that survive reconnects.
// No framework. WebSocket goes through the client SDK heraldd serves at
// /herald.js (clients/js: reconnects, resumes, answers pings); SSE is here.
'use strict';

const heraldModule = import('/herald.js');

const $ = (id) => document.getElementById(id);
const MAX_LOG = 200;

const state = {
  transport: 'ws',
  wanted: false,        // the user asked to be connected
  herald: null,         // the SDK's client (WebSocket transport)
  es: null,
  attempt: 0,           // reconnect attempts since the last successful open
  timer: 0,
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
  if (state.herald) {
    state.herald.close();
    state.herald = null;
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

function token() {
  return $('token').value.trim();
}

// ---- WebSocket (through the SDK) ----

// The SDK reconnects with backoff and resubscribes with since + epoch by itself.
function sdkSubscribe(name) {
  const ch = state.channels.get(name);
  if (!state.herald || !ch || state.herald.getSubscription(name)) return;
  const options = {
    onMessage: (data, ctx) => onDelivery({ channel: ctx.channel, offset: ctx.offset, data }),
    onSubscribed: (info) => {
      ch.subscribed = true;
      ch.epoch = info.epoch;
      if (typeof info.offset === 'number') ch.offset = Math.max(ch.offset ?? 0, info.offset);
      if (info.resumed) addLog('info', name, null, { recovered: info.recovered }, 'resubscribed');
      renderChannels();
    },
    onError: (e) => {
      if (e.code === 'timeout') return;
      state.channels.delete(name);
      renderChannels();
      note('sub-note', 'Cannot subscribe to ' + name + ': ' + e.message, 'bad');
    },
  };
  if (ch.offset != null && ch.epoch) Object.assign(options, { since: ch.offset, epoch: ch.epoch });
  state.herald.subscribe(name, options);
}

async function openWebSocket() {
  setState('connecting');
  let Herald;
  try {
    ({ Herald } = await heraldModule);
  } catch (e) {
    addLog('error', null, null, 'Cannot load /herald.js: ' + e, 'error');
    return;
  }
  if (!state.wanted || state.transport !== 'ws' || state.herald) return;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // The SDK sends the token in the subprotocol list (browsers cannot set headers).
  const h = new Herald(scheme + '//' + location.host + '/ws', { token: () => token() || null });
  state.herald = h;
  let opened = false;
  h.on('connected', (info) => {
    opened = true;
    showConnection(info.connectionId, info.userId, 'websocket');
    setState('open');
  });
  h.on('close', (ev) => {
    for (const ch of state.channels.values()) ch.subscribed = false;
    renderChannels();
    showConnection();
    // A refused handshake (401, 403, 409, 503) is only visible as 1006.
    const why = ev.code === 1006 ? (opened ? 'dropped' : 'refused: check the token')
                                 : ev.code + (ev.reason ? ' ' + ev.reason : '');
    if (opened) addLog('info', null, null, { close: ev.code, reason: ev.reason || undefined }, 'closed');
    opened = false;
    if (ev.reconnectIn !== null)
      setState('reconnecting', 'in ' + (ev.reconnectIn / 1000).toFixed(1) + ' s (' + why + ')');
  });
  h.on('error', (e) => {
    // Failed attempts show in the state pill; the rest in the log.
    if (e.code !== 'transport_error' && e.code !== 'timeout')
      addLog('error', null, null, { code: e.code, message: e.message }, 'error · ' + e.code);
  });
  h.on('message', (data, ctx) => onDelivery(ctx.channel === null ? { data } : { channel: ctx.channel, offset: ctx.offset, data }));
  for (const name of state.channels.keys()) sdkSubscribe(name);
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
  if (!/^[A-Za-z0-9_.:@\/#,-]{1,255}$/.test(name)) {
    note('sub-note', 'Channel names are 1–255 characters of A-Z a-z 0-9 _ . : @ / - # ,', 'bad');
    return;
  }
  note('sub-note', '');
  state.channels.set(name, { offset: null, epoch: null, subscribed: false });
  renderChannels();
  if (!state.wanted) return;
  if (state.transport === 'ws') sdkSubscribe(name);
  else { clearTimeout(state.timer); closeTransport(); openEventSource(true); }
}

function unsubscribe(name) {
  if (!state.channels.delete(name)) return;
  renderChannels();
  if (!state.wanted) return;
  if (state.transport === 'ws') state.herald?.getSubscription(name)?.unsubscribe();
  else { clearTimeout(state.timer); closeTransport(); openEventSource(true); }
}

async function publish(channel, text) {
  let data;
  try { data = JSON.parse(text); } catch (e) {
    note('pub-result', 'Data is not valid JSON: ' + e.message, 'bad');
    return;
  }
  if (state.transport === 'ws') {
    if (!state.herald || state.herald.state !== 'connected') {
      note('pub-result', 'Not connected.', 'bad');
      return;
    }
    note('pub-result', 'Publishing…');
    state.herald.publish(channel, data).then(
      (r) => note('pub-result', 'Published to ' + r.channel + ' at offset ' + r.offset + '.', 'ok'),
      (e) => {
        addLog('error', channel, null, { code: e.code, message: e.message }, 'error · ' + e.code);
        note('pub-result', e.code === 'forbidden'
          ? 'Forbidden: ' + e.message + '. The token’s "publish" claim (or [auth] anonymous-publish) must allow this channel.'
          : e.code + ': ' + e.message, 'bad');
      });
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
