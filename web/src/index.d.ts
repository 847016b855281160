export type TensorType =
  | 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16'
  | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool' | 'string';

export type TensorData =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | string[];

export class Tensor {
  constructor(type: TensorType, data: TensorData | ArrayLike<number | bigint | string>, dims?: number[]);
  readonly type: TensorType;
  readonly dims: number[];
  data: TensorData | null;
  dispose(): void;
}

export interface ValueMetadata {
  name: string;
  type: string;
  /** Numbers for known sizes, names for symbolic ones, null when unknown. */
  dims?: (number | string | null)[];
}

export interface Placement {
  node: string;
  op: string;
  backend: 'webgpu' | 'cpu' | 'reference' | 'host';
  /** Why the preferred backends did not take the node (empty when the first did). */
  reason: string;
}

export interface SessionOptions {
  /**
   * In order of preference. Default: ['webgpu', 'cpu'] in the 'webgpu-full'
   * variant, ['cpu'] otherwise. 'cpu' is the optimised wasm (simd128)
   * backend; 'reference' the readable oracle. An unavailable 'webgpu' is
   * skipped and the reason appears in `placement()` (with `strict`, creation
   * fails instead).
   */
  backends?: ('webgpu' | 'cpu' | 'reference')[];
  /** Fail instead of falling back to the reference for nodes no listed backend can run. */
  strict?: boolean;
}

export class Session {
  static create(model: Uint8Array | ArrayBuffer | string | URL, options?: SessionOptions): Promise<Session>;
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputMetadata: ValueMetadata[];
  readonly outputMetadata: ValueMetadata[];
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  placement(): Placement[];
  /** Work counters since creation (WebGPU dispatches and submissions, CPU↔GPU transfers). */
  counters(): { dispatches: number; submits: number; uploads: number; downloads: number };
  release(): void;
}

/** Nodes of a model (main graph and branches), not counting `Constant` nodes, as loaded. */
export function modelNodeCount(model: Uint8Array | ArrayBuffer): Promise<number>;

export function init(source?: string | URL | BufferSource | WebAssembly.Module): Promise<unknown>;
export type Variant = 'cpu-full' | 'cpu-artifact' | 'webgpu-full';
export const VARIANTS: Variant[];
/** Choose the build variant before the first `init`/`Session.create` (`strata/webgpu` selects 'webgpu-full'). */
export function setVariant(name: Variant): void;
export function getVariant(): Variant;
/** The WebGPU adapter in use, or null when no WebGPU device was created. */
export function webgpuAdapter(): string | null;
