// Strata GPU: 2-D convolution (1-D runs as H = 1), NCHW, with groups,
// strides, dilations and padding; f32 accumulation over C/group * KH * KW
// products. `conv2d_gemm` is the convolution as an implicit matrix product
// per image and group (weights [M/G, C/G*KH*KW] times the input's patches
// [C/G*KH*KW, OH*OW], gathered while staged), tiled like `matmul.wgsl`;
// `conv2d` is the direct kernel, one invocation per output element, for
// few output channels per group (depthwise).
// Parameters: `ConvParams` (within the first 64 words: a fused epilogue's own
// parameters start at word 64).

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
    let p = conv_params();
    let C = p.c;
    let H = p.h;
    let W = p.w;
    let M = p.m;
    let OH = p.oh;
    let OW = p.ow;
    let KH = p.kh;
    let KW = p.kw;
    let G = p.groups;
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
                let ih = i32((bp / OW) * p.sh + (t / KW) * p.dh) - i32(p.pad_top);
                let iw = i32((bp % OW) * p.sw + (t % KW) * p.dw) - i32(p.pad_left);
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

@compute @workgroup_size(64)
fn conv2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = conv_params();
    if i >= p.n {
        return;
    }
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
@compute @workgroup_size(64)
fn conv_transpose2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = conv_params();
    if i >= p.n {
        return;
    }
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
