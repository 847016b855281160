// The ONNX node suite in headless Chromium: starts `cargo xtask serve`,
// opens conformance.html with Debian's Chromium through playwright-core
// (never a downloaded browser), runs every case on the chosen backend and
// fails unless the results match tests/expectations/onnx-node/web-<backend>.txt
// exactly (every failing case listed, no listed case passing).
//
//   node tests/browser-suite.mjs [--backend cpu|webgpu|webgpu-strict] [--filter REGEX] [--update-expectations]
//                                [--variant NAME]  (a build in web/pkg/ other than the backend's default)
//
// --update-expectations rewrites the manifest from this run, keeping
// hand-written reasons (those without ': ') of cases that still fail.
// Missing test data fails (run `cargo xtask fetch-data`).
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BACKENDS } from '../pages/backends.js';
import { checkResults, manifestLabel, parseManifest, updatedManifest } from '../pages/manifest.js';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const backend = opt('--backend') ?? 'cpu';
const filter = opt('--filter') ?? '';
const update = args.includes('--update-expectations');
const variant = opt('--variant');
/** A hung case is replaced by the page after 2 minutes; this bounds the whole run. */
const TIMEOUT_MS = 30 * 60_000;
if (!BACKENDS[backend]) throw new Error(`unknown backend '${backend}' (${Object.keys(BACKENDS).join(', ')})`);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const manifestPath = join(repo, 'tests', 'expectations', 'onnx-node', `${manifestLabel(backend)}.txt`);

// The one server implementation: `cargo xtask serve` on a free port; its first line has the URL.
const server = spawn(process.env.CARGO ?? 'cargo', ['xtask', 'serve', '--port', '0'], {
  cwd: repo,
  stdio: ['ignore', 'pipe', 'inherit'],
});
const base = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
    if (m) resolve(m[0]);
  });
  server.on('exit', (code) => reject(new Error(`cargo xtask serve exited (${code}) before serving`)));
});

let code = 1;
const started = Date.now();
let browser = null;
try {
  // A fresh profile directory each run.
  browser = await chromium.launchPersistentContext(await mkdtemp(join(tmpdir(), 'strata-chromium-')), {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--no-first-run', '--enable-unsafe-webgpu'],
  });
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log('page error:', e.message));
  const query = new URLSearchParams({ backend, filter, run: '1', ...(variant ? { variant } : {}) });
  await page.goto(`${base}/conformance.html?${query}`);
  let lastLog = 0;
  for (;;) {
    const s = await page.evaluate(() => {
      const c = window.conformance;
      return c && { state: c.state, done: c.done, total: c.total, fatal: c.fatal };
    });
    if (s?.state === 'fatal') throw new Error(s.fatal);
    if (s?.state === 'done') break;
    if (Date.now() - started > TIMEOUT_MS) throw new Error(`the suite did not finish within ${TIMEOUT_MS / 60_000} minutes`);
    if (s?.total && Date.now() - lastLog > 30_000) {
      lastLog = Date.now();
      console.log(`  ${s.done} / ${s.total} cases after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const { results, total, seconds, pageCheck } = await page.evaluate(() => ({
    results: window.conformance.results,
    total: window.conformance.total,
    seconds: window.conformance.seconds,
    pageCheck: window.conformance.check,
  }));
  if (results.length === 0) throw new Error('the suite ran no cases');
  if (results.length !== total) throw new Error(`${results.length} results for ${total} cases`);
  const counts = { pass: 0, fail: 0, error: 0 };
  for (const r of results) counts[r.status]++;
  const ranOn = [...new Set(results.flatMap((r) => r.backends))].join(', ');
  console.log(`onnx-node in Chromium on ${backend}: ${counts.pass} passed, ${counts.fail} failed, ${counts.error} errors ` +
    `(of ${results.length}) in ${seconds.toFixed(1)} s; nodes ran on: ${ranOn}`);
  const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 5);
  const busy = results.reduce((a, r) => a + r.ms, 0) / 1000;
  console.log(`time inside runCase: ${busy.toFixed(1)} s, waiting for data ${(results.at(-1).waited/1000).toFixed(1)} s; slowest: ${slowest.map((r) => `${r.name} ${(r.ms / 1000).toFixed(1)} s`).join(', ')}`);
  const previous = existsSync(manifestPath) ? parseManifest(await readFile(manifestPath, 'utf8')) : new Map();
  if (update) {
    const text = updatedManifest(results, previous, backend, filter !== '');
    await writeFile(manifestPath, text);
    console.log(`updated ${manifestPath} (${parseManifest(text).size} expected failures)`);
    code = 0;
  } else {
    const c = checkResults(results, previous);
    if (pageCheck.passed !== c.passed || pageCheck.unexpectedFailures.length !== c.unexpectedFailures.length ||
        pageCheck.unexpectedPasses.length !== c.unexpectedPasses.length) {
      throw new Error(`the page's summary disagrees with the manifest check: ${JSON.stringify(pageCheck)}`);
    }
    for (const f of c.unexpectedFailures) console.log(`UNEXPECTED FAILURE ${f.name}: ${f.message.split('\n')[0]}`);
    for (const n of c.unexpectedPasses) console.log(`UNEXPECTED PASS ${n} (remove it from the manifest)`);
    if (!existsSync(manifestPath)) console.log(`no manifest at ${manifestPath}: every case is expected to pass`);
    if (c.ok) {
      console.log(`the results match ${manifestPath}`);
      code = 0;
    } else {
      console.log(`${c.unexpectedFailures.length} unexpected failures, ${c.unexpectedPasses.length} unexpected passes; ` +
        `if intended: node tests/browser-suite.mjs --backend ${backend} --update-expectations`);
    }
  }
} catch (err) {
  console.log(`FAILED: ${err.message ?? err}`);
} finally {
  await browser?.close();
  server.kill();
}
process.exit(code);
