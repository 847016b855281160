// Without WebGPU (Node has no navigator.gpu), the CPU+WebGPU build skips
// 'webgpu' with the reason in every node's placement, and `strict: true`
// rejects with a JavaScript Error carrying the engine's message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Session, Tensor, getVariant, webgpuAdapter } from '../src/webgpu.js';

const dataRoot = process.env.STRATA_DATA_DIR ?? join(homedir(), '.cache', 'strata');
const model = join(dataRoot, 'onnx-models', 'ppocr_mobile_v2_cls', 'model.onnx');

test('webgpu is skipped with a visible reason when unavailable', async () => {
  assert.equal(getVariant(), 'webgpu-full');
  const bytes = await readFile(model);
  const session = await Session.create(bytes, { backends: ['webgpu', 'cpu'] });
  const placement = session.placement();
  assert.ok(placement.length > 0);
  for (const p of placement) {
    assert.equal(p.backend, 'cpu', `${p.node} runs on cpu`);
    assert.match(p.reason, /^webgpu skipped: .*adapter/, `${p.node}: ${p.reason}`);
  }
  assert.equal(webgpuAdapter(), null);
  // The recorded input and onnxruntime's output (exported by `cargo xtask fetch-data`).
  const fixture = JSON.parse(await readFile(join(dataRoot, 'browser-fixtures', 'ppocr_mobile_v2_cls.json'), 'utf8'));
  const f32 = (e) => {
    const raw = Buffer.from(e.b64, 'base64');
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  };
  const [input] = fixture.inputs;
  const out = await session.run({ [session.inputNames[0]]: new Tensor('float32', f32(input), input.dims) });
  const y = out[session.outputNames[0]];
  const want = f32(fixture.outputs[0]);
  assert.deepEqual(y.dims, fixture.outputs[0].dims);
  want.forEach((e, i) => assert.ok(Math.abs(y.data[i] - e) <= 1e-5 + 1e-4 * Math.abs(e), `element ${i}: ${y.data[i]} vs ${e}`));
  session.release();
});

test('strict webgpu without WebGPU rejects with the reason', async () => {
  const bytes = await readFile(model);
  await assert.rejects(
    Session.create(bytes, { backends: ['webgpu'], strict: true }),
    (e) => e instanceof Error && /webgpu is unavailable: .*adapter/.test(e.message),
  );
});
