// Strata GPU: tiled matrix product with batch broadcasting (MatMul, Gemm).
//
// One 16x16 workgroup computes a 64x64 tile of one output matrix with the
// shared tile (`shaders/shared/tile.wgsl`): 64x16 slices of A and 16x64
// slices of B are staged in workgroup memory (8 KiB). Accumulation is f32;
// bounds are checked on loads (zero fill) and stores, so any M, N, K works.
// Parameters: `MatmulParams` (within the first 64 words: a fused epilogue's own
// parameters start at word 64).
// Workgroups: x over N tiles, y over M tiles, z over batch entries.

// The parameters and this invocation's batch offsets into A and B, for
// the tile loaders.
var<private> mm: MatmulParams;
var<private> abase: u32;
var<private> bbase: u32;

fn tile_load_a(row: u32, k: u32) -> f32 {
    if row >= mm.m || k >= mm.k {
        return 0.0;
    }
    return a[abase + select(row * mm.k + k, k * mm.m + row, mm.trans_a != 0u)];
}

fn tile_load_b(k: u32, col: u32) -> f32 {
    if k >= mm.k || col >= mm.n {
        return 0.0;
    }
    return b[bbase + select(k * mm.n + col, col * mm.k + k, mm.trans_b != 0u)];
}

fn matmul_tile(wid: vec3<u32>, lid: vec3<u32>, li: u32) {
    let p = matmul_params();
    mm = p;
    let M = p.m;
    let N = p.n;
    let row0 = wid.y * TM;
    let col0 = wid.x * TM;
    let bi = wid.z;
    var rem = bi;
    for (var d = p.batch_rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let coord = next_coord(&rem, matmul_params_batch_shape(k));
        abase = abase + coord * matmul_params_a_batch_stride(k);
        bbase = bbase + coord * matmul_params_b_batch_stride(k);
    }
    let acc = tile_product(row0, col0, p.k, row0 + lid.y < M && col0 + lid.x < N, lid, li);
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
