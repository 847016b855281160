// Strata GPU: SwiGLU.
//
// swiglu: out = a * sigmoid(alpha * a) * b.

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

@compute @workgroup_size(64)
fn swiglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = swiglu_params();
    if i >= p.n {
        return;
    }
    let x = a[i];
    out[i] = x * sigmoid_f(p.alpha * x) * b[i];
}
