// `strata/webgpu`: the same API with the 'webgpu-full' variant selected.
export * from './index.js';
