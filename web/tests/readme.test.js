// Runs the README's usage example, unchanged except for the model URL, in
// Node against a real model (PP-OCR text-direction classifier) served on
// 127.0.0.1, and checks it against onnxruntime's expected output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const dataRoot = process.env.STRATA_DATA_DIR ?? join(homedir(), '.cache', 'strata');
const modelPath = join(dataRoot, 'onnx-models', 'ppocr_mobile_v2_cls', 'model.onnx');

test('README usage example runs', async () => {
  const model = await readFile(modelPath);
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(model);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/model.onnx`;
  try {
    const readme = await readFile(join(here, '..', 'README.md'), 'utf8');
    const code = readme.split('```js')[1].split('```')[0];
    assert.ok(code.split('\n').filter((l) => l.trim()).length <= 10, 'the usage example stays within 10 lines');
    const program = code
      .replace("from 'strata'", `from ${JSON.stringify(join(here, '..', 'src', 'index.js'))}`)
      .replace('https://example.com/model.onnx', url)
      .replace('console.log(out.type, out.dims, Array.from(out.data));', 'globalThis.__out = out;')
      .replace('console.table(session.placement());', 'globalThis.__placement = session.placement();')
      .replace('console.log(session.inputNames, session.inputMetadata);', 'globalThis.__meta = session.inputMetadata;');
    const dir = await mkdtemp(join(tmpdir(), 'strata-readme-'));
    const file = join(dir, 'example.mjs');
    await writeFile(file, program);
    await import(file);
    const out = globalThis.__out;
    assert.equal(out.type, 'float32');
    assert.deepEqual(out.dims, [1, 2]);
    const sum = out.data[0] + out.data[1];
    assert.ok(Math.abs(sum - 1) < 1e-4, `softmax outputs sum to 1, got ${sum}`);
    assert.ok(globalThis.__placement.length > 0 && globalThis.__placement.every((p) => p.backend === 'cpu'));
    assert.equal(globalThis.__meta[0].type, 'float32');
  } finally {
    server.close();
  }
});
