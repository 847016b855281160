// The demo's model runner, off the page's thread (one worker per loaded
// model, so each can use its own wasm build variant). Messages:
//   in:  {type: 'load', variant, backends, strict, model: ArrayBuffer}
//        {type: 'run', inputs: [{name, type, dims, mode: 'random'|'zeros'|'npy', npy?: ArrayBuffer}], repeat}
//   out: {type: 'loaded', inputs, outputs, placement, ms} | {type: 'ran', outputs, times}
//        | {type: 'error', message}
import { Session, Tensor, setVariant } from '../src/index.js';
import { makeInput, parseNpy, summarize } from './tensors.js';

let session = null;

async function handle(m) {
  if (m.type === 'load') {
    setVariant(m.variant);
    const t0 = performance.now();
    session = await Session.create(new Uint8Array(m.model), { backends: m.backends, strict: m.strict });
    const ms = performance.now() - t0;
    return { type: 'loaded', inputs: session.inputMetadata, outputs: session.outputMetadata, placement: session.placement(), ms };
  }
  if (m.type === 'run') {
    if (!session) throw new Error('no model is loaded');
    const feeds = {};
    for (const spec of m.inputs) {
      let t;
      if (spec.mode === 'npy') {
        t = parseNpy(spec.npy);
        if (t.type !== spec.type) throw new Error(`input '${spec.name}' is ${spec.type}; the .npy file holds ${t.type}`);
      } else {
        t = makeInput(spec.type, spec.dims, spec.mode);
      }
      feeds[spec.name] = new Tensor(t.type, t.data, t.dims);
    }
    const times = [];
    let out;
    for (let i = 0; i < Math.max(1, m.repeat); i++) {
      const t0 = performance.now();
      out = await session.run(feeds);
      times.push(performance.now() - t0);
    }
    const outputs = Object.entries(out).map(([name, t]) => ({ name, type: t.type, dims: t.dims, ...summarize(t.type, t.data) }));
    return { type: 'ran', outputs, times };
  }
  throw new Error(`unknown message '${m.type}'`);
}

self.onmessage = async (e) => {
  try {
    self.postMessage(await handle(e.data));
  } catch (err) {
    self.postMessage({ type: 'error', message: String(err?.message ?? err) });
  }
};
