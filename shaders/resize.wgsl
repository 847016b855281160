// Strata GPU: Resize of the last two axes (nearest or linear), one
// invocation per output element.
// Parameters: `ResizeParams` (resized = scale * input length, before
// rounding; bit 0/1 of `unit`: resized_h/w is exactly 1, decided in f64 on
// the host); coord_mode as `resize_source_coord` in the prelude.
// nearest_mode: a NEAREST_* code. MODE: INTERP_NEAREST or INTERP_LINEAR.

override MODE: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

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

@compute @workgroup_size(64)
fn resize2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
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
    let cy = resize_source_coord(p.coord_mode, oy, H, p.oh, p.scale_h, p.resized_h, (p.unit & 1u) != 0u);
    let cx = resize_source_coord(p.coord_mode, ox, W, p.ow, p.scale_w, p.resized_w, (p.unit & 2u) != 0u);
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
