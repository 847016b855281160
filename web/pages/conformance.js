// The conformance page: runs the ONNX node suite in a Web Worker on the
// chosen backend, shows a live result table, and checks the results against
// the expectation manifest tests/expectations/onnx-node/web-<backend>.txt.
// URL parameters: backend=cpu|webgpu|webgpu-strict, filter=REGEX, run=1
// (start at once), variant=NAME (override the wasm build). The state is
// published on `window.conformance` for the browser tests.
import { BACKENDS } from './backends.js';
import { checkResults, manifestLabel, parseManifest, updatedManifest } from './manifest.js';

/** How long one case may run before the worker is replaced and the case reported as an error. */
const CASE_TIMEOUT_MS = 120_000;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = (window.conformance = { state: 'idle', done: 0, total: 0, results: [], check: null, fatal: null });

for (const [key, b] of Object.entries(BACKENDS)) $('backend').add(new Option(`${b.label} (${key})`, key));
$('backend').value = BACKENDS[params.get('backend')] ? params.get('backend') : 'cpu';
$('filter').value = params.get('filter') ?? '';

let stopRequested = false;
let worker = null;
let previous = new Map();

function setStatus(text) {
  $('status').textContent = text;
}

function fatal(message) {
  state.state = 'fatal';
  state.fatal = message;
  setStatus(`Error: ${message}`);
  $('status').className = 'bad';
  $('run').disabled = false;
  $('stop').disabled = true;
}

function cell(tr, text, cls) {
  const td = tr.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function addRow(r) {
  const listed = previous.has(r.name);
  const tr = $('results').tBodies[0].insertRow();
  tr.className = r.status;
  if (r.status !== 'pass' && !listed) tr.classList.add('unexpected');
  if (r.status === 'pass' && listed) tr.classList.add('unexpected-pass');
  tr.hidden = $('only-failures').checked && r.status === 'pass' && !listed;
  cell(tr, String(state.done));
  cell(tr, r.name);
  cell(tr, r.status, 'res');
  cell(tr, listed ? `expected to fail: ${previous.get(r.name)}` : '');
  cell(tr, r.ms.toFixed(1));
  cell(tr, (r.backends ?? []).join('+'));
  cell(tr, r.message, 'msg');
}

function renderSummary(final) {
  const c = checkResults(state.results, previous);
  const failed = state.results.filter((r) => r.status === 'fail').length;
  const errors = state.results.filter((r) => r.status === 'error').length;
  const secs = (performance.now() - state.startedAt) / 1000;
  const s = $('summary');
  s.replaceChildren();
  const p = (text, cls) => {
    const e = document.createElement('p');
    e.textContent = text;
    if (cls) e.className = cls;
    s.append(e);
  };
  p(`${state.done} of ${state.total} cases run in ${secs.toFixed(1)} s: ${c.passed} passed, ${failed} failed, ${errors} errors ` +
    `(manifest ${state.label}.txt lists ${previous.size} expected failures${state.manifestMissing ? '; it does not exist yet' : ''}).`);
  if (c.unexpectedFailures.length) p(`${c.unexpectedFailures.length} unexpected failures (highlighted red).`, 'bad');
  if (c.unexpectedPasses.length) p(`${c.unexpectedPasses.length} unexpected passes (highlighted green): ${c.unexpectedPasses.join(', ')}`, 'bad');
  if (final && c.ok) p('The results match the manifest.', 'good');
  return c;
}

async function loadSuite() {
  const res = await fetch('/suite/onnx-node.json');
  if (!res.ok) throw new Error(`the node suite is not available (HTTP ${res.status}): ${(await res.text()).trim()}`);
  return (await res.json()).cases;
}

async function loadManifest(label) {
  const res = await fetch(`/expectations/onnx-node/${label}.txt`);
  state.manifestMissing = res.status === 404;
  if (!res.ok && !state.manifestMissing) throw new Error(`cannot fetch manifest ${label}.txt: HTTP ${res.status}`);
  return res.ok ? parseManifest(await res.text()) : new Map();
}

/** Run `cases` in workers (a new one after a trap or a timeout); resolves when all have a result. */
function runAll(cases, choice, variant) {
  return new Promise((resolve) => {
    let lastRender = 0;
    const record = (r) => {
      state.results.push(r);
      state.done++;
      addRow(r);
      if (performance.now() - lastRender > 500 || state.done === state.total) {
        lastRender = performance.now();
        renderSummary(false);
        setStatus(`Running on ${choice.label}: ${state.done} / ${state.total} (${r.name})`);
      }
    };
    const start = () => {
      const remaining = cases.slice(state.done);
      if (stopRequested || remaining.length === 0) {
        resolve();
        return;
      }
      let timer = null;
      let ready = false;
      const w = (worker = new Worker(new URL('./conformance-worker.js', import.meta.url), { type: 'module' }));
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => fail(`timed out after ${CASE_TIMEOUT_MS / 1000} s`), CASE_TIMEOUT_MS);
      };
      // The worker died or hung on the current case: report it, continue in a new worker.
      const fail = (message) => {
        clearTimeout(timer);
        w.terminate();
        if (!ready) {
          fatal(message);
          resolve();
          return;
        }
        if (state.done < cases.length) record({ name: cases[state.done].name, status: 'error', message, backends: [], ms: 0 });
        start();
      };
      w.onerror = (e) => {
        e.preventDefault();
        fail(`worker error: ${e.message}`);
      };
      w.onmessage = (e) => {
        const m = e.data;
        if (m.type === 'fatal') {
          clearTimeout(timer);
          w.terminate();
          fatal(m.message);
          resolve();
        } else if (m.type === 'ready') {
          ready = true;
          arm();
        } else if (m.type === 'result') {
          record(m);
          arm();
          if (stopRequested) {
            clearTimeout(timer);
            w.terminate();
            resolve();
          } else if (state.done === cases.length) {
            clearTimeout(timer);
            w.terminate();
            resolve();
          }
        } else if (m.type === 'dead') {
          clearTimeout(timer);
          w.terminate();
          start();
        }
      };
      timer = setTimeout(() => fail('the worker did not start within 120 s'), 120_000);
      w.postMessage({ variant, backends: choice.backends, strict: choice.strict, cases: remaining });
    };
    start();
  });
}

async function run() {
  const key = $('backend').value;
  const choice = BACKENDS[key];
  const variant = params.get('variant') ?? choice.variant;
  const filter = $('filter').value.trim();
  Object.assign(state, { state: 'running', done: 0, total: 0, results: [], check: null, fatal: null });
  Object.assign(state, { backend: key, label: manifestLabel(key), filter, startedAt: performance.now() });
  stopRequested = false;
  $('run').disabled = true;
  $('stop').disabled = false;
  $('download').disabled = true;
  $('status').className = '';
  $('summary').replaceChildren();
  $('results').tBodies[0].replaceChildren();
  try {
    let cases = await loadSuite();
    if (filter) {
      const re = new RegExp(filter);
      cases = cases.filter((c) => re.test(c.name));
    }
    previous = await loadManifest(state.label);
    state.total = cases.length;
    setStatus(`Loading the '${variant}' build...`);
    await runAll(cases, choice, variant);
  } catch (err) {
    fatal(String(err.message ?? err));
  }
  if (state.state === 'fatal') return;
  state.seconds = (performance.now() - state.startedAt) / 1000;
  state.check = renderSummary(true);
  state.state = stopRequested ? 'stopped' : 'done';
  setStatus(`${stopRequested ? 'Stopped' : 'Finished'} on ${choice.label} in ${state.seconds.toFixed(1)} s.`);
  $('run').disabled = false;
  $('stop').disabled = true;
  $('download').disabled = false;
}

$('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  run();
});
$('stop').addEventListener('click', () => {
  stopRequested = true;
});
$('only-failures').addEventListener('change', () => {
  const only = $('only-failures').checked;
  for (const tr of $('results').tBodies[0].rows) {
    tr.hidden = only && tr.classList.contains('pass') && !tr.classList.contains('unexpected-pass');
  }
});
$('download').addEventListener('click', () => {
  const text = updatedManifest(state.results, previous, state.backend, state.filter !== '' || state.state !== 'done');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  a.download = `${state.label}.txt`;
  a.click();
});
if (params.get('run') === '1') run();
