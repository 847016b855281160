// Cargo's runner for wasm32-wasip1 test binaries (`cargo xtask test` runs
// the cpu backend's tests this way): Node's WASI on V8, the engine of the
// browsers the npm package runs in, so the simd128 kernels are tested
// under the same compiler that runs them there.
//   node wasi-run.mjs TEST.wasm [ARGS...]
import { WASI } from 'node:wasi';
import { readFile } from 'node:fs/promises';

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: process.env, preopens: { '/': '/' }, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
