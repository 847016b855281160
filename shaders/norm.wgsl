// Strata GPU: row-wise normalisations. One invocation per row.
// softmax (parameters: `SoftmaxParams`): element j of row r is at
//   (r / inner) * L * inner + r % inner + j * inner. MODE: SOFTMAX_EXP or SOFTMAX_LOG.
// layer_norm (parameters: `LayerNormParams`): rows are contiguous, scale and
//   bias have L elements. MODE: LAYER_LAYER_NORM or LAYER_RMS_NORM.
// row_stats: layer_norm's parameters, `stat` 0 the row mean, 1 the inverse
//   standard deviation (LayerNormalization's optional outputs).
// batch_norm (inference; parameters: `BatchNormParams`): s = scale, b = bias,
//   plus running mean and variance (C elements each).

override MODE: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> s: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read> mean: array<f32>;
@group(0) @binding(6) var<storage, read> variance: array<f32>;

@compute @workgroup_size(64)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lidx: u32) {
    let r = linear_index(wid, nwg, lidx);
    let p = softmax_params();
    if r >= p.rows {
        return;
    }
    let L = p.row_len;
    let inner = p.inner;
    let base = (r / inner) * L * inner + r % inner;
    var mx = f32_bits(0xff800000u);
    for (var j = 0u; j < L; j = j + 1u) {
        mx = max(mx, x[base + j * inner]);
    }
    var sum = 0.0;
    for (var j = 0u; j < L; j = j + 1u) {
        sum = sum + exp(x[base + j * inner] - mx);
    }
    let lsum = log(sum);
    for (var j = 0u; j < L; j = j + 1u) {
        let v = x[base + j * inner] - mx;
        if MODE == SOFTMAX_EXP {
            out[base + j * inner] = exp(v) / sum;
        } else {
            out[base + j * inner] = v - lsum;
        }
    }
}

// Mean (0 for RMSNormalization) and 1 / sqrt(variance + eps) of row `r`.
fn row_moments(r: u32) -> vec2<f32> {
    let p = layer_norm_params();
    let L = p.row_len;
    let eps = p.eps;
    let base = r * L;
    var mu = 0.0;
    if MODE == LAYER_LAYER_NORM {
        for (var j = 0u; j < L; j = j + 1u) {
            mu = mu + x[base + j];
        }
        mu = mu / f32(L);
    }
    var var_ = 0.0;
    for (var j = 0u; j < L; j = j + 1u) {
        let d = x[base + j] - mu;
        var_ = var_ + d * d;
    }
    var_ = var_ / f32(L);
    return vec2<f32>(mu, 1.0 / sqrt(var_ + eps));
}

@compute @workgroup_size(64)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lidx: u32) {
    let r = linear_index(wid, nwg, lidx);
    let p = layer_norm_params();
    if r >= p.rows {
        return;
    }
    let L = p.row_len;
    let base = r * L;
    let m = row_moments(r);
    for (var j = 0u; j < L; j = j + 1u) {
        var v = (x[base + j] - m.x) * m.y * s[j];
        if p.has_bias != 0u {
            v = v + b[j];
        }
        out[base + j] = v;
    }
}

@compute @workgroup_size(64)
fn row_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lidx: u32) {
    let r = linear_index(wid, nwg, lidx);
    let p = layer_norm_params();
    if r >= p.rows {
        return;
    }
    let m = row_moments(r);
    out[r] = select(m.x, m.y, p.stat != 0u);
}

@compute @workgroup_size(64)
fn batch_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    let p = batch_norm_params();
    if i >= p.n {
        return;
    }
    let c = (i / p.inner) % p.channels;
    let eps = p.eps;
    out[i] = (x[i] - mean[c]) / sqrt(variance[c] + eps) * s[c] + b[c];
}

