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
// params
//   0 n (= ss)   1 mode (0 RNN, 1 GRU gates, 2 GRU update, 3 LSTM)   2 step k
//   3 seq   4 dirs   5 batch   6 hidden   7 layout (0 or 1)
//   8 has bias   9 has peepholes   10 has sequence_lens
//   11 initial_h missing   12 initial_c missing   13 direction "reverse"
//   14 has clip   15 clip (f32)   16 input_forget   17 linear_before_reset
//   18 gates   19 write Y
//   20 + (d * 3 + a) * 3: activation a of direction d: code, alpha (f32), beta (f32)
//     codes: 0 Relu, 1 Tanh, 2 Sigmoid, 3 Affine, 4 LeakyRelu,
//     5 ThresholdedRelu, 6 ScaledTanh, 7 HardSigmoid, 8 Elu, 9 Softsign,
//     10 Softplus

@group(0) @binding(1) var<storage, read_write> state: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> xw: array<f32>;
@group(0) @binding(4) var<storage, read> rec: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read> peep: array<f32>;
@group(0) @binding(7) var<storage, read> lens: array<i32>;

// Activation a (0 f, 1 g, 2 h) of direction d, its input clipped first.
fn act(d: u32, a: u32, x: f32) -> f32 {
    var v = x;
    if P(14u) != 0u {
        let c = PF(15u);
        v = min(max(v, -c), c);
    }
    let at = 20u + (d * 3u + a) * 3u;
    let alpha = PF(at + 1u);
    let beta = PF(at + 2u);
    switch P(at) {
        case 0u: { return max(v, 0.0); }
        case 1u: { return tanh_f(v); }
        case 2u: { return sigmoid_f(v); }
        case 3u: { return alpha * v + beta; }
        case 4u: { return select(alpha * v, v, v >= 0.0); }
        case 5u: { return select(0.0, v, v >= alpha); }
        case 6u: { return alpha * tanh_f(beta * v); }
        case 7u: { return clamp(alpha * v + beta, 0.0, 1.0); }
        case 8u: { return select(alpha * expm1_f(v), v, v >= 0.0); }
        case 9u: { return v / (1.0 + abs(v)); }
        case 10u: { return max(v, 0.0) + log1p_f(exp(-abs(v))); }
        default: { return f32_bits(0x7fc00000u); }
    }
}

// Previous hidden state word `i` (zero at step 0 without initial_h).
fn h_prev(k: u32, src: u32, ss: u32, i: u32) -> f32 {
    if k == 0u && P(11u) != 0u {
        return 0.0;
    }
    return state[src * 2u * ss + i];
}

fn c_prev(k: u32, src: u32, ss: u32, i: u32) -> f32 {
    if k == 0u && P(12u) != 0u {
        return 0.0;
    }
    return state[(src * 2u + 1u) * ss + i];
}

// R[d][row] . h_prev of row (d, b) starting at word `hrow`.
fn rdot(rrow: u32, hrow: u32, k: u32, src: u32, ss: u32, hidden: u32) -> f32 {
    if k == 0u && P(11u) != 0u {
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
    if P(8u) == 0u {
        return 0.0;
    }
    return bias[d * 2u * gh + row] + bias[d * 2u * gh + gh + row];
}

fn y_index(t: u32, d: u32, b: u32, j: u32) -> u32 {
    let dirs = P(4u);
    let batch = P(5u);
    let hidden = P(6u);
    if P(7u) != 0u {
        return ((b * P(3u) + t) * dirs + d) * hidden + j;
    }
    return ((t * dirs + d) * batch + b) * hidden + j;
}

@compute @workgroup_size(64)
fn recurrent_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lidx: u32) {
    let e = (wid.y * nwg.x + wid.x) * 64u + lidx;
    let ss = P(0u);
    if e >= ss {
        return;
    }
    let mode = P(1u);
    let k = P(2u);
    let seq = P(3u);
    let batch = P(5u);
    let hidden = P(6u);
    let j = e % hidden;
    let b = (e / hidden) % batch;
    let d = e / (hidden * batch);
    let src = k % 2u;
    let dst = 1u - src;
    var len = seq;
    if P(10u) != 0u {
        len = u32(clamp(lens[b], 0, i32(seq)));
    }
    if k >= len {
        if mode == 1u {
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
        if k < seq && P(19u) != 0u {
            y[y_index(k, d, b, j)] = 0.0;
        }
        return;
    }
    let rev = d == 1u || P(13u) != 0u;
    let t = select(k, len - 1u - k, rev);
    let row = select(t * batch + b, b * seq + t, P(7u) != 0u);
    let gh = P(18u) * hidden;
    let xb = (d * seq * batch + row) * gh;
    let rb = d * gh * hidden;
    let hrow = (d * batch + b) * hidden;
    var hn = 0.0;
    var cn = 0.0;
    switch mode {
        case 0u: {
            let pre = xw[xb + j] + bsum(d, gh, j) + rdot(rb + j * hidden, hrow, k, src, ss, hidden);
            hn = act(d, 0u, pre);
        }
        case 1u: {
            let zp = xw[xb + j] + bsum(d, gh, j) + rdot(rb + j * hidden, hrow, k, src, ss, hidden);
            let r_row = hidden + j;
            let rp = xw[xb + r_row] + bsum(d, gh, r_row) + rdot(rb + r_row * hidden, hrow, k, src, ss, hidden);
            state[4u * ss + e] = act(d, 0u, zp);
            state[5u * ss + e] = act(d, 0u, rp);
            return;
        }
        case 2u: {
            let z = state[4u * ss + e];
            let r = state[5u * ss + e];
            let h_row = 2u * hidden + j;
            var wbh = 0.0;
            var rbh = 0.0;
            if P(8u) != 0u {
                wbh = bias[d * 2u * gh + h_row];
                rbh = bias[d * 2u * gh + gh + h_row];
            }
            var pre = xw[xb + h_row] + wbh;
            if P(17u) != 0u {
                pre = pre + r * (rdot(rb + h_row * hidden, hrow, k, src, ss, hidden) + rbh);
            } else {
                var s = 0.0;
                if !(k == 0u && P(11u) != 0u) {
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
            if P(9u) != 0u {
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
            if P(16u) == 0u {
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
    if P(19u) != 0u {
        y[y_index(t, d, b, j)] = hn;
    }
}
