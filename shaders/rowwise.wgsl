// Strata GPU: operators along one axis, one invocation per line. A line is
// `L` elements `inner` apart: element j of line r is at
// (r / inner) * L * inner + r % inner + j * inner (as in norm.wgsl's softmax).
// DT says how words are read: 0 f32, 1 i32.
//
// hardmax: 1 at the first maximum, 0 elsewhere. Parameters: `HardmaxParams`.
// lp_norm: x / (sum |x| or sqrt(sum x^2)), 0 for a zero norm. Parameters:
//   `LpNormParams`.
// cumulate: CumSum / CumProd. Parameters: `CumulateParams`.
// top_k: the output lines have `k` elements (`inner` apart); values go to
//   `out`, indices to `idx`, sorted, ties broken by the smaller index.
//   Parameters: `TopKParams`.

override DT: u32 = DT_F32;

fn base_of(r: u32, l: u32, inner: u32) -> u32 {
    return (r / inner) * l * inner + r % inner;
}

fn xf(i: u32) -> f32 {
    return bitcast<f32>(x[i]);
}

fn hardmax_at(r: u32, p: HardmaxParams) {
    let l = p.len;
    let inner = p.inner;
    let base = base_of(r, l, inner);
    var best = 0u;
    for (var j = 1u; j < l; j = j + 1u) {
        if xf(base + j * inner) > xf(base + best * inner) {
            best = j;
        }
    }
    for (var j = 0u; j < l; j = j + 1u) {
        out[base + j * inner] = select(0u, bitcast<u32>(1.0), j == best);
    }
}

fn lp_norm_at(r: u32, p: LpNormParams) {
    let l = p.len;
    let inner = p.inner;
    let base = base_of(r, l, inner);
    var acc = 0.0;
    for (var j = 0u; j < l; j = j + 1u) {
        let v = xf(base + j * inner);
        if p.p == 1u {
            acc = acc + abs(v);
        } else {
            acc = acc + v * v;
        }
    }
    if p.p != 1u {
        acc = sqrt(acc);
    }
    for (var j = 0u; j < l; j = j + 1u) {
        let i = base + j * inner;
        out[i] = bitcast<u32>(select(xf(i) / acc, 0.0, acc == 0.0));
    }
}

fn cumulate_at(r: u32, p: CumulateParams) {
    let l = p.len;
    let inner = p.inner;
    let base = base_of(r, l, inner);
    let product = p.product != 0u;
    let exclusive = p.exclusive != 0u;
    let reverse = p.reverse != 0u;
    var accf = select(0.0, 1.0, product);
    var acci = select(0, 1, product);
    for (var t = 0u; t < l; t = t + 1u) {
        var j = t;
        if reverse {
            j = l - 1u - t;
        }
        let i = base + j * inner;
        if DT == DT_F32 {
            var next = accf + xf(i);
            if product {
                next = accf * xf(i);
            }
            out[i] = bitcast<u32>(select(next, accf, exclusive));
            accf = next;
        } else {
            let v = bitcast<i32>(x[i]);
            var next = acci + v;
            if product {
                next = acci * v;
            }
            out[i] = bitcast<u32>(select(next, acci, exclusive));
            acci = next;
        }
    }
}

// Does (va, ia) come before (vb, ib) in the output order?
fn before(va: u32, ia: u32, vb: u32, ib: u32, largest: bool) -> bool {
    var gt: bool;
    var eq: bool;
    if DT == DT_F32 {
        let a = bitcast<f32>(va);
        let b = bitcast<f32>(vb);
        gt = select((a < b), (a > b), largest);
        eq = a == b;
    } else {
        let a = bitcast<i32>(va);
        let b = bitcast<i32>(vb);
        gt = select((a < b), (a > b), largest);
        eq = a == b;
    }
    return gt || (eq && ia < ib);
}

fn top_k_at(r: u32, p: TopKParams) {
    let l = p.len;
    let inner = p.inner;
    let k = p.k;
    let largest = p.largest != 0u;
    let base = base_of(r, l, inner);
    let obase = base_of(r, k, inner);
    var has_prev = false;
    var pv = 0u;
    var pi = 0u;
    for (var t = 0u; t < k; t = t + 1u) {
        var found = false;
        var bv = 0u;
        var bi = 0u;
        for (var j = 0u; j < l; j = j + 1u) {
            let v = x[base + j * inner];
            if has_prev && !before(pv, pi, v, j, largest) {
                continue;
            }
            if !found || before(v, j, bv, bi, largest) {
                found = true;
                bv = v;
                bi = j;
            }
        }
        out[obase + t * inner] = bv;
        idx[obase + t * inner] = i32(bi);
        has_prev = true;
        pv = bv;
        pi = bi;
    }
}
