// Strata GPU: Einsum as one generic contraction, one invocation per output
// element: the sum over every assignment of the summed index variables of
// the product of the operands (f32 words, up to 4 operands).
//
// Parameters: `EinsumParams`; operand k's steps for the output variables
// are out_steps[8 k + v], for the summed ones sum_steps[8 k + v] (a
// repeated letter's steps are added, walking a diagonal; broadcast axes
// step 0).

fn operand(k: u32, i: u32) -> f32 {
    switch k {
        case 0u: { return a0[i]; }
        case 1u: { return a1[i]; }
        case 2u: { return a2[i]; }
        default: { return a3[i]; }
    }
}

fn einsum_at(i: u32, p: EinsumParams) {
    let no = p.n_out_vars;
    let ns = p.n_sum_vars;
    let nops = p.n_operands;
    var base: array<u32, 4>;
    var rem = i;
    for (var v = no; v > 0u; v = v - 1u) {
        let c = next_coord(&rem, einsum_params_out_sizes(v - 1u));
        for (var k = 0u; k < nops; k = k + 1u) {
            base[k] = base[k] + c * einsum_params_out_steps(8u * k + v - 1u);
        }
    }
    var total = 1u;
    for (var v = 0u; v < ns; v = v + 1u) {
        total = total * einsum_params_sum_sizes(v);
    }
    var acc = 0.0;
    for (var t = 0u; t < total; t = t + 1u) {
        var r = t;
        var off: array<u32, 4> = base;
        for (var v = ns; v > 0u; v = v - 1u) {
            let c = r % einsum_params_sum_sizes(v - 1u);
            r = r / einsum_params_sum_sizes(v - 1u);
            for (var k = 0u; k < nops; k = k + 1u) {
                off[k] = off[k] + c * einsum_params_sum_steps(8u * k + v - 1u);
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
