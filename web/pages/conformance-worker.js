// Runs ONNX node-suite cases off the page's thread. Messages:
//   in:  {type: 'start', variant, backends, strict, cases: [{name, dataSets: [{name, inputs, outputs}]}]}
//   out: {type: 'ready'} | {type: 'result', name, status, message, backends, ms}
//        | {type: 'dead'} (the module trapped; the page starts a new worker) | {type: 'fatal', message}
// Each case's files come in one request from `cargo xtask serve`; the next
// cases are fetched while the current one runs.

// One request per case: /suite/onnx-node/<case>.bundle is the case's files
// concatenated, listed with their lengths in the X-Strata-Parts header.
async function fetchCase(c) {
  const url = `/suite/onnx-node/${encodeURIComponent(c.name)}.bundle`;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch ${url}: HTTP ${res.status}`);
  const body = new Uint8Array(await res.arrayBuffer());
  const parts = new Map();
  let at = 0;
  for (const p of (res.headers.get('x-strata-parts') ?? '').split(',')) {
    const i = p.lastIndexOf('=');
    const len = Number(p.slice(i + 1));
    parts.set(p.slice(0, i), body.subarray(at, at + len));
    at += len;
  }
  if (at !== body.length) throw new Error(`${url}: the parts do not add up to the body`);
  const part = (path) => {
    const b = parts.get(path);
    if (!b) throw new Error(`${url} has no ${path}`);
    return b;
  };
  return {
    model: part('model.onnx'),
    dataSets: c.dataSets.map((ds) => ({
      name: ds.name,
      inputs: Array.from({ length: ds.inputs }, (_, i) => part(`${ds.name}/input_${i}.pb`)),
      outputs: Array.from({ length: ds.outputs }, (_, i) => part(`${ds.name}/output_${i}.pb`)),
    })),
  };
}

/** How many cases are fetched ahead of the one running. */
const PREFETCH = 8;
let waited = 0;

self.onmessage = async (e) => {
  const { variant, backends, strict, cases } = e.data;
  let runCase;
  try {
    const mod = await import(`../pkg/${variant}/strata_wasm.js`);
    await mod.default();
    runCase = mod.runCase;
    if (typeof runCase !== 'function') throw new Error(`web/pkg/${variant} has no runCase (built without the 'conformance' feature)`);
  } catch (err) {
    self.postMessage({ type: 'fatal', message: `cannot load the '${variant}' build: ${err.message ?? err} (run \`cargo xtask web\`)` });
    return;
  }
  self.postMessage({ type: 'ready' });
  // Keep the next few cases' files in flight so fetch latency overlaps the runs.
  const pending = [];
  const fetchAhead = (i) => {
    while (pending.length < i + PREFETCH && pending.length < cases.length) {
      pending.push(fetchCase(cases[pending.length]).catch((err) => err));
    }
  };
  for (let i = 0; i < cases.length; i++) {
    fetchAhead(i);
    const t = performance.now();
    const files = await pending[i];
    pending[i] = null;
    waited += performance.now() - t;
    const name = cases[i].name;
    if (files instanceof Error) {
      self.postMessage({ type: 'result', name, status: 'error', message: files.message, backends: [], ms: 0 });
      continue;
    }
    const t0 = performance.now();
    try {
      const r = await runCase(files.model, files.dataSets, backends, strict);
      self.postMessage({ type: 'result', name, status: r.status, message: r.message, backends: r.backends, ms: performance.now() - t0, waited });
    } catch (err) {
      const ms = performance.now() - t0;
      if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
        // The module aborted (a panic or a trap) or the call stack ran out: it cannot be used again.
        const why = self.strataLastPanic ? `PANIC: ${self.strataLastPanic}` : `wasm trap: ${err.message}`;
        self.postMessage({ type: 'result', name, status: 'error', message: why, backends: [], ms });
        self.postMessage({ type: 'dead' });
        return;
      }
      self.postMessage({ type: 'result', name, status: 'error', message: String(err.message ?? err), backends: [], ms });
    }
  }
};
