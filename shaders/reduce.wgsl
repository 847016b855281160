// Strata GPU: reductions over any set of axes. One invocation per output
// element walks the reduced index space in a fixed order (f32 accumulation).
// Parameters: `ReduceParams`.
// OP: a `REDUCE_*` code (`reduce`), an `ARG_*` code (`arg_reduce`).

override OP: u32 = 0u;
// DT (`reduce`): the input's words; other than DT_F32 only for MAX / MIN.
override DT: u32 = DT_F32;

// Output words: f32 bits for reductions, i32 for arg reductions.

// Offset of the `k`-th element of `keep_shape` (by `in_strides`: output
// k's first input) or, when `reduced`, of `red_shape` (by `red_strides`:
// the k-th reduced element from an output's first input).
fn strided_offset(k: u32, rank: u32, reduced: bool) -> u32 {
    var rem = k;
    var off = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let j = d - 1u;
        let dim = select(reduce_params_keep_shape(j), reduce_params_red_shape(j), reduced);
        let stride = select(reduce_params_in_strides(j), reduce_params_red_strides(j), reduced);
        off = off + (rem % dim) * stride;
        rem = rem / dim;
    }
    return off;
}

fn reduced_offset(k: u32, rank: u32) -> u32 {
    return strided_offset(k, rank, true);
}

// MAX / MIN of integer (DT_I32) or unsigned and bool words, exact. An
// empty bool reduction gives false (max) or true (min); the host never
// asks for an empty integer one.
fn reduce_words(base: u32, rank: u32, red_n: u32) -> u32 {
    let is_max = OP == REDUCE_MAX;
    if DT == DT_I32 {
        var acc = bitcast<i32>(x[base]);
        for (var k = 1u; k < red_n; k = k + 1u) {
            let v = bitcast<i32>(x[base + reduced_offset(k, rank)]);
            acc = select(min(acc, v), max(acc, v), is_max);
        }
        return bitcast<u32>(acc);
    }
    var acc = select(select(0xffffffffu, 1u, DT == DT_BOOL), 0u, is_max);
    for (var k = 0u; k < red_n; k = k + 1u) {
        let v = bitcast<u32>(x[base + reduced_offset(k, rank)]);
        acc = select(min(acc, v), max(acc, v), is_max);
    }
    return acc;
}

fn reduce_at(i: u32, p: ReduceParams) {
    let rank = p.rank;
    let red_n = p.red_n;
    let base = strided_offset(i, rank, false);
    if DT != DT_F32 {
        out[i] = reduce_words(base, rank, red_n);
        return;
    }
    var mx = f32_bits(0xff800000u);
    if OP == REDUCE_LOG_SUM_EXP {
        for (var k = 0u; k < red_n; k = k + 1u) {
            mx = max(mx, x[base + reduced_offset(k, rank)]);
        }
    }
    var acc = 0.0;
    switch OP {
        case REDUCE_MAX: { acc = f32_bits(0xff800000u); }
        case REDUCE_MIN: { acc = f32_bits(0x7f800000u); }
        case REDUCE_PROD: { acc = 1.0; }
        default: { acc = 0.0; }
    }
    for (var k = 0u; k < red_n; k = k + 1u) {
        let v = x[base + reduced_offset(k, rank)];
        switch OP {
            case REDUCE_MAX: { acc = max(acc, v); }
            case REDUCE_MIN: { acc = min(acc, v); }
            case REDUCE_PROD: { acc = acc * v; }
            case REDUCE_SUM_SQUARE, REDUCE_L2: { acc = acc + v * v; }
            case REDUCE_L1: { acc = acc + abs(v); }
            case REDUCE_LOG_SUM_EXP: { acc = acc + exp(v - mx); }
            default: { acc = acc + v; }
        }
    }
    switch OP {
        case REDUCE_MEAN: { acc = acc / f32(red_n); }
        case REDUCE_L2: { acc = sqrt(acc); }
        case REDUCE_LOG_SUM: { acc = log_ieee(acc); }
        case REDUCE_LOG_SUM_EXP: { acc = log_ieee(acc) + mx; }
        default: {}
    }
    out[i] = bitcast<u32>(acc);
}

// ArgMax (OP = ARG_MAX) / ArgMin (ARG_MIN) along one axis (parameters: `ReduceParams`,
// with `select_last`); writes the index as an i32 word.
fn arg_reduce_at(i: u32, p: ReduceParams) {
    let rank = p.rank;
    let red_n = p.red_n;
    let last = p.select_last != 0u;
    let base = strided_offset(i, rank, false);
    var best = x[base];
    var best_k = 0u;
    for (var k = 1u; k < red_n; k = k + 1u) {
        let v = x[base + reduced_offset(k, rank)];
        var better = false;
        if OP == ARG_MAX {
            better = v > best || (last && v == best);
        } else {
            better = v < best || (last && v == best);
        }
        if better {
            best = v;
            best_k = k;
        }
    }
    out[i] = best_k;
}

