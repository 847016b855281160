// Browser tests: serve web/ and the test data on 127.0.0.1 (a secure
// context, so navigator.gpu exists), drive Debian's headless Chromium with
// playwright-core (never a downloaded browser), and run every real model
// through the npm package on wasm-CPU (variant cpu-full) and on WebGPU
// (variant webgpu-full, CPU fallback allowed), comparing with onnxruntime's
// outputs under the real-model tolerance of the native suite. Reports
// creation and run times, nodes per backend and the nodes that fell back.
// Exits non-zero on any failure, including WebGPU being unavailable.
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
// The native real-model suite's tolerance (strata-conformance Tolerance::MODELS).
const RTOL = 1e-4;
const ATOL = 1e-5;
// (variant, backends in order of preference); the first backend is the one under test.
// `STRATA_BROWSER_VARIANTS=webgpu-full` runs only the named variants (local iteration; CI runs all).
const only = process.env.STRATA_BROWSER_VARIANTS?.split(',');
const RUNS = [
  ['cpu-full', ['cpu']],
  ['webgpu-full', ['webgpu', 'cpu']],
].filter(([v]) => !only || only.includes(v));
if (RUNS.length === 0) throw new Error(`STRATA_BROWSER_VARIANTS=${only} names no variant`);
let failures = 0;
let passed = 0;
const fmt = (ms) => ms.map((m) => m.toFixed(0)).join('/');
try {
  const cases = (await readdir(join(data, 'browser-fixtures'))).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
  if (cases.length === 0) throw new Error('no browser fixtures: run `cargo xtask fetch-data`');
  for (const [variant, backends] of RUNS) {
    const page = await browser.newPage();
    page.on('pageerror', (e) => console.log('page error:', e.message));
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`console ${m.type()}: ${m.text()}`); });
    await page.goto(`${base}/tests/harness.html?variant=${variant}`);
    await page.waitForFunction(() => window.harnessReady === true);
    if (backends[0] === 'webgpu') {
      const probe = await page.evaluate(() => window.webgpuProbe());
      if (!probe.available) {
        console.log(`${variant}: FAIL WebGPU is unavailable in this Chromium: ${probe.why}`);
        failures += cases.length;
        await page.close();
        continue;
      }
      console.log(`${variant}: WebGPU adapter ${probe.adapter}; max invocations per workgroup ${probe.maxInvocations}; shader-f16 ${probe.f16}`);
      // Every kernel module must compile with the browser's WGSL compiler
      // (stricter than naga: e.g. constant infinities are errors), including
      // kernels the five models do not use. A module is composed as
      // strata-gpu's `Shader::source` does: the prelude, the family's
      // generated file, then its own file.
      const dir = join(web, '..', 'shaders');
      const prelude = await readFile(join(dir, 'prelude.wgsl'), 'utf8');
      const shaders = {};
      for (const f of (await readdir(dir)).filter((f) => f.endsWith('.wgsl') && f !== 'prelude.wgsl')) {
        const generated = await readFile(join(dir, 'generated', f), 'utf8');
        shaders[f] = `${prelude}\n${generated}\n${await readFile(join(dir, f), 'utf8')}`;
      }
      const errors = await page.evaluate((s) => window.compileShaders(s), shaders);
      console.log(`webgpu kernels: ${Object.keys(shaders).length} WGSL modules, ${errors.length ? 'FAIL' : 'all compile'}`);
      for (const e of errors) console.log(`  ${e}`);
      if (errors.length) failures++; else passed++;
    }
    for (const name of cases) {
      const r = await page.evaluate(([n, b, rt, at]) => window.runModel(n, b, rt, at), [name, backends, RTOL, ATOL]);
      const counts = Object.entries(r.counts).map(([b, n]) => `${n} ${b}`).join(', ');
      console.log(`${backends[0]} ${name}: ${r.ok ? 'pass' : 'FAIL ' + r.problems.join('; ')} ` +
        `(create ${r.createMs.toFixed(0)} ms, runs ${fmt(r.ms)} ms; nodes: ${counts})`);
      if (r.adapter && name === cases[0]) console.log(`  adapter: ${r.adapter}`);
      // Nodes not on the backend under test, grouped by operator and reason
      // (value names elided); every node is listed with STRATA_BROWSER_VERBOSE=1.
      const groups = new Map();
      for (const f of r.fallbacks) {
        const key = `${f.op} on ${f.backend}: ${f.reason.replace(/'[^']*'/g, "'…'")}`;
        groups.set(key, [...(groups.get(key) ?? []), f.node]);
      }
      for (const [key, nodes] of groups) {
        const shown = process.env.STRATA_BROWSER_VERBOSE ? nodes : nodes.slice(0, 2);
        console.log(`  fallback ${nodes.length} x ${key} [${shown.join(', ')}${shown.length < nodes.length ? ', …' : ''}]`);
      }
      if (r.ok) passed++; else failures++;
    }
    if (backends[0] === 'webgpu') {
      // WebGPU from a dedicated worker (examples/worker.js): the page never blocks.
      const name = cases.includes('ppocr_mobile_v2_cls') ? 'ppocr_mobile_v2_cls' : cases[0];
      const r = await page.evaluate(([n, rt, at]) => window.runInWorker(n, rt, at), [name, RTOL, ATOL]);
      const ok = r.ok && (r.counts.webgpu ?? 0) > 0;
      const counts = Object.entries(r.counts).map(([b, n]) => `${n} ${b}`).join(', ');
      console.log(`webgpu in a worker ${name}: ${ok ? 'pass' : 'FAIL ' + r.problems.join('; ')} (${r.ms.toFixed(0)} ms with loading; nodes: ${counts})`);
      if (ok) passed++; else failures++;
    }
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
}
console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
