// Strata GPU: CausalConvWithState (opset 27): a depthwise causal 1-D
// convolution whose input is prefixed with the carried state.
//
// causal_conv: invocations below n_out compute `out` (batch, C, L); the
//   next n_state ones the new state (batch, C, K - 1): the last K - 1
//   positions of the prefixed sequence. Parameters: `CausalConvParams`.

// Position p of channel row bc of the state-prefixed sequence.
fn padded(bc: u32, p: u32) -> f32 {
    let prm = causal_conv_params();
    let l = prm.len;
    let km1 = prm.k - 1u;
    if p < km1 {
        if prm.has_past != 0u {
            return past[bc * km1 + p];
        }
        return 0.0;
    }
    return x[bc * l + p - km1];
}

@compute @workgroup_size(64)
fn causal_conv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = causal_conv_params();
    let n_out = p.n_out;
    let c_n = p.channels;
    let l = p.len;
    let k = p.k;
    if i < n_out {
        let pos = i % l;
        let bc = i / l;
        let c = bc % c_n;
        var acc = 0.0;
        for (var t = 0u; t < k; t = t + 1u) {
            acc = acc + w[c * k + t] * padded(bc, pos + t);
        }
        var y = acc;
        if p.has_bias != 0u {
            y = y + bias[c];
        }
        if p.silu != 0u {
            y = y * sigmoid_f(y);
        }
        out[i] = y;
        return;
    }
    let j = i - n_out;
    if j >= p.n_state {
        return;
    }
    let km1 = k - 1u;
    state[j] = padded(j / km1, l + j % km1);
}
