// Strata GPU: LinearAttention (opset 27), recurrent over time.
//
// Every column m of a key/value head's state S (d_k x d_v) evolves
// independently, so one invocation owns column m of head hk in batch b and
// runs every time step: decay (gated rules), the delta correction
// beta * (v - S^T k) (delta rules), S += k (x) write, then each query head
// of the group reads o[m] = scale * q^T S[:, m]. The state lives in the
// `state` output (batch, kv_heads, d_k, d_v) throughout.
//
// Parameters: `LinearAttentionParams`.

fn linear_attention_at(i: u32, p: LinearAttentionParams) {
    let hkv = p.kv_heads;
    let time = p.time;
    let dk = p.d_k;
    let dv = p.d_v;
    let m = i % dv;
    let bh = i / dv;
    let hk = bh % hkv;
    let b = bh / hkv;
    let s0 = (b * hkv + hk) * dk * dv + m;
    for (var d = 0u; d < dk; d = d + 1u) {
        var s = 0.0;
        if p.has_past != 0u {
            s = past[s0 + d * dv];
        }
        state[s0 + d * dv] = s;
    }
    // Decay and beta words per (batch, time) step: 0 when absent, 1 or
    // one per head (or per key dimension for the decay) otherwise.
    let glast = p.decay_last;
    let blast = p.beta_last;
    for (var t = 0u; t < time; t = t + 1u) {
        let bt = b * time + t;
        let kb = bt * hkv * dk + hk * dk;
        if glast != 0u {
            for (var d = 0u; d < dk; d = d + 1u) {
                var gi = bt * glast + hk;
                if glast != hkv {
                    gi = bt * glast + hk * dk + d;
                }
                state[s0 + d * dv] = state[s0 + d * dv] * exp(decay[gi]);
            }
        }
        var w = v[bt * hkv * dv + hk * dv + m];
        if blast != 0u {
            var bi = bt * blast;
            if blast != 1u {
                bi = bi + hk;
            }
            var retrieved = 0.0;
            for (var d = 0u; d < dk; d = d + 1u) {
                retrieved = retrieved + state[s0 + d * dv] * k[kb + d];
            }
            w = beta[bi] * (w - retrieved);
        }
        for (var d = 0u; d < dk; d = d + 1u) {
            state[s0 + d * dv] = state[s0 + d * dv] + k[kb + d] * w;
        }
        for (var h = hk * p.group; h < (hk + 1u) * p.group; h = h + 1u) {
            var acc = 0.0;
            let qb = bt * p.q_heads * dk + h * dk;
            for (var d = 0u; d < dk; d = d + 1u) {
                acc = acc + q[qb + d] * state[s0 + d * dv];
            }
            out[bt * p.q_heads * dv + h * dv + m] = p.scale * acc;
        }
    }
}
