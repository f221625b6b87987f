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
const off = h.on('state', (s: HeraldState) => { void s; });
off();
h.on('error', (e) => { const c: string = e.code; void c; });
h.on('close', (c) => { const d: number | null = c.reconnectIn; void d; });
async function main(): Promise<void> {
  const p = await h.publish('news', { hi: 1 });
  const offset: number | null = p.offset;
  const pr = await h.presence('news', { limit: 10 });
  const users: string[] = pr.users;
  const result: Json = await h.rpc('method', [1, 2]);
  const ms: number = await h.ping();
  void offset; void users; void result; void ms;
  await sub.unsubscribe();
  h.close();
}
void main;
// @ts-expect-error: a channel is a string
h.subscribe(42);
