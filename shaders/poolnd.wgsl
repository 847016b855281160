// Strata GPU: pooling over 1 to 3 spatial axes (N, C, spatial...), one
// invocation per output element: MaxPool (with the optional flat indices),
// AveragePool and LpPool; and Col2Im, which shares the window geometry.
//
// params [n, nsp, mode (0 max, 1 average, 2 Lp), count_include_pad, p,
//   out_size, in_size, want indices, in[3] @8, out[3] @11, kernel[3] @14,
//   strides[3] @17, dilations[3] @20, pad_begin[3] @23, pad_end[3] @26,
//   column-major indices @29]

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;

@compute @workgroup_size(64)
fn pool_nd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let nsp = P(1u);
    let mode = P(2u);
    let out_size = P(5u);
    let in_size = P(6u);
    let o_flat = i % out_size;
    let base = (i / out_size) * in_size;
    var opos: array<u32, 3>;
    var rem = o_flat;
    var taps = 1u;
    for (var k = nsp; k > 0u; k = k - 1u) {
        let a = k - 1u;
        opos[a] = rem % P(11u + a);
        rem = rem / P(11u + a);
        taps = taps * P(14u + a);
    }
    var mx = f32_bits(0xff800000u);
    var best = -1;
    var sum = 0.0;
    var count = 0u;
    var covered = 0u;
    let pf = f32(P(4u));
    for (var t = 0u; t < taps; t = t + 1u) {
        var r = t;
        var inside = true;
        var in_pad = true;
        var row = 0u;
        var col = 0u;
        var rs = 1u;
        for (var k = nsp; k > 0u; k = k - 1u) {
            let a = k - 1u;
            let kk = r % P(14u + a);
            r = r / P(14u + a);
            let len = i32(P(8u + a));
            let pos = i32(opos[a] * P(17u + a)) - i32(P(23u + a)) + i32(kk * P(20u + a));
            if pos < -i32(P(23u + a)) || pos >= len + i32(P(26u + a)) {
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
        if mode == 0u {
            if best < 0 || v > mx {
                mx = v;
                if P(29u) != 0u {
                    // Column-major flat index of the same position.
                    var cr = row;
                    col = 0u;
                    for (var k = nsp; k > 0u; k = k - 1u) {
                        let a = k - 1u;
                        let c = cr % P(8u + a);
                        cr = cr / P(8u + a);
                        var st = 1u;
                        for (var b = 0u; b < a; b = b + 1u) {
                            st = st * P(8u + b);
                        }
                        col = col + c * st;
                    }
                    best = i32(base + col);
                } else {
                    best = i32(base + row);
                }
            }
        } else if mode == 1u {
            sum = sum + v;
        } else if P(4u) == 2u {
            sum = sum + v * v;
        } else {
            sum = sum + pow(abs(v), pf);
        }
        count = count + 1u;
    }
    if mode == 0u {
        out[i] = mx;
        if P(7u) != 0u {
            idx[i] = best;
        }
    } else if mode == 1u {
        if P(3u) != 0u {
            out[i] = sum / f32(max(covered, 1u));
        } else {
            out[i] = sum / f32(max(count, 1u));
        }
    } else if P(4u) == 2u {
        out[i] = sqrt(sum);
    } else {
        out[i] = pow(sum, 1.0 / pf);
    }
}

// Col2Im: params [n, nsp, C, K (prod block), L (blocks), -, -, -,
//   image[4] @8, block[4] @12, strides[4] @16, dilations[4] @20,
//   pad_begin[4] @24, blocks per axis[4] @28]; one invocation per image
//   element sums every (kernel offset, block) pair that lands on it.
@compute @workgroup_size(64)
fn col2im(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let nsp = P(1u);
    let kk = P(3u);
    let ll = P(4u);
    var img_size = 1u;
    for (var a = 0u; a < nsp; a = a + 1u) {
        img_size = img_size * P(8u + a);
    }
    var pix: array<u32, 4>;
    var rem = i % img_size;
    for (var k = nsp; k > 0u; k = k - 1u) {
        let a = k - 1u;
        pix[a] = rem % P(8u + a);
        rem = rem / P(8u + a);
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
            let ka = r % P(12u + a);
            r = r / P(12u + a);
            let num = i32(pix[a]) + i32(P(24u + a)) - i32(ka * P(20u + a));
            let s = i32(P(16u + a));
            if num < 0 || num % s != 0 || u32(num / s) >= P(28u + a) {
                ok = false;
            } else {
                lflat = lflat + u32(num / s) * lstride;
            }
            lstride = lstride * P(28u + a);
        }
        if ok {
            acc = acc + x[(bc * kk + kf) * ll + lflat];
        }
    }
    out[i] = acc;
}
