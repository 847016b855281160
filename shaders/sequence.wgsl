// Strata GPU: CausalConvWithState (opset 27): a depthwise causal 1-D
// convolution whose input is prefixed with the carried state.
//
// causal_conv: params [n_out, n_state, C, L, K, has_bias, has_past, silu].
//   Invocations below n_out compute `out` (batch, C, L); the next n_state
//   ones the new state (batch, C, K - 1): the last K - 1 positions of the
//   prefixed sequence.

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read> past: array<f32>;

// Position p of channel row bc of the state-prefixed sequence.
fn padded(bc: u32, p: u32) -> f32 {
    let l = P(3u);
    let km1 = P(4u) - 1u;
    if p < km1 {
        if P(6u) != 0u {
            return past[bc * km1 + p];
        }
        return 0.0;
    }
    return x[bc * l + p - km1];
}

@compute @workgroup_size(64)
fn causal_conv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    let n_out = P(0u);
    let c_n = P(2u);
    let l = P(3u);
    let k = P(4u);
    if i < n_out {
        let pos = i % l;
        let bc = i / l;
        let c = bc % c_n;
        var acc = 0.0;
        for (var t = 0u; t < k; t = t + 1u) {
            acc = acc + w[c * k + t] * padded(bc, pos + t);
        }
        var y = acc;
        if P(5u) != 0u {
            y = y + bias[c];
        }
        if P(7u) != 0u {
            var s: f32;
            if y >= 0.0 {
                s = 1.0 / (1.0 + exp(-y));
            } else {
                let e = exp(y);
                s = e / (1.0 + e);
            }
            y = y * s;
        }
        out[i] = y;
        return;
    }
    let j = i - n_out;
    if j >= P(1u) {
        return;
    }
    let km1 = k - 1u;
    state[j] = padded(j / km1, l + j % km1);
}
