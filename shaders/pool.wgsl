// Strata GPU: 2-D pooling over NCHW (1-D runs as H = 1). One invocation per
// output element. MODE: 0 max, 1 average. Parameters: `Pool2dParams`.

override MODE: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

@compute @workgroup_size(64)
fn pool2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    let p = pool2d_params();
    if i >= p.n {
        return;
    }
    let H = p.h;
    let W = p.w;
    let OH = p.oh;
    let OW = p.ow;
    let KH = p.kh;
    let KW = p.kw;
    let ow = i % OW;
    let oh = (i / OW) % OH;
    let plane = i / (OW * OH);
    let base = plane * H * W;
    let ih0 = i32(oh * p.sh) - i32(p.pad_top);
    let iw0 = i32(ow * p.sw) - i32(p.pad_left);
    var mx = f32_bits(0xff800000u);
    var sum = 0.0;
    var count = 0u;
    var padded_count = 0u;
    for (var kh = 0u; kh < KH; kh = kh + 1u) {
        let ih = ih0 + i32(kh * p.dh);
        for (var kw = 0u; kw < KW; kw = kw + 1u) {
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

