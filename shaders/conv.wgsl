// Strata GPU: 2-D convolution (1-D runs as H = 1), NCHW, with groups,
// strides, dilations and padding; f32 accumulation over C/group * KH * KW
// products. `conv2d_gemm` is the convolution as an implicit matrix product
// per image and group (weights [M/G, C/G*KH*KW] times the input's patches
// [C/G*KH*KW, OH*OW], gathered while staged), tiled like `matmul.wgsl`;
// `conv2d` is the direct kernel, one invocation per output element, for
// few output channels per group (depthwise).
// params [n, C, H, W, M, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL, G, has_bias]

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// The fused program applied to each result `v` (flat output index `i`)
// before it is stored. Unfused it is the identity; for a fused group the
// GPU backend generates this function (`ops/fused/wgsl.rs`), with the
// program's operands bound after the kernel's own buffers.
fn epilogue(v: f32, i: u32) -> f32 {
    return v;
}

// Output tile edge, K slice depth, invocations per workgroup (as matmul.wgsl).
const TM: u32 = 64u;
const TK: u32 = 16u;
const NI: u32 = 256u;

// Weight slice k-major (sw[k * TM + m]), patch slice (sx[k * TM + p]).
var<workgroup> sw: array<f32, 1024>;
var<workgroup> sx: array<f32, 1024>;

// One 16x16 workgroup computes 64 output channels x 64 output positions of
// one image and group, each invocation a 4x4 block (channels ty + 16r,
// positions tx + 16c). Workgroups: x over position tiles, y over channel
// tiles, z over image * G + group.
@compute @workgroup_size(16, 16)
fn conv2d_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let C = P(1u);
    let H = P(2u);
    let W = P(3u);
    let M = P(4u);
    let OH = P(5u);
    let OW = P(6u);
    let KH = P(7u);
    let KW = P(8u);
    let G = P(15u);
    let cg = C / G;
    let mg = M / G;
    let KK = KH * KW;
    let K = cg * KK;
    let NP = OH * OW;
    let g = wid.z % G;
    let nb = wid.z / G;
    let m0 = wid.y * TM;
    let p0 = wid.x * TM;
    // Weights of this group as a [mg, K] matrix, input planes of this group.
    let wbase = g * mg * K;
    let xbase = (nb * C + g * cg) * H * W;
    let busy = m0 + lid.y < mg && p0 + lid.x < NP;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < K; k0 = k0 + TK) {
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = li + r * NI;
            let am = m0 + e / TK;
            let ak = k0 + e % TK;
            var va = 0.0;
            if am < mg && ak < K {
                va = w[wbase + am * K + ak];
            }
            sw[(e % TK) * TM + e / TK] = va;
            // Patch element (k, p): channel k / KK, tap (k / KW % KH, k % KW).
            let bk = k0 + e / TM;
            let bp = p0 + e % TM;
            var vb = 0.0;
            if bk < K && bp < NP {
                let ci = bk / KK;
                let t = bk % KK;
                let ih = i32((bp / OW) * P(9u) + (t / KW) * P(11u)) - i32(P(13u));
                let iw = i32((bp % OW) * P(10u) + (t % KW) * P(12u)) - i32(P(14u));
                if ih >= 0 && ih < i32(H) && iw >= 0 && iw < i32(W) {
                    vb = x[xbase + (ci * H + u32(ih)) * W + u32(iw)];
                }
            }
            sx[e] = vb;
        }
        workgroupBarrier();
        if busy {
            for (var k = 0u; k < TK; k = k + 1u) {
                let o = k * TM;
                let bv = vec4<f32>(sx[o + lid.x], sx[o + lid.x + 16u], sx[o + lid.x + 32u], sx[o + lid.x + 48u]);
                acc[0] = acc[0] + sw[o + lid.y] * bv;
                acc[1] = acc[1] + sw[o + lid.y + 16u] * bv;
                acc[2] = acc[2] + sw[o + lid.y + 32u] * bv;
                acc[3] = acc[3] + sw[o + lid.y + 48u] * bv;
            }
        }
        workgroupBarrier();
    }
    let has_bias = P(16u) != 0u;
    for (var r = 0u; r < 4u; r = r + 1u) {
        let mi = m0 + lid.y + r * 16u;
        if mi >= mg {
            continue;
        }
        let m = g * mg + mi;
        var b0 = 0.0;
        if has_bias {
            b0 = bias[m];
        }
        for (var q = 0u; q < 4u; q = q + 1u) {
            let p = p0 + lid.x + q * 16u;
            if p < NP {
                let o = (nb * M + m) * NP + p;
                out[o] = epilogue(acc[r][q] + b0, o);
            }
        }
    }
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
