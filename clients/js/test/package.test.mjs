// `npm pack` gives an installable package: it installs offline into a fresh
// project, imports as 'herald-client' in Node, and its TypeScript
// declarations type-check the README's usage (tsc --strict).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { tempDir } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('npm pack: installable, importable, typed', async () => {
  const tmp = tempDir();
  try {
    const out = execFileSync(npm, ['pack', '--json', '--pack-destination', tmp.dir], { cwd: root, encoding: 'utf8', timeout: 30000 });
    const [info] = JSON.parse(out);
    assert.deepEqual(info.files.map((f) => f.path).sort(), ['README.md', 'herald.d.ts', 'herald.js', 'package.json']);
    const app = join(tmp.dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(tmp.dir, info.filename)], { cwd: app, encoding: 'utf8', timeout: 60000 });
    writeFileSync(join(app, 'check.mjs'), "import { Herald, HeraldError } from 'herald-client';\n"
      + "import D from 'herald-client';\n"
      + "if (D !== Herald || typeof HeraldError !== 'function') process.exit(2);\n"
      + "try { new Herald('ws://127.0.0.1:1/ws', { WebSocket: undefined }); } catch (e) { if (!(e instanceof TypeError) || typeof WebSocket !== 'undefined') process.exit(3); }\n"
      + "console.log(Herald.VERSION);\n");
    const r = spawnSync(process.execPath, ['check.mjs'], { cwd: app, encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), JSON.parse(execFileSync(npm, ['pkg', 'get', 'version'], { cwd: root, encoding: 'utf8' })));

    const tsc = join(root, 'node_modules/.bin/tsc');
    if (!existsSync(tsc)) return; // typescript not installed: the rest is checked
    cpSync(join(root, 'test/types/usage.ts'), join(app, 'usage.ts'));
    // The ws package ships no types: a one-line declaration stands in for it.
    writeFileSync(join(app, 'ws.d.ts'), "declare module 'ws' { const WebSocket: { new (url: string, protocols?: string | string[]): any }; export default WebSocket; }\n");
    const t = spawnSync(tsc, ['--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', 'usage.ts', 'ws.d.ts'], { cwd: app, encoding: 'utf8', timeout: 60000 });
    assert.equal(t.status, 0, 'tsc: ' + t.stdout + t.stderr);
  } finally {
    tmp.remove();
  }
});
