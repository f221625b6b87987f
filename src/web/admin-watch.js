// Herald admin view: watch one channel live, through the client SDK that
// heraldd serves at /herald.js (clients/js). Click a channel in the table
// or name one. Connects anonymously, or with the token given.
import { Herald } from '/herald.js';

const $ = (id) => document.getElementById(id);
const MAX = 50;
let herald = null;
let watched = null;

function setState(cls, text) {
  const el = $('watch-state');
  el.className = 'pill ' + cls;
  el.textContent = text;
}

function note(text, cls) {
  const el = $('watch-note');
  el.className = 'note' + (cls ? ' ' + cls : '');
  el.textContent = text;
}

function show(label, data, offset, kind) {
  const list = $('watch-log');
  list.querySelector('.empty')?.remove();
  const li = document.createElement('li');
  li.className = 'entry';
  li.dataset.kind = kind || 'message';
  if (offset !== null && offset !== undefined) li.dataset.offset = String(offset);
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = label + (offset != null ? ' #' + offset : '') + ' · ' + new Date().toLocaleTimeString();
  const pre = document.createElement('pre');
  pre.textContent = JSON.stringify(data, null, 2);
  li.append(meta, pre);
  list.prepend(li);
  while (list.children.length > MAX) list.lastChild.remove();
}

function client() {
  if (herald) return herald;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  herald = new Herald(scheme + '//' + location.host + '/ws', { token: () => $('watch-token').value.trim() || null });
  herald.on('state', (s) => setState(s === 'connected' ? 'open' : s === 'connecting' ? 'connecting' : 'closed', s));
  herald.on('close', (c) => { if (c.code === 1006 && c.reconnectIn !== null) note('Connection refused or lost: anonymous access off? Give a token.', 'bad'); });
  return herald;
}

function watch(channel) {
  channel = channel.trim();
  if (!channel || channel === watched) return;
  const h = client();
  if (watched) h.getSubscription(watched)?.unsubscribe();
  watched = channel;
  $('watch-log').replaceChildren();
  note('Watching ' + channel + '…');
  h.subscribe(channel, {
    onMessage: (data, ctx) => show(ctx.channel, data, ctx.offset),
    // join/leave namespaces: another connection subscribed or left
    onJoin: (e) => show('join ' + e.channel, { user_id: e.userId, connection_id: e.connectionId }, null, 'join'),
    onLeave: (e) => show('leave ' + e.channel, { user_id: e.userId, connection_id: e.connectionId }, null, 'leave'),
    onSubscribed: (info) => {
      note('Watching ' + channel + (info.resumed ? (info.recovered ? ' (resumed, nothing missed)' : ' (resumed, messages missed)') : '') + '.', 'ok');
      $('watch-log').dataset.channel = channel;
    },
    onError: (e) => { if (watched === channel) { watched = null; note('Cannot watch ' + channel + ': ' + e.message, 'bad'); } },
  });
}

$('watch-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  watch($('watch-channel').value);
});
$('channel-rows').addEventListener('click', (ev) => {
  const tr = ev.target.closest('tr[data-channel]');
  if (!tr) return;
  $('watch-channel').value = tr.dataset.channel;
  watch(tr.dataset.channel);
});
