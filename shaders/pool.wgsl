// Strata GPU: 2-D pooling over NCHW (1-D runs as H = 1). One invocation per
// output element. MODE: 0 max, 1 average.
// params [n, H, W, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL, count_include_pad, PB, PR]

override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> params: array<vec4<u32>, 32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

fn P(i: u32) -> u32 {
    return params[i / 4u][i % 4u];
}

@compute @workgroup_size(64)
fn pool2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let H = P(1u);
    let W = P(2u);
    let OH = P(3u);
    let OW = P(4u);
    let KH = P(5u);
    let KW = P(6u);
    let ow = i % OW;
    let oh = (i / OW) % OH;
    let plane = i / (OW * OH);
    let base = plane * H * W;
    let ih0 = i32(oh * P(7u)) - i32(P(11u));
    let iw0 = i32(ow * P(8u)) - i32(P(12u));
    var mx = f32_bits(0xff800000u);
    var sum = 0.0;
    var count = 0u;
    var padded_count = 0u;
    for (var kh = 0u; kh < KH; kh = kh + 1u) {
        let ih = ih0 + i32(kh * P(9u));
        for (var kw = 0u; kw < KW; kw = kw + 1u) {
            let iw = iw0 + i32(kw * P(10u));
            // Positions inside the padded input count for count_include_pad.
            if ih < i32(H + P(14u)) && iw < i32(W + P(15u)) {
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
    } else if P(13u) != 0u {
        out[i] = sum / f32(max(padded_count, 1u));
    } else {
        out[i] = sum / f32(max(count, 1u));
    }
}

// Infinity and NaN as runtime values: a WGSL constant expression must not
// evaluate to them (browsers' WebGPU compilers reject the whole shader), and
// calls of user functions are never constant expressions.
fn f32_bits(b: u32) -> f32 {
    return bitcast<f32>(b);
}
