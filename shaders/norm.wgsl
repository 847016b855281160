// Strata GPU: row-wise normalisations. One invocation per row.
// softmax (parameters: `SoftmaxParams`): element j of row r is at
//   (r / inner) * L * inner + r % inner + j * inner. MODE: SOFTMAX_EXP or SOFTMAX_LOG.
// layer_norm (parameters: `LayerNormParams`): rows are contiguous; scale and
//   bias have L elements (groups = 0), or one per channel or group (instance
//   and group norms, see `LayerNormParams`). MODE: LAYER_LAYER_NORM or LAYER_RMS_NORM.
// row_stats: layer_norm's parameters, `stat` 0 the row mean, 1 the inverse
//   standard deviation (LayerNormalization's optional outputs).
// batch_norm (inference; parameters: `BatchNormParams`): s = scale, b = bias,
//   plus running mean and variance (C elements each).
// lrn (parameters: `LrnParams`): x / (bias + alpha / size * sum of squares
//   over the channel window) ^ beta.

override MODE: u32 = 0u;

fn softmax_at(r: u32, p: SoftmaxParams) {
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

fn layer_norm_at(r: u32, p: LayerNormParams) {
    let L = p.row_len;
    let base = r * L;
    let m = row_moments(r);
    let first = (r % max(p.groups, 1u)) * L;
    for (var j = 0u; j < L; j = j + 1u) {
        var k = j;
        if p.groups != 0u {
            k = (first + j) / p.per;
        }
        var v = (x[base + j] - m.x) * m.y * s[k];
        if p.has_bias != 0u {
            v = v + b[k];
        }
        out[base + j] = v;
    }
}

fn row_stats_at(r: u32, p: LayerNormParams) {
    let m = row_moments(r);
    out[r] = select(m.x, m.y, p.stat != 0u);
}

fn batch_norm_at(i: u32, p: BatchNormParams) {
    let c = (i / p.inner) % p.channels;
    let eps = p.eps;
    out[i] = (x[i] - mean[c]) / sqrt(variance[c] + eps) * s[c] + b[c];
}

fn lrn_at(i: u32, p: LrnParams) {
    let c = (i / p.inner) % p.channels;
    let base = i - c * p.inner;
    let lo = select(c - p.before, 0u, c < p.before);
    let hi = min(c + p.after, p.channels - 1u);
    var sum = 0.0;
    for (var k = lo; k <= hi; k = k + 1u) {
        let v = x[base + k * p.inner];
        sum = sum + v * v;
    }
    out[i] = x[i] / pow(p.bias + p.alpha_over_size * sum, p.beta);
}
