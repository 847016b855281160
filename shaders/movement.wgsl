// Strata GPU: data movement kernels (dtype-agnostic 32-bit words).
//
// `copy_strided` covers Transpose, Slice, Expand, Concat, Split and Tile-free
// copies: out[out_off + sum c_k * os_k] = in[in_off + sum c_k * is_k] over
// the coordinates c of `shape`. Strides are signed (negative Slice steps).

override PAD_MODE: u32 = 0u;

// Parameters: `CopyStridedParams`.
fn copy_strided_at(i: u32, p: CopyStridedParams) {
    let rank = p.rank;
    var rem = i;
    var si = p.in_off;
    var so = p.out_off;
    for (var d = rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = copy_strided_params_shape(k);
        let coord = next_coord(&rem, dim);
        si = si + i32(coord) * copy_strided_params_in_strides(k);
        so = so + coord * copy_strided_params_out_strides(k);
    }
    out[so] = src[u32(si)];
}

// Gather along one axis (parameters: `GatherParams`).
// out[(o * nidx + j) * inner + r] = src[(o * axis_dim + idx[j]) * inner + r];
// negative indices count from the end; indices are range-checked on the host
// when constant, clamped here otherwise (never an out-of-bounds read).
fn gather_at(i: u32, p: GatherParams) {
    let inner = p.inner;
    let r = i % inner;
    let j = (i / inner) % p.nidx;
    let o = i / (inner * p.nidx);
    let axis_dim = p.axis_dim;
    var k = idx[j];
    if k < 0 {
        k = k + i32(axis_dim);
    }
    let kk = u32(clamp(k, 0, i32(axis_dim) - 1));
    out[i] = src[(o * axis_dim + kk) * inner + r];
}

// Pad (parameters: `PadParams`). PAD_MODE: PAD_CONSTANT, PAD_EDGE, PAD_REFLECT or PAD_WRAP.
fn pad_at(i: u32, p: PadParams) {
    let rank = p.rank;
    var rem = i;
    var off = 0u;
    var inside = true;
    for (var d = rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = pad_params_out_shape(k);
        let coord = i32(rem % dim);
        rem = rem / dim;
        let n_in = i32(pad_params_in_shape(k));
        var c = coord - pad_params_pad_begin(k);
        if c < 0 || c >= n_in {
            if PAD_MODE == PAD_CONSTANT {
                inside = false;
            } else if PAD_MODE == PAD_EDGE {
                c = clamp(c, 0, n_in - 1);
            } else if PAD_MODE == PAD_WRAP {
                c = ((c % n_in) + n_in) % n_in;
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
        off = off + u32(max(c, 0)) * pad_params_in_strides(k);
    }
    out[i] = select(p.value, src[off], inside);
}

// Trilu (parameters: `TriluParams`): keeps the upper (or lower) triangle
// of every trailing matrix, zero elsewhere.
fn trilu_at(i: u32, p: TriluParams) {
    let cols = p.cols;
    let c = i32(i % cols);
    let r = i32((i / cols) % p.rows);
    let k = p.k;
    var keep = c - r <= k;
    if p.upper != 0u {
        keep = c - r >= k;
    }
    out[i] = select(0u, src[i], keep);
}

// GatherElements (parameters: `GatherElementsParams`): out has the indices' shape and reads data at the
// same coordinates except along `axis`, where it takes the index (negative
// counts from the end; clamped like `gather`).
fn gather_elements_at(i: u32, p: GatherElementsParams) {
    let rank = p.rank;
    let axis = p.axis;
    let axis_dim = p.axis_dim;
    var k = idx[i];
    if k < 0 {
        k = k + i32(axis_dim);
    }
    let kk = u32(clamp(k, 0, i32(axis_dim) - 1));
    var rem = i;
    var off = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let j = d - 1u;
        let dim = gather_elements_params_idx_shape(j);
        let coord = next_coord(&rem, dim);
        off = off + select(coord, kk, j == axis) * gather_elements_params_data_strides(j);
    }
    out[i] = src[off];
}
