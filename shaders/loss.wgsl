// Strata GPU: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (the
// log-softmax over the class axis runs first, in `norm.wgsl`).
//
// loss_elem: one invocation per target element (n, d); parameters:
//   `LossElemParams`. out[e] = -w[t] * logp[(n * C + t) * D + d], aux[e] = w[t]; both 0 when
//   t is the ignore index. A target out of range gives NaN (never an
//   out-of-bounds read).
// loss_reduce: one workgroup; parameters: `LossReduceParams`. out[0] = sum(src) or
//   sum(src) / sum(aux) (NaN for a zero total weight, as in the spec).

fn loss_elem_at(e: u32, p: LossElemParams) {
    let c = p.classes;
    let dd = p.inner;
    let n = e / dd;
    let d = e % dd;
    let t = tgt[e];
    if p.has_ignore_index != 0u && t == p.ignore_index {
        out[e] = 0.0;
        aux[e] = 0.0;
        return;
    }
    if t < 0 || t >= i32(c) {
        out[e] = f32_bits(0x7fc00000u);
        aux[e] = f32_bits(0x7fc00000u);
        return;
    }
    let tt = u32(t);
    var w = 1.0;
    if p.has_weight != 0u {
        w = wt[tt];
    }
    out[e] = -w * src[(n * c + tt) * dd + d];
    aux[e] = w;
}

var<workgroup> part_loss: array<f32, 64>;
var<workgroup> part_w: array<f32, 64>;

@compute @workgroup_size(64)
fn loss_reduce(@builtin(local_invocation_index) lidx: u32) {
    let p = loss_reduce_params();
    let count = p.count;
    var s = 0.0;
    var w = 0.0;
    for (var i = lidx; i < count; i = i + 64u) {
        s = s + src[i];
        w = w + aux[i];
    }
    part_loss[lidx] = s;
    part_w[lidx] = w;
    workgroupBarrier();
    for (var step = 32u; step > 0u; step = step / 2u) {
        if lidx < step {
            part_loss[lidx] = part_loss[lidx] + part_loss[lidx + step];
            part_w[lidx] = part_w[lidx] + part_w[lidx + step];
        }
        workgroupBarrier();
    }
    if lidx == 0u {
        if p.mean != 0u {
            out[0] = part_loss[0] / part_w[0];
        } else {
            out[0] = part_loss[0];
        }
    }
}

