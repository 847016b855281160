// Strata GPU: the tiled product shared by `matmul.wgsl` and the implicit
// GEMM of `conv.wgsl`; the generator copies this file into their generated
// files, after the tile constants TM (output tile edge, strata-gpu's
// `TILE`), TK (K slice depth) and NI (invocations per workgroup).
//
// One 16x16 workgroup computes a TM x TM tile of C = A B, each invocation a
// 4x4 block of it (rows lid.y + 16r, columns lid.x + 16c). K is walked in
// TK-deep slices: every invocation stages four elements of each operand's
// slice in workgroup memory, then all multiply the slices, so every element
// read from global memory feeds 64 multiply-adds. The family defines the
// loaders `tile_load_a(row, k)` and `tile_load_b(k, col)` (0 outside the
// operands) and the `epilogue` hook below is replaced by fused programs.

// A slice stored k-major (tile_a[k * TM + row]), B slice row-major
// (tile_b[k * TM + col]).
var<workgroup> tile_a: array<f32, 1024>;
var<workgroup> tile_b: array<f32, 1024>;

// This invocation's 4x4 block of the tile at (row0, col0), over K; `busy`
// says whether it owns any output (whole rows of lanes idle on thin
// products). Every invocation of the workgroup must call it.
fn tile_product(row0: u32, col0: u32, K: u32, busy: bool, lid: vec3<u32>, li: u32) -> array<vec4<f32>, 4> {
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < K; k0 = k0 + TK) {
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = li + r * NI;
            tile_a[(e % TK) * TM + e / TK] = tile_load_a(row0 + e / TK, k0 + e % TK);
            tile_b[e] = tile_load_b(k0 + e / TM, col0 + e % TM);
        }
        workgroupBarrier();
        if busy {
            for (var k = 0u; k < TK; k = k + 1u) {
                let o = k * TM;
                let bv = vec4<f32>(tile_b[o + lid.x], tile_b[o + lid.x + 16u], tile_b[o + lid.x + 32u],
                                   tile_b[o + lid.x + 48u]);
                acc[0] = acc[0] + tile_a[o + lid.y] * bv;
                acc[1] = acc[1] + tile_a[o + lid.y + 16u] * bv;
                acc[2] = acc[2] + tile_a[o + lid.y + 32u] * bv;
                acc[3] = acc[3] + tile_a[o + lid.y + 48u] * bv;
            }
        }
        workgroupBarrier();
    }
    return acc;
}

// The fused program applied to each result `v` (flat output index `i`)
// before it is stored. Unfused it is the identity; for a fused group the
// GPU backend generates this function (`ops/fused/wgsl.rs`), with the
// program's operands bound after the kernel's own buffers.
fn epilogue(v: f32, i: u32) -> f32 {
    return v;
}
