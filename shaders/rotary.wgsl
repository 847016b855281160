// Strata GPU: RotaryEmbedding (opset 23), one invocation per element.
//
// Parameters: `RotaryParams`. 3-D inputs are (batch, seq, heads * head_size),
//   4-D ones (batch, heads, seq, head_size). The first `rotated` values of
//   a head form pairs (halves, or even/odd elements when interleaved)
//   rotated by the cache row of the position: (c x1 - s x2, s x1 + c x2).

fn rotary_at(i: u32, prm: RotaryParams) {
    let nh = prm.heads;
    let ns = prm.seq;
    let hd = prm.head_size;
    let d = i % hd;
    var b: u32;
    var s: u32;
    if prm.three_d != 0u {
        s = (i / (hd * nh)) % ns;
        b = i / (hd * nh * ns);
    } else {
        s = (i / hd) % ns;
        b = i / (hd * ns * nh);
    }
    if d >= prm.rotated {
        out[i] = x[i];
        return;
    }
    let half = prm.rotated / 2u;
    var p: u32;
    var first: bool;
    var partner: u32;
    if prm.interleaved != 0u {
        p = d / 2u;
        first = d % 2u == 0u;
        partner = select(d - 1u, d + 1u, first);
    } else {
        p = d % half;
        first = d < half;
        partner = select(d - half, d + half, first);
    }
    var row = b * ns + s;
    if prm.has_position_ids != 0u {
        row = u32(max(pos[b * ns + s], 0));
    }
    let c = cos_cache[row * half + p];
    let sn = sin_cache[row * half + p];
    let other = x[i - d + partner];
    if first {
        out[i] = c * x[i] - sn * other;
    } else {
        out[i] = sn * other + c * x[i];
    }
}
