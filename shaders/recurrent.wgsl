// Strata GPU: one time step of the recurrent layers RNN, GRU and LSTM.
//
// The input projection X . W^T of every step is computed before the steps
// by `matmul.wgsl` into `xw` ([dir][row][gates * hidden], rows in X's own
// order: t * batch + b for layout 0, b * seq + t for layout 1). Each step
// is then one dispatch (GRU: two) with one invocation per
// (direction, batch row, hidden unit) e = (d * batch + b) * hidden + j,
// both directions in the same dispatch. Everything accumulates in f32.
//
// `state` holds six regions of ss = dirs * batch * hidden words: h and c
// of slot 0, h and c of slot 1, then the GRU gates z and r. Step k reads
// slot k % 2 and writes the other slot, so no invocation reads a word
// another one writes in the same dispatch (each reads the whole previous
// h row of its (d, b) but writes only its own unit of the other slot).
// At step 0 a missing initial_h / initial_c reads as zeros.
//
// sequence_lens: row b runs its first len_b steps (a reverse direction
// starts from its step len_b - 1); at steps k >= len_b the state is
// carried over unchanged (set to zero at k = 0, so a length of 0 gives
// zero final states) and Y at time k is zero, so every Y word is written
// exactly once.
//
// Parameters: `RecurrentParams` (mode REC_*; activation a of direction d
// at index d * 3 + a of act_code (ACT_*), act_alpha and act_beta).

// Activation a (0 f, 1 g, 2 h) of direction d, its input clipped first.
fn act(d: u32, a: u32, x: f32) -> f32 {
    let p = recurrent_params();
    var v = x;
    if p.has_clip != 0u {
        v = min(max(v, -p.clip), p.clip);
    }
    let at = d * 3u + a;
    let alpha = recurrent_params_act_alpha(at);
    let beta = recurrent_params_act_beta(at);
    switch recurrent_params_act_code(at) {
        case ACT_RELU: { return max(v, 0.0); }
        case ACT_TANH: { return tanh_f(v); }
        case ACT_SIGMOID: { return sigmoid_f(v); }
        case ACT_AFFINE: { return alpha * v + beta; }
        case ACT_LEAKY_RELU: { return select(alpha * v, v, v >= 0.0); }
        case ACT_THRESHOLDED_RELU: { return select(0.0, v, v >= alpha); }
        case ACT_SCALED_TANH: { return alpha * tanh_f(beta * v); }
        case ACT_HARD_SIGMOID: { return clamp(alpha * v + beta, 0.0, 1.0); }
        case ACT_ELU: { return select(alpha * expm1_f(v), v, v >= 0.0); }
        case ACT_SOFTSIGN: { return v / (1.0 + abs(v)); }
        case ACT_SOFTPLUS: { return softplus_f(v); }
        default: { return f32_bits(0x7fc00000u); }
    }
}

// Previous hidden state word `i` (zero at step 0 without initial_h).
fn h_prev(k: u32, src: u32, ss: u32, i: u32) -> f32 {
    if k == 0u && recurrent_params().no_initial_h != 0u {
        return 0.0;
    }
    return state[src * 2u * ss + i];
}

fn c_prev(k: u32, src: u32, ss: u32, i: u32) -> f32 {
    if k == 0u && recurrent_params().no_initial_c != 0u {
        return 0.0;
    }
    return state[(src * 2u + 1u) * ss + i];
}

// R[d][row] . h_prev of row (d, b) starting at word `hrow`.
fn rdot(rrow: u32, hrow: u32, k: u32, src: u32, ss: u32, hidden: u32) -> f32 {
    if k == 0u && recurrent_params().no_initial_h != 0u {
        return 0.0;
    }
    var s = 0.0;
    let hb = src * 2u * ss + hrow;
    for (var q = 0u; q < hidden; q = q + 1u) {
        s = s + rec[rrow + q] * state[hb + q];
    }
    return s;
}

// Input and recurrence biases of gate row `row` of direction d, summed.
fn bsum(d: u32, gh: u32, row: u32) -> f32 {
    if recurrent_params().has_bias == 0u {
        return 0.0;
    }
    return bias[d * 2u * gh + row] + bias[d * 2u * gh + gh + row];
}

fn y_index(t: u32, d: u32, b: u32, j: u32) -> u32 {
    let p = recurrent_params();
    let dirs = p.dirs;
    let batch = p.batch;
    let hidden = p.hidden;
    if p.batch_major != 0u {
        return ((b * p.seq + t) * dirs + d) * hidden + j;
    }
    return ((t * dirs + d) * batch + b) * hidden + j;
}

fn recurrent_step_at(e: u32, p: RecurrentParams) {
    let ss = p.n;
    let k = p.step;
    let seq = p.seq;
    let batch = p.batch;
    let hidden = p.hidden;
    // Element e is hidden unit j of batch entry b in direction d.
    let j = e % hidden;
    let b = (e / hidden) % batch;
    let d = e / (hidden * batch);
    let src = k % 2u;
    let dst = 1u - src;
    var len = seq;
    if p.has_lens != 0u {
        len = u32(clamp(lens[b], 0, i32(seq)));
    }
    if k >= len {
        if p.mode == REC_GRU_GATES {
            return;
        }
        var hv = 0.0;
        var cv = 0.0;
        if k > 0u {
            hv = state[src * 2u * ss + e];
            cv = state[(src * 2u + 1u) * ss + e];
        }
        state[dst * 2u * ss + e] = hv;
        state[(dst * 2u + 1u) * ss + e] = cv;
        if k < seq && p.write_y != 0u {
            y[y_index(k, d, b, j)] = 0.0;
        }
        return;
    }
    let rev = d == 1u || p.reverse != 0u;
    let t = select(k, len - 1u - k, rev);
    let row = select(t * batch + b, b * seq + t, p.batch_major != 0u);
    let gh = p.gates * hidden;
    let xb = (d * seq * batch + row) * gh;
    let rb = d * gh * hidden;
    let hrow = (d * batch + b) * hidden;
    var hn = 0.0;
    var cn = 0.0;
    switch p.mode {
        case REC_RNN: {
            let pre = xw[xb + j] + bsum(d, gh, j) + rdot(rb + j * hidden, hrow, k, src, ss, hidden);
            hn = act(d, 0u, pre);
        }
        case REC_GRU_GATES: {
            let zp = xw[xb + j] + bsum(d, gh, j) + rdot(rb + j * hidden, hrow, k, src, ss, hidden);
            let r_row = hidden + j;
            let rp = xw[xb + r_row] + bsum(d, gh, r_row) + rdot(rb + r_row * hidden, hrow, k, src, ss, hidden);
            state[4u * ss + e] = act(d, 0u, zp);
            state[5u * ss + e] = act(d, 0u, rp);
            return;
        }
        case REC_GRU_UPDATE: {
            let z = state[4u * ss + e];
            let r = state[5u * ss + e];
            let h_row = 2u * hidden + j;
            var wbh = 0.0;
            var rbh = 0.0;
            if p.has_bias != 0u {
                wbh = bias[d * 2u * gh + h_row];
                rbh = bias[d * 2u * gh + gh + h_row];
            }
            var pre = xw[xb + h_row] + wbh;
            if p.linear_before_reset != 0u {
                pre = pre + r * (rdot(rb + h_row * hidden, hrow, k, src, ss, hidden) + rbh);
            } else {
                var s = 0.0;
                if !(k == 0u && p.no_initial_h != 0u) {
                    let hb = src * 2u * ss + hrow;
                    let rr = rb + h_row * hidden;
                    for (var q = 0u; q < hidden; q = q + 1u) {
                        s = s + rec[rr + q] * (state[5u * ss + hrow + q] * state[hb + q]);
                    }
                }
                pre = pre + s + rbh;
            }
            let cand = act(d, 1u, pre);
            hn = (1.0 - z) * cand + z * h_prev(k, src, ss, e);
        }
        default: {
            // LSTM, gates i o f c; peepholes i o f.
            let cp = c_prev(k, src, ss, e);
            var pi = 0.0;
            var po = 0.0;
            var pf = 0.0;
            if p.has_peepholes != 0u {
                pi = peep[d * 3u * hidden + j];
                po = peep[d * 3u * hidden + hidden + j];
                pf = peep[d * 3u * hidden + 2u * hidden + j];
            }
            var g = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
            for (var q = 0u; q < 4u; q = q + 1u) {
                let gr = q * hidden + j;
                g[q] = xw[xb + gr] + bsum(d, gh, gr) + rdot(rb + gr * hidden, hrow, k, src, ss, hidden);
            }
            let ig = act(d, 0u, g[0] + pi * cp);
            var fg = 1.0 - ig;
            if p.input_forget == 0u {
                fg = act(d, 0u, g[2] + pf * cp);
            }
            let cand = act(d, 1u, g[3]);
            cn = fg * cp + ig * cand;
            let og = act(d, 0u, g[1] + po * cn);
            hn = og * act(d, 2u, cn);
        }
    }
    state[dst * 2u * ss + e] = hn;
    state[(dst * 2u + 1u) * ss + e] = cn;
    if p.write_y != 0u {
        y[y_index(t, d, b, j)] = hn;
    }
}
