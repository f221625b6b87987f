// Drives the demo and admin pages of a real heraldd in headless Chromium,
// and the minimal client in examples/browser.
//
//   HERALDD=build/src/heraldd node tests/browser/demo.test.mjs
//
// Exit status: 0 pass, 1 fail, 77 skip (Chromium or playwright-core missing;
// under CI=true that is a failure instead). Every wait is bounded.
// UPDATE_SCREENSHOT=1 writes docs/admin.png; otherwise the screenshot goes to
// SCREENSHOT_DIR (meson sets the build dir) or the system temp dir.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CI = ['true', '1', 'yes'].includes(String(process.env.CI || '').toLowerCase());
const HERALDD = resolve(process.env.HERALDD || join(here, '../../build/src/heraldd'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const API_KEY = 'browser-test-key';
const STEP_MS = 15000;

function skipOrFail(reason) {
  if (CI) {
    console.error('FAIL: ' + reason + ' (CI=true: a skipped browser test is a failure)');
    process.exit(1);
  }
  console.log('SKIP: ' + reason);
  process.exit(77);
}

if (!existsSync(HERALDD)) skipOrFail('heraldd not found at ' + HERALDD + ' (set HERALDD)');
if (!existsSync(CHROMIUM)) skipOrFail(CHROMIUM + ' not found: apt-get install chromium');
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  skipOrFail('playwright-core missing: run `npm ci` in tests/browser');
}

const tmp = mkdtempSync(join(tmpdir(), 'herald-browser-'));
const daemons = [];
let daemonLog = '';
let context = null;

// The whole run is bounded too, whatever hangs.
const watchdog = setTimeout(() => fail(new Error('test took longer than 100 s')), 100000);

async function cleanup() {
  clearTimeout(watchdog);
  if (context) await Promise.race([context.close().catch(() => {}), sleep(5000)]);
  for (const daemon of daemons) {
    if (daemon.exitCode !== null) continue;
    daemon.kill('SIGTERM');
    await Promise.race([new Promise((r) => daemon.once('exit', r)), sleep(5000)]);
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
  }
  rmSync(tmp, { recursive: true, force: true });
}

async function fail(err) {
  console.error('FAIL: ' + (err && err.stack || err));
  if (daemonLog) console.error('--- heraldd stderr ---\n' + daemonLog);
  await cleanup();
  process.exit(1);
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function step(name) { console.log('# ' + name); }

// heraldd on a free loopback port with @configText as its whole config.
function startDaemon(configText, env, name) {
  // Our own config keeps a system /etc/herald/herald.conf out of the test.
  const config = join(tmp, name + '.conf');
  writeFileSync(config, configText);
  const proc = spawn(HERALDD, ['--config', config, '--listen', '127.0.0.1:0', '--bus', 'none'], {
    env, stdio: ['ignore', 'ignore', 'pipe'],
  });
  daemons.push(proc);
  let log = '';
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('no "listening on" line from heraldd in 10 s')), 10000);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      daemonLog += '[' + name + '] ' + chunk;
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) { clearTimeout(t); res(m[1]); }
    });
    proc.once('exit', (code) => { clearTimeout(t); rej(new Error('heraldd exited with ' + code)); });
    proc.once('error', (e) => { clearTimeout(t); rej(e); });
  });
}

async function api(base, method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { 'Authorization': 'Bearer ' + API_KEY, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(method + ' ' + path + ' → ' + r.status + ' ' + text);
  return text ? JSON.parse(text) : null;
}

const text = (page, sel) => page.locator(sel).textContent({ timeout: STEP_MS });

async function waitText(page, sel, predicate, what) {
  await page.waitForFunction(
    ([s, src]) => { const el = document.querySelector(s); return el && new Function('t', 'return ' + src)(el.textContent); },
    [sel, predicate], { timeout: STEP_MS }).catch(async () => {
    throw new Error('timed out waiting for ' + what + '; ' + sel + ' = ' + JSON.stringify(await text(page, sel).catch(() => null)));
  });
}

async function main() {
  const base = await startDaemon('[auth]\nanonymous-publish=chat.*\n'
    + '[namespace.room]\njoin-leave=true\nconflate=true\n',
    { ...process.env, HERALD_API_KEY: API_KEY }, 'main');
  step('heraldd at ' + base);

  context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    timeout: 30000,
  });
  context.setDefaultTimeout(STEP_MS);
  const page = context.pages()[0] || await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));

  step('demo page loads');
  await page.goto(base + '/', { timeout: STEP_MS });
  if ((await page.title()) !== 'Herald — demo') throw new Error('unexpected title ' + await page.title());

  step('WebSocket: connect and subscribe through the UI');
  await page.click('#connect');
  await waitText(page, '#conn-transport', "t === 'websocket'", 'a WebSocket connection');
  const wsId = await text(page, '#conn-id');
  await page.fill('#channel-input', 'news');
  await page.click('#subscribe');
  await page.waitForSelector('#channels .chip[data-channel="news"][data-subscribed="true"]');

  step('WebSocket: a message published over the HTTP API appears');
  const p1 = await api(base, 'POST', '/api/publish', { channel: 'news', data: { hello: 'websocket' } });
  const li1 = await page.waitForSelector(`#messages li[data-channel="news"][data-offset="${p1.offset}"]`);
  if (!(await li1.textContent()).includes('"hello": "websocket"')) throw new Error('message body not shown');

  step('WebSocket: client publish is refused for an anonymous token (forbidden shown)');
  await page.fill('#pub-channel', 'news');
  await page.fill('#pub-data', '{"from": "page"}');
  await page.click('#publish');
  await waitText(page, '#pub-result', "t.startsWith('Forbidden')", 'the forbidden error');

  step('WebSocket: client publish allowed by [auth] anonymous-publish');
  await page.fill('#channel-input', 'chat.room');
  await page.click('#subscribe');
  await page.waitForSelector('#channels .chip[data-channel="chat.room"][data-subscribed="true"]');
  await page.fill('#pub-channel', 'chat.room');
  await page.fill('#pub-data', '{"from": "page"}');
  await page.click('#publish');
  await waitText(page, '#pub-result', "t.startsWith('Published to chat.room at offset 1')", 'the published reply');
  await page.waitForSelector('#messages li[data-channel="chat.room"][data-offset="1"]');
  await page.click('#channels .chip[data-channel="chat.room"] button');
  await page.waitForSelector('#channels .chip[data-channel="chat.room"]', { state: 'detached' });

  step('WebSocket: closed by the server, reconnects and resubscribes with since (recovered:true)');
  await api(base, 'DELETE', '/api/connections/' + encodeURIComponent(wsId));
  const p2 = await api(base, 'POST', '/api/publish', { channel: 'news', data: { hello: 'missed?' } });
  await page.waitForSelector(`#messages li[data-channel="news"][data-offset="${p2.offset}"]`);
  await page.waitForSelector('#messages li[data-kind="info"]:has-text("\\"recovered\\": true")');
  await waitText(page, '#conn-id', `t !== '—' && t !== ${JSON.stringify(wsId)}`, 'a new connection id');
  const dup = await page.locator(`#messages li[data-offset="${p2.offset}"]`).count();
  if (dup !== 1) throw new Error('message ' + p2.offset + ' shown ' + dup + ' times');

  await page.screenshot({ path: join(process.env.SCREENSHOT_DIR || tmpdir(), 'herald-demo.png'), timeout: STEP_MS });

  step('SSE: switch transport, a published message appears');
  await page.click('#transport-sse + span');
  await waitText(page, '#conn-transport', "t === 'sse'", 'an SSE connection');
  const sseId = await text(page, '#conn-id');
  const p3 = await api(base, 'POST', '/api/publish', { channel: 'news', data: { hello: 'sse' } });
  const li3 = await page.waitForSelector(`#messages li[data-channel="news"][data-offset="${p3.offset}"]`);
  if (!(await li3.textContent()).includes('"hello": "sse"')) throw new Error('SSE message body not shown');

  step('admin: the key is taken, the SSE connection and the channel are listed');
  const admin = await context.newPage();
  admin.on('pageerror', (e) => pageErrors.push('admin: ' + e));
  await admin.goto(base + '/admin.html', { timeout: STEP_MS });
  await admin.fill('#api-key', API_KEY);
  await admin.click('#save-key');
  const row = await admin.waitForSelector(`#conn-rows tr[data-id="${sseId}"]`);
  const rowText = await row.textContent();
  if (!rowText.includes('sse') || !rowText.includes('news')) throw new Error('connection row: ' + rowText);
  await admin.waitForSelector('#channel-rows tr[data-channel="news"]');

  step('admin: namespaces are listed; watching a join/leave channel shows connections come and go');
  await admin.waitForSelector('#ns-rows tr[data-namespace="room"] td[data-key="join_leave"]:text-is("yes")');
  await admin.waitForSelector('#ns-rows tr[data-namespace="room"] td[data-key="conflate"]:text-is("yes")');
  await admin.waitForSelector('#ns-rows tr[data-namespace="default"] td[data-key="join_leave"]:text-is("no")');
  await admin.fill('#watch-channel', 'room:lobby');
  await admin.click('#watch');
  await waitText(admin, '#watch-note', "t.startsWith('Watching room:lobby.')", 'the watch subscription');
  // Another connection (a plain WebSocket opened by the page) joins and leaves.
  const joinerId = await admin.evaluate((url) => new Promise((res, rej) => {
    const ws = new WebSocket(url);
    window.joiner = ws;
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type !== 'connected') return;
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'room:lobby' }));
      res(m.connection_id);
    };
    ws.onerror = () => rej(new Error('the joining WebSocket failed'));
  }), base.replace(/^http/, 'ws') + '/ws');
  await admin.waitForSelector(`#watch-log li[data-kind="join"]:has-text("${joinerId}")`, { timeout: STEP_MS });
  await admin.waitForSelector('#channel-rows tr[data-channel="room:lobby"] td:text-is("room")', { timeout: STEP_MS });
  // Presence stats, where the server has the endpoint: the watcher and the joiner.
  const stats = await fetch(base + '/api/channels/room%3Alobby/presence-stats',
    { headers: { 'Authorization': 'Bearer ' + API_KEY }, signal: AbortSignal.timeout(5000) });
  if (stats.ok)
    await admin.waitForSelector('#channel-rows tr[data-channel="room:lobby"] td[data-key="presence"][data-connections="2"]', { timeout: STEP_MS });
  else if (stats.status !== 404)
    throw new Error('presence-stats answered ' + stats.status);
  await admin.evaluate(() => window.joiner.close());
  await admin.waitForSelector(`#watch-log li[data-kind="leave"]:has-text("${joinerId}")`, { timeout: STEP_MS });

  step('admin: at 1280 px a row with long names keeps every column in view, Close included');
  // A stream with long channel names (no spaces to wrap at), opened by the admin page itself.
  const longName = 'news.' + 'a-rather-long-channel-name-'.repeat(3);
  await admin.evaluate((url) => { window.longStream = new EventSource(url); },
    base + '/events?channel=' + longName + '&channel=' + longName + '.2');
  const longRow = `#conn-rows tr:has(td:text-is("${longName}, ${longName}.2"))`;
  await admin.waitForSelector(longRow, { timeout: STEP_MS });
  const longId = await admin.getAttribute(longRow, 'data-id');
  const fit = await admin.evaluate((sel) => {
    const btn = document.querySelector(sel + ' button');
    const wrap = btn.closest('div');
    const b = btn.getBoundingClientRect();
    const w = wrap.getBoundingClientRect();
    return { hidden: wrap.scrollWidth - wrap.clientWidth, right: b.right, wrapRight: w.right,
             width: window.innerWidth };
  }, `#conn-rows tr[data-id="${longId}"]`);
  if (fit.hidden > 0 || fit.right > fit.wrapRight || fit.right > fit.width)
    throw new Error('admin: the Close column is clipped: ' + JSON.stringify(fit));
  await admin.click(longRow + ' button');
  await admin.waitForSelector(longRow, { state: 'detached' });
  await admin.evaluate(() => window.longStream.close());
  // Bursts of publishes for ~8 s so the chart has a curve.
  for (let i = 0; i < 16; i++) {
    const burst = [1, 3, 6, 4, 8, 2][i % 6];
    for (let j = 0; j < burst; j++)
      await api(base, 'POST', '/api/publish', { channel: 'news', data: { tick: i, j } });
    await sleep(500);
  }
  await waitText(admin, '#rates', "t.startsWith('deliveries')", 'a throughput sample');
  await sleep(2200);
  const shot = process.env.UPDATE_SCREENSHOT
    ? join(here, '../../docs/admin.png')
    : join(process.env.SCREENSHOT_DIR || tmpdir(), 'herald-admin.png');
  await admin.evaluate(() => window.scrollTo(0, 0));
  await admin.screenshot({ path: shot, fullPage: true, timeout: STEP_MS });
  step('screenshot: ' + shot);

  step('admin: Close ends the SSE stream (4004); EventSource resumes with Last-Event-ID');
  await admin.click(`#conn-rows tr[data-id="${sseId}"] button`);
  await admin.waitForSelector(`#conn-rows tr[data-id="${sseId}"]`, { state: 'detached' });
  const p4 = await api(base, 'POST', '/api/publish', { channel: 'news', data: { hello: 'after close' } });
  // The browser waits `retry:` (3 s) before it reconnects.
  await page.waitForSelector(`#messages li[data-channel="news"][data-offset="${p4.offset}"]`);
  await page.waitForSelector('#messages li[data-kind="info"]:has-text("resumed")');
  const resumed = await page.locator('#messages li[data-kind="info"]:has-text("resumed")').first().textContent();
  if (!resumed.includes('"recovered": true')) throw new Error('SSE resume: ' + resumed);
  if (await page.locator(`#messages li[data-offset="${p4.offset}"]`).count() !== 1)
    throw new Error('SSE resume duplicated message ' + p4.offset);

  step('examples/browser: receives, reconnects after a close and recovers with since');
  const example = await context.newPage();
  example.on('pageerror', (e) => pageErrors.push('example: ' + e));
  const exampleUrl = pathToFileURL(join(here, '../../examples/browser/index.html'));
  exampleUrl.search = '?server=' + base.replace(/^http/, 'ws') + '&channel=example';
  await example.goto(exampleUrl.href, { timeout: STEP_MS });
  await example.waitForSelector('#log div:has-text("subscribed to example at offset")');
  const exId = (await text(example, '#status')).replace('connected as ', '');
  const e1 = await api(base, 'POST', '/api/publish', { channel: 'example', data: { n: 1 } });
  await example.waitForSelector(`#log div:has-text("example #${e1.offset} {")`);
  await api(base, 'DELETE', '/api/connections/' + encodeURIComponent(exId));
  const e2 = await api(base, 'POST', '/api/publish', { channel: 'example', data: { n: 2 } });
  await example.waitForSelector('#log div:has-text("resubscribed to example, recovered: true")');
  await example.waitForSelector(`#log div:has-text("example #${e2.offset} {")`);
  if (await example.locator(`#log div:has-text("example #${e2.offset} {")`).count() !== 1)
    throw new Error('example duplicated message ' + e2.offset);

  await onDefaults(pageErrors);

  if (pageErrors.length) throw new Error('JavaScript errors: ' + pageErrors.join('; '));
  console.log('PASS');
}

// The quick start: heraldd on its defaults (no key, no API key, nothing in
// the config). The demo page's first Connect, Subscribe and Publish work as
// they come; SSE mode names the user and does not speak of the WebSocket.
async function onDefaults(pageErrors) {
  const env = { ...process.env };
  for (const k of ['HERALD_API_KEY', 'HERALD_JWT_SECRET', 'REDIS_URL']) delete env[k];
  const base = await startDaemon('', env, 'defaults');
  step('defaults: heraldd at ' + base + ', Connect, Subscribe and Publish as the page comes');
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push('defaults: ' + e));
  await page.goto(base + '/', { timeout: STEP_MS });
  await page.click('#connect');
  await waitText(page, '#conn-transport', "t === 'websocket'", 'a WebSocket connection');
  await waitText(page, '#user-id', "t === 'anonymous'", 'the anonymous user');
  await page.click('#subscribe');
  const channel = await page.inputValue('#pub-channel');
  await page.waitForSelector(`#channels .chip[data-channel="${channel}"][data-subscribed="true"]`);
  await page.click('#publish');
  await waitText(page, '#pub-result', `t.startsWith('Published to ${channel} at offset 1')`, 'the published reply');
  await page.waitForSelector(`#messages li[data-channel="${channel}"][data-offset="1"]`);

  step('defaults: SSE mode shows the user and no WebSocket wording');
  await page.click('#transport-sse + span');
  await waitText(page, '#conn-transport', "t === 'sse'", 'an SSE connection');
  await waitText(page, '#user-id', "t === 'anonymous'", 'the anonymous user over SSE');
  const hint = await text(page, '#pub-result');
  if (hint.includes('WebSocket')) throw new Error('SSE mode publish hint: ' + hint);
  await page.close();
}

try {
  await main();
} catch (e) {
  await fail(e);
}
await cleanup();
process.exit(0);
