// herald-client against a real heraldd for the application features:
// subscriptions the server decides (the token's `subs`, the server API),
// subscription tokens (renewed before they end; subscribed again after
// "expired"), paged presence and presence_stats, join/leave events, the
// publish key and conflation.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { Herald } from '../herald.js';
import { JWT_SECRET, api, jwt, sleep, startHeraldd, tempDir, unhandled, waitFor } from './helpers.mjs';

// Without permessage-deflate, so that the slow reader's bytes are the frames'.
class PlainWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { perMessageDeflate: false });
  }
}

const FAST = { WebSocket: PlainWebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, timeout: 3000 };
const now = () => Math.floor(Date.now() / 1000);
const CONF = [
  '[auth]', 'leeway=0',
  '[limits]', 'send-queue-max-bytes=16384',
  '[namespace.paid]', 'subscribe=token',
  '[namespace.chat]', 'join-leave=true',
  '[namespace.ticker]', 'conflate=true',
  '',
].join('\n');

// Everything a client emits, for the assertions.
function track(h) {
  const t = { errors: [], closes: [], subscribed: [], unsubscribed: [], messages: [] };
  h.on('error', (e) => t.errors.push(e));
  h.on('close', (c) => t.closes.push(c));
  h.on('subscribed', (i) => t.subscribed.push(i));
  h.on('unsubscribed', (i) => t.unsubscribed.push(i));
  h.on('message', (data, ctx) => t.messages.push({ data, ...ctx }));
  return t;
}

function collect(h, channel, extra = {}) {
  const got = { messages: [], subscribed: [], unsubscribed: [], errors: [], joins: [], leaves: [] };
  const sub = h.subscribe(channel, {
    onMessage: (data, ctx) => got.messages.push({ data, ...ctx }),
    onSubscribed: (info) => got.subscribed.push(info),
    onUnsubscribed: (info) => got.unsubscribed.push(info),
    onError: (e) => got.errors.push(e),
    onJoin: (e) => got.joins.push(e),
    onLeave: (e) => got.leaves.push(e),
    ...extra,
  });
  return { sub, got };
}

describe('heraldd: server subscriptions, subscription tokens, presence, join/leave, keys', () => {
  let tmp, server;
  const clients = [];
  // A client of @user whose connection token has @claims besides the usual ones.
  const client = (user, claims = {}, opts = {}) => {
    const token = () => jwt({ sub: user, exp: now() + 600, channels: ['*'], publish: ['*'], ...claims });
    const h = new Herald(server.ws, { ...FAST, token, ...opts });
    clients.push(h);
    return h;
  };

  before(async () => {
    tmp = tempDir();
    server = await startHeraldd(tmp.dir, { conf: CONF, env: { HERALD_JWT_SECRET: JWT_SECRET } });
  });
  after(async () => {
    for (const h of clients) h.close();
    if (server) await server.stop();
    tmp.remove();
    assert.deepEqual(unhandled, []);
  });

  test('server subscriptions: the subs claim and the server API reach the subscribed, message and unsubscribed events', async () => {
    await api(server.base, 'POST', '/api/publish', { channel: 'news', data: 'before' });
    const h = client('sam', { channels: [], subs: ['news'] });
    const t = track(h);
    // The subs claim: subscribed as the connection opens, at the channel's latest offset.
    await waitFor(() => t.subscribed.length === 1, 'subscribed (subs claim)');
    const news = t.subscribed[0];
    assert.equal(news.channel, 'news');
    assert.equal(news.server, true);
    assert.equal(news.resumed, false);
    assert.equal(typeof news.epoch, 'string');
    assert.equal(typeof news.offset, 'number');
    const p1 = await api(server.base, 'POST', '/api/publish', { channel: 'news', data: { n: 1 }, key: 'k' });
    await waitFor(() => t.messages.length === 1, 'a message of the subs channel');
    assert.deepEqual(t.messages[0], { data: { n: 1 }, channel: 'news', offset: p1.offset, epoch: news.epoch, key: 'k' });
    assert.equal(p1.offset, news.offset + 1);
    // Presence is allowed on a channel the server subscribed it to, whatever its claims.
    assert.deepEqual(await h.presenceStats('news'), { channel: 'news', users: 1, connections: 1 });
    assert.deepEqual((await h.presence('news')).users, ['sam']);
    await assert.rejects(h.presence('elsewhere'), (e) => e.code === 'forbidden');

    // The server API: subscribed on the open connection, then unsubscribed.
    assert.deepEqual(await api(server.base, 'POST', '/api/users/sam/subscribe', { channel: 'feed' }), { connections: 1 });
    await waitFor(() => t.subscribed.length === 2, 'subscribed (server API)');
    assert.equal(t.subscribed[1].channel, 'feed');
    assert.equal(t.subscribed[1].server, true);
    const f1 = await api(server.base, 'POST', '/api/publish', { channel: 'feed', data: 'f1' });
    await waitFor(() => t.messages.length === 2, 'a message of the API channel');
    assert.deepEqual(t.messages[1], { data: 'f1', channel: 'feed', offset: f1.offset, epoch: t.subscribed[1].epoch });
    await api(server.base, 'POST', '/api/users/sam/unsubscribe', { channel: 'feed' });
    await waitFor(() => t.unsubscribed.length === 1, 'unsubscribed (server API)');
    assert.deepEqual(t.unsubscribed[0], { channel: 'feed', reason: null, server: true });
    await api(server.base, 'POST', '/api/publish', { channel: 'feed', data: 'f2' });
    await api(server.base, 'POST', '/api/publish', { channel: 'news', data: { n: 2 } });
    await waitFor(() => t.messages.length === 3, 'the next news message');
    assert.deepEqual(t.messages.map((m) => m.data), [{ n: 1 }, 'f1', { n: 2 }]); // no f2

    // A reconnect: the subs claim subscribes again (nothing was missed: recovered);
    // the server API's subscription is gone (Herald subscribes only the connections
    // a user has at the time): unsubscribed with reason "reconnected".
    await api(server.base, 'POST', '/api/users/sam/subscribe', { channel: 'feed2' });
    await waitFor(() => t.subscribed.length === 3, 'subscribed to feed2');
    const first = h.connectionId;
    await api(server.base, 'DELETE', '/api/connections/' + first);
    await waitFor(() => t.subscribed.length === 4, 'subscribed again after the reconnect');
    assert.notEqual(h.connectionId, first);
    assert.equal(t.subscribed[3].channel, 'news');
    assert.equal(t.subscribed[3].resumed, true);
    assert.equal(t.subscribed[3].recovered, true);
    assert.deepEqual(t.unsubscribed[1], { channel: 'feed2', reason: 'reconnected', server: true });
    // Published while away: the subs claim starts at the latest offset, so recovered:false.
    await api(server.base, 'DELETE', '/api/connections/' + h.connectionId);
    await api(server.base, 'POST', '/api/publish', { channel: 'news', data: 'missed' });
    await waitFor(() => t.subscribed.length === 5, 'subscribed after the second reconnect');
    assert.equal(t.subscribed[4].recovered, false);
    assert.deepEqual(t.errors, []);
  });

  test('a channel the client subscribed to itself: the server API unsubscribes it through onUnsubscribed', async () => {
    const h = client('sue');
    const { got } = collect(h, 'own');
    await waitFor(() => got.subscribed.length === 1, 'subscribed');
    await api(server.base, 'POST', '/api/users/sue/subscribe', { channel: 'own' });
    const r = await h.publish('own', 1);
    await waitFor(() => got.messages.length === 1, 'a message');
    assert.equal(got.messages[0].offset, r.offset); // the server's subscribe moved nothing
    assert.equal(got.subscribed.length, 1);
    await api(server.base, 'POST', '/api/users/sue/unsubscribe', { channel: 'own' });
    await waitFor(() => got.unsubscribed.length === 1, 'onUnsubscribed');
    assert.deepEqual(got.unsubscribed[0], { channel: 'own', reason: null, server: true });
    assert.equal(h.getSubscription('own'), null);
  });

  test('a subs channel the client also subscribe()s: resumed exactly once, in order, when live messages come before the replay', async () => {
    const h = client('sid', { subs: ['both'] });
    let calls = 0;
    // A token is ignored outside subscribe=token namespaces; here it only holds
    // the resubscribe back while a message goes live on the server's subscription.
    const { got } = collect(h, 'both', {
      token: async () => {
        if (++calls === 2) {
          await api(server.base, 'POST', '/api/publish', { channel: 'both', data: 'live first' });
          await sleep(100); // reaches the client before its subscribe leaves
        }
        return 'ignored';
      },
    });
    await waitFor(() => got.subscribed.length === 1, 'subscribed');
    await h.publish('both', 1);
    await waitFor(() => got.messages.length === 1, 'a message');
    await api(server.base, 'DELETE', '/api/connections/' + h.connectionId);
    await api(server.base, 'POST', '/api/publish', { channel: 'both', data: 'missed 1' });
    await api(server.base, 'POST', '/api/publish', { channel: 'both', data: 'missed 2' });
    await waitFor(() => got.subscribed.length === 2, 'resubscribed');
    await h.publish('both', 'after');
    await waitFor(() => got.messages.length >= 5, 'five messages');
    await sleep(50);
    assert.deepEqual(got.messages.map((m) => m.data), [1, 'missed 1', 'missed 2', 'live first', 'after']);
    const offsets = got.messages.map((m) => m.offset);
    offsets.forEach((o, i) => assert.equal(o, offsets[0] + i));
    assert.equal(got.subscribed[1].recovered, true);
  });

  test('subscription tokens: renewed before they end, subscribed again after "expired", a string token ends', async () => {
    const h = client('tom');
    const t = track(h);
    const subToken = (channel, ttl) => jwt({ sub: 'tom', channel, exp: now() + ttl });
    // Renewed before exp (a 2–3 s token: at half its lifetime, 1 s or more
    // before its end) on the live subscription.
    let renewCalls = 0;
    const firstExp = now() + 3;
    const renewed = collect(h, 'paid:live', { token: async (ch) => { renewCalls++; return subToken(ch, 3); } });
    // The renewal fails: the server ends it ("expired"), the client subscribes
    // again; its token function failing once more then is tried again.
    let againCalls = 0;
    const again = collect(h, 'paid:again', {
      token: async (ch) => {
        againCalls++;
        if (againCalls === 2 || againCalls === 3) throw new Error('backend hiccup ' + againCalls);
        return subToken(ch, againCalls === 1 ? 3 : 600);
      },
    });
    // The server refuses the renewal (a token for another channel): onError, then
    // the subscription lives until the first token's end and is subscribed again.
    let refusedCalls = 0;
    const refused = collect(h, 'paid:refused', {
      token: async (ch) => (++refusedCalls === 2 ? subToken('paid:elsewhere', 600) : subToken(ch, refusedCalls === 1 ? 3 : 600)),
    });
    // A plain string cannot be renewed: it ends.
    const plain = collect(h, 'paid:plain', { token: subToken('paid:plain', 3) });
    // A token for another channel is refused.
    const wrong = collect(h, 'paid:wrong', { token: subToken('paid:other', 60) });
    await waitFor(() => [renewed, again, refused, plain].every((x) => x.got.subscribed.length === 1), 'subscribed');
    await waitFor(() => wrong.got.errors.length === 1, 'the wrong token refused');
    assert.equal(wrong.got.errors[0].code, 'forbidden');

    await waitFor(() => again.got.errors.length === 1, 'the failed renewal reported');
    assert.equal(again.got.errors[0].code, 'token_failed');
    const during = await h.publish('paid:again', 'before the end');
    await waitFor(() => plain.got.unsubscribed.length === 1, 'the string token ended', 6000);
    assert.deepEqual(plain.got.unsubscribed[0], { channel: 'paid:plain', reason: 'expired', server: true });
    assert.equal(h.getSubscription('paid:plain'), null);
    await waitFor(() => again.got.subscribed.length === 2, 'subscribed again after expired', 6000);
    assert.equal(again.got.subscribed[1].resumed, true);
    assert.equal(again.got.subscribed[1].recovered, true);
    assert.deepEqual(again.got.unsubscribed, []);
    assert.equal(againCalls, 4);
    assert.deepEqual(again.got.errors.map((e) => e.code + ' ' + e.message.replace(/.*: /, '')), ['token_failed backend hiccup 2', 'token_failed backend hiccup 3']);
    await waitFor(() => refused.got.subscribed.length === 2, 'subscribed again after a refused renewal', 6000);
    assert.deepEqual(refused.got.errors.map((e) => e.code), ['forbidden']);
    assert.equal(refused.got.subscribed[1].recovered, true);
    assert.equal(refusedCalls, 3);
    const later = await h.publish('paid:again', 'after');
    await waitFor(() => again.got.messages.length === 2, 'both messages');
    assert.deepEqual(again.got.messages.map((m) => m.offset), [during.offset, later.offset]);

    // Well past the first token's end (the server checks once a second).
    await waitFor(() => Date.now() / 1000 > firstExp + 1.2, 'the first token\'s end', 5000);
    const live = await h.publish('paid:live', 'still here');
    await waitFor(() => renewed.got.messages.length === 1, 'a message on the renewed subscription');
    assert.equal(renewed.got.messages[0].offset, live.offset);
    assert.ok(renewCalls >= 2, 'token function called ' + renewCalls + ' times');
    assert.equal(renewed.got.subscribed.length, 1); // renewals are not resubscriptions
    assert.deepEqual(renewed.got.unsubscribed, []);
    assert.deepEqual(renewed.got.errors, []);
    assert.equal(h.getSubscription('paid:live').state, 'subscribed');
    assert.deepEqual(t.closes, []);
  });

  test('presenceStats counts, presence pages with limit and cursor', async () => {
    const hs = [client('carol'), client('alice'), client('bob'), client('alice')];
    const subs = hs.map((h) => collect(h, 'room'));
    await waitFor(() => subs.every((s) => s.got.subscribed.length === 1), 'four subscribed');
    const h = hs[0];
    assert.deepEqual(await h.presenceStats('room'), { channel: 'room', users: 3, connections: 4 });
    const all = await h.presence('room');
    assert.deepEqual(all, { channel: 'room', users: ['alice', 'bob', 'carol'], connections: 4, next: null });
    const pages = [];
    let cursor = null;
    do {
      const page = await h.presence('room', { limit: 1, cursor });
      assert.equal(page.users.length, 1);
      pages.push(...page.users);
      cursor = page.next;
    } while (cursor !== null && pages.length < 10);
    assert.deepEqual(pages, ['alice', 'bob', 'carol']);
    await assert.rejects(h.presence('room', { limit: 1, cursor: 'not-a-cursor' }), (e) => e.code === 'bad_request' && e.server === true);
  });

  test('join and leave reach onJoin/onLeave and the client events', async () => {
    const a = client('ann');
    const b = client('ben');
    const events = [];
    a.on('join', (e) => events.push(['join', e]));
    a.on('leave', (e) => events.push(['leave', e]));
    const { got } = collect(a, 'chat:lobby');
    await waitFor(() => got.subscribed.length === 1, 'ann subscribed');
    const mine = collect(b, 'chat:lobby');
    await waitFor(() => got.joins.length === 1, 'onJoin');
    const ben = { channel: 'chat:lobby', userId: 'ben', connectionId: b.connectionId };
    assert.deepEqual(got.joins[0], ben);
    await mine.sub.unsubscribe();
    await waitFor(() => got.leaves.length === 1, 'onLeave');
    assert.deepEqual(got.leaves[0], ben);
    assert.deepEqual(events, [['join', ben], ['leave', ben]]);
    assert.deepEqual(mine.got.joins, []); // nobody joined after ben

    // presence:true (any namespace): per-user events, without a connection id.
    const watched = collect(a, 'lobby', { presence: true });
    await waitFor(() => watched.got.subscribed.length === 1, 'ann subscribed with presence');
    const other = collect(b, 'lobby');
    const benIn = { channel: 'lobby', userId: 'ben', connectionId: null };
    await waitFor(() => watched.got.joins.some((e) => e.userId === 'ben'), 'onJoin (presence:true)');
    assert.deepEqual(watched.got.joins.find((e) => e.userId === 'ben'), benIn);
    await other.sub.unsubscribe();
    await waitFor(() => watched.got.leaves.length === 1, 'onLeave (presence:true)');
    assert.deepEqual(watched.got.leaves[0], benIn);
  });

  test('the publish key reaches ctx.key; a key that is not a string is refused', async () => {
    const h = client('kim');
    const { got } = collect(h, 'ticker:keys');
    await waitFor(() => got.subscribed.length === 1, 'subscribed');
    await h.publish('ticker:keys', 1.0842, { key: 'EURUSD' });
    await h.publish('ticker:keys', 'no key');
    await waitFor(() => got.messages.length === 2, 'two messages');
    assert.equal(got.messages[0].key, 'EURUSD');
    assert.equal('key' in got.messages[1], false);
    assert.equal('conflated' in got.messages[0], false);
    await assert.rejects(h.publish('ticker:keys', 1, { key: 5 }), (e) => e.code === 'bad_request');
  });

  test('conflation: a slow reader gets ctx.conflated, the latest value of each key, offsets increasing, no 4001', async () => {
    const slow = client('slow');
    const t = track(slow);
    const { got } = collect(slow, 'ticker:fx');
    await waitFor(() => got.subscribed.length === 1, 'subscribed');
    slow._ws.pause(); // stop reading: the server's queue for it grows
    const pub = client('pub');
    const conflatedSoFar = async () => {
      const text = await (await fetch(server.base + '/metrics', { signal: AbortSignal.timeout(5000) })).text();
      return Number((/^herald_conflated_total (\d+)/m.exec(text) || [0, 0])[1]);
    };
    const base = await conflatedSoFar();
    let seq = 0;
    for (let batch = 0; batch < 500; batch++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) =>
        pub.publish('ticker:fx', { v: ++seq, pad: randomBytes(2000).toString('base64') }, { key: 'k' + (i % 2) })));
      if (batch % 5 === 4 && (await conflatedSoFar()) > base) break;
    }
    assert.ok((await conflatedSoFar()) > base, 'the server conflated');
    slow._ws.resume();
    await waitFor(() => got.messages.some((m) => m.data.v === seq) && got.messages.some((m) => m.data.v === seq - 1), 'the last value of each key');
    assert.ok(got.messages.length < seq, got.messages.length + ' of ' + seq);
    assert.ok(got.messages.some((m) => m.conflated === true), 'a message marked conflated');
    const last = {};
    let offset = 0;
    for (const m of got.messages) {
      assert.ok(m.offset > offset, 'offsets increase');
      offset = m.offset;
      assert.ok(m.key === 'k0' || m.key === 'k1');
      assert.ok(!(m.data.v <= (last[m.key] || 0)), 'values of a key increase');
      last[m.key] = m.data.v;
    }
    assert.deepEqual(t.closes, []);
  });
});
