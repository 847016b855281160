// The browser benchmark (`cargo xtask bench-web`): the real models in
// Debian's headless Chromium (driven by playwright-core, never a downloaded
// browser), Strata against onnxruntime-web with the same model bytes, the
// same inputs and one thread each, in interleaved rounds:
//   wasm:   Strata's cpu backend (variant cpu-full)  vs  onnxruntime-web `wasm`
//   webgpu: Strata's WebGPU backend (webgpu-full, strict where the model
//           allows)                                  vs  onnxruntime-web `webgpu`
// Prints median latencies, Strata/onnxruntime ratios and their geometric
// mean, Strata's WebGPU dispatches per run beside the model's node count
// (Constant nodes not counted), and whether each runtime's outputs match
// onnxruntime's reference outputs (rtol 1e-4, atol 1e-5).
//
//   STRATA_BENCH_URL=http://127.0.0.1:PORT node bench/bench.mjs
//     [--kinds wasm,webgpu] [--rounds N] [--gpu-rounds N] [--filter S] [--json PATH]
//
// The URL is a server of web/ with the test data at /data/ (`cargo xtask
// bench-web` starts one and sets it).
import { chromium } from 'playwright-core';
import { readdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { homedir, tmpdir } from 'node:os';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
const kinds = opt('--kinds', 'wasm,webgpu').split(',');
const rounds = { wasm: Number(opt('--rounds', '20')), webgpu: Number(opt('--gpu-rounds', '3')) };
const filter = opt('--filter', '');
const jsonPath = opt('--json');
const base = process.env.STRATA_BENCH_URL;
if (!base) throw new Error('STRATA_BENCH_URL is not set (run `cargo xtask bench-web`)');
for (const k of kinds) if (!(k in rounds)) throw new Error(`unknown kind '${k}' (wasm, webgpu)`);
const RTOL = 1e-4;
const ATOL = 1e-5;

const data = process.env.STRATA_DATA_DIR ?? join(homedir(), '.cache', 'strata');
const models = (await readdir(join(data, 'browser-fixtures')))
  .filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).filter((m) => m.includes(filter)).sort();
if (models.length === 0) throw new Error(`no models match '${filter}' (missing data? run \`cargo xtask fetch-data\`)`);

// Shortest sample, in ms, and most runs in one sample.
const SAMPLE_MS = 10;
const MAX_REPS = 50;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const geomean = (xs) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
const checkText = (c) => (c.bad === 0 ? 'ok' : `${c.bad} off`) + ` (max err ${c.worst.toExponential(1)})`;

const browser = await chromium.launchPersistentContext(await mkdtemp(join(tmpdir(), 'strata-bench-')), {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--no-first-run', '--enable-unsafe-webgpu'],
});
const report = { models: {}, summary: {} };
let failed = false;
try {
  for (const kind of kinds) {
    const page = await browser.newPage();
    page.on('pageerror', (e) => console.log('page error:', e.message));
    await page.goto(`${base}/bench/bench.html?kind=${kind}`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60_000 });
    const info = await page.evaluate(() => window.info());
    console.log(`\n== ${kind}: Strata vs onnxruntime-web ${info.ortVersion} (${kind === 'wasm' ? 'wasm' : 'webgpu'} EP), ` +
      `1 thread, ${rounds[kind]} interleaved rounds per model`);
    const rows = [];
    for (const name of models) {
      const r = await page.evaluate(([n, rt, at]) => window.load(n, rt, at), [name, RTOL, ATOL]);
      if (r.adapter && rows.length === 0) console.log(`adapter: ${r.adapter}`);
      if (r.strictError) console.log(`${name}: not strict on webgpu (${r.strictError}); measured with cpu fallback`);
      // Warm-up: one run each (two on the CPU, where runs are cheap).
      const warm = {};
      for (let w = 0; w < (kind === 'wasm' ? 2 : 1); w++) {
        warm.strata = (await page.evaluate(([n]) => window.time(n, 'strata'), [name])).ms;
        warm.ort = (await page.evaluate(([n]) => window.time(n, 'ort'), [name])).ms;
      }
      // Runs per sample, the same for both: a sample lasts at least about
      // SAMPLE_MS (the page's clock ticks in 0.1 ms steps).
      const reps = Math.min(MAX_REPS, Math.max(1, Math.ceil(SAMPLE_MS / Math.max(0.05, Math.min(warm.strata, warm.ort)))));
      const times = { strata: [], ort: [] };
      const dispatches = [];
      for (let i = 0; i < rounds[kind]; i++) {
        // Alternate who goes first, so neither always runs on a warmer cache.
        for (const who of i % 2 ? ['ort', 'strata'] : ['strata', 'ort']) {
          const t = await page.evaluate(([n, w, k]) => window.time(n, w, k), [name, who, reps]);
          times[who].push(t.ms);
          if (who === 'strata') dispatches.push(t.dispatches);
        }
      }
      await page.evaluate(([n]) => window.unload(n), [name]);
      const row = {
        name, nodes: r.nodes, mode: r.strataMode, placement: r.placement, reps,
        strataMs: median(times.strata), ortMs: median(times.ort), dispatches: median(dispatches),
        strataCheck: r.strataCheck, ortCheck: r.ortCheck, strataCreateMs: r.strataCreateMs, ortCreateMs: r.ortCreateMs,
      };
      row.ratio = row.strataMs / row.ortMs;
      if (r.strataCheck.bad) failed = true;
      rows.push(row);
      const disp = kind === 'webgpu' ? `, ${row.dispatches} dispatches/run for ${row.nodes} nodes (${(row.dispatches / row.nodes).toFixed(2)}x)` : '';
      console.log(`${name}: Strata ${row.strataMs.toFixed(2)} ms, onnxruntime-web ${row.ortMs.toFixed(2)} ms, ` +
        `ratio ${row.ratio.toFixed(2)}x (${reps} run${reps > 1 ? 's' : ''} per sample)${disp}; outputs Strata ${checkText(r.strataCheck)}, onnxruntime ${checkText(r.ortCheck)}; ` +
        `create ${r.strataCreateMs.toFixed(0)} / ${r.ortCreateMs.toFixed(0)} ms; Strata nodes ${JSON.stringify(r.placement)} (${r.strataMode})`);
    }
    await page.close();
    console.log(`\n| model | nodes | Strata ${kind} ms | onnxruntime-web ms | ratio |${kind === 'webgpu' ? ' dispatches/run | per node |' : ''}`);
    console.log(`|---|---|---|---|---|${kind === 'webgpu' ? '---|---|' : ''}`);
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.nodes} | ${r.strataMs.toFixed(2)} | ${r.ortMs.toFixed(2)} | ${r.ratio.toFixed(2)}x |` +
        (kind === 'webgpu' ? ` ${r.dispatches} | ${(r.dispatches / r.nodes).toFixed(2)} |` : ''));
    }
    const g = geomean(rows.map((r) => r.ratio));
    const worst = rows.reduce((a, r) => (r.ratio > a.ratio ? r : a));
    console.log(`geometric mean Strata/onnxruntime-web (${kind}): ${g.toFixed(2)}x; worst ${worst.name} ${worst.ratio.toFixed(2)}x`);
    report.models[kind] = rows;
    report.summary[kind] = { geomean: g, worst: worst.ratio };
  }
} finally {
  await browser.close();
}
if (jsonPath) await writeFile(jsonPath, JSON.stringify(report, null, 2) + '\n');
if (failed) {
  console.log('FAIL: Strata outputs differ from the expected outputs (see above)');
  process.exit(1);
}
