// Herald admin view: connections, channels and throughput from the HTTP API.
'use strict';

const $ = (id) => document.getElementById(id);
const KEY = 'herald-api-key';
const POLL_MS = 2000;
const POINTS = 90;          // 3 minutes of history on the chart

const series = { deliveries: [], published: [] };
let previous = null;        // { t, deliveries, published }
let timer = 0;

function apiKey() { return sessionStorage.getItem(KEY) || ''; }

function setPoll(cls, text) {
  const el = $('poll-state');
  el.className = 'pill ' + cls;
  el.textContent = text;
}

function note(text, cls) {
  const el = $('key-note');
  el.className = 'note' + (cls ? ' ' + cls : '');
  el.textContent = text;
}

async function api(method, path) {
  const r = await fetch(path, {
    method,
    headers: { 'Authorization': 'Bearer ' + apiKey() },
    cache: 'no-store',
  });
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    const err = new Error('HTTP ' + r.status + ': ' + msg);
    err.status = r.status;
    throw err;
  }
  return r;
}

// Sums every sample of a counter in Prometheus text format.
function counter(text, name) {
  let sum = 0;
  const re = new RegExp('^' + name + '(?:\\{[^}]*\\})?\\s+([-+0-9.eE]+)', 'gm');
  for (const m of text.matchAll(re)) sum += Number(m[1]);
  return sum;
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  td.textContent = text;
  row.append(td);
  return td;
}

function renderConnections(list) {
  const body = $('conn-rows');
  body.replaceChildren();
  $('conn-count').textContent = list.length + (list.length === 1 ? ' connection' : ' connections');
  if (list.length === 0) {
    const tr = document.createElement('tr');
    cell(tr, 'No connections.', 'empty').colSpan = 9;
    body.append(tr);
    return;
  }
  for (const c of list) {
    const tr = document.createElement('tr');
    tr.dataset.id = c.id;
    const code = document.createElement('code');
    code.textContent = c.id;
    cell(tr, '').append(code);
    cell(tr, c.user_id ?? 'anonymous');
    cell(tr, c.transport);
    cell(tr, c.remote_address || '');
    cell(tr, (c.channels || []).join(', '));
    cell(tr, String(c.messages_sent), 'num');
    cell(tr, String(c.messages_received), 'num');
    cell(tr, String(c.bytes_queued), 'num');
    const btn = document.createElement('button');
    btn.className = 'danger';
    btn.textContent = 'Close';
    btn.title = 'Close with 4004';
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        await api('DELETE', '/api/connections/' + encodeURIComponent(c.id));
        poll();
      } catch (e) {
        note(e.message, 'bad');
        btn.disabled = false;
      }
    });
    cell(tr, '').append(btn);
    body.append(tr);
  }
}

// The namespace a channel belongs to: the text before its first ':' when
// that namespace is configured, else the default one (as the server decides).
function namespaceOf(channel, names) {
  const i = channel.indexOf(':');
  const name = i > 0 ? channel.slice(0, i) : '';
  return names.has(name) ? name : 'default';
}

// Presence stats (GET /api/channels/{c}/presence-stats: constant time on the
// server) of the busiest channels; a server without the endpoint (404) is
// not asked again until the key changes. null: not known.
const STATS_MAX = 20;
let statsSupported = true;

async function presenceStats(channel) {
  if (!statsSupported) return null;
  try {
    return await api('GET', '/api/channels/' + encodeURIComponent(channel) + '/presence-stats').then((r) => r.json());
  } catch (e) {
    if (e.status === 404) statsSupported = false;
    return null; // 403: presence is off in that namespace
  }
}

async function renderChannels(list, names) {
  const body = $('channel-rows');
  if (list.length === 0) {
    const tr = document.createElement('tr');
    cell(tr, 'No channels.', 'empty').colSpan = 4;
    body.replaceChildren(tr);
    return;
  }
  list.sort((a, b) => b.subscribers - a.subscribers || a.name.localeCompare(b.name));
  const stats = await Promise.all(list.map((c, i) => (i < STATS_MAX ? presenceStats(c.name) : null)));
  const rows = list.map((c, i) => {
    const tr = document.createElement('tr');
    tr.dataset.channel = c.name;
    const code = document.createElement('code');
    code.textContent = c.name;
    cell(tr, '').append(code);
    cell(tr, namespaceOf(c.name, names));
    cell(tr, String(c.subscribers), 'num');
    const td = cell(tr, stats[i] ? stats[i].users + ' / ' + stats[i].connections : '—', 'num');
    td.dataset.key = 'presence';
    if (stats[i]) {
      td.dataset.users = String(stats[i].users);
      td.dataset.connections = String(stats[i].connections);
    }
    return tr;
  });
  body.replaceChildren(...rows);
}

function renderNamespaces(list) {
  const body = $('ns-rows');
  body.replaceChildren();
  const yes = (v) => (v ? 'yes' : 'no');
  for (const ns of list) {
    const tr = document.createElement('tr');
    tr.dataset.namespace = ns.name;
    const code = document.createElement('code');
    code.textContent = ns.name;
    cell(tr, '').append(code);
    cell(tr, String(ns.history_size), 'num');
    cell(tr, String(ns.history_ttl), 'num');
    cell(tr, yes(ns.presence)).dataset.key = 'presence';
    cell(tr, yes(ns.join_leave)).dataset.key = 'join_leave';
    cell(tr, yes(ns.conflate)).dataset.key = 'conflate';
    cell(tr, ns.publish + (ns.publish_proxy ? ' + proxy' : ''));
    cell(tr, ns.subscribe);
    body.append(tr);
  }
}

function pushRates(text) {
  const now = performance.now();
  const cur = {
    t: now,
    deliveries: counter(text, 'herald_deliveries_total'),
    published: counter(text, 'herald_messages_published_total'),
  };
  if (previous) {
    const dt = Math.max(0.001, (cur.t - previous.t) / 1000);
    // A restarted server resets its counters: count that interval as zero.
    const rate = (k) => Math.max(0, cur[k] - previous[k]) / dt;
    series.deliveries.push(rate('deliveries'));
    series.published.push(rate('published'));
    for (const s of Object.values(series)) while (s.length > POINTS) s.shift();
    $('rates').textContent = 'deliveries ' + rate('deliveries').toFixed(1) + '/s · published '
      + rate('published').toFixed(1) + '/s · totals ' + cur.deliveries + ' / ' + cur.published;
  }
  previous = cur;
  drawChart();
}

function drawChart() {
  const canvas = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 800, h = canvas.clientHeight || 180;
  if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
  const g = canvas.getContext('2d');
  const css = getComputedStyle(document.documentElement);
  const color = (v) => css.getPropertyValue(v).trim();
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const pad = { l: 44, r: 8, t: 8, b: 18 };
  const max = Math.max(1, ...series.deliveries, ...series.published);
  const top = niceCeil(max);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = color('--muted');
  g.strokeStyle = color('--line');
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + (h - pad.t - pad.b) * i / 4;
    g.beginPath(); g.moveTo(pad.l, y + .5); g.lineTo(w - pad.r, y + .5); g.stroke();
    g.fillText(formatRate(top * (4 - i) / 4), 4, y + 4);
  }
  g.fillText((POINTS * POLL_MS / 1000) + ' s', pad.l, h - 4);
  g.fillText('now', w - pad.r - 22, h - 4);
  const bottom = h - pad.b;
  const plot = (data, stroke, fill, dash) => {
    if (data.length < 2) return;
    const step = (w - pad.l - pad.r) / (POINTS - 1);
    const x0 = w - pad.r - step * (data.length - 1);
    g.beginPath();
    data.forEach((v, i) => {
      const x = x0 + step * i, y = pad.t + (bottom - pad.t) * (1 - v / top);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.setLineDash(dash || []);
    g.strokeStyle = stroke;
    g.lineWidth = 2;
    g.stroke();
    g.setLineDash([]);
    if (fill) {
      g.lineTo(w - pad.r, bottom);
      g.lineTo(x0, bottom);
      g.closePath();
      g.globalAlpha = 0.12;
      g.fillStyle = stroke;
      g.fill();
      g.globalAlpha = 1;
    }
  };
  plot(series.deliveries, color('--accent'), true);
  plot(series.published, color('--ok'), false, [5, 4]);
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 4, 6, 8, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function formatRate(v) {
  return v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + 'k' : String(Math.round(v * 10) / 10);
}

async function poll() {
  clearTimeout(timer);
  if (!apiKey()) {
    setPoll('closed', 'no key');
    return;
  }
  try {
    const [conns, chans, metrics, spaces] = await Promise.all([
      api('GET', '/api/connections').then((r) => r.json()),
      api('GET', '/api/channels').then((r) => r.json()),
      api('GET', '/metrics').then((r) => r.text()),
      api('GET', '/api/namespaces').then((r) => r.json()),
    ]);
    const namespaces = spaces.namespaces || [];
    renderConnections(conns.connections || []);
    renderNamespaces(namespaces);
    await renderChannels(chans.channels || [], new Set(namespaces.map((ns) => ns.name)));
    pushRates(metrics);
    setPoll('open', 'live');
  } catch (e) {
    if (e.status === 401) {
      setPoll('error', 'key refused');
      note('The server refused this API key (HTTP 401).', 'bad');
    } else if (e.status === 404) {
      setPoll('error', 'API off');
      note('The HTTP API is disabled: start heraldd with HERALD_API_KEY or [api] key.', 'bad');
    } else {
      setPoll('error', 'offline');
    }
  }
  timer = setTimeout(poll, POLL_MS);
}

$('key-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $('api-key').value.trim());
  $('api-key').value = '';
  statsSupported = true;
  note('Key saved for this tab.', 'ok');
  previous = null;
  poll();
});
$('forget-key').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  clearTimeout(timer);
  setPoll('closed', 'no key');
  note('Key forgotten.');
});
window.addEventListener('resize', drawChart);
drawChart();
poll();
