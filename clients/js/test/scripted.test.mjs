// herald-client against tiny scripted servers: what heraldd does not send
// today (rpc results, the drain hint `reconnect`) and what a broken or
// hostile server does (garbage frames, a close mid-handshake, silence).
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';

import { Herald } from '../herald.js';
import { sleep, unhandled, waitFor } from './helpers.mjs';

const CONNECTED = JSON.stringify({ type: 'connected', connection_id: 'c1', user_id: null, heartbeat_interval: 30 });
const servers = [];
const clients = [];

// A WebSocket server on a free loopback port calling @onConnection(socket, n).
async function scripted(onConnection) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const log = { connections: [] };
  wss.on('connection', (socket) => {
    log.connections.push(Date.now());
    socket.on('error', () => {});
    onConnection(socket, log.connections.length, log);
  });
  servers.push({ close: () => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }) });
  return { url: 'ws://127.0.0.1:' + wss.address().port + '/ws', log };
}

// A plain TCP server calling @onSocket for each connection.
async function tcp(onSocket) {
  const log = { connections: [] };
  const sockets = new Set();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    log.connections.push(Date.now());
    onSocket(s);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  servers.push({ close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }) });
  return { url: 'ws://127.0.0.1:' + srv.address().port + '/ws', log };
}

function client(url, opts) {
  const h = new Herald(url, { WebSocket, minReconnectDelay: 10, maxReconnectDelay: 400, timeout: 2000, ...opts });
  const t = { errors: [], closes: [], states: [] };
  h.on('error', (e) => t.errors.push(e));
  h.on('close', (c) => t.closes.push(c));
  h.on('state', (s) => t.states.push(s));
  clients.push(h);
  return { h, t };
}

after(async () => {
  for (const h of clients) h.close();
  for (const s of servers) await s.close();
  assert.deepEqual(unhandled, [], 'no unhandled promise rejection');
});

// The delays chosen after failed attempts grow (full jitter: random below a
// doubling cap) and never go below the minimum.
function assertBackoff(closes, min, max) {
  assert.ok(closes.length >= 6, 'attempts: ' + closes.length);
  const delays = closes.map((c) => c.reconnectIn);
  for (const d of delays) assert.ok(d >= min && d <= max, 'delay ' + d + ' outside [' + min + ', ' + max + ']');
  delays.forEach((d, i) => assert.ok(d <= Math.min(max, min * 2 ** (i + 1)), 'delay ' + i + ' = ' + d + ' over its cap'));
  assert.ok(Math.max(...delays.slice(3)) > min * 2, 'the backoff kept growing: ' + delays.join(', '));
}

test('server pings are answered with pong', async () => {
  const pongs = [];
  const { url } = await scripted((s) => {
    s.send(CONNECTED);
    s.send('{"type":"ping"}');
    s.on('message', (m) => pongs.push(JSON.parse(String(m))));
  });
  client(url);
  await waitFor(() => pongs.length === 1, 'a pong');
  assert.deepEqual(pongs[0], { type: 'pong' });
});

test('rpc resolves with rpc_result data and rejects with rpc_error and its code', async () => {
  const { url } = await scripted((s) => {
    s.send(CONNECTED);
    s.on('message', (m) => {
      const req = JSON.parse(String(m));
      if (req.type !== 'rpc') return;
      if (req.method === 'echo') s.send(JSON.stringify({ type: 'rpc_result', id: req.id, data: { echoed: req.data } }));
      else s.send(JSON.stringify({ type: 'error', id: req.id, code: 'rpc_error', message: 'no such method', rpc_code: 404 }));
    });
  });
  const { h } = client(url);
  assert.deepEqual(await h.rpc('echo', [1, 'two']), { echoed: [1, 'two'] });
  await assert.rejects(h.rpc('nope'), (e) => e.code === 'rpc_error' && e.rpcCode === 404 && e.message === 'no such method');
});

test('drain hint: reconnects after the given delay, not at once', async () => {
  let hintAt = 0;
  const { url, log } = await scripted((s, n) => {
    s.send(CONNECTED);
    if (n === 1) {
      hintAt = Date.now();
      s.send(JSON.stringify({ type: 'reconnect', after: 600 }));
      s.close(1001, 'server shutting down');
    }
  });
  const { t } = client(url);
  await waitFor(() => log.connections.length === 2, 'the second connection', 5000);
  const waited = log.connections[1] - hintAt;
  assert.ok(waited >= 550, 'reconnected after ' + waited + ' ms, before the 600 ms hint');
  assert.ok(waited < 2000, 'reconnected only after ' + waited + ' ms');
  assert.equal(t.closes[0].code, 1001);
  assert.ok(t.closes[0].reconnectIn >= 500 && t.closes[0].reconnectIn <= 600);
});

test('drain hint on a socket the server leaves open: the client moves at the hint', async () => {
  let hintAt = 0;
  const { url, log } = await scripted((s, n) => {
    s.send(CONNECTED);
    if (n === 1) {
      hintAt = Date.now();
      s.send(JSON.stringify({ type: 'reconnect', after: 300 }));
    }
  });
  client(url);
  await waitFor(() => log.connections.length === 2, 'the second connection', 5000);
  const waited = log.connections[1] - hintAt;
  assert.ok(waited >= 280 && waited < 1500, 'moved after ' + waited + ' ms');
});

test('garbage frames after connected: an error each time, the backoff keeps growing', async () => {
  const { url } = await scripted((s) => {
    s.send(CONNECTED);
    s.send('this is not {json');
  });
  const { h, t } = client(url);
  const pending = h.publish('news', 1).catch((e) => e); // sent or queued: it must settle
  await waitFor(() => t.closes.length >= 7, 'seven reconnects', 8000);
  assert.ok(['disconnected', 'timeout'].includes((await pending).code));
  assert.ok(t.errors.filter((e) => e.code === 'protocol_error').length >= 7);
  assertBackoff(t.closes, 10, 400);
});

test('frames that are not the protocol (binary, no type, not connected first) are errors too', async () => {
  const { url } = await scripted((s, n) => {
    if (n % 3 === 1) s.send(Buffer.from([1, 2, 3]), { binary: true });
    else if (n % 3 === 2) s.send('[1,2,3]');
    else s.send('{"type":"message","channel":"x","data":1}');
  });
  const { t } = client(url);
  await waitFor(() => t.closes.length >= 6, 'six reconnects', 8000);
  assert.ok(t.errors.some((e) => /binary/.test(e.message)));
  assert.ok(t.errors.some((e) => /without a type/.test(e.message)));
  assert.ok(t.errors.some((e) => /connected/.test(e.message)));
  assertBackoff(t.closes, 10, 400);
});

test('a server that closes mid-handshake: transport errors, backoff', async () => {
  const { url } = await tcp((s) => {
    s.once('data', () => {
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n');
      s.destroy();
    });
  });
  const { h, t } = client(url);
  const rpc = h.rpc('x').catch((e) => e);
  await waitFor(() => t.closes.length >= 6, 'six attempts', 8000);
  assert.ok(t.errors.some((e) => e.code === 'transport_error'));
  assert.ok(!t.states.includes('connected'));
  assertBackoff(t.closes, 10, 400);
  h.close();
  assert.equal((await rpc).code, 'closed');
});

test('a server that never answers: a timeout error, then backoff', async () => {
  const { url, log } = await tcp(() => {}); // accepts, reads nothing, says nothing
  const { h, t } = client(url, { timeout: 150 });
  const ping = h.ping().catch((e) => e);
  await waitFor(() => t.closes.length >= 3, 'three attempts', 8000);
  assert.ok(t.errors.some((e) => e.code === 'timeout'));
  assert.ok(log.connections.length >= 3);
  assert.equal((await ping).code, 'timeout');
  h.close();
});

test('a WebSocket that opens but never says connected: a timeout error, then backoff', async () => {
  const { url, log } = await scripted(() => {});
  const { t } = client(url, { timeout: 150 });
  await waitFor(() => t.closes.length >= 3, 'three attempts', 8000);
  assert.ok(t.errors.some((e) => e.code === 'timeout' && /connected/.test(e.message)));
  assert.ok(log.connections.length >= 3);
});

test('a silent server after connected is taken for dead', async () => {
  const { url, log } = await scripted((s) => s.send(JSON.stringify({ type: 'connected', connection_id: 'c', heartbeat_interval: 1 })));
  const { t } = client(url, { serverTimeout: 200 });
  await waitFor(() => log.connections.length >= 2, 'a reconnect', 5000);
  assert.ok(t.errors.some((e) => e.code === 'timeout' && /silent/.test(e.message)));
});

test('a subscribe failing for a passing reason is tried again; a refused one is dropped', async () => {
  let tries = 0;
  const { url } = await scripted((s) => {
    s.send(CONNECTED);
    s.on('message', (m) => {
      const req = JSON.parse(String(m));
      if (req.type !== 'subscribe') return;
      if (req.channel === 'no') s.send(JSON.stringify({ type: 'error', id: req.id, code: 'forbidden', message: 'Not allowed' }));
      else if (++tries < 3) s.send(JSON.stringify({ type: 'error', id: req.id, code: 'internal_error', message: 'engine down' }));
      else s.send(JSON.stringify({ type: 'subscribed', id: req.id, channel: req.channel, offset: 5, epoch: 'e' }));
    });
  });
  const { h } = client(url);
  const errors = [];
  const subscribed = [];
  const unsubscribed = [];
  h.subscribe('yes', { onError: (e) => errors.push(e.code), onSubscribed: (i) => subscribed.push(i) });
  h.subscribe('no', { onError: (e) => errors.push(e.code), onUnsubscribed: (i) => unsubscribed.push(i) });
  await waitFor(() => subscribed.length === 1 && unsubscribed.length === 1, 'both settled');
  assert.deepEqual(errors.sort(), ['forbidden', 'internal_error', 'internal_error']);
  assert.equal(subscribed[0].offset, 5);
  assert.equal(h.getSubscription('yes').state, 'subscribed');
  assert.equal(h.getSubscription('no'), null);
  assert.deepEqual(unsubscribed[0], { channel: 'no', reason: 'forbidden', server: true });
});

test('throwing callbacks and a failing token function are reported, not fatal', async () => {
  const { url, log } = await scripted((s) => {
    s.send(CONNECTED);
    s.on('message', (m) => {
      const req = JSON.parse(String(m));
      if (req.type === 'subscribe') {
        s.send(JSON.stringify({ type: 'subscribed', id: req.id, channel: req.channel, offset: 0, epoch: 'e' }));
        s.send(JSON.stringify({ type: 'message', channel: req.channel, offset: 1, data: 'x' }));
      }
    });
  });
  let calls = 0;
  const { h, t } = client(url, { token: async () => { if (++calls === 1) throw new Error('no token yet'); return 'opaque'; } });
  h.subscribe('c', { onMessage: () => { throw new Error('boom'); } });
  await waitFor(() => t.errors.some((e) => e.code === 'callback_error'), 'the callback error');
  assert.ok(t.errors.some((e) => e.code === 'token_failed'));
  assert.equal(log.connections.length, 1);
  assert.equal(h.state, 'connected');
  await sleep(20);
});
