// Strata GPU: 2-D pooling over NCHW (1-D runs as H = 1). One invocation per
// output element. MODE: 0 max, 1 average. Parameters: `Pool2dParams`.

override MODE: u32 = 0u;

fn pool2d_at(i: u32, p: Pool2dParams) {
    let H = p.h;
    let W = p.w;
    let ow = i % p.ow;
    let oh = (i / p.ow) % p.oh;
    let base = (i / (p.ow * p.oh)) * H * W;
    let ih0 = i32(oh * p.sh) - i32(p.pad_top);
    let iw0 = i32(ow * p.sw) - i32(p.pad_left);
    var mx = f32_bits(0xff800000u);
    var sum = 0.0;
    var count = 0u;
    var padded_count = 0u;
    for (var kh = 0u; kh < p.kh; kh = kh + 1u) {
        let ih = ih0 + i32(kh * p.dh);
        for (var kw = 0u; kw < p.kw; kw = kw + 1u) {
            let iw = iw0 + i32(kw * p.dw);
            // Positions inside the padded input count for count_include_pad.
            if ih < i32(H + p.pad_bottom) && iw < i32(W + p.pad_right) {
                padded_count = padded_count + 1u;
            }
            if ih < 0 || ih >= i32(H) || iw < 0 || iw >= i32(W) {
                continue;
            }
            let v = x[base + u32(ih) * W + u32(iw)];
            mx = max(mx, v);
            sum = sum + v;
            count = count + 1u;
        }
    }
    if MODE == 0u {
        out[i] = mx;
    } else if p.count_include_pad != 0u {
        out[i] = sum / f32(max(padded_count, 1u));
    } else {
        out[i] = sum / f32(max(count, 1u));
    }
}

