// `strata/webgpu`: the package with the CPU+WebGPU build ('webgpu-full')
// selected. `Session.create` then defaults to `backends: ['webgpu', 'cpu']`.
import { setVariant } from './index.js';

setVariant('webgpu-full');

export * from './index.js';
