// Strata GPU: Resize of the last two axes (nearest or linear), one
// invocation per output element.
// params [n, H, W, OH, OW, coord_mode, nearest_mode, unit, scale_h, scale_w,
//         resized_h, resized_w] (resized = scale * input length, before rounding;
//         bit 0/1 of `unit`: resized_h/w is exactly 1, decided in f64 on the host)
// coord_mode: 0 half_pixel, 1 asymmetric, 2 align_corners, 3 pytorch_half_pixel,
//             4 tf_half_pixel_for_nn, 5 half_pixel_symmetric
// nearest_mode: 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil
// MODE: 0 nearest, 1 linear.

override MODE: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

fn source_coord(o: u32, in_len: u32, out_len: u32, scale: f32, resized: f32, unit: bool) -> f32 {
    let xo = f32(o);
    switch P(5u) {
        case 1u: { return xo / scale; }
        case 2u: {
            if unit {
                return 0.0;
            }
            return xo * f32(in_len - 1u) / (resized - 1.0);
        }
        case 3u: {
            if unit {
                return -0.5;
            }
            return (xo + 0.5) / scale - 0.5;
        }
        case 4u: { return (xo + 0.5) / scale; }
        case 5u: {
            let adj = f32(out_len) / resized;
            let center = f32(in_len) * 0.5;
            return center * (1.0 - adj) + (xo + 0.5) / scale - 0.5;
        }
        default: { return (xo + 0.5) / scale - 0.5; }
    }
}

fn nearest(c: f32, in_len: u32) -> u32 {
    var r = 0.0;
    switch P(6u) {
        case 1u: {
            r = select(round(c), ceil(c), c - floor(c) == 0.5);
        }
        case 2u: { r = floor(c); }
        case 3u: { r = ceil(c); }
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
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let H = P(1u);
    let W = P(2u);
    let OH = P(3u);
    let OW = P(4u);
    let ox = i % OW;
    let oy = (i / OW) % OH;
    let base = (i / (OW * OH)) * H * W;
    let cy = source_coord(oy, H, OH, bitcast<f32>(P(8u)), bitcast<f32>(P(10u)), (P(7u) & 1u) != 0u);
    let cx = source_coord(ox, W, OW, bitcast<f32>(P(9u)), bitcast<f32>(P(11u)), (P(7u) & 2u) != 0u);
    if MODE == 0u {
        out[i] = x[base + nearest(cy, H) * W + nearest(cx, W)];
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
