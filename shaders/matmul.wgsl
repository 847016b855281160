// Strata GPU: tiled matrix product with batch broadcasting (MatMul, Gemm).
//
// One 16x16 workgroup computes a 16x16 tile of one output matrix; K is walked
// in 16-wide tiles staged in workgroup memory. Accumulation is f32.
// params [M, N, K, batch, brank, trans_a, trans_b, has_c, alpha, beta,
//         c_sm, c_sn, -, -, -, -, bshape[8] @16, a_bstride[8] @24, b_bstride[8] @32]
// Workgroups: x over N tiles, y over M tiles, z over batch entries.

@group(0) @binding(0) var<uniform> params: array<vec4<u32>, 32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;

const T: u32 = 16u;

var<workgroup> ta: array<f32, 256>;
var<workgroup> tb: array<f32, 256>;

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

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let M = P(0u);
    let N = P(1u);
    let K = P(2u);
    let trans_a = P(5u) != 0u;
    let trans_b = P(6u) != 0u;
    let row = wid.y * T + lid.y;
    let col = wid.x * T + lid.x;
    let bi = wid.z;
    var rem = bi;
    var abase = 0u;
    var bbase = 0u;
    for (var d = P(4u); d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = P(16u + k);
        let coord = rem % dim;
        rem = rem / dim;
        abase = abase + coord * P(24u + k);
        bbase = bbase + coord * P(32u + k);
    }
    var acc = 0.0;
    let ntiles = (K + T - 1u) / T;
    for (var t = 0u; t < ntiles; t = t + 1u) {
        let ka = t * T + lid.x;
        var va = 0.0;
        if row < M && ka < K {
            va = a[abase + select(row * K + ka, ka * M + row, trans_a)];
        }
        ta[lid.y * T + lid.x] = va;
        let kb = t * T + lid.y;
        var vb = 0.0;
        if kb < K && col < N {
            vb = b[bbase + select(kb * N + col, col * K + kb, trans_b)];
        }
        tb[lid.y * T + lid.x] = vb;
        workgroupBarrier();
        for (var k = 0u; k < T; k = k + 1u) {
            acc = acc + ta[lid.y * T + k] * tb[k * T + lid.x];
        }
        workgroupBarrier();
    }
    if row < M && col < N {
        var r = bitcast<f32>(P(8u)) * acc;
        if P(7u) != 0u {
            r = r + bitcast<f32>(P(9u)) * c[row * P(10u) + col * P(11u)];
        }
        let o = (bi * M + row) * N + col;
        out[o] = epilogue(r, o);
    }
}
