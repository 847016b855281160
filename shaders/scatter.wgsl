// Strata GPU: ScatterElements, ScatterND (the data is first copied into
// `out`) and OneHot. DT says how words are read: 0 f32, 1 i32, 2 bool.
// RED: a RED_* code (none, add, mul, max, min). Updates that hit the same
// element are applied in index order by one invocation, so results are
// deterministic. Indices are normalised (negative counts from the end) and
// clamped (checked on the host when known; never an out-of-bounds write).
//
// scatter_elements: one invocation per index line along `axis`.
//   Parameters: `ScatterElementsParams`.
// scatter_nd: one invocation per element of a slice. Parameters:
//   `ScatterNdParams`.
// one_hot: out = values[1] where the index equals the position along the
//   new axis, values[0] elsewhere. Parameters: `OneHotParams`.

override DT: u32 = DT_F32;
override RED: u32 = 0u;

fn combine(a: u32, b: u32) -> u32 {
    if RED == RED_NONE {
        return b;
    }
    if DT == DT_F32 {
        let x = bitcast<f32>(a);
        let y = bitcast<f32>(b);
        if RED == RED_ADD {
            return bitcast<u32>(x + y);
        }
        if RED == RED_MUL {
            return bitcast<u32>(x * y);
        }
        if is_nan_f(x) || is_nan_f(y) {
            return 0x7fc00000u;
        }
        if RED == RED_MAX {
            return bitcast<u32>(max(x, y));
        }
        return bitcast<u32>(min(x, y));
    }
    if DT == DT_BOOL {
        if RED == RED_ADD || RED == RED_MAX {
            return a | b;
        }
        return a & b;
    }
    let x = bitcast<i32>(a);
    let y = bitcast<i32>(b);
    if RED == RED_ADD {
        return bitcast<u32>(x + y);
    }
    if RED == RED_MUL {
        return bitcast<u32>(x * y);
    }
    if RED == RED_MAX {
        return bitcast<u32>(max(x, y));
    }
    return bitcast<u32>(min(x, y));
}

fn scatter_elements_at(r: u32, p: ScatterElementsParams) {
    let rank = p.rank;
    let axis = p.axis;
    let alen = p.idx_axis_len;
    let dlen = p.data_axis_len;
    var rem = r;
    var obase = 0u;
    var ibase = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = scatter_elements_params_line_shape(k);
        let c = next_coord(&rem, dim);
        obase = obase + c * scatter_elements_params_out_strides(k);
        ibase = ibase + c * scatter_elements_params_idx_strides(k);
    }
    for (var t = 0u; t < alen; t = t + 1u) {
        let ii = ibase + t * scatter_elements_params_idx_strides(axis);
        let o = obase + norm_index(bitcast<i32>(idx[ii]), dlen) * scatter_elements_params_out_strides(axis);
        out[o] = combine(out[o], upd[ii]);
    }
}

fn scatter_nd_at(e: u32, p: ScatterNdParams) {
    let slice = p.slice;
    let tuples = p.tuples;
    let k = p.k;
    for (var t = 0u; t < tuples; t = t + 1u) {
        var off = 0u;
        for (var j = 0u; j < k; j = j + 1u) {
            off = off + norm_index(bitcast<i32>(idx[t * k + j]), scatter_nd_params_data_shape(j))
                * scatter_nd_params_data_strides(j);
        }
        let o = off + e;
        out[o] = combine(out[o], upd[t * slice + e]);
    }
}

fn one_hot_at(i: u32, p: OneHotParams) {
    let depth = p.depth;
    let inner = p.inner;
    let pos = i % inner;
    let cls = (i / inner) % depth;
    let outer = i / (inner * depth);
    let w = idx[outer * inner + pos];
    var v: i32;
    if p.float_indices != 0u {
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
// (modulo the cache length when circular). Parameters: `TensorScatterParams`.
fn tensor_scatter_at(i: u32, p: TensorScatterParams) {
    let axis = p.axis;
    let max_len = p.max_len;
    var rem = i;
    var off = 0u;
    var t = 0u;
    for (var d = p.rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let c = next_coord(&rem, tensor_scatter_params_upd_shape(k));
        // The position along `axis` is chosen below; the other axes index the output.
        t = select(t, c, k == axis);
        off = off + select(c * tensor_scatter_params_out_strides(k), 0u, k == axis);
    }
    var w = 0u;
    if p.has_write_indices != 0u {
        w = u32(max(bitcast<i32>(idx[i / p.per_batch]), 0));
    }
    var pos = w + t;
    if p.circular != 0u {
        pos = pos % max_len;
    } else if pos >= max_len {
        return;
    }
    out[off + pos * tensor_scatter_params_out_strides(axis)] = upd[i];
}
