// Strata GPU: SwiGLU.
//
// swiglu: out = a * sigmoid(alpha * a) * b.

fn swiglu_at(i: u32, p: SwigluParams) {
    let x = a[i];
    out[i] = x * sigmoid_f(p.alpha * x) * b[i];
}
