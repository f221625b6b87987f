// herald-client across a heraldd restart with the Redis engine: node A is
// killed and restarted on the same port while node B keeps publishing; the
// client resumes with every message exactly once, in order. The SIGTERM
// drain. Redis restarted empty: the reset notice. And across two nodes: the
// server API on one subscribes the user's client on the other; join/leave of
// a connection on the other node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import WebSocket from 'ws';

import { Herald } from '../herald.js';
import { JWT_SECRET, api, jwt, sleep, startHeraldd, startRedis, tempDir, unhandled, waitFor } from './helpers.mjs';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;

test('killed and restarted on the same port: every message exactly once, in order', { skip: !haveRedis && 'redis-server not found' }, async () => {
  const tmp = tempDir();
  const redis = await startRedis(tmp.dir);
  const env = { REDIS_URL: redis.url };
  let a = await startHeraldd(tmp.dir, { name: 'a', env });
  const b = await startHeraldd(tmp.dir, { name: 'b', env });
  const h = new Herald(a.ws, { WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 });
  const got = [];
  const subscribed = [];
  h.subscribe('ticker', {
    onMessage: (data, ctx) => got.push({ data, offset: ctx.offset }),
    onSubscribed: (info) => subscribed.push(info),
  });
  let publishing = true;
  let sent = 0;
  const publisher = (async () => {
    while (publishing) {
      await api(b.base, 'POST', '/api/publish', { channel: 'ticker', data: ++sent });
      await sleep(10);
    }
  })();
  try {
    await waitFor(() => subscribed.length === 1, 'subscribed');
    await waitFor(() => got.length >= 10, 'ten messages before the kill');
    const port = a.port;
    await a.kill();
    const atKill = sent;
    await waitFor(() => sent >= atKill + 20, 'twenty messages published while node A is down');
    a = await startHeraldd(tmp.dir, { name: 'a', env, port });
    await waitFor(() => subscribed.length === 2, 'resubscribed to the restarted node', 10000);
    await waitFor(() => got.length && got[got.length - 1].data >= atKill + 30, 'messages after the restart');
    publishing = false;
    await publisher;
    await waitFor(() => got.length && got[got.length - 1].data >= sent, 'the last of ' + sent + ' messages');
    await sleep(100);
    assert.equal(subscribed[1].resumed, true);
    assert.equal(subscribed[1].recovered, true);
    assert.equal(subscribed[1].epoch, subscribed[0].epoch);
    const first = got[0].data;
    assert.deepEqual(got.map((m) => m.data), Array.from({ length: sent - first + 1 }, (_, i) => first + i));
    got.forEach((m, i) => assert.equal(m.offset, got[0].offset + i));
  } finally {
    publishing = false;
    await publisher.catch(() => {});
    h.close();
    await a.stop();
    await b.stop();
    await redis.stop();
    tmp.remove();
  }
  assert.deepEqual(unhandled, []);
});

// The drain of a real heraldd: SIGTERM with drain-seconds=2 sends the
// client `reconnect` (its `after` within the window) and closes with 1001;
// the client waits out the hint, retries until the node is back, and resumes
// with every message exactly once while the other node kept publishing.
test('SIGTERM drain: the hint is honoured and nothing is lost across the restart', { skip: !haveRedis && 'redis-server not found' }, async () => {
  const tmp = tempDir();
  const redis = await startRedis(tmp.dir);
  const env = { REDIS_URL: redis.url };
  // The gap (up to 2 s of drain, the hint's wait, the restart) at ~100
  // messages a second must fit in the history.
  const conf = '[server]\ndrain-seconds=2\n[history]\nsize=2000\n';
  let a = await startHeraldd(tmp.dir, { name: 'a', env, conf });
  const b = await startHeraldd(tmp.dir, { name: 'b', env, conf });
  const h = new Herald(a.ws, { WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 });
  const got = [];
  const subscribed = [];
  const closes = [];
  const hints = [];
  h.on('close', (c) => closes.push({ ...c, at: Date.now() }));
  h.subscribe('drained', {
    onMessage: (data, ctx) => got.push({ data, offset: ctx.offset }),
    onSubscribed: (info) => subscribed.push(info),
  });
  let publishing = true;
  let sent = 0;
  const publisher = (async () => {
    while (publishing) {
      await api(b.base, 'POST', '/api/publish', { channel: 'drained', data: ++sent });
      await sleep(10);
    }
  })();
  try {
    await waitFor(() => subscribed.length === 1, 'subscribed');
    // Watch the raw frames for the hint (the SDK consumes it).
    const sock = h._ws;
    sock.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data));
      if (msg.type === 'reconnect') hints.push({ after: msg.after, at: Date.now() });
    });
    await waitFor(() => got.length >= 10, 'ten messages before the SIGTERM');
    const port = a.port;
    const t0 = Date.now();
    await a.stop(); // SIGTERM; resolves when heraldd has exited (bounded)
    assert.equal(hints.length, 1, 'one reconnect hint');
    assert.ok(hints[0].after >= 0 && hints[0].after < 2000, 'after ' + hints[0].after + ' ms is within the 2 s window');
    assert.ok(hints[0].at - t0 < 2500, 'the hint came within the window');
    assert.ok(closes.length >= 1);
    // The server sends the hint and closes with 1001 at once; with a hint
    // shorter than the closing handshake the client moves at the hint first.
    assert.ok(closes[0].code === 1001 || (closes[0].code === 1000 && closes[0].reason === 'reconnect hint'),
      'closed with 1001 (going away) or left at the hint: ' + JSON.stringify(closes[0]));
    assert.ok(closes[0].reconnectIn <= hints[0].after, 'the reconnect waits at most the hint');
    a = await startHeraldd(tmp.dir, { name: 'a', env, conf, port });
    await waitFor(() => subscribed.length === 2, 'resubscribed to the restarted node', 10000);
    publishing = false;
    await publisher;
    await waitFor(() => got.length && got[got.length - 1].data >= sent, 'the last of ' + sent + ' messages');
    await sleep(100);
    assert.equal(subscribed[1].recovered, true);
    const first = got[0].data;
    assert.deepEqual(got.map((m) => m.data), Array.from({ length: sent - first + 1 }, (_, i) => first + i));
  } finally {
    publishing = false;
    await publisher.catch(() => {});
    h.close();
    await a.stop();
    await b.stop();
    await redis.stop();
    tmp.remove();
  }
  assert.deepEqual(unhandled, []);
});

test('Redis engine: the server API on node B subscribes the user\'s SDK client on node A; join/leave across nodes', { skip: !haveRedis && 'redis-server not found' }, async () => {
  const tmp = tempDir();
  const redis = await startRedis(tmp.dir);
  const env = { REDIS_URL: redis.url, HERALD_JWT_SECRET: JWT_SECRET };
  const conf = '[namespace.chat]\njoin-leave=true\n';
  const a = await startHeraldd(tmp.dir, { name: 'a', env, conf });
  const b = await startHeraldd(tmp.dir, { name: 'b', env, conf });
  const token = (sub) => () => jwt({ sub, exp: Math.floor(Date.now() / 1000) + 600, channels: ['*'] });
  const fast = { WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 };
  const h = new Herald(a.ws, { ...fast, token: token('ria') });
  const other = new Herald(b.ws, { ...fast, token: token('rob') });
  const subscribed = [];
  const unsubscribed = [];
  const messages = [];
  h.on('subscribed', (i) => subscribed.push(i));
  h.on('unsubscribed', (i) => unsubscribed.push(i));
  h.on('message', (data, ctx) => messages.push({ data, ...ctx }));
  try {
    await waitFor(() => h.state === 'connected', 'connected to A');
    await api(b.base, 'POST', '/api/users/ria/subscribe', { channel: 'alerts' });
    await waitFor(() => subscribed.length === 1, 'subscribed through node B');
    assert.equal(subscribed[0].channel, 'alerts');
    assert.equal(subscribed[0].server, true);
    const r = await api(b.base, 'POST', '/api/publish', { channel: 'alerts', data: 'from B' });
    await waitFor(() => messages.length === 1, 'a message published on B');
    assert.deepEqual(messages[0], { data: 'from B', channel: 'alerts', offset: r.offset, epoch: subscribed[0].epoch });
    await api(b.base, 'POST', '/api/users/ria/unsubscribe', { channel: 'alerts' });
    await waitFor(() => unsubscribed.length === 1, 'unsubscribed through node B');
    assert.deepEqual(unsubscribed[0], { channel: 'alerts', reason: null, server: true });

    // join/leave of a connection on the other node.
    const joins = [];
    const leaves = [];
    let ready = false;
    h.subscribe('chat:x', { onSubscribed: () => { ready = true; }, onJoin: (e) => joins.push(e), onLeave: (e) => leaves.push(e) });
    await waitFor(() => ready, 'ria subscribed to chat:x');
    await waitFor(() => other.state === 'connected', 'rob connected to B');
    const robSub = other.subscribe('chat:x');
    await waitFor(() => joins.length === 1, 'rob\'s join on node A');
    assert.deepEqual(joins[0], { channel: 'chat:x', userId: 'rob', connectionId: other.connectionId });
    await robSub.unsubscribe();
    await waitFor(() => leaves.length === 1, 'rob\'s leave on node A');
    assert.deepEqual(leaves[0], joins[0]);
  } finally {
    h.close();
    other.close();
    await a.stop();
    await b.stop();
    await redis.stop();
    tmp.remove();
  }
  assert.deepEqual(unhandled, []);
});

// Redis restarted empty: the node's epoch changes and every subscriber gets
// the reset notice (an unasked subscribed, server:true, recovered:false):
// onSubscribed says recovered:false, and the new epoch's messages (offsets
// from 1 again) are delivered, not taken for ones already seen.
test('Redis restarted without its data: the reset notice reaches onSubscribed, the new epoch is delivered', { skip: !haveRedis && 'redis-server not found' }, async () => {
  const tmp = tempDir();
  let redis = await startRedis(tmp.dir);
  const a = await startHeraldd(tmp.dir, { name: 'a', env: { REDIS_URL: redis.url } });
  const h = new Herald(a.ws, { WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 });
  const got = [];
  const subscribed = [];
  const closes = [];
  h.on('close', (c) => closes.push(c));
  h.subscribe('reset', {
    onMessage: (data, ctx) => got.push({ data, offset: ctx.offset, epoch: ctx.epoch }),
    onSubscribed: (info) => subscribed.push(info),
  });
  try {
    await waitFor(() => subscribed.length === 1, 'subscribed');
    for (let i = 1; i <= 3; i++) await api(a.base, 'POST', '/api/publish', { channel: 'reset', data: i });
    await waitFor(() => got.length === 3, 'three messages');
    const port = redis.port;
    await redis.stop();
    redis = await startRedis(tmp.dir, port);
    await waitFor(() => subscribed.length === 2, 'the reset notice', 15000);
    assert.equal(subscribed[1].recovered, false);
    assert.equal(subscribed[1].server, true);
    assert.notEqual(subscribed[1].epoch, subscribed[0].epoch);
    let r;
    await waitFor(async () => { r = await api(a.base, 'POST', '/api/publish', { channel: 'reset', data: 'new' }); return r.offset !== null; }, 'a stored publish', 10000);
    await waitFor(() => got.some((m) => m.offset === r.offset && m.data === 'new'), 'the new epoch\'s message');
    assert.equal(got[got.length - 1].epoch, subscribed[1].epoch);
    assert.deepEqual(closes, []); // the same connection throughout
  } finally {
    h.close();
    await a.stop();
    await redis.stop();
    tmp.remove();
  }
  assert.deepEqual(unhandled, []);
});
