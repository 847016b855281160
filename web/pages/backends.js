// The backend choices of the pages: which wasm build variant (web/pkg/<variant>)
// they load and which Strata backends a session asks for.
export const BACKENDS = {
  cpu: { variant: 'cpu-full', backends: ['cpu'], strict: false, label: 'wasm CPU' },
  webgpu: { variant: 'webgpu-full', backends: ['webgpu', 'cpu'], strict: false, label: 'WebGPU, CPU fallback' },
  'webgpu-strict': { variant: 'webgpu-full', backends: ['webgpu'], strict: true, label: 'WebGPU only (strict)' },
};
