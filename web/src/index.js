// Strata for the browser (and Node): an ONNX Runtime Web-like API over the
// wasm build of the engine. `init()` loads the wasm module; `Session.create`
// loads a model from bytes or a URL. `strata/webgpu` (src/webgpu.js) is this
// module with the CPU+WebGPU variant selected.

let wasm = null;
let variant = 'cpu-full';

/** The build variants in `pkg/`. */
export const VARIANTS = ['cpu-full', 'cpu-artifact', 'webgpu-full'];

/**
 * Choose the build variant before the module is loaded: 'cpu-full' (default),
 * 'cpu-artifact' (.strata only) or 'webgpu-full' (CPU + WebGPU).
 */
export function setVariant(name) {
  if (!VARIANTS.includes(name)) throw new Error(`unknown variant '${name}' (one of ${VARIANTS.join(', ')})`);
  if (wasm && name !== variant) throw new Error(`variant '${variant}' is already loaded; call setVariant before init`);
  variant = name;
}

/** The selected build variant. */
export function getVariant() {
  return variant;
}

/** Load the wasm module (called by `Session.create` if needed). `source` may be a URL, bytes or a module. */
export async function init(source) {
  if (wasm) return wasm;
  const mod = await import(`../pkg/${variant}/strata_wasm.js`);
  if (source === undefined && typeof process !== 'undefined' && process.versions && process.versions.node) {
    const { readFile } = await import('node:fs/promises');
    source = await readFile(new URL(`../pkg/${variant}/strata_wasm_bg.wasm`, import.meta.url));
  }
  await mod.default(source === undefined ? undefined : { module_or_path: source });
  wasm = mod;
  return wasm;
}

const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  float16: Uint16Array,
};

/** A tensor: `type`, `dims`, `data` (a typed array; BigInt64Array for int64; string[] for strings). */
export class Tensor {
  constructor(type, data, dims) {
    if (!(type in ARRAYS) && type !== 'string') throw new Error(`unsupported tensor type '${type}'`);
    this.type = type;
    this.dims = dims ?? [data.length];
    if (type === 'string') {
      this.data = Array.from(data);
    } else {
      const C = ARRAYS[type];
      this.data = data instanceof C ? data : C.from(data);
    }
    const n = this.dims.reduce((a, b) => a * b, 1);
    if (n !== this.data.length) throw new Error(`data has ${this.data.length} elements, dims ${JSON.stringify(this.dims)} need ${n}`);
  }
  /** Drop the data (tensors own no engine memory; this lets the GC reclaim it early). */
  dispose() {
    this.data = null;
  }
}

function toWire(t) {
  if (t.type === 'string') return { type: t.type, dims: t.dims, strings: t.data };
  const d = t.data;
  return { type: t.type, dims: t.dims, bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

function fromWire(w) {
  if (w.type === 'string') return new Tensor('string', w.strings, w.dims);
  const C = ARRAYS[w.type];
  if (!C) throw new Error(`output type '${w.type}' has no typed array`);
  // The engine hands over a fresh JavaScript copy: use its buffer unless it
  // is misaligned for the element type.
  let bytes = w.bytes;
  if (bytes.byteOffset % C.BYTES_PER_ELEMENT !== 0) bytes = bytes.slice();
  return new Tensor(w.type, new C(bytes.buffer, bytes.byteOffset, bytes.length / C.BYTES_PER_ELEMENT), w.dims);
}

/** A loaded model. */
export class Session {
  #inner;
  constructor(inner) {
    this.#inner = inner;
  }

  /**
   * Load a model (`.onnx` or `.strata`) from bytes or a URL.
   * options: `{ backends: ['webgpu', 'cpu'], strict: false }`; backends: 'webgpu',
   * 'cpu' (the optimised wasm CPU backend) and 'reference' (the oracle).
   */
  static async create(model, options = {}) {
    await init();
    let bytes = model;
    if (typeof model === 'string' || model instanceof URL) {
      const res = await fetch(model);
      if (!res.ok) throw new Error(`cannot fetch ${model}: ${res.status}`);
      bytes = new Uint8Array(await res.arrayBuffer());
    } else if (model instanceof ArrayBuffer) {
      bytes = new Uint8Array(model);
    }
    const backends = options.backends ?? (variant === 'webgpu-full' ? ['webgpu', 'cpu'] : ['cpu']);
    try {
      // Awaits the WebGPU adapter and device when 'webgpu' is requested (never blocks).
      return new Session(await wasm.WasmSession.create(bytes, backends, !!options.strict));
    } catch (e) {
      throw e instanceof Error ? e : new Error(String(e));
    }
  }

  get inputNames() {
    return this.#inner.inputNames;
  }
  get outputNames() {
    return this.#inner.outputNames;
  }
  get inputMetadata() {
    return this.#inner.inputMetadata;
  }
  get outputMetadata() {
    return this.#inner.outputMetadata;
  }

  /** Run with `{ name: Tensor }`; resolves to `{ name: Tensor }`. */
  async run(feeds) {
    const wire = {};
    for (const [k, v] of Object.entries(feeds)) wire[k] = toWire(v);
    let out;
    try {
      out = await this.#inner.run(wire);
    } catch (e) {
      throw e instanceof Error ? e : new Error(String(e));
    }
    const result = {};
    for (const [k, v] of Object.entries(out)) result[k] = fromWire(v);
    return result;
  }

  /**
   * `[{ node, op, backend, reason }]`: which backend ('webgpu' or 'cpu') runs
   * each node, and why the preferred backends did not take it.
   */
  placement() {
    return this.#inner.placement();
  }

  /**
   * Work counters since creation, for benchmarks: `{ dispatches, submits,
   * uploads, downloads }` (WebGPU compute dispatches and queue submissions;
   * value transfers between the CPU and the GPU).
   */
  counters() {
    return this.#inner.counters();
  }

  /** Free the model's memory now. */
  release() {
    this.#inner.release();
    this.#inner.free();
  }
}

/**
 * Nodes of a model (bytes of a `.onnx` or `.strata` file; main graph and
 * control-flow branches), not counting `Constant` nodes, as loaded (before
 * folding and fusion).
 */
export async function modelNodeCount(bytes) {
  await init();
  return wasm.WasmSession.modelNodeCount(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes);
}

/**
 * The WebGPU adapter in use ('name (BrowserWebGpu, type)'), or null when no
 * WebGPU device was created (not requested yet, unavailable, or a CPU variant).
 */
export function webgpuAdapter() {
  return wasm ? (wasm.WasmSession.webgpuAdapter() ?? null) : null;
}
