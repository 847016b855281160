// Strata GPU: Resize of the last two axes, one invocation per output
// element: `resize2d` for nearest and linear, `resize_taps` for cubic and
// antialiased interpolation.
// Parameters: `ResizeParams` (resized = scale * input length, before
// rounding; bit 0/1 of `unit`: resized_h/w is exactly 1, decided in f64 on
// the host); coord_mode as `resize_source_coord` in the prelude.
// nearest_mode: a NEAREST_* code. MODE: INTERP_NEAREST or INTERP_LINEAR.

override MODE: u32 = 0u;

fn nearest(c: f32, in_len: u32, mode: u32) -> u32 {
    var r = 0.0;
    switch mode {
        case NEAREST_ROUND_PREFER_CEIL: {
            r = select(round(c), ceil(c), c - floor(c) == 0.5);
        }
        case NEAREST_FLOOR: { r = floor(c); }
        case NEAREST_CEIL: { r = ceil(c); }
        default: {
            r = select(round(c), floor(c), c - floor(c) == 0.5);
        }
    }
    return u32(clamp(r, 0.0, f32(in_len - 1u)));
}

fn clampi(v: f32, in_len: u32) -> u32 {
    return u32(clamp(v, 0.0, f32(in_len - 1u)));
}

// Where output element `i` reads from: the first input element of its
// plane and its source coordinates along the two axes.
struct ResizeSource {
    base: u32,
    cy: f32,
    cx: f32,
}

fn resize_source(i: u32, p: ResizeParams) -> ResizeSource {
    let oy = (i / p.ow) % p.oh;
    let cy = resize_source_coord(p.coord_mode, oy, p.h, p.oh, p.scale_h, p.resized_h, (p.unit & 1u) != 0u);
    let cx = resize_source_coord(p.coord_mode, i % p.ow, p.w, p.ow, p.scale_w, p.resized_w, (p.unit & 2u) != 0u);
    return ResizeSource((i / (p.ow * p.oh)) * p.h * p.w, cy, cx);
}

fn resize2d_at(i: u32, p: ResizeParams) {
    let H = p.h;
    let W = p.w;
    let src = resize_source(i, p);
    let base = src.base;
    let cy = src.cy;
    let cx = src.cx;
    if MODE == INTERP_NEAREST {
        out[i] = x[base + nearest(cy, H, p.nearest_mode) * W + nearest(cx, W, p.nearest_mode)];
        return;
    }
    let fy = floor(cy);
    let fx = floor(cx);
    let wy = cy - fy;
    let wx = cx - fx;
    let y0 = clampi(fy, H);
    let y1 = clampi(fy + 1.0, H);
    let x0 = clampi(fx, W);
    let x1 = clampi(fx + 1.0, W);
    let top = x[base + y0 * W + x0] * (1.0 - wx) + x[base + y0 * W + x1] * wx;
    let bot = x[base + y1 * W + x0] * (1.0 - wx) + x[base + y1 * W + x1] * wx;
    out[i] = top * (1.0 - wy) + bot * wy;
}

// Cubic and antialiased interpolation (`resize_taps`; nearest_mode unused).
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

fn resize_taps_at(i: u32, p: ResizeParams) {
    let H = p.h;
    let W = p.w;
    let src = resize_source(i, p);
    let base = src.base;
    let cy = src.cy;
    let cx = src.cx;
    let ky = kscale(p.scale_h);
    let kx = kscale(p.scale_w);
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
