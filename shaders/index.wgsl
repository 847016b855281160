// Strata GPU: index-driven copies (dtype-agnostic 32-bit words).
//
// gather_nd: params [n, k, slice, tuples per batch entry, batch stride,
//   -, -, -, dims[8] @8 (data axes addressed by a tuple), strides[8] @16].
//   Output element i copies element (i % slice) of the slice addressed by
//   index tuple i / slice (negative indices count from the end, clamped).
// reverse_sequence: params [n, batch stride, batch size, time stride, time
//   size]; the first lens[b] time steps of batch entry b are reversed.

@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

@compute @workgroup_size(64)
fn gather_nd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let k = P(1u);
    let slice = P(2u);
    let e = i % slice;
    let t = i / slice;
    var off = (t / P(3u)) * P(4u);
    for (var j = 0u; j < k; j = j + 1u) {
        let dim = i32(P(8u + j));
        var v = idx[t * k + j];
        if v < 0 {
            v = v + dim;
        }
        off = off + u32(clamp(v, 0, dim - 1)) * P(16u + j);
    }
    out[i] = src[off + e];
}

@compute @workgroup_size(64)
fn reverse_sequence(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let b = (i / P(1u)) % P(2u);
    let ts = P(3u);
    let t = (i / ts) % P(4u);
    let len = u32(clamp(idx[b], 0, i32(P(4u))));
    var s = t;
    if t < len {
        s = len - 1u - t;
    }
    out[i] = src[i - t * ts + s * ts];
}
