// Strata GPU: scaled dot-product attention (ONNX Attention, opsets 23-24).
//
// One invocation per query row (batch b, query head h, query position i).
// Scores are computed once into `scratch` (one row of `kv` words per query
// row), turned into probabilities in place and multiplied by V. Everything
// accumulates in f32. Q, K, V, Y and the mask are read through strides so
// that 3-D `(batch, seq, heads * size)` and 4-D `(batch, heads, seq, size)`
// layouts need no copies; the innermost stride is always 1.
//
// params:
//   0 rows (batch * q_heads * q_seq)   1 q_heads   2 q_seq   3 kv (keys)
//   4 head size (Q, K)   5 head size (V)   6 group (q_heads / kv_heads)
//   7-9 Q strides (b, h, s)   10-12 K strides   13-15 V strides   16-18 Y strides
//   19 mask kind (0 none, 1 additive float, 2 bool keep)
//   20-22 mask strides (b, h, i)   23 mask length along keys (shorter = masked)
//   24 sqrt(scale) (f32)   25 softcap (f32, 0 = off)   26 is_causal
//   27 left window (i32, -1 = off)   28 right window (i32, -1 = off)
//   29 past length (i32)   30 has nonpad_kv_seqlen
//   31 qk_matmul_output mode (0 raw, 1 capped, 2 biased, 3 probabilities, 4 none)

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(3) var<storage, read_write> qk: array<f32>;
@group(0) @binding(4) var<storage, read> q: array<f32>;
@group(0) @binding(5) var<storage, read> k: array<f32>;
@group(0) @binding(6) var<storage, read> v: array<f32>;
@group(0) @binding(7) var<storage, read> mask: array<u32>;
@group(0) @binding(8) var<storage, read> nonpad: array<i32>;

fn PI(i: u32) -> i32 {
    return bitcast<i32>(P(i));
}

fn is_nan(x: f32) -> bool {
    let b = bitcast<u32>(x);
    return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}

@compute @workgroup_size(64)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lidx: u32) {
    let r = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if r >= P(0u) {
        return;
    }
    let hq = P(1u);
    let sq = P(2u);
    let kv = P(3u);
    let dk = P(4u);
    let dv = P(5u);
    let i = r % sq;
    let h = (r / sq) % hq;
    let b = r / (sq * hq);
    let hk = h / P(6u);
    let qo = b * P(7u) + h * P(8u) + i * P(9u);
    let ko = b * P(10u) + hk * P(11u);
    let ks = P(12u);
    let vo = b * P(13u) + hk * P(14u);
    let vs = P(15u);
    let yo = b * P(16u) + h * P(17u) + i * P(18u);
    let mkind = P(19u);
    let mo = b * P(20u) + h * P(21u) + i * P(22u);
    let mlen = P(23u);
    let ss = PF(24u);
    let cap = PF(25u);
    let causal = P(26u) != 0u;
    let left = PI(27u);
    let right = PI(28u);
    let has_nonpad = P(30u) != 0u;
    let mode = P(31u);
    let NEG_INF = f32_bits(0xff800000u);
    var valid = i32(kv);
    var offset = PI(29u);
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
        for (var d = 0u; d < dk; d = d + 1u) {
            acc = acc + (q[qo + d] * ss) * (k[ko + j * ks + d] * ss);
        }
        var capped = acc;
        if cap > 0.0 {
            capped = tanh(acc / cap) * cap;
        }
        var bias = 0.0;
        if mkind != 0u {
            if j >= mlen {
                bias = NEG_INF;
            } else {
                let m = mask[mo + j];
                if mkind == 2u {
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
        if is_nan(bias) || bias != NEG_INF {
            all_masked = false;
        }
        let logit = capped + bias;
        scratch[row + j] = logit;
        if mode == 0u {
            qk[row + j] = acc;
        } else if mode == 1u {
            qk[row + j] = capped;
        } else if mode == 2u {
            qk[row + j] = logit;
        }
        if is_nan(logit) {
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
        if mode == 3u {
            qk[row + j] = p;
        }
    }
    for (var e = 0u; e < dv; e = e + 1u) {
        var acc = 0.0;
        for (var j = 0u; j < kv; j = j + 1u) {
            acc = acc + scratch[row + j] * v[vo + j * vs + e];
        }
        out[yo + e] = acc;
    }
}

