// Strata GPU: tensors generated from parameters (ConstantOfShape, Range,
// EyeLike). DT says how words are written: 0 f32, 1 i32 (and int64 as i32),
// 2 bool (u32 0/1).
//
// fill: every element is `word`. Parameters: `FillParams`.
// range: out[i] = start + i * delta (as DT). Parameters: `RangeParams`.
// eye: `one` where col - row == k, else 0. Parameters: `EyeParams`.

override DT: u32 = DT_F32;

@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = fill_params();
    if i >= p.n {
        return;
    }
    out[i] = p.word;
}

@compute @workgroup_size(64)
fn range(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = range_params();
    if i >= p.n {
        return;
    }
    if DT == DT_F32 {
        out[i] = bitcast<u32>(p.start + f32(i) * p.delta);
    } else {
        out[i] = bitcast<u32>(p.start_int + i32(i) * p.delta_int);
    }
}

@compute @workgroup_size(64)
fn eye(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = eye_params();
    if i >= p.n {
        return;
    }
    let r = i32(i / p.cols);
    let c = i32(i % p.cols);
    out[i] = select(0u, p.one, c - r == p.k);
}
