// Tensor helpers for the demo page: .npy parsing, random/zero input
// generation from input metadata, float16 conversion and output summaries.

/** The typed array holding each tensor type's elements (float16 as raw bits). */
export const ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array,
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
};

const NPY_TYPES = {
  f4: 'float32', f8: 'float64', f2: 'float16', i1: 'int8', u1: 'uint8', i2: 'int16', u2: 'uint16',
  i4: 'int32', u4: 'uint32', i8: 'int64', u8: 'uint64', b1: 'bool',
};

/** Parse a little-endian, C-order `.npy` file: `{type, dims, data}`. */
export function parseNpy(buffer) {
  const b = new Uint8Array(buffer);
  const magic = String.fromCharCode(...b.subarray(1, 6));
  if (b[0] !== 0x93 || magic !== 'NUMPY') throw new Error('not a .npy file');
  const dv = new DataView(buffer);
  const major = b[6];
  const [len, start] = major === 1 ? [dv.getUint16(8, true), 10] : [dv.getUint32(8, true), 12];
  const header = new TextDecoder().decode(b.subarray(start, start + len));
  const descr = /'descr':\s*'([<>|=])(\w+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape) throw new Error(`cannot read the .npy header: ${header}`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error('.npy in Fortran order is not supported (save it C-contiguous)');
  if (descr[1] === '>') throw new Error('big-endian .npy is not supported');
  const type = NPY_TYPES[descr[2]];
  if (!type) throw new Error(`.npy element type '${descr[1]}${descr[2]}' is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const C = ARRAYS[type];
  const count = dims.reduce((a, d) => a * d, 1);
  const bytes = b.slice(start + len, start + len + count * C.BYTES_PER_ELEMENT);
  if (bytes.length !== count * C.BYTES_PER_ELEMENT) throw new Error(`.npy data is truncated (${dims} of ${type})`);
  return { type, dims, data: new C(bytes.buffer) };
}

/** float32 -> IEEE half bits (round to nearest even). */
export function toHalf(x) {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** IEEE half bits -> number. */
export function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** A tensor of `type` and `dims` filled with zeros or random values (floats in [-1, 1), integers in [0, 10)). */
export function makeInput(type, dims, mode) {
  const n = dims.reduce((a, d) => a * d, 1);
  if (type === 'string') return { type, dims, data: Array(n).fill('') };
  const C = ARRAYS[type];
  if (!C) throw new Error(`cannot make inputs of type '${type}'`);
  const data = new C(n);
  if (mode === 'random') {
    for (let i = 0; i < n; i++) {
      const r = Math.random();
      if (type === 'float32' || type === 'float64') data[i] = r * 2 - 1;
      else if (type === 'float16') data[i] = toHalf(r * 2 - 1);
      else if (type === 'bool') data[i] = r < 0.5 ? 0 : 1;
      else if (type === 'int64' || type === 'uint64') data[i] = BigInt(Math.floor(r * 10));
      else data[i] = Math.floor(r * 10);
    }
  }
  return { type, dims, data };
}

/** `{first: [...up to count values], min, max, mean, nan}` of an output's data. */
export function summarize(type, data, count = 12) {
  const value = (x) => (type === 'float16' ? fromHalf(x) : typeof x === 'bigint' ? Number(x) : x);
  const first = Array.from(data.slice(0, count), (x) => (type === 'string' ? x : value(x)));
  if (type === 'string') return { first };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let nan = 0;
  for (let i = 0; i < data.length; i++) {
    const x = value(data[i]);
    if (Number.isNaN(x)) {
      nan++;
      continue;
    }
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  const counted = data.length - nan;
  return { first, min, max, mean: counted ? sum / counted : NaN, nan };
}
