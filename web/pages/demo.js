// The demo page: load a model in a worker (pages/demo-worker.js) on the
// chosen backend, build inputs from its input metadata, run it, and show
// outputs, timings and placement. State for tests: `window.demo`.
import { BACKENDS } from './backends.js';

const $ = (id) => document.getElementById(id);
const state = (window.demo = { state: 'idle', loaded: null, ran: null, error: null });
for (const [key, b] of Object.entries(BACKENDS)) $('backend').add(new Option(`${b.label} (${key})`, key));

let worker = null;

function call(message, transfer = []) {
  return new Promise((resolve, reject) => {
    worker.onmessage = (e) => (e.data.type === 'error' ? reject(new Error(e.data.message)) : resolve(e.data));
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`worker error: ${e.message}`));
    };
    worker.postMessage(message, transfer);
  });
}

function setStatus(text, bad = false) {
  $('status').textContent = text;
  $('status').className = bad ? 'bad' : '';
}

function fail(err) {
  state.state = 'error';
  state.error = String(err.message ?? err);
  setStatus(`Error: ${state.error}`, true);
}

function row(table, cells) {
  const tr = $(table).tBodies[0].insertRow();
  for (const c of cells) {
    const td = tr.insertCell();
    if (c instanceof Node) td.append(c);
    else td.textContent = c;
  }
  return tr;
}

const fmt = (x) => (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toPrecision(5)) : JSON.stringify(x));

function showModel(m) {
  $('inputs').tBodies[0].replaceChildren();
  for (const i of m.inputs) {
    const dims = document.createElement('input');
    dims.value = (i.dims ?? []).map((d) => (typeof d === 'number' ? d : 1)).join(', ');
    dims.title = `declared: [${(i.dims ?? []).map((d) => d ?? '?').join(', ')}]`;
    dims.dataset.name = i.name;
    const mode = document.createElement('select');
    for (const v of ['random', 'zeros']) mode.add(new Option(v, v));
    const file = document.createElement('input');
    file.type = 'file';
    file.accept = '.npy';
    row('inputs', [i.name, i.type, dims, mode, file]).dataset.name = i.name;
  }
  $('placement').tBodies[0].replaceChildren();
  const counts = {};
  for (const p of m.placement) {
    counts[p.backend] = (counts[p.backend] ?? 0) + 1;
    row('placement', [p.node, p.op, p.backend, p.reason]);
  }
  $('placement-summary').textContent =
    `${m.placement.length} nodes: ` + Object.entries(counts).map(([b, n]) => `${n} on ${b}`).join(', ');
  $('outputs').tBodies[0].replaceChildren();
  $('timings').textContent = '';
  $('model-section').hidden = false;
}

$('load-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const file = $('model').files[0];
  if (!file) return setStatus('Pick a model file first.', true);
  const choice = BACKENDS[$('backend').value];
  worker?.terminate();
  worker = new Worker(new URL('./demo-worker.js', import.meta.url), { type: 'module' });
  Object.assign(state, { state: 'loading', loaded: null, ran: null, error: null });
  setStatus(`Loading ${file.name} on ${choice.label}...`);
  try {
    const model = await file.arrayBuffer();
    const m = await call({ type: 'load', variant: choice.variant, backends: choice.backends, strict: choice.strict, model }, [model]);
    state.loaded = m;
    state.state = 'loaded';
    showModel(m);
    setStatus(`Loaded ${file.name} in ${m.ms.toFixed(1)} ms (${choice.label}).`);
  } catch (err) {
    fail(err);
  }
});

$('run-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const inputs = [];
    const transfer = [];
    for (const tr of $('inputs').tBodies[0].rows) {
      const meta = state.loaded.inputs.find((i) => i.name === tr.dataset.name);
      const [dimsCell, modeCell, fileCell] = [tr.cells[2], tr.cells[3], tr.cells[4]].map((c) => c.firstChild);
      const dims = dimsCell.value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
      if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`input '${meta.name}': dims must be non-negative integers`);
      const spec = { name: meta.name, type: meta.type, dims, mode: modeCell.value };
      if (fileCell.files[0]) {
        spec.mode = 'npy';
        spec.npy = await fileCell.files[0].arrayBuffer();
        transfer.push(spec.npy);
      }
      inputs.push(spec);
    }
    state.state = 'running';
    setStatus('Running...');
    const repeat = Number($('repeat').value) || 1;
    const r = await call({ type: 'run', inputs, repeat }, transfer);
    state.ran = r;
    state.state = 'ran';
    $('outputs').tBodies[0].replaceChildren();
    for (const o of r.outputs) {
      const stats = o.min === undefined ? '' : `${fmt(o.min)} / ${fmt(o.max)} / ${fmt(o.mean)} (${o.nan})`;
      row('outputs', [o.name, o.type, `[${o.dims.join(', ')}]`, stats, o.first.map(fmt).join(', ')]);
    }
    const rest = r.times.slice(1);
    const mean = rest.length ? rest.reduce((a, b) => a + b, 0) / rest.length : NaN;
    $('timings').textContent = `first run ${r.times[0].toFixed(1)} ms` +
      (rest.length ? `; next ${rest.length}: mean ${mean.toFixed(1)} ms, min ${Math.min(...rest).toFixed(1)} ms` : '');
    setStatus(`Ran ${r.times.length} time(s).`);
  } catch (err) {
    fail(err);
  }
});
