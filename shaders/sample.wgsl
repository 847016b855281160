// Strata GPU: GridSample with 1 to 3 spatial axes. One invocation per
// output element (batch b, channel c, output position o).
//
// Parameters: `GridSampleParams` (mode `GRID_MODE_*`, padding `GRID_PAD_*`).
// The grid's last axis lists coordinates innermost axis first (x, y, z).

fn reflect_into(v: f32, lo: f32, hi: f32) -> f32 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    if v < lo {
        let d = lo - v;
        let n = floor(d / range);
        let r = d - n * range;
        return select(hi - r, lo + r, n % 2.0 == 0.0);
    }
    if v > hi {
        let d = v - hi;
        let n = floor(d / range);
        let r = d - n * range;
        return select(lo + r, hi - r, n % 2.0 == 0.0);
    }
    return v;
}

fn cubic_w(t: f32) -> f32 {
    let a = -0.75;
    let s = abs(t);
    if s <= 1.0 {
        return ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0;
    }
    if s < 2.0 {
        return ((a * s - 5.0 * a) * s + 8.0 * a) * s - 4.0 * a;
    }
    return 0.0;
}

fn grid_sample_at(i: u32, p: GridSampleParams) {
    let C = p.channels;
    let nsp = p.nsp;
    let align = p.align_corners != 0u;
    let mode = p.mode;
    let padding = p.padding;
    let out_size = p.out_size;
    let o = i % out_size;
    let bc = i / out_size;
    let b = bc / C;
    var in_size = 1u;
    for (var a = 0u; a < nsp; a = a + 1u) {
        in_size = in_size * grid_sample_params_in_shape(a);
    }
    let xbase = bc * in_size;
    let gbase = (b * out_size + o) * nsp;

    // Source coordinate, lower tap and tap count per axis.
    var coord: array<f32, 3>;
    var lo_b: array<f32, 3>;
    var hi_b: array<f32, 3>;
    for (var a = 0u; a < nsp; a = a + 1u) {
        let len = f32(grid_sample_params_in_shape(a));
        let g = grid[gbase + nsp - 1u - a];
        var v: f32;
        if align {
            v = (g + 1.0) / 2.0 * (len - 1.0);
            lo_b[a] = 0.0;
            hi_b[a] = len - 1.0;
        } else {
            v = ((g + 1.0) * len - 1.0) / 2.0;
            lo_b[a] = -0.5;
            hi_b[a] = len - 0.5;
        }
        if mode == GRID_MODE_NEAREST {
            v = round(v);
        }
        if v < lo_b[a] || v > hi_b[a] {
            if padding == GRID_PAD_BORDER {
                v = clamp(v, 0.0, len - 1.0);
            } else if padding == GRID_PAD_REFLECTION {
                v = reflect_into(v, lo_b[a], hi_b[a]);
            }
        }
        coord[a] = v;
    }
    var taps = 1u;
    if mode == GRID_MODE_LINEAR {
        taps = 2u;
    } else if mode == GRID_MODE_CUBIC {
        taps = 4u;
    }
    var total = 1u;
    for (var a = 0u; a < nsp; a = a + 1u) {
        total = total * taps;
    }
    var acc = 0.0;
    for (var t = 0u; t < total; t = t + 1u) {
        var rem = t;
        var w = 1.0;
        var flat = 0u;
        var inside = true;
        var stride = 1u;
        for (var k = nsp; k > 0u; k = k - 1u) {
            let a = k - 1u;
            let dim = i32(grid_sample_params_in_shape(a));
            let step = next_coord(&rem, taps);
            var pos: i32;
            if mode == GRID_MODE_NEAREST {
                pos = i32(coord[a]);
            } else {
                let fl = floor(coord[a]);
                let f = coord[a] - fl;
                if mode == GRID_MODE_LINEAR {
                    pos = i32(fl) + i32(step);
                    w = w * select(f, 1.0 - f, step == 0u);
                } else {
                    pos = i32(fl) + i32(step) - 1;
                    w = w * cubic_w(f - (f32(step) - 1.0));
                }
            }
            if padding == GRID_PAD_ZEROS {
                if pos < 0 || pos >= dim {
                    inside = false;
                }
            } else if padding == GRID_PAD_BORDER {
                pos = clamp(pos, 0, dim - 1);
            } else {
                pos = clamp(i32(reflect_into(f32(pos), lo_b[a], hi_b[a])), 0, dim - 1);
            }
            flat = flat + u32(max(pos, 0)) * stride;
            stride = stride * u32(dim);
        }
        if inside {
            acc = acc + w * x[xbase + flat];
        }
    }
    out[i] = acc;
}

// AffineGrid: one invocation per output value (batch b, point, row): row
// `row` of theta times the homogeneous base point (x follows the last
// spatial axis). Parameters: `AffineGridParams`.
fn base_coord(i: u32, len: u32, align: bool) -> f32 {
    if align {
        if len <= 1u {
            return -1.0;
        }
        return -1.0 + 2.0 * f32(i) / f32(len - 1u);
    }
    return -1.0 + f32(2u * i + 1u) / f32(len);
}

fn affine_grid_at(i: u32, p: AffineGridParams) {
    let nsp = p.nsp;
    let align = p.align_corners != 0u;
    var points = 1u;
    for (var a = 0u; a < nsp; a = a + 1u) {
        points = points * affine_grid_params_size(a);
    }
    let row = i % nsp;
    let pt = (i / nsp) % points;
    let b = i / (nsp * points);
    let tb = b * nsp * (nsp + 1u) + row * (nsp + 1u);
    var rem = pt;
    var acc = 0.0;
    // Axis a (innermost last) supplies homogeneous coordinate nsp - 1 - a.
    for (var k = nsp; k > 0u; k = k - 1u) {
        let a = k - 1u;
        let len = affine_grid_params_size(a);
        let c = next_coord(&rem, len);
        acc = acc + x[tb + (nsp - 1u - a)] * base_coord(c, len, align);
    }
    out[i] = acc + x[tb + nsp];
}
