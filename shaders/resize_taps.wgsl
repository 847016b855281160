// Strata GPU: Resize of the last two axes with cubic interpolation or
// antialiasing (linear or cubic), one invocation per output element.
// Parameters: `ResizeParams`, as resize.wgsl's `resize2d` (coordinate modes
// included; nearest_mode unused).
// Along each axis the taps are the source indices within the kernel's reach
// of the source coordinate, clamped into the input (edge repeat), weighted
// by the kernel at (index - coordinate) * k, where k = min(scale, 1) with
// ANTIALIAS and 1 otherwise (antialiased weights renormalised to sum 1);
// EXCLUDE_OUTSIDE drops taps outside the input and renormalises.
// KIND: INTERP_LINEAR or INTERP_CUBIC (Keys' kernel with A_BITS = bits of the f32 `a`).

override KIND: u32 = INTERP_CUBIC;
override A_BITS: u32 = 0xbf400000u;
override EXCLUDE_OUTSIDE: u32 = 0u;
override ANTIALIAS: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

fn kernel(d0: f32) -> f32 {
    let d = abs(d0);
    if KIND == INTERP_LINEAR {
        return max(1.0 - d, 0.0);
    }
    let a = bitcast<f32>(A_BITS);
    if d <= 1.0 {
        return ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0;
    }
    if d < 2.0 {
        return ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a;
    }
    return 0.0;
}

// Kernel scale along an axis of scale `s`.
fn kscale(s: f32) -> f32 {
    if ANTIALIAS != 0u {
        return min(s, 1.0);
    }
    return 1.0;
}

// First tap and tap count along an axis for coordinate c.
fn reach(c: f32, ks: f32) -> vec2<i32> {
    var support = 2.0;
    if KIND == INTERP_LINEAR {
        support = 1.0;
    }
    let r = i32(ceil(support / ks));
    let base = i32(floor(c));
    return vec2<i32>(base - r, 2 * r + 2);
}

// Sum of the weights kept along an axis (for renormalisation).
fn weight_sum(c: f32, ks: f32, len: u32) -> f32 {
    let rr = reach(c, ks);
    var total = 0.0;
    for (var t = 0; t < rr.y; t = t + 1) {
        let j = rr.x + t;
        if EXCLUDE_OUTSIDE != 0u && (j < 0 || j >= i32(len)) {
            continue;
        }
        total = total + kernel((f32(j) - c) * ks);
    }
    return total;
}

@compute @workgroup_size(64)
fn resize_taps(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = resize_params();
    if i >= p.n {
        return;
    }
    let H = p.h;
    let W = p.w;
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let base = (i / (p.ow * p.oh)) * H * W;
    let sh = p.scale_h;
    let sw = p.scale_w;
    let cy = resize_source_coord(p.coord_mode, oy, H, p.oh, sh, p.resized_h, (p.unit & 1u) != 0u);
    let cx = resize_source_coord(p.coord_mode, ox, W, p.ow, sw, p.resized_w, (p.unit & 2u) != 0u);
    let ky = kscale(sh);
    let kx = kscale(sw);
    var ny = 1.0;
    var nx = 1.0;
    if ANTIALIAS != 0u || EXCLUDE_OUTSIDE != 0u {
        ny = weight_sum(cy, ky, H);
        nx = weight_sum(cx, kx, W);
        if ny == 0.0 {
            ny = 1.0;
        }
        if nx == 0.0 {
            nx = 1.0;
        }
    }
    let ry = reach(cy, ky);
    let rx = reach(cx, kx);
    var acc = 0.0;
    for (var ty = 0; ty < ry.y; ty = ty + 1) {
        let jy = ry.x + ty;
        if EXCLUDE_OUTSIDE != 0u && (jy < 0 || jy >= i32(H)) {
            continue;
        }
        let wy = kernel((f32(jy) - cy) * ky) / ny;
        if wy == 0.0 {
            continue;
        }
        let yy = u32(clamp(jy, 0, i32(H) - 1));
        var row = 0.0;
        for (var tx = 0; tx < rx.y; tx = tx + 1) {
            let jx = rx.x + tx;
            if EXCLUDE_OUTSIDE != 0u && (jx < 0 || jx >= i32(W)) {
                continue;
            }
            let wx = kernel((f32(jx) - cx) * kx) / nx;
            let xx = u32(clamp(jx, 0, i32(W) - 1));
            row = row + wx * x[base + yy * W + xx];
        }
        acc = acc + wy * row;
    }
    out[i] = acc;
}
