// herald-client in headless Chromium, imported from heraldd's /herald.js:
// subscribe, publish, presence, RPC, and a resume after a server-side close.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

import { spawnSync } from 'node:child_process';

import { API_KEY, JWT_SECRET, api, jwt, sleep, startHeraldd, startRedis, tempDir, waitFor } from './helpers.mjs';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 8000;
let tmp, server, browser, page;
const pageErrors = [];

before(async () => {
  tmp = tempDir();
  server = await startHeraldd(tmp.dir, { conf: '[auth]\nanonymous-publish=*\n' });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // (The browser's own favicon.ico request is a 404: not the SDK's.)
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text()); });
  await page.goto(server.base + '/healthz');
  await page.evaluate(async () => {
    window.addEventListener('unhandledrejection', (e) => window.unhandled.push(String(e.reason)));
    window.unhandled = [];
    const { Herald } = await import('/herald.js');
    const h = new Herald('ws://' + location.host + '/ws', { minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 });
    window.t = { h, messages: [], subscribed: [], states: [], closes: [] };
    h.on('state', (s) => window.t.states.push(s));
    h.on('close', (c) => window.t.closes.push(c.code));
    h.subscribe('news', {
      onMessage: (data, ctx) => window.t.messages.push({ data, offset: ctx.offset }),
      onSubscribed: (info) => window.t.subscribed.push(info),
    });
  });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (server) await server.stop();
  if (tmp) tmp.remove();
});

const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: STEP_MS });

test('subscribe, publish, presence and rpc in Chromium', async () => {
  await until(() => window.t.subscribed.length === 1);
  const result = await page.evaluate(async () => {
    const { h } = window.t;
    const published = await h.publish('news', { from: 'browser' });
    const presence = await h.presence('news');
    const rpc = await h.rpc('method', { a: 1 }).then(() => 'resolved', (e) => e.code);
    return { published, presence, rpc, connectionId: h.connectionId, state: h.state };
  });
  assert.equal(result.state, 'connected');
  assert.equal(result.published.channel, 'news');
  assert.equal(result.presence.connections, 1);
  assert.equal(result.rpc, 'unknown_type'); // heraldd has no RPC proxy configured
  await until((o) => window.t.messages.some((m) => m.offset === o), result.published.offset);
});

test('closed by the server (4004): resumes exactly once, recovered:true', async () => {
  const id = await page.evaluate(() => window.t.h.connectionId);
  const before = await page.evaluate(() => window.t.messages.length);
  await api(server.base, 'DELETE', '/api/connections/' + id);
  const offsets = [];
  for (let i = 0; i < 3; i++) offsets.push((await api(server.base, 'POST', '/api/publish', { channel: 'news', data: { i } })).offset);
  await until(() => window.t.subscribed.length === 2);
  await until((n) => window.t.messages.length >= n, before + 3);
  const t = await page.evaluate(() => ({ messages: window.t.messages, subscribed: window.t.subscribed, closes: window.t.closes, states: window.t.states, unhandled: window.unhandled }));
  assert.deepEqual(t.messages.slice(before).map((m) => m.offset), offsets);
  assert.equal(t.subscribed[1].recovered, true);
  assert.deepEqual(t.closes, [4004]);
  assert.deepEqual(t.states, ['connected', 'disconnected', 'connecting', 'connected']);
  assert.deepEqual(t.unhandled, []);
  assert.deepEqual(pageErrors, []);
});

test('the admin page watches a channel through /herald.js', async () => {
  const admin = await browser.newPage();
  admin.on('pageerror', (e) => pageErrors.push(String(e)));
  await admin.goto(server.base + '/admin.html');
  await admin.fill('#api-key', API_KEY);
  await admin.click('#save-key');
  // The page's own client is subscribed to news: the channel is listed.
  await admin.click('#channel-rows tr[data-channel="news"]', { timeout: STEP_MS });
  await admin.waitForSelector('#watch-log[data-channel="news"]', { state: 'attached', timeout: STEP_MS });
  const { offset } = await api(server.base, 'POST', '/api/publish', { channel: 'news', data: { watched: true } });
  const li = await admin.waitForSelector(`#watch-log li[data-offset="${offset}"]`, { timeout: STEP_MS });
  assert.match(await li.textContent(), /"watched": true/);
  assert.match(await admin.locator('#watch-state').textContent(), /connected/);
  await admin.close();
  assert.deepEqual(pageErrors, []);
});

// A page on @node's origin with a client collecting what it gets in window.t.
async function clientPage(node, options = {}) {
  const p = await (options.context || browser).newPage();
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  await p.goto(node.base + '/healthz');
  await p.evaluate(async ({ channel, withToken }) => {
    window.unhandled = [];
    window.addEventListener('unhandledrejection', (e) => window.unhandled.push(String(e.reason)));
    const { Herald } = await import('/herald.js');
    const opts = { minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 };
    if (withToken) opts.token = () => window.nextToken();
    const h = new Herald('ws://' + location.host + '/ws', opts);
    window.t = { h, messages: [], subscribed: [], states: [], closes: [], refreshed: 0 };
    h.on('state', (s) => window.t.states.push(s));
    h.on('close', (c) => window.t.closes.push(c.code));
    h.on('refreshed', () => window.t.refreshed++);
    h.subscribe(channel, {
      onMessage: (data, ctx) => window.t.messages.push({ data, offset: ctx.offset }),
      onSubscribed: (info) => window.t.subscribed.push(info),
    });
  }, { channel: options.channel || 'news', withToken: !!options.withToken });
  return p;
}

test('Redis engine, node killed and restarted on the same port: exactly once, in order (Chromium)', { skip: !haveRedis && 'redis-server not found' }, async () => {
  const dir = tempDir();
  const redis = await startRedis(dir.dir);
  const env = { REDIS_URL: redis.url };
  let a = await startHeraldd(dir.dir, { name: 'a', env });
  const b = await startHeraldd(dir.dir, { name: 'b', env });
  let p;
  let publishing = true;
  let sent = 0;
  let publisher = Promise.resolve();
  try {
    p = await clientPage(a, { channel: 'ticker' });
    await p.waitForFunction(() => window.t.subscribed.length === 1, null, { timeout: STEP_MS });
    publisher = (async () => {
      while (publishing) {
        await api(b.base, 'POST', '/api/publish', { channel: 'ticker', data: ++sent });
        await sleep(10);
      }
    })();
    await waitFor(() => sent >= 10, 'ten publishes');
    const port = a.port;
    await a.kill();
    const atKill = sent;
    await waitFor(() => sent >= atKill + 15, 'publishes while node A is down');
    a = await startHeraldd(dir.dir, { name: 'a', env, port });
    await p.waitForFunction(() => window.t.subscribed.length === 2, null, { timeout: 10000 });
    await waitFor(() => sent >= atKill + 30, 'publishes after the restart');
    publishing = false;
    await publisher;
    await p.waitForFunction((n) => window.t.messages.length && window.t.messages[window.t.messages.length - 1].data >= n, sent, { timeout: STEP_MS });
    const t = await p.evaluate(() => ({ messages: window.t.messages, subscribed: window.t.subscribed, unhandled: window.unhandled }));
    assert.deepEqual(t.messages.map((m) => m.data), Array.from({ length: sent }, (_, i) => i + 1));
    t.messages.forEach((m, i) => assert.equal(m.offset, t.messages[0].offset + i));
    assert.equal(t.subscribed[1].recovered, true);
    assert.deepEqual(t.unhandled, []);
  } finally {
    publishing = false;
    await publisher.catch(() => {});
    if (p) await p.close();
    await a.stop();
    await b.stop();
    await redis.stop();
    dir.remove();
  }
});

test('a token that expires in 3 s is renewed without a reconnect (Chromium)', async () => {
  const dir = tempDir();
  const node = await startHeraldd(dir.dir, { name: 'jwt', conf: '[auth]\nleeway=0\n', env: { HERALD_JWT_SECRET: JWT_SECRET } });
  let p;
  try {
    const ctx = await browser.newContext();
    await ctx.exposeFunction('nextToken', () => {
      const now = Math.floor(Date.now() / 1000);
      return jwt({ sub: 'carol', iat: now, exp: now + 3 });
    });
    p = await clientPage(node, { context: ctx, withToken: true });
    await p.waitForFunction(() => window.t.h.state === 'connected', null, { timeout: STEP_MS });
    const id = await p.evaluate(() => window.t.h.connectionId);
    await sleep(4500);
    const t = await p.evaluate(() => ({ id: window.t.h.connectionId, user: window.t.h.userId, states: window.t.states, closes: window.t.closes, refreshed: window.t.refreshed, unhandled: window.unhandled }));
    assert.equal(t.id, id);
    assert.equal(t.user, 'carol');
    assert.ok(t.refreshed >= 2, 'refreshed ' + t.refreshed + ' times');
    assert.deepEqual(t.closes, []);
    assert.deepEqual(t.unhandled, []);
    await ctx.close();
  } finally {
    await node.stop();
    dir.remove();
  }
});
