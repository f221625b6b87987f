// herald-client against a real heraldd (in-process engine): subscribe,
// publish, presence, RPC, resume after a close, recovered:false after a
// restart, token renewal, and /herald.js itself.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { Herald } from '../herald.js';
import { JWT_SECRET, api, jwt, sleep, startHeraldd, tempDir, unhandled, waitFor } from './helpers.mjs';

const FAST = { WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 };

function track(h) {
  const t = { states: [], errors: [], closes: [] };
  h.on('state', (s) => t.states.push(s));
  h.on('error', (e) => t.errors.push(e));
  h.on('close', (c) => t.closes.push(c));
  return t;
}

function collect(h, channel, extra = {}) {
  const got = { messages: [], subscribed: [], errors: [] };
  const sub = h.subscribe(channel, {
    onMessage: (data, ctx) => got.messages.push({ data, ...ctx }),
    onSubscribed: (info) => got.subscribed.push(info),
    onError: (e) => got.errors.push(e),
    ...extra,
  });
  return { sub, got };
}

describe('heraldd, in-process engine', () => {
  let tmp, server;
  const clients = [];
  const client = (opts) => {
    const h = new Herald(server.ws, { ...FAST, ...opts });
    clients.push(h);
    return h;
  };

  before(async () => {
    tmp = tempDir();
    server = await startHeraldd(tmp.dir, { conf: '[auth]\nanonymous-publish=*\n[server]\nallowed-origins=http://good.example\n' });
  });
  after(async () => {
    for (const h of clients) h.close();
    if (server) await server.stop();
    tmp.remove();
    assert.deepEqual(unhandled, []);
  });

  test('subscribe, publish with a promise result, presence, ping', async () => {
    const h = client();
    const t = track(h);
    const { sub, got } = collect(h, 'news');
    await waitFor(() => got.subscribed.length === 1, 'subscribed');
    assert.equal(h.state, 'connected');
    assert.deepEqual(t.states, ['connected']); // 'connecting' was set in the constructor
    assert.equal(got.subscribed[0].recovered, false);
    assert.equal(got.subscribed[0].resumed, false);
    assert.equal(typeof got.subscribed[0].epoch, 'string');
    const r1 = await h.publish('news', { n: 1 });
    const r2 = await h.publish('news', 'two');
    assert.equal(r1.channel, 'news');
    assert.equal(r2.offset, r1.offset + 1);
    await waitFor(() => got.messages.length === 2, 'two messages');
    assert.deepEqual(got.messages.map((m) => m.data), [{ n: 1 }, 'two']);
    assert.deepEqual(got.messages.map((m) => m.offset), [r1.offset, r2.offset]);
    assert.equal(got.messages[0].epoch, got.subscribed[0].epoch);
    const p = await h.presence('news');
    assert.equal(p.connections, 1);
    assert.deepEqual(p.users, []);
    assert.ok((await h.ping()) >= 0);
    // A publish the server refuses rejects with its code.
    await assert.rejects(h.publish('bad name', 1), (e) => e.code === 'bad_request' && e.server === true);
    await sub.unsubscribe();
    assert.equal(h.getSubscription('news'), null);
    await api(server.base, 'POST', '/api/publish', { channel: 'news', data: 'after' });
    await sleep(100);
    assert.equal(got.messages.length, 2);
    assert.deepEqual(t.errors, []);
  });

  test('publish before the connection is up waits for it', async () => {
    const h = client();
    const r = await h.publish('queued', { early: true });
    assert.equal(typeof r.offset, 'number');
  });

  test('rpc: heraldd without an RPC proxy answers unknown_type, the promise rejects', async () => {
    const h = client();
    await assert.rejects(h.rpc('getProfile', { id: 1 }), (e) => e.code === 'unknown_type' && /rpc/.test(e.message));
  });

  test('direct messages reach the message event', async () => {
    const h = client();
    const direct = [];
    h.on('message', (data, ctx) => direct.push({ data, ctx }));
    await waitFor(() => h.connectionId, 'connected');
    await api(server.base, 'POST', '/api/connections/' + h.connectionId + '/send', { data: { hi: 'you' } });
    await waitFor(() => direct.length === 1, 'a direct message');
    assert.deepEqual(direct[0], { data: { hi: 'you' }, ctx: { channel: null, offset: null, epoch: null } });
  });

  test('closed by the server: reconnects, resumes with since + epoch, exactly once', async () => {
    const h = client();
    const t = track(h);
    const { got } = collect(h, 'resume');
    await waitFor(() => got.subscribed.length === 1, 'subscribed');
    for (let i = 1; i <= 3; i++) await api(server.base, 'POST', '/api/publish', { channel: 'resume', data: i });
    await waitFor(() => got.messages.length === 3, 'three messages');
    const first = h.connectionId;
    await api(server.base, 'DELETE', '/api/connections/' + first);
    // Published while the client is away (its reconnect waits ≥ 20 ms).
    for (let i = 4; i <= 6; i++) await api(server.base, 'POST', '/api/publish', { channel: 'resume', data: i });
    await waitFor(() => got.subscribed.length === 2, 'resubscribed');
    for (let i = 7; i <= 8; i++) await api(server.base, 'POST', '/api/publish', { channel: 'resume', data: i });
    await waitFor(() => got.messages.length >= 8, 'eight messages');
    await sleep(50);
    assert.deepEqual(got.messages.map((m) => m.data), [1, 2, 3, 4, 5, 6, 7, 8]);
    const offsets = got.messages.map((m) => m.offset);
    offsets.forEach((o, i) => assert.equal(o, offsets[0] + i));
    assert.equal(got.subscribed[1].recovered, true);
    assert.equal(got.subscribed[1].resumed, true);
    assert.notEqual(h.connectionId, first);
    assert.equal(t.closes.length, 1);
    assert.equal(t.closes[0].code, 4004);
    assert.ok(t.closes[0].reconnectIn >= 20 && t.closes[0].reconnectIn <= 200, 'delay ' + t.closes[0].reconnectIn);
    assert.deepEqual(t.states, ['connected', 'disconnected', 'connecting', 'connected']);
  });

  test('a refused subscription rejects to onError and is dropped', async () => {
    const h = client();
    const { got } = collect(h, 'bad channel!');
    await waitFor(() => got.errors.length === 1, 'onError');
    assert.equal(got.errors[0].code, 'bad_request');
    assert.equal(h.getSubscription('bad channel!'), null);
  });

  test('/herald.js: the SDK itself, text/javascript, CORS as /events', async () => {
    const mine = readFileSync(new URL('../herald.js', import.meta.url), 'utf8');
    const r = await fetch(server.base + '/herald.js', { headers: { Origin: 'http://good.example' } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/javascript/);
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://good.example');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(await r.text(), mine);
    const bad = await fetch(server.base + '/herald.js', { headers: { Origin: 'http://evil.example' } });
    assert.equal(bad.status, 403);
    await bad.arrayBuffer();
    const pre = await fetch(server.base + '/herald.js', { method: 'OPTIONS', headers: { Origin: 'http://good.example' } });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-methods'), /GET/);
  });
});

describe('heraldd restarted (in-process engine)', () => {
  test('history is gone with the process: onSubscribed reports recovered:false', async () => {
    const tmp = tempDir();
    let server = await startHeraldd(tmp.dir, { conf: '[auth]\nanonymous-publish=*\n' });
    const h = new Herald(server.ws, FAST);
    const { got } = collect(h, 'lost');
    try {
      await waitFor(() => got.subscribed.length === 1, 'subscribed');
      await h.publish('lost', 1);
      await waitFor(() => got.messages.length === 1, 'a message');
      const oldEpoch = got.subscribed[0].epoch;
      const port = server.port;
      await server.kill();
      server = await startHeraldd(tmp.dir, { conf: '[auth]\nanonymous-publish=*\n', port });
      await waitFor(() => got.subscribed.length === 2, 'resubscribed after the restart', 10000);
      assert.equal(got.subscribed[1].resumed, true);
      assert.equal(got.subscribed[1].recovered, false);
      assert.notEqual(got.subscribed[1].epoch, oldEpoch);
      await h.publish('lost', 2);
      await waitFor(() => got.messages.length === 2, 'a message after the restart');
      assert.equal(got.messages[1].epoch, got.subscribed[1].epoch);
    } finally {
      h.close();
      await server.stop();
      tmp.remove();
    }
  });
});

describe('token renewal', () => {
  test('a token that expires in 3 s is renewed through refresh, without a reconnect', async () => {
    const tmp = tempDir();
    // leeway=0: without renewal heraldd closes with 4003 at 3 s.
    const server = await startHeraldd(tmp.dir, { conf: '[auth]\nleeway=0\n', env: { HERALD_JWT_SECRET: JWT_SECRET } });
    let calls = 0;
    const token = async () => {
      calls++;
      const now = Math.floor(Date.now() / 1000);
      return jwt({ sub: 'alice', iat: now, exp: now + 3 });
    };
    const h = new Herald(server.ws, { ...FAST, token });
    const t = track(h);
    const refreshed = [];
    h.on('refreshed', (r) => refreshed.push(r));
    try {
      await waitFor(() => h.state === 'connected', 'connected');
      assert.equal(h.userId, 'alice');
      const id = h.connectionId;
      await sleep(4500);
      assert.ok(refreshed.length >= 2, 'refreshed ' + refreshed.length + ' times');
      assert.ok(calls >= 3);
      assert.equal(h.connectionId, id);
      assert.deepEqual(t.closes, []);
      assert.deepEqual(t.states, ['connected']); // 'connecting' was set in the constructor
      assert.deepEqual(t.errors, []);
      assert.ok((await h.ping()) >= 0, 'still usable');
    } finally {
      h.close();
      await server.stop();
      tmp.remove();
    }
  });
});
