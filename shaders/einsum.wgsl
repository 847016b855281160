// Strata GPU: Einsum as one generic contraction, one invocation per output
// element: the sum over every assignment of the summed index variables of
// the product of the operands (f32 words, up to 4 operands).
//
// params [n_out, n_out_vars, n_sum_vars, n_operands,
//   out var sizes[8] @4, sum var sizes[8] @12,
//   operand k's steps for the output vars [8] @20 + 16 k and for the
//   summed vars [8] @28 + 16 k]
// (a repeated letter's steps are added, walking a diagonal; broadcast
// axes step 0).

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a0: array<f32>;
@group(0) @binding(3) var<storage, read> a1: array<f32>;
@group(0) @binding(4) var<storage, read> a2: array<f32>;
@group(0) @binding(5) var<storage, read> a3: array<f32>;

fn operand(k: u32, i: u32) -> f32 {
    switch k {
        case 0u: { return a0[i]; }
        case 1u: { return a1[i]; }
        case 2u: { return a2[i]; }
        default: { return a3[i]; }
    }
}

@compute @workgroup_size(64)
fn einsum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let no = P(1u);
    let ns = P(2u);
    let nops = P(3u);
    var base: array<u32, 4>;
    var rem = i;
    for (var v = no; v > 0u; v = v - 1u) {
        let c = rem % P(4u + v - 1u);
        rem = rem / P(4u + v - 1u);
        for (var k = 0u; k < nops; k = k + 1u) {
            base[k] = base[k] + c * P(20u + 16u * k + v - 1u);
        }
    }
    var total = 1u;
    for (var v = 0u; v < ns; v = v + 1u) {
        total = total * P(12u + v);
    }
    var acc = 0.0;
    for (var t = 0u; t < total; t = t + 1u) {
        var r = t;
        var off: array<u32, 4> = base;
        for (var v = ns; v > 0u; v = v - 1u) {
            let c = r % P(12u + v - 1u);
            r = r / P(12u + v - 1u);
            for (var k = 0u; k < nops; k = k + 1u) {
                off[k] = off[k] + c * P(28u + 16u * k + v - 1u);
            }
        }
        var prod = 1.0;
        for (var k = 0u; k < nops; k = k + 1u) {
            prod = prod * operand(k, off[k]);
        }
        acc = acc + prod;
    }
    out[i] = acc;
}
