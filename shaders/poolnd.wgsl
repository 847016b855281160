// Strata GPU: pooling over 1 to 3 spatial axes (N, C, spatial...), one
// invocation per output element: MaxPool (with the optional flat indices),
// AveragePool and LpPool; and Col2Im, which shares the window geometry.
//
// Parameters: `PoolNdParams` (mode POOL_MAX, POOL_AVERAGE or POOL_LP).

fn pool_nd_at(i: u32, p: PoolNdParams) {
    let nsp = p.nsp;
    let out_size = p.out_size;
    let in_size = p.in_size;
    let o_flat = i % out_size;
    let base = (i / out_size) * in_size;
    var opos: array<u32, 3>;
    var rem = o_flat;
    var taps = 1u;
    for (var k = nsp; k > 0u; k = k - 1u) {
        let a = k - 1u;
        opos[a] = next_coord(&rem, pool_nd_params_out_shape(a));
        taps = taps * pool_nd_params_kernel(a);
    }
    var mx = f32_bits(0xff800000u);
    var best = -1;
    var sum = 0.0;
    var count = 0u;
    var covered = 0u;
    let pf = f32(p.p);
    for (var t = 0u; t < taps; t = t + 1u) {
        var r = t;
        var inside = true;
        var in_pad = true;
        var row = 0u;
        var rs = 1u;
        for (var k = nsp; k > 0u; k = k - 1u) {
            let a = k - 1u;
            let kk = next_coord(&r, pool_nd_params_kernel(a));
            let len = i32(pool_nd_params_shape(a));
            let pad_begin = i32(pool_nd_params_pad_begin(a));
            let pos = i32(opos[a] * pool_nd_params_strides(a)) - pad_begin + i32(kk * pool_nd_params_dilations(a));
            if pos < -pad_begin || pos >= len + i32(pool_nd_params_pad_end(a)) {
                in_pad = false;
            }
            if pos < 0 || pos >= len {
                inside = false;
            } else {
                row = row + u32(pos) * rs;
            }
            rs = rs * u32(len);
        }
        if in_pad {
            covered = covered + 1u;
        }
        if !inside {
            continue;
        }
        let v = x[base + row];
        if p.mode == POOL_MAX {
            if best < 0 || v > mx {
                mx = v;
                if p.storage_col != 0u {
                    // Column-major flat index of the same position.
                    var cr = row;
                    var col = 0u;
                    for (var k = nsp; k > 0u; k = k - 1u) {
                        let a = k - 1u;
                        let c = next_coord(&cr, pool_nd_params_shape(a));
                        var st = 1u;
                        for (var b = 0u; b < a; b = b + 1u) {
                            st = st * pool_nd_params_shape(b);
                        }
                        col = col + c * st;
                    }
                    best = i32(base + col);
                } else {
                    best = i32(base + row);
                }
            }
        } else if p.mode == POOL_AVERAGE {
            sum = sum + v;
        } else if p.p == 2u {
            sum = sum + v * v;
        } else {
            sum = sum + pow(abs(v), pf);
        }
        count = count + 1u;
    }
    if p.mode == POOL_MAX {
        out[i] = mx;
        if p.want_indices != 0u {
            idx[i] = best;
        }
    } else if p.mode == POOL_AVERAGE {
        if p.count_include_pad != 0u {
            out[i] = sum / f32(max(covered, 1u));
        } else {
            out[i] = sum / f32(max(count, 1u));
        }
    } else if p.p == 2u {
        out[i] = sqrt(sum);
    } else {
        out[i] = pow(sum, 1.0 / pf);
    }
}

// Col2Im: one invocation per image element sums every (kernel offset,
// block) pair that lands on it. Parameters: `Col2imParams`.
fn col2im_at(i: u32, p: Col2imParams) {
    let nsp = p.nsp;
    let kk = p.block_size;
    let ll = p.blocks;
    var img_size = 1u;
    for (var a = 0u; a < nsp; a = a + 1u) {
        img_size = img_size * col2im_params_image(a);
    }
    var pix: array<u32, 4>;
    var rem = i % img_size;
    for (var k = nsp; k > 0u; k = k - 1u) {
        let a = k - 1u;
        pix[a] = next_coord(&rem, col2im_params_image(a));
    }
    let bc = i / img_size;
    var acc = 0.0;
    for (var kf = 0u; kf < kk; kf = kf + 1u) {
        var r = kf;
        var lflat = 0u;
        var lstride = 1u;
        var ok = true;
        for (var k = nsp; k > 0u; k = k - 1u) {
            let a = k - 1u;
            let ka = r % col2im_params_block(a);
            r = r / col2im_params_block(a);
            let num = i32(pix[a]) + i32(col2im_params_pad_begin(a)) - i32(ka * col2im_params_dilations(a));
            let s = i32(col2im_params_strides(a));
            if num < 0 || num % s != 0 || u32(num / s) >= col2im_params_blocks_per_axis(a) {
                ok = false;
            } else {
                lflat = lflat + u32(num / s) * lstride;
            }
            lstride = lstride * col2im_params_blocks_per_axis(a);
        }
        if ok {
            acc = acc + x[(bc * kk + kf) * ll + lflat];
        }
    }
    out[i] = acc;
}
