// Strata GPU: 2-D convolution (1-D runs as H = 1), NCHW, with groups,
// strides, dilations and padding; f32 accumulation over C/group * KH * KW
// products. `conv2d_gemm` is the convolution as an implicit matrix product
// per image and group (weights [M/G, C/G*KH*KW] times the input's patches
// [C/G*KH*KW, OH*OW], gathered while staged) on the shared tile
// (`shaders/shared/tile.wgsl`, as `matmul.wgsl`);
// `conv2d` is the direct kernel, one invocation per output element, for
// few output channels per group (depthwise).
// Parameters: `ConvParams` (within the first 64 words: a fused epilogue's own
// parameters start at word 64).

// The bias of output channel `m`, 0 without one.
fn conv_bias(m: u32, p: ConvParams) -> f32 {
    if p.has_bias != 0u {
        return bias[m];
    }
    return 0.0;
}

// Where a direct kernel's output element is: column, row, output channel,
// image, its group, input channels per group, output channels per group.
struct ConvAt {
    ow: u32,
    oh: u32,
    m: u32,
    nb: u32,
    g: u32,
    cg: u32,
    mg: u32,
}

fn conv_at(i: u32, p: ConvParams) -> ConvAt {
    let plane = p.ow * p.oh;
    let m = (i / plane) % p.m;
    let mg = p.m / p.groups;
    return ConvAt(i % p.ow, (i / p.ow) % p.oh, m, i / (plane * p.m), m / mg, p.c / p.groups, mg);
}

// The parameters and this invocation's image and group, for the tile
// loaders: A is the group's weights as an [M/G, K] matrix, B the image's
// patches [K, OH*OW] (K = C/G * KH * KW).
var<private> cv: ConvParams;
var<private> gemm_m: u32;
var<private> gemm_k: u32;
var<private> wbase: u32;
var<private> xbase: u32;

fn tile_load_a(m: u32, k: u32) -> f32 {
    if m >= gemm_m || k >= gemm_k {
        return 0.0;
    }
    return w[wbase + m * gemm_k + k];
}

// Patch element (k, pos): channel k / (KH KW), tap (k / KW % KH, k % KW).
fn tile_load_b(k: u32, pos: u32) -> f32 {
    let kk = cv.kh * cv.kw;
    if k >= gemm_k || pos >= cv.oh * cv.ow {
        return 0.0;
    }
    let t = k % kk;
    let ih = i32((pos / cv.ow) * cv.sh + (t / cv.kw) * cv.dh) - i32(cv.pad_top);
    let iw = i32((pos % cv.ow) * cv.sw + (t % cv.kw) * cv.dw) - i32(cv.pad_left);
    if ih < 0 || ih >= i32(cv.h) || iw < 0 || iw >= i32(cv.w) {
        return 0.0;
    }
    return x[xbase + ((k / kk) * cv.h + u32(ih)) * cv.w + u32(iw)];
}

// One 16x16 workgroup computes 64 output channels x 64 output positions of
// one image and group, each invocation a 4x4 block (channels ty + 16r,
// positions tx + 16c). Workgroups: x over position tiles, y over channel
// tiles, z over image * G + group.
fn conv2d_gemm_tile(wid: vec3<u32>, lid: vec3<u32>, li: u32) {
    let p = conv_params();
    cv = p;
    let M = p.m;
    let G = p.groups;
    let cg = p.c / G;
    let mg = M / G;
    let K = cg * p.kh * p.kw;
    let NP = p.oh * p.ow;
    let g = wid.z % G;
    let nb = wid.z / G;
    let m0 = wid.y * TM;
    let p0 = wid.x * TM;
    gemm_m = mg;
    gemm_k = K;
    wbase = g * mg * K;
    xbase = (nb * p.c + g * cg) * p.h * p.w;
    let acc = tile_product(m0, p0, K, m0 + lid.y < mg && p0 + lid.x < NP, lid, li);
    for (var r = 0u; r < 4u; r = r + 1u) {
        let mi = m0 + lid.y + r * 16u;
        if mi >= mg {
            continue;
        }
        let m = g * mg + mi;
        let b0 = conv_bias(m, p);
        for (var q = 0u; q < 4u; q = q + 1u) {
            let pos = p0 + lid.x + q * 16u;
            if pos < NP {
                let o = (nb * M + m) * NP + pos;
                out[o] = epilogue(acc[r][q] + b0, o);
            }
        }
    }
}

fn conv2d_at(i: u32, p: ConvParams) {
    let H = p.h;
    let W = p.w;
    let KH = p.kh;
    let KW = p.kw;
    let o = conv_at(i, p);
    let cg = o.cg;
    var acc = conv_bias(o.m, p);
    let ih0 = i32(o.oh * p.sh) - i32(p.pad_top);
    let iw0 = i32(o.ow * p.sw) - i32(p.pad_left);
    for (var ci = 0u; ci < cg; ci = ci + 1u) {
        let c = o.g * cg + ci;
        let xbase = (o.nb * p.c + c) * H;
        let wbase = (o.m * cg + ci) * KH;
        for (var kh = 0u; kh < KH; kh = kh + 1u) {
            let ih = ih0 + i32(kh * p.dh);
            if ih < 0 || ih >= i32(H) {
                continue;
            }
            for (var kw = 0u; kw < KW; kw = kw + 1u) {
                let iw = iw0 + i32(kw * p.dw);
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
// [C, M/G, KH, KW]. Parameters: `ConvParams` as conv2d (M = output channels).
fn conv_transpose2d_at(i: u32, p: ConvParams) {
    let H = p.h;
    let W = p.w;
    let KH = p.kh;
    let KW = p.kw;
    let SH = i32(p.sh);
    let SW = i32(p.sw);
    let o = conv_at(i, p);
    let mi = o.m % o.mg;
    var acc = conv_bias(o.m, p);
    for (var ci = 0u; ci < o.cg; ci = ci + 1u) {
        let c = o.g * o.cg + ci;
        for (var kh = 0u; kh < KH; kh = kh + 1u) {
            let th = i32(o.oh) + i32(p.pad_top) - i32(kh * p.dh);
            if th < 0 || th % SH != 0 {
                continue;
            }
            let ih = th / SH;
            if ih >= i32(H) {
                continue;
            }
            for (var kw = 0u; kw < KW; kw = kw + 1u) {
                let tw = i32(o.ow) + i32(p.pad_left) - i32(kw * p.dw);
                if tw < 0 || tw % SW != 0 {
                    continue;
                }
                let iw = tw / SW;
                if iw >= i32(W) {
                    continue;
                }
                let xv = x[((o.nb * p.c + c) * H + u32(ih)) * W + u32(iw)];
                acc = acc + xv * w[((c * o.mg + mi) * KH + kh) * KW + kw];
            }
        }
    }
    out[i] = epilogue(acc, i);
}
