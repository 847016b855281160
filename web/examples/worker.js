// Run a model inside a Web Worker so the page never blocks.
// Page:   const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
//         w.postMessage({ model: url, feeds: { x: { type: 'float32', data, dims } } });
//         w.onmessage = (e) => console.log(e.data);
// The CPU+WebGPU build ('strata/webgpu'): WebGPU works in dedicated workers too.
import { Session, Tensor } from '../src/webgpu.js';

let session = null;
self.onmessage = async (e) => {
  try {
    const { model, feeds } = e.data;
    if (!session) session = await Session.create(model, { backends: ['webgpu', 'cpu'] });
    const inputs = {};
    for (const [k, v] of Object.entries(feeds)) inputs[k] = new Tensor(v.type, v.data, v.dims);
    const out = await session.run(inputs);
    const plain = {};
    for (const [k, t] of Object.entries(out)) plain[k] = { type: t.type, dims: t.dims, data: t.data };
    self.postMessage({ ok: true, outputs: plain, placement: session.placement() });
  } catch (err) {
    self.postMessage({ ok: false, error: String(err && err.message ? err.message : err) });
  }
};
