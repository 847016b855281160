// Strata GPU: ScatterElements, ScatterND (the data is first copied into
// `out`) and OneHot. DT says how words are read: 0 f32, 1 i32, 2 bool.
// RED: 0 none, 1 add, 2 mul, 3 max, 4 min. Updates that hit the same element
// are applied in index order by one invocation, so results are
// deterministic. Indices are normalised (negative counts from the end) and
// clamped (checked on the host when known; never an out-of-bounds write).
//
// scatter_elements: one invocation per index line along `axis`; params
//   [lines, rank, axis, idx_axis_len, data_axis_len, -, -, -,
//    idx_shape with the axis set to 1 [8] @8, out_strides[8] @16, idx_strides[8] @24]
// scatter_nd: one invocation per element of a slice; params
//   [slice, tuples, k, -, data_shape[8] @4 (first k), data_strides[8] @12]
// one_hot: params [n, depth, inner, indices are f32]; out = values[1] where
//   the index equals the position along the new axis, values[0] elsewhere.

override DT: u32 = 0u;
override RED: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> upd: array<u32>;

fn is_nan(x: f32) -> bool {
    let b = bitcast<u32>(x);
    return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}

fn norm_index(v: i32, dim: u32) -> u32 {
    var k = v;
    if k < 0 {
        k = k + i32(dim);
    }
    return u32(clamp(k, 0, i32(dim) - 1));
}

fn combine(a: u32, b: u32) -> u32 {
    if RED == 0u {
        return b;
    }
    if DT == 0u {
        let x = bitcast<f32>(a);
        let y = bitcast<f32>(b);
        if RED == 1u {
            return bitcast<u32>(x + y);
        }
        if RED == 2u {
            return bitcast<u32>(x * y);
        }
        if is_nan(x) || is_nan(y) {
            return 0x7fc00000u;
        }
        if RED == 3u {
            return bitcast<u32>(max(x, y));
        }
        return bitcast<u32>(min(x, y));
    }
    if DT == 2u {
        if RED == 1u || RED == 3u {
            return a | b;
        }
        return a & b;
    }
    let x = bitcast<i32>(a);
    let y = bitcast<i32>(b);
    if RED == 1u {
        return bitcast<u32>(x + y);
    }
    if RED == 2u {
        return bitcast<u32>(x * y);
    }
    if RED == 3u {
        return bitcast<u32>(max(x, y));
    }
    return bitcast<u32>(min(x, y));
}

@compute @workgroup_size(64)
fn scatter_elements(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lidx: u32) {
    let r = linear_index(wid, nwg, lidx);
    if r >= P(0u) {
        return;
    }
    let rank = P(1u);
    let axis = P(2u);
    let alen = P(3u);
    let dlen = P(4u);
    var rem = r;
    var obase = 0u;
    var ibase = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = P(8u + k);
        let c = rem % dim;
        rem = rem / dim;
        obase = obase + c * P(16u + k);
        ibase = ibase + c * P(24u + k);
    }
    for (var t = 0u; t < alen; t = t + 1u) {
        let ii = ibase + t * P(24u + axis);
        let o = obase + norm_index(bitcast<i32>(idx[ii]), dlen) * P(16u + axis);
        out[o] = combine(out[o], upd[ii]);
    }
}

@compute @workgroup_size(64)
fn scatter_nd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lidx: u32) {
    let e = linear_index(wid, nwg, lidx);
    let slice = P(0u);
    if e >= slice {
        return;
    }
    let tuples = P(1u);
    let k = P(2u);
    for (var t = 0u; t < tuples; t = t + 1u) {
        var off = 0u;
        for (var j = 0u; j < k; j = j + 1u) {
            off = off + norm_index(bitcast<i32>(idx[t * k + j]), P(4u + j)) * P(12u + j);
        }
        let o = off + e;
        out[o] = combine(out[o], upd[t * slice + e]);
    }
}

@compute @workgroup_size(64)
fn one_hot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let depth = P(1u);
    let inner = P(2u);
    let pos = i % inner;
    let cls = (i / inner) % depth;
    let outer = i / (inner * depth);
    let w = idx[outer * inner + pos];
    var v: i32;
    if P(3u) != 0u {
        v = i32(trunc(bitcast<f32>(w)));
    } else {
        v = bitcast<i32>(w);
    }
    if v < 0 {
        v = v + i32(depth);
    }
    out[i] = upd[select(0u, 1u, v == i32(cls))];
}

// TensorScatter: the cache is first copied into `out`; one invocation per
// update element writes it at position write_indices[b] + t along `axis`
// (modulo the cache length when circular). params [n, rank, axis, max_len,
// circular, has write_indices, -, -, upd_shape[8] @8, out_strides[8] @16]
@compute @workgroup_size(64)
fn tensor_scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let rank = P(1u);
    let axis = P(2u);
    let max_len = P(3u);
    var rem = i;
    var off = 0u;
    var b = 0u;
    var t = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let c = rem % P(8u + k);
        rem = rem / P(8u + k);
        if k == 0u {
            b = c;
        }
        if k == axis {
            t = c;
        } else {
            off = off + c * P(16u + k);
        }
    }
    var w = 0u;
    if P(5u) != 0u {
        w = u32(max(bitcast<i32>(idx[b]), 0));
    }
    var pos = w + t;
    if P(4u) != 0u {
        pos = pos % max_len;
    } else if pos >= max_len {
        return;
    }
    out[off + pos * P(16u + axis)] = upd[i];
}
