// Runs herald-client's tests with `node --test` (what meson and `npm test` call).
//
//   HERALDD=build/src/heraldd node clients/js/test/run.mjs [FILE.test.mjs ...]
//
// Exit status: 0 pass, 1 fail, 77 skip (the npm devDependencies are not
// installed: `npm ci` in clients/js; under CI=true that is a failure).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CI = ['true', '1', 'yes'].includes(String(process.env.CI || '').toLowerCase());

function skipOrFail(why) {
  if (CI) {
    console.error('FAIL: ' + why + ' (CI=true: a skipped test is a failure)');
    process.exit(1);
  }
  console.log('SKIP: ' + why);
  process.exit(77);
}

if (!existsSync(join(here, '../node_modules/ws/package.json')))
  skipOrFail('the ws package is missing: run `npm ci` in clients/js (scripts/test.sh does)');
if (process.argv.includes('browser.test.mjs')) {
  if (!existsSync(join(here, '../node_modules/playwright-core/package.json')))
    skipOrFail('playwright-core is missing: run `npm ci` in clients/js (scripts/test.sh does)');
  if (!existsSync(process.env.CHROMIUM || '/usr/bin/chromium'))
    skipOrFail((process.env.CHROMIUM || '/usr/bin/chromium') + ' not found: apt-get install chromium');
}

const files = process.argv.length > 2
  ? process.argv.slice(2).map((f) => join(here, f))
  : readdirSync(here).filter((f) => f.endsWith('.test.mjs') && f !== 'browser.test.mjs').sort().map((f) => join(here, f));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=60000', ...files], { stdio: 'inherit', cwd: join(here, '..') });
process.exit(r.status === null ? 1 : r.status);
