// Strata GPU: direct 2-D convolution (1-D runs as H = 1), NCHW, with groups,
// strides, dilations and padding. One invocation per output element; f32
// accumulation over C/group * KH * KW products.
// params [n, C, H, W, M, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL, G, has_bias]

@group(0) @binding(0) var<uniform> params: array<vec4<u32>, 32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

fn P(i: u32) -> u32 {
    return params[i / 4u][i % 4u];
}

// The fused program applied to each result `v` (flat output index `i`)
// before it is stored. Unfused it is the identity; for a fused group the
// GPU backend generates this function (`ops/fused/wgsl.rs`), with the
// program's operands bound after the kernel's own buffers.
fn epilogue(v: f32, i: u32) -> f32 {
    return v;
}

@compute @workgroup_size(64)
fn conv2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let C = P(1u);
    let H = P(2u);
    let W = P(3u);
    let M = P(4u);
    let OH = P(5u);
    let OW = P(6u);
    let KH = P(7u);
    let KW = P(8u);
    let G = P(15u);
    let ow = i % OW;
    let oh = (i / OW) % OH;
    let m = (i / (OW * OH)) % M;
    let nb = i / (OW * OH * M);
    let cg = C / G;
    let mg = M / G;
    let g = m / mg;
    var acc = 0.0;
    if P(16u) != 0u {
        acc = bias[m];
    }
    let ih0 = i32(oh * P(9u)) - i32(P(13u));
    let iw0 = i32(ow * P(10u)) - i32(P(14u));
    for (var ci = 0u; ci < cg; ci = ci + 1u) {
        let c = g * cg + ci;
        let xbase = (nb * C + c) * H;
        let wbase = (m * cg + ci) * KH;
        for (var kh = 0u; kh < KH; kh = kh + 1u) {
            let ih = ih0 + i32(kh * P(11u));
            if ih < 0 || ih >= i32(H) {
                continue;
            }
            for (var kw = 0u; kw < KW; kw = kw + 1u) {
                let iw = iw0 + i32(kw * P(12u));
                if iw < 0 || iw >= i32(W) {
                    continue;
                }
                acc = acc + x[(xbase + u32(ih)) * W + u32(iw)] * w[(wbase + kh) * KW + kw];
            }
        }
    }
    out[i] = epilogue(acc, i);
}

// Transposed 2-D convolution (gradient of conv2d), one invocation per output
// element gathering the inputs that scatter into it. Weights are
// [C, M/G, KH, KW]. Same parameter layout as conv2d (M = output channels).
@compute @workgroup_size(64)
fn conv_transpose2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lidx: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lidx;
    if i >= P(0u) {
        return;
    }
    let C = P(1u);
    let H = P(2u);
    let W = P(3u);
    let M = P(4u);
    let OH = P(5u);
    let OW = P(6u);
    let KH = P(7u);
    let KW = P(8u);
    let SH = i32(P(9u));
    let SW = i32(P(10u));
    let G = P(15u);
    let ow = i % OW;
    let oh = (i / OW) % OH;
    let m = (i / (OW * OH)) % M;
    let nb = i / (OW * OH * M);
    let cg = C / G;
    let mg = M / G;
    let g = m / mg;
    let mi = m % mg;
    var acc = 0.0;
    if P(16u) != 0u {
        acc = bias[m];
    }
    for (var ci = 0u; ci < cg; ci = ci + 1u) {
        let c = g * cg + ci;
        for (var kh = 0u; kh < KH; kh = kh + 1u) {
            let th = i32(oh) + i32(P(13u)) - i32(kh * P(11u));
            if th < 0 || th % SH != 0 {
                continue;
            }
            let ih = th / SH;
            if ih >= i32(H) {
                continue;
            }
            for (var kw = 0u; kw < KW; kw = kw + 1u) {
                let tw = i32(ow) + i32(P(14u)) - i32(kw * P(12u));
                if tw < 0 || tw % SW != 0 {
                    continue;
                }
                let iw = tw / SW;
                if iw >= i32(W) {
                    continue;
                }
                let xv = x[((nb * C + c) * H + u32(ih)) * W + u32(iw)];
                acc = acc + xv * w[((c * mg + mi) * KH + kh) * KW + kw];
            }
        }
    }
    out[i] = epilogue(acc, i);
}
