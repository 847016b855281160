// Strata GPU: SwiGLU and the training optimisers.
//
// swiglu: out = a * sigmoid(alpha * a) * b.
// optimizer: one output group of Adagrad, Adam or Momentum for x = a,
// g = b and the states c (and d). Parameters: `OptimizerParams`.

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
