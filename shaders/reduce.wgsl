// Strata GPU: reductions over any set of axes. One invocation per output
// element walks the reduced index space in a fixed order (f32 accumulation).
// params [n_out, rank, red_n, -, keep_shape[8] @4, in_strides[8] @12,
//         red_shape[8] @20, red_strides[8] @28]
// OP: 0 sum, 1 mean, 2 max, 3 min, 4 prod, 5 sum-square, 6 L1, 7 L2,
//     8 log-sum, 9 log-sum-exp.

override OP: u32 = 0u;

// Output words: f32 bits for reductions, i32 for arg reductions.
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

fn reduced_offset(k: u32, rank: u32) -> u32 {
    var rem = k;
    var off = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let j = d - 1u;
        let dim = P(20u + j);
        off = off + (rem % dim) * P(28u + j);
        rem = rem / dim;
    }
    return off;
}

@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let rank = P(1u);
    let red_n = P(2u);
    var rem = i;
    var base = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let j = d - 1u;
        let dim = P(4u + j);
        base = base + (rem % dim) * P(12u + j);
        rem = rem / dim;
    }
    var mx = f32_bits(0xff800000u);
    if OP == 9u {
        for (var k = 0u; k < red_n; k = k + 1u) {
            mx = max(mx, x[base + reduced_offset(k, rank)]);
        }
    }
    var acc = 0.0;
    switch OP {
        case 2u: { acc = f32_bits(0xff800000u); }
        case 3u: { acc = f32_bits(0x7f800000u); }
        case 4u: { acc = 1.0; }
        default: { acc = 0.0; }
    }
    for (var k = 0u; k < red_n; k = k + 1u) {
        let v = x[base + reduced_offset(k, rank)];
        switch OP {
            case 2u: { acc = max(acc, v); }
            case 3u: { acc = min(acc, v); }
            case 4u: { acc = acc * v; }
            case 5u, 7u: { acc = acc + v * v; }
            case 6u: { acc = acc + abs(v); }
            case 9u: { acc = acc + exp(v - mx); }
            default: { acc = acc + v; }
        }
    }
    switch OP {
        case 1u: { acc = acc / f32(red_n); }
        case 7u: { acc = sqrt(acc); }
        case 8u: { acc = log_ieee(acc); }
        case 9u: { acc = log_ieee(acc) + mx; }
        default: {}
    }
    out[i] = bitcast<u32>(acc);
}

// ArgMax (OP 0) / ArgMin (OP 1) along one axis: same parameters as `reduce`
// with word 3 = select_last_index; writes the index as an i32 word.
@compute @workgroup_size(64)
fn arg_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let rank = P(1u);
    let red_n = P(2u);
    let last = P(3u) != 0u;
    var rem = i;
    var base = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let j = d - 1u;
        let dim = P(4u + j);
        base = base + (rem % dim) * P(12u + j);
        rem = rem / dim;
    }
    var best = x[base];
    var best_k = 0u;
    for (var k = 1u; k < red_n; k = k + 1u) {
        let v = x[base + reduced_offset(k, rank)];
        var better = false;
        if OP == 0u {
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

