// Strata GPU: data movement kernels (dtype-agnostic 32-bit words).
//
// `copy_strided` covers Transpose, Slice, Expand, Concat, Split and Tile-free
// copies: out[out_off + sum c_k * os_k] = in[in_off + sum c_k * is_k] over
// the coordinates c of `shape`. Strides are signed (negative Slice steps).

@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

override PAD_MODE: u32 = 0u;

// params [n, rank, in_off, out_off, shape[8] @4, in_strides[8] @12, out_strides[8] @20]
@compute @workgroup_size(64)
fn copy_strided(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let rank = P(1u);
    var rem = i;
    var si = i32(P(2u));
    var so = P(3u);
    for (var d = rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = P(4u + k);
        let coord = rem % dim;
        rem = rem / dim;
        si = si + i32(coord) * bitcast<i32>(P(12u + k));
        so = so + coord * P(20u + k);
    }
    out[so] = src[u32(si)];
}

// Gather along one axis: params [n, axis_dim, inner, nidx].
// out[(o * nidx + j) * inner + r] = src[(o * axis_dim + idx[j]) * inner + r];
// negative indices count from the end; indices are range-checked on the host
// when constant, clamped here otherwise (never an out-of-bounds read).
@compute @workgroup_size(64)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let axis_dim = P(1u);
    let inner = P(2u);
    let nidx = P(3u);
    let r = i % inner;
    let j = (i / inner) % nidx;
    let o = i / (inner * nidx);
    var k = idx[j];
    if k < 0 {
        k = k + i32(axis_dim);
    }
    let kk = u32(clamp(k, 0, i32(axis_dim) - 1));
    out[i] = src[(o * axis_dim + kk) * inner + r];
}

// Pad: params [n, rank, value, pad, out_shape[8] @4, in_shape[8] @12,
// pad_begin[8] (i32) @20, in_strides[8] @28]. PAD_MODE: 0 constant, 1 edge, 2 reflect.
@compute @workgroup_size(64)
fn pad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let rank = P(1u);
    var rem = i;
    var off = 0u;
    var inside = true;
    for (var d = rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = P(4u + k);
        let coord = i32(rem % dim);
        rem = rem / dim;
        let n_in = i32(P(12u + k));
        var c = coord - bitcast<i32>(P(20u + k));
        if c < 0 || c >= n_in {
            if PAD_MODE == 0u {
                inside = false;
            } else if PAD_MODE == 1u {
                c = clamp(c, 0, n_in - 1);
            } else {
                let period = max(2 * (n_in - 1), 1);
                var m = c % period;
                if m < 0 {
                    m = m + period;
                }
                c = select(m, period - m, m >= n_in);
                c = clamp(c, 0, n_in - 1);
            }
        }
        off = off + u32(max(c, 0)) * P(28u + k);
    }
    out[i] = select(P(2u), src[off], inside);
}

// Trilu: params [n, rows, cols, k (i32), upper]; keeps the upper (or lower)
// triangle of every trailing matrix, zero elsewhere.
@compute @workgroup_size(64)
fn trilu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let cols = P(2u);
    let c = i32(i % cols);
    let r = i32((i / cols) % P(1u));
    let k = bitcast<i32>(P(3u));
    var keep = c - r <= k;
    if P(4u) != 0u {
        keep = c - r >= k;
    }
    out[i] = select(0u, src[i], keep);
}

// GatherElements: params [n, rank, axis, axis_dim, idx_shape[8] @4,
// data_strides[8] @12]; out has the indices' shape and reads data at the
// same coordinates except along `axis`, where it takes the index (negative
// counts from the end; clamped like `gather`).
@compute @workgroup_size(64)
fn gather_elements(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let rank = P(1u);
    let axis = P(2u);
    let axis_dim = P(3u);
    var k = idx[i];
    if k < 0 {
        k = k + i32(axis_dim);
    }
    let kk = u32(clamp(k, 0, i32(axis_dim) - 1));
    var rem = i;
    var off = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let j = d - 1u;
        let dim = P(4u + j);
        let coord = rem % dim;
        rem = rem / dim;
        off = off + select(coord, kk, j == axis) * P(12u + j);
    }
    out[i] = src[off];
}
