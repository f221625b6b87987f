// herald-client against a real heraldd whose [proxy] hooks a small node
// HTTP server in this process answers: h.rpc() resolves with the backend's
// data, rejects with rpc_error and its rpcCode, and with unavailable when
// the backend cannot answer (5xx, or nothing listening); a session cookie alone (the connect hook)
// authenticates the connection, no token, and the hook's `subs` reach the
// client's subscribed and message events.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { Herald } from '../herald.js';
import { api, freePort, startHeraldd, tempDir, unhandled, waitFor } from './helpers.mjs';

// ws sends the headers given to its constructor: the cookie a browser would send
class CookieWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { Cookie: 'session=alice-session' } });
  }
}

const FAST = { WebSocket: CookieWebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 };

function backend() {
  const calls = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const b = JSON.parse(body);
      calls.push({ path: req.url, body: b });
      const answer = (obj) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      if (req.url === '/connect') {
        if (b.headers.cookie !== 'session=alice-session') return answer({ error: { code: 401, message: 'no session' } });
        return answer({ result: { user: 'alice', subs: ['alerts:alice'] } });
      }
      if (b.method === 'getProfile') return answer({ result: { data: { user: b.user, id: b.data.id } } });
      if (b.method === 'missing') return answer({ error: { code: 404, message: 'no such profile' } });
      res.writeHead(500);
      res.end('down');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, calls, port: server.address().port })));
}

describe('heraldd with a backend proxy', () => {
  let tmp, herald, be;
  const clients = [];
  const client = (opts) => {
    const h = new Herald(herald.ws, { ...FAST, ...opts });
    clients.push(h);
    return h;
  };

  before(async () => {
    tmp = tempDir();
    be = await backend();
    const url = 'http://127.0.0.1:' + be.port;
    herald = await startHeraldd(tmp.dir, {
      conf: '[proxy]\nconnect-url=' + url + '/connect\nrpc-url=' + url + '/rpc\ntimeout=1\n',
    });
  });

  after(async () => {
    for (const h of clients) h.close();
    await herald.stop();
    be.server.close();
    tmp.remove();
    assert.deepEqual(unhandled, []);
  });

  test('rpc resolves with the backend\'s data; the connection is the cookie\'s user', async () => {
    const h = client();
    assert.deepEqual(await h.rpc('getProfile', { id: 7 }), { user: 'alice', id: 7 });
    const rpc = be.calls.find((c) => c.path === '/rpc');
    assert.equal(rpc.body.user, 'alice');
    assert.equal(rpc.body.method, 'getProfile');
    assert.equal(rpc.body.client, h.connectionId);
  });

  test('a backend error rejects with rpc_error and the backend\'s code', async () => {
    const h = client();
    await assert.rejects(h.rpc('missing', null), (e) => e.code === 'rpc_error' && e.rpcCode === 404 && e.message === 'no such profile');
  });

  test('a backend that cannot answer rejects with unavailable', async () => {
    const h = client();
    await assert.rejects(h.rpc('broken', null), (e) => e.code === 'unavailable');
  });

  test('the connect hook\'s subs: the client\'s subscribed and message events', async () => {
    const h = client();
    const subscribed = [];
    const messages = [];
    h.on('subscribed', (i) => subscribed.push(i));
    h.on('message', (data, ctx) => messages.push({ data, ...ctx }));
    await waitFor(() => subscribed.length === 1, 'subscribed (the hook\'s subs)');
    assert.equal(subscribed[0].channel, 'alerts:alice');
    assert.equal(subscribed[0].server, true);
    const r = await api(herald.base, 'POST', '/api/publish', { channel: 'alerts:alice', data: 'hi' });
    await waitFor(() => messages.length === 1, 'a message of the subs channel');
    assert.deepEqual(messages[0], { data: 'hi', channel: 'alerts:alice', offset: r.offset, epoch: subscribed[0].epoch });
  });
});

describe('heraldd whose RPC backend is down', () => {
  test('nothing listens at rpc-url: rpc rejects with unavailable, the connection stays', async () => {
    const tmp = tempDir();
    const port = await freePort(); // closed again: connections to it are refused
    const herald = await startHeraldd(tmp.dir, { conf: '[proxy]\nrpc-url=http://127.0.0.1:' + port + '/rpc\ntimeout=1\n' });
    const h = new Herald(herald.ws, { ...FAST, WebSocket });
    const closes = [];
    h.on('close', (c) => closes.push(c));
    try {
      await assert.rejects(h.rpc('getProfile', { id: 1 }), (e) => e.code === 'unavailable' && e.server === true);
      await assert.rejects(h.rpc('getProfile', { id: 2 }), (e) => e.code === 'unavailable');
      assert.ok((await h.ping()) >= 0);
      assert.deepEqual(closes, []);
    } finally {
      h.close();
      await herald.stop();
      tmp.remove();
    }
  });
});
