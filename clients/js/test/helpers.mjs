// Shared by the herald-client tests: real heraldd and redis-server processes
// on free loopback ports, JWTs, bounded waits.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const HERALDD = resolve(process.env.HERALDD || join(here, '../../../build/src/heraldd'));
export const API_KEY = 'js-client-test-key';
export const JWT_SECRET = 'js-client-test-secret-0123456789abcdef';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls @predicate every 10 ms for at most @ms; throws naming @what.
export async function waitFor(predicate, what, ms = 8000) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > until) throw new Error('timed out after ' + ms + ' ms waiting for ' + what);
    await sleep(10);
  }
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'herald-js-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// Waits for @re on @child's stderr (bounded); resolves with the match.
function waitLine(child, re, what, ms = 10000) {
  return new Promise((res, rej) => {
    let log = '';
    const t = setTimeout(() => rej(new Error('no ' + what + ' in ' + ms + ' ms; stderr: ' + log)), ms);
    const onData = (chunk) => {
      log += chunk;
      child.log = (child.log || '') + chunk;
      const m = re.exec(log);
      if (m) {
        clearTimeout(t);
        child.stderr.off('data', onData);
        child.stderr.on('data', (c) => { child.log += c; });
        res(m);
      }
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', onData);
    child.once('exit', (code) => { clearTimeout(t); rej(new Error(what + ': exited with ' + code + '; stderr: ' + log)); });
  });
}

// Starts heraldd with @conf (the text of a config file) on 127.0.0.1:@port
// (0: a free one). Resolves with { base, ws, port, child, stop, kill }.
export async function startHeraldd(dir, { conf = '', port = 0, env = {}, name = 'herald' } = {}) {
  const config = join(dir, name + '.conf');
  writeFileSync(config, conf);
  const environment = { ...process.env };
  delete environment.REDIS_URL;
  delete environment.HERALD_JWT_SECRET;
  Object.assign(environment, { HERALD_API_KEY: API_KEY }, env);
  const child = spawn(HERALDD, ['--config', config, '--listen', '127.0.0.1:' + port, '--bus', 'none', '--workers', '1'], {
    env: environment,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const m = await waitLine(child, /listening on http:\/\/127\.0\.0\.1:(\d+)/, '"listening on" from heraldd');
  const p = Number(m[1]);
  const exited = new Promise((r) => child.once('exit', r));
  const stopWith = async (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return {
    port: p,
    base: 'http://127.0.0.1:' + p,
    ws: 'ws://127.0.0.1:' + p + '/ws',
    child,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
  };
}

// redis-server on 127.0.0.1:@port (0: a free one), without persistence.
export async function startRedis(dir, port = 0) {
  if (!port) port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr = child.stdout; // redis logs to stdout
  await waitLine(child, /Ready to accept connections/, 'redis-server ready');
  return {
    port,
    url: 'redis://127.0.0.1:' + port,
    stop: async () => {
      child.kill('SIGKILL');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(3000)]);
    },
  };
}

export async function api(base, method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: 'Bearer ' + API_KEY, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(method + ' ' + path + ' → ' + r.status + ' ' + text);
  return text ? JSON.parse(text) : null;
}

const b64url = (s) => Buffer.from(s).toString('base64url');

// An HS256 JWT signed with JWT_SECRET.
export function jwt(claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', JWT_SECRET).update(head + '.' + body).digest('base64url');
  return head + '.' + body + '.' + sig;
}

// Fails the test run on any unhandled promise rejection (the SDK must have none).
export const unhandled = [];
process.on('unhandledRejection', (reason) => { unhandled.push(reason); });
