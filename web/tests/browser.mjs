// Browser tests: serve web/ and the test data on 127.0.0.1, drive Debian's
// headless Chromium with playwright-core (never a downloaded browser), and
// run every real model through the npm package on wasm-CPU, comparing with
// onnxruntime's outputs. Exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { readFile, readdir, mkdtemp } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { homedir, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const data = process.env.STRATA_DATA_DIR ?? join(homedir(), '.cache', 'strata');
const TYPES = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.json': 'application/json' };

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const [root, rel] = url.pathname.startsWith('/data/') ? [data, url.pathname.slice(6)] : [web, url.pathname.slice(1)];
  const path = normalize(join(root, decodeURIComponent(rel)));
  if (!path.startsWith(root) || !existsSync(path)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
  res.end(await readFile(path));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

// A fresh profile directory each run.
const browser = await chromium.launchPersistentContext(await mkdtemp(join(tmpdir(), 'strata-chromium-')), {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--no-first-run', '--enable-unsafe-webgpu'],
});
let failures = 0;
let passed = 0;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log('page error:', e.message));
  await page.goto(`${base}/tests/harness.html`);
  await page.waitForFunction(() => window.harnessReady === true);
  const cases = (await readdir(join(data, 'browser-fixtures'))).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
  if (cases.length === 0) throw new Error('no browser fixtures: run `cargo xtask fetch-data`');
  for (const backend of ['cpu']) {
    for (const name of cases) {
      const r = await page.evaluate(([n, b]) => window.runModel(n, b, 1e-4, 1e-5), [name, backend]);
      const line = `${backend} ${name}: ${r.ok ? 'pass' : 'FAIL ' + r.problems.join('; ')} (${r.ms.toFixed(1)} ms, ran on ${r.backends.join('+')})`;
      console.log(line);
      if (r.ok) passed++; else failures++;
    }
  }
} finally {
  await browser.close();
  server.close();
}
console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
