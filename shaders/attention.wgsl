// Strata GPU: scaled dot-product attention (ONNX Attention, opsets 23-24).
//
// One invocation per query row (batch b, query head h, query position i).
// Scores are computed once into `scratch` (one row of `kv` words per query
// row), turned into probabilities in place and multiplied by V. Everything
// accumulates in f32. Q, K, V, Y and the mask are read through strides so
// that 3-D `(batch, seq, heads * size)` and 4-D `(batch, heads, seq, size)`
// layouts need no copies; the innermost stride is always 1.
//
// Parameters: `AttentionParams`.

fn attention_at(r: u32, prm: AttentionParams) {
    let sq = prm.q_seq;
    let i = r % sq;
    let bh = r / sq;
    let h = bh % prm.q_heads;
    let b = bh / prm.q_heads;
    let kv = prm.kv;
    let hk = h / prm.group;
    let qo = b * attention_params_q_strides(0u) + h * attention_params_q_strides(1u) + i * attention_params_q_strides(2u);
    let ko = b * attention_params_k_strides(0u) + hk * attention_params_k_strides(1u);
    let ks = attention_params_k_strides(2u);
    let vo = b * attention_params_v_strides(0u) + hk * attention_params_v_strides(1u);
    let vs = attention_params_v_strides(2u);
    let yo = b * attention_params_y_strides(0u) + h * attention_params_y_strides(1u) + i * attention_params_y_strides(2u);
    let mkind = prm.mask_kind;
    let mo = b * attention_params_mask_strides(0u) + h * attention_params_mask_strides(1u)
        + i * attention_params_mask_strides(2u);
    let mlen = prm.mask_len;
    let ss = prm.sqrt_scale;
    let cap = prm.softcap;
    let causal = prm.is_causal != 0u;
    let left = prm.left_window;
    let right = prm.right_window;
    let has_nonpad = prm.has_nonpad != 0u;
    let mode = prm.qk_mode;
    let NEG_INF = f32_bits(0xff800000u);
    var valid = i32(kv);
    var offset = prm.past_len;
    if has_nonpad {
        valid = nonpad[b];
        offset = valid - i32(sq);
    }
    let pos = i32(i) + offset;
    let row = r * kv;

    var mx = NEG_INF;
    var saw_nan = false;
    var all_masked = true;
    for (var j = 0u; j < kv; j = j + 1u) {
        var acc = 0.0;
        for (var d = 0u; d < prm.head_size; d = d + 1u) {
            acc = acc + (q[qo + d] * ss) * (k[ko + j * ks + d] * ss);
        }
        var capped = acc;
        if cap > 0.0 {
            capped = tanh(acc / cap) * cap;
        }
        var bias = 0.0;
        if mkind != MASK_NONE {
            if j >= mlen {
                bias = NEG_INF;
            } else {
                let m = mask[mo + j];
                if mkind == MASK_BOOL {
                    bias = select(NEG_INF, 0.0, m != 0u);
                } else {
                    bias = bitcast<f32>(m);
                }
            }
        }
        let jj = i32(j);
        let dist = pos - jj;
        if causal && jj > pos {
            bias = bias + NEG_INF;
        }
        if (left >= 0 && dist > left) || (right >= 0 && -dist > right) {
            bias = bias + NEG_INF;
        }
        if has_nonpad && jj >= valid {
            bias = bias + NEG_INF;
        }
        if is_nan_f(bias) || bias != NEG_INF {
            all_masked = false;
        }
        let logit = capped + bias;
        scratch[row + j] = logit;
        if mode == QK_RAW {
            qk[row + j] = acc;
        } else if mode == QK_CAPPED {
            qk[row + j] = capped;
        } else if mode == QK_BIASED {
            qk[row + j] = logit;
        }
        if is_nan_f(logit) {
            saw_nan = true;
        } else {
            mx = max(mx, logit);
        }
    }
    if saw_nan {
        mx = f32_bits(0x7fc00000u);
    } else if mx == NEG_INF {
        mx = 0.0;
    }
    var sum = 0.0;
    for (var j = 0u; j < kv; j = j + 1u) {
        let e = exp(scratch[row + j] - mx);
        scratch[row + j] = e;
        sum = sum + e;
    }
    if sum == 0.0 {
        sum = 1.0;
    }
    for (var j = 0u; j < kv; j = j + 1u) {
        var p = scratch[row + j] / sum;
        if all_masked {
            p = 0.0;
        }
        scratch[row + j] = p;
        if mode == QK_PROBABILITIES {
            qk[row + j] = p;
        }
    }
    for (var e = 0u; e < prm.v_head_size; e = e + 1u) {
        var acc = 0.0;
        for (var j = 0u; j < kv; j = j + 1u) {
            acc = acc + scratch[row + j] * v[vo + j * vs + e];
        }
        out[yo + e] = acc;
    }
}

