// Strata GPU: tiled matrix product with batch broadcasting (MatMul, Gemm).
//
// One 16x16 workgroup computes a 64x64 tile of one output matrix, each
// invocation a 4x4 block of it (rows ty + 16r, columns tx + 16c). K is
// walked in 16-deep slices: a 64x16 slice of A and a 16x64 slice of B are
// staged in workgroup memory (8 KiB), so every element read from global
// memory feeds 64 multiply-adds. Accumulation is f32; bounds are checked on
// loads (zero fill) and stores, so any M, N, K works.
// Parameters: `MatmulParams` (within the first 64 words: a fused epilogue's own
// parameters start at word 64).
// Workgroups: x over N tiles, y over M tiles, z over batch entries.

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;

// Output tile edge, K slice depth, invocations per workgroup.
const TM: u32 = 64u;
const TK: u32 = 16u;
const NI: u32 = 256u;

// A slice stored k-major (sa[k * TM + row]), B slice row-major (sb[k * TM + col]).
var<workgroup> sa: array<f32, 1024>;
var<workgroup> sb: array<f32, 1024>;

// The fused program applied to each result `v` (flat output index `i`)
// before it is stored. Unfused it is the identity; for a fused group the
// GPU backend generates this function (`ops/fused/wgsl.rs`), with the
// program's operands bound after the kernel's own buffers.
fn epilogue(v: f32, i: u32) -> f32 {
    return v;
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let p = matmul_params();
    let M = p.m;
    let N = p.n;
    let K = p.k;
    let trans_a = p.trans_a != 0u;
    let trans_b = p.trans_b != 0u;
    let row0 = wid.y * TM;
    let col0 = wid.x * TM;
    let bi = wid.z;
    var rem = bi;
    var abase = 0u;
    var bbase = 0u;
    for (var d = p.batch_rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = matmul_params_batch_shape(k);
        let coord = rem % dim;
        rem = rem / dim;
        abase = abase + coord * matmul_params_a_batch_stride(k);
        bbase = bbase + coord * matmul_params_b_batch_stride(k);
    }
    // Does this invocation own any valid output? (Whole rows of lanes idle
    // on thin products, e.g. M = 1.)
    let busy = row0 + lid.y < M && col0 + lid.x < N;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < K; k0 = k0 + TK) {
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = li + r * NI;
            // A: element (row0 + e / TK, k0 + e % TK).
            let ar = row0 + e / TK;
            let ak = k0 + e % TK;
            var va = 0.0;
            if ar < M && ak < K {
                va = a[abase + select(ar * K + ak, ak * M + ar, trans_a)];
            }
            sa[(e % TK) * TM + e / TK] = va;
            // B: element (k0 + e / TM, col0 + e % TM).
            let bk = k0 + e / TM;
            let bc = col0 + e % TM;
            var vb = 0.0;
            if bk < K && bc < N {
                vb = b[bbase + select(bk * N + bc, bc * K + bk, trans_b)];
            }
            sb[e] = vb;
        }
        workgroupBarrier();
        if busy {
            for (var k = 0u; k < TK; k = k + 1u) {
                let o = k * TM;
                let bv = vec4<f32>(sb[o + lid.x], sb[o + lid.x + 16u], sb[o + lid.x + 32u], sb[o + lid.x + 48u]);
                acc[0] = acc[0] + sa[o + lid.y] * bv;
                acc[1] = acc[1] + sa[o + lid.y + 16u] * bv;
                acc[2] = acc[2] + sa[o + lid.y + 32u] * bv;
                acc[3] = acc[3] + sa[o + lid.y + 48u] * bv;
            }
        }
        workgroupBarrier();
    }
    let alpha = p.alpha;
    let beta = p.beta;
    let has_c = p.has_c != 0u;
    for (var r = 0u; r < 4u; r = r + 1u) {
        let row = row0 + lid.y + r * 16u;
        for (var q = 0u; q < 4u; q = q + 1u) {
            let col = col0 + lid.x + q * 16u;
            if row < M && col < N {
                var v = alpha * acc[r][q];
                if has_c {
                    v = v + beta * c[row * p.c_stride_m + col * p.c_stride_n];
                }
                let o = (bi * M + row) * N + col;
                out[o] = epilogue(v, o);
            }
        }
    }
}
