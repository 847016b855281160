// Strata GPU: SwiGLU, the training optimisers and Det.
//
// swiglu: out = a * sigmoid(alpha * a) * b.
// optimizer: one output group of Adagrad, Adam or Momentum for x = a,
// g = b and the states c (and d). Parameters: `OptimizerParams`.
// det: the determinant of matrix i of a (side <= 16). Parameters: `DetParams`.

fn swiglu_at(i: u32, p: SwigluParams) {
    let x = a[i];
    out[i] = x * sigmoid_f(p.alpha * x) * b[i];
}

fn optimizer_at(i: u32, p: OptimizerParams) {
    let x = a[i];
    let g = p.norm * x + b[i];
    var v: f32;
    switch p.kind {
        // Adagrad: c = H.
        case 0u: {
            let h = c[i] + g * g;
            v = select(h, x - p.r * g / (sqrt(h) + p.epsilon), p.which == 0u);
        }
        // Adam: c = V (first moment), d = H (second moment).
        case 1u: {
            let m = p.alpha * c[i] + (1.0 - p.alpha) * g;
            let h = p.beta * d[i] + (1.0 - p.beta) * g * g;
            switch p.which {
                case 0u: { v = (1.0 - p.norm_post) * (x - p.r * m / (sqrt(h) + p.epsilon)); }
                case 1u: { v = m; }
                default: { v = h; }
            }
        }
        // Momentum (kind 2) and Nesterov momentum (3): c = V.
        default: {
            let m = p.alpha * c[i] + p.beta * g;
            let step = select(m, g + p.alpha * m, p.kind == 3u);
            v = select(m, x - p.r * step, p.which == 0u);
        }
    }
    out[i] = v;
}

// LU decomposition with partial pivoting of a private copy, the pivot the
// first row of largest magnitude (as the reference picks it).
fn det_at(i: u32, p: DetParams) {
    let n = p.side;
    var m: array<f32, 256>;
    let base = i * n * n;
    for (var k = 0u; k < n * n; k = k + 1u) {
        m[k] = a[base + k];
    }
    var d = 1.0;
    for (var col = 0u; col < n; col = col + 1u) {
        var piv = col;
        for (var row = col + 1u; row < n; row = row + 1u) {
            if abs(m[row * n + col]) > abs(m[piv * n + col]) {
                piv = row;
            }
        }
        if m[piv * n + col] == 0.0 {
            d = 0.0;
            break;
        }
        if piv != col {
            for (var k = 0u; k < n; k = k + 1u) {
                let t = m[col * n + k];
                m[col * n + k] = m[piv * n + k];
                m[piv * n + k] = t;
            }
            d = -d;
        }
        let pv = m[col * n + col];
        d = d * pv;
        for (var row = col + 1u; row < n; row = row + 1u) {
            let f = m[row * n + col] / pv;
            for (var k = col; k < n; k = k + 1u) {
                m[row * n + k] = m[row * n + k] - f * m[col * n + k];
            }
        }
    }
    out[i] = d;
}
