// Compiled (never run) by test/package.test.mjs with tsc --strict against the
// installed package: herald.d.ts must describe the README's API.
import { Herald, HeraldError, type HeraldState, type Json, type Subscription } from 'herald-client';
import WebSocket from 'ws';

const h = new Herald('wss://example.org/ws', {
  token: async () => 'jwt',
  WebSocket,
  minReconnectDelay: 250,
  maxReconnectDelay: 20000,
});
const sub: Subscription = h.subscribe('news', {
  onMessage: (data: Json, ctx) => { const o: number | null = ctx.offset; const c: string | null = ctx.channel; void o; void c; void data; },
  onSubscribed: (info) => { const r: boolean = info.recovered; const e: string | null = info.epoch; void r; void e; },
  onError: (e: HeraldError) => { const code: string = e.code; void code; },
});
const paid = h.subscribe('paid:match', {
  token: async (channel: string) => channel,
  presence: true,
  onMessage: (_data, ctx) => { const k: string | undefined = ctx.key; const c: boolean | undefined = ctx.conflated; void k; void c; },
  onJoin: (e) => { const u: string | null = e.userId; const id: string | null = e.connectionId; void u; void id; },
  onLeave: (e) => { void e.channel; },
  onUnsubscribed: (info) => { const r: string | null = info.reason; void r; },
});
void paid;
h.on('subscribed', (info) => { const s: true = info.server; const r: boolean = info.recovered; const o: number | null = info.offset; void s; void r; void o; });
h.on('unsubscribed', (info) => { const c: string = info.channel; const r: string | null = info.reason; void c; void r; });
h.on('message', (_data, ctx) => { const c: string | null = ctx.channel; const e: string | null = ctx.epoch; void c; void e; });
h.on('join', (e) => { void e.userId; });
const off = h.on('state', (s: HeraldState) => { void s; });
off();
h.on('error', (e) => { const c: string = e.code; void c; });
h.on('close', (c) => { const d: number | null = c.reconnectIn; void d; });
async function main(): Promise<void> {
  const p = await h.publish('news', { hi: 1 });
  const offset: number | null = p.offset;
  const pr = await h.presence('news', { limit: 10 });
  const users: string[] = pr.users;
  const page = await h.presence('news', { limit: 1, cursor: pr.next });
  const next: string | null = page.next;
  const stats = await h.presenceStats('news');
  const counts: number = stats.users + stats.connections;
  await h.publish('ticker:fx', 1.08, { key: 'EURUSD' });
  void next; void counts;
  const result: Json = await h.rpc('method', [1, 2]);
  const ms: number = await h.ping();
  void offset; void users; void result; void ms;
  await sub.unsubscribe();
  h.close();
}
void main;
// @ts-expect-error: a channel is a string
h.subscribe(42);
// @ts-expect-error: a key is a string
void h.publish('ticker:fx', 1, { key: 5 });
