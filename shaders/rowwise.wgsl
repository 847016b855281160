// Strata GPU: operators along one axis, one invocation per line. A line is
// `L` elements `inner` apart: element j of line r is at
// (r / inner) * L * inner + r % inner + j * inner (as in norm.wgsl's softmax).
// DT says how words are read: 0 f32, 1 i32.
//
// hardmax: params [lines, L, inner]; 1 at the first maximum, 0 elsewhere.
// lp_norm: params [lines, L, inner, p]; x / (sum |x| or sqrt(sum x^2)), 0 for a zero norm.
// cumulate: params [lines, L, inner, product, exclusive, reverse]; CumSum / CumProd.
// top_k: params [lines, L, inner, k, largest]; the output lines have `k`
//   elements (`inner` apart); values go to `out`, indices to `idx`, sorted,
//   ties broken by the smaller index.

override DT: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<u32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;

fn line_index(wid: vec3<u32>, nwg: vec3<u32>, lidx: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lidx;
}

fn base_of(r: u32, l: u32, inner: u32) -> u32 {
    return (r / inner) * l * inner + r % inner;
}

fn xf(i: u32) -> f32 {
    return bitcast<f32>(x[i]);
}

@compute @workgroup_size(64)
fn hardmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lidx: u32) {
    let r = line_index(wid, nwg, lidx);
    if r >= P(0u) {
        return;
    }
    let l = P(1u);
    let inner = P(2u);
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

@compute @workgroup_size(64)
fn lp_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lidx: u32) {
    let r = line_index(wid, nwg, lidx);
    if r >= P(0u) {
        return;
    }
    let l = P(1u);
    let inner = P(2u);
    let base = base_of(r, l, inner);
    var acc = 0.0;
    for (var j = 0u; j < l; j = j + 1u) {
        let v = xf(base + j * inner);
        if P(3u) == 1u {
            acc = acc + abs(v);
        } else {
            acc = acc + v * v;
        }
    }
    if P(3u) != 1u {
        acc = sqrt(acc);
    }
    for (var j = 0u; j < l; j = j + 1u) {
        let i = base + j * inner;
        out[i] = bitcast<u32>(select(xf(i) / acc, 0.0, acc == 0.0));
    }
}

@compute @workgroup_size(64)
fn cumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lidx: u32) {
    let r = line_index(wid, nwg, lidx);
    if r >= P(0u) {
        return;
    }
    let l = P(1u);
    let inner = P(2u);
    let base = base_of(r, l, inner);
    let product = P(3u) != 0u;
    let exclusive = P(4u) != 0u;
    let reverse = P(5u) != 0u;
    var accf = select(0.0, 1.0, product);
    var acci = select(0, 1, product);
    for (var t = 0u; t < l; t = t + 1u) {
        var j = t;
        if reverse {
            j = l - 1u - t;
        }
        let i = base + j * inner;
        if DT == 0u {
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
    if DT == 0u {
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

@compute @workgroup_size(64)
fn top_k(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lidx: u32) {
    let r = line_index(wid, nwg, lidx);
    if r >= P(0u) {
        return;
    }
    let l = P(1u);
    let inner = P(2u);
    let k = P(3u);
    let largest = P(4u) != 0u;
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
