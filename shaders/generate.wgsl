// Strata GPU: tensors generated from parameters (ConstantOfShape, Range,
// EyeLike). DT says how words are written: 0 f32, 1 i32 (and int64 as i32),
// 2 bool (u32 0/1).
//
// fill: params [n, word]; every element is `word`.
// range: params [n, start, delta] (as DT); out[i] = start + i * delta.
// eye: params [n, cols, k (i32), one word]; 1 where col - row == k, else 0.

override DT: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    out[i] = P(1u);
}

@compute @workgroup_size(64)
fn range(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    if DT == 0u {
        out[i] = bitcast<u32>(bitcast<f32>(P(1u)) + f32(i) * bitcast<f32>(P(2u)));
    } else {
        out[i] = bitcast<u32>(bitcast<i32>(P(1u)) + i32(i) * bitcast<i32>(P(2u)));
    }
}

@compute @workgroup_size(64)
fn eye(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let cols = P(1u);
    let r = i32(i / cols);
    let c = i32(i % cols);
    out[i] = select(0u, P(3u), c - r == bitcast<i32>(P(2u)));
}
