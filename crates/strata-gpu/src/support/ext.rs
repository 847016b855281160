//! Support checks of the operator families added beside the original
//! kernels (attention, losses, generated tensors, ...): each returns the
//! pipelines a node needs or the reason it cannot run on the GPU. The
//! family matches of `support.rs` fall through to these.

use super::*;

/// Is `v` a small input of the graph? Graph inputs are never computed on
/// the GPU: they are uploaded from the host, and small uploads keep a host
/// copy (see `GpuTensor::host`), so kernels may read them as host operands
/// (runtime Clip bounds, Pad values, Resize scales...).
pub(super) fn small_graph_input(g: &Graph, v: ValueId) -> bool {
    g.inputs.contains(&v)
        && match &g.value(v).ty {
            ValueType::Tensor { shape: Some(s), .. } => s
                .iter()
                .try_fold(1usize, |acc, d| match d {
                    strata_ir::Dim::Known(k) => usize::try_from(*k).ok().and_then(|k| acc.checked_mul(k)),
                    _ => None,
                })
                .is_some_and(|n| n <= crate::device::HOST_COPY_MAX),
            _ => false,
        }
}

fn not_implemented(name: &str) -> Result<Vec<Spec>, String> {
    Err(format!("operator {name} is not implemented on the GPU"))
}

fn int_input(v: &NodeView, i: usize, what: &str) -> Result<(), String> {
    match v.dt(i)? {
        DType::I32 | DType::I64 => Ok(()),
        d => Err(format!("{what} of type {d}")),
    }
}

/// Elementwise operators not in `elementwise.wgsl`.
pub(super) fn elementwise(v: &NodeView, e: &E) -> Result<Vec<Spec>, String> {
    match crate::graph::math::math_code(e) {
        Some(op) => {
            v.float(0)?;
            Ok(vec![(Shader::Math, "unary_math", vec![("OP", op)])])
        }
        None => not_implemented(e.name()),
    }
}

/// MaxPool / AveragePool that `pool.wgsl` does not cover: 3-D inputs or
/// MaxPool's indices output (the graph side makes the same choice).
pub(super) fn pool_nd_needed(v: &NodeView) -> bool {
    v.rank(0) == Some(5) || v.n.outputs.iter().skip(1).any(|o| o.is_some())
}

/// Pooling with `poolnd.wgsl` (1 to 3 spatial axes).
pub(super) fn pool_nd(v: &NodeView) -> Result<Vec<Spec>, String> {
    v.float(0)?;
    match v.rank(0) {
        Some(3..=5) => {}
        Some(r) => return Err(format!("pooling of a rank-{r} input")),
        None => return Err("input rank unknown".into()),
    }
    if let Op::Nn(NnOp::MaxPool { auto_pad, .. } | NnOp::AveragePool { auto_pad, .. } | NnOp::LpPool { auto_pad, .. }) =
        &v.n.op
        && !matches!(auto_pad.as_str(), "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER")
    {
        return Err(format!("auto_pad '{auto_pad}'"));
    }
    Ok(vec![(Shader::PoolNd, "pool_nd", vec![])])
}

/// Resize with cubic interpolation or antialiasing (`resize_taps.wgsl`,
/// which takes `resize.wgsl`'s parameters, so the graph side is shared).
pub(super) fn resize_taps(v: &NodeView, o: &NnOp) -> Result<Vec<Spec>, String> {
    let NnOp::Resize {
        antialias,
        coordinate_transformation_mode,
        cubic_coeff_a,
        exclude_outside,
        keep_aspect_ratio_policy,
        mode,
        nearest_mode,
        ..
    } = o
    else {
        return not_implemented(o.name());
    };
    v.float(0)?;
    let kind = match mode.as_str() {
        "linear" => 1,
        "cubic" => 2,
        other => return Err(format!("Resize mode '{other}' with antialias")),
    };
    if keep_aspect_ratio_policy.as_str() != "stretch" {
        return Err(format!("Resize keep_aspect_ratio_policy '{keep_aspect_ratio_policy}'"));
    }
    resize_coord_code(coordinate_transformation_mode.as_str())?;
    resize_nearest_code(nearest_mode.as_str())?;
    v.host(2, "scales")?;
    v.host(3, "sizes")?;
    Ok(vec![(
        Shader::ResizeTaps,
        "resize_taps",
        vec![
            ("KIND", kind),
            ("A_BITS", cubic_coeff_a.to_bits()),
            ("EXCLUDE_OUTSIDE", u32::from(*exclude_outside)),
            ("ANTIALIAS", u32::from(*antialias)),
        ],
    )])
}

/// Neural-network operators.
pub(super) fn nn(v: &NodeView, o: &NnOp) -> Result<Vec<Spec>, String> {
    match o {
        NnOp::Attention { softmax_precision, .. } => {
            for i in 0..3 {
                v.float(i)?;
            }
            if v.dt(0)? == DType::BF16 {
                // The ONNX function rounds every step to bfloat16; the fused
                // kernel keeps f32 intermediates, a bfloat16 ulp apart.
                return Err("Attention in bfloat16 (the fused kernel keeps float32 intermediates)".into());
            }
            if v.input(3).is_some() {
                match v.dt(3)? {
                    DType::Bool => {}
                    d if is_float_word(d) => {}
                    d => return Err(format!("attn_mask of type {d}")),
                }
            }
            for i in [4, 5] {
                if v.input(i).is_some() {
                    v.float(i)?;
                }
            }
            if v.input(6).is_some() {
                int_input(v, 6, "nonpad_kv_seqlen")?;
            }
            if let Some(p) = softmax_precision
                && !matches!(p, 1 | 11)
            {
                return Err(format!("Attention softmax_precision {p} (the GPU computes the softmax in float32)"));
            }
            Ok(vec![copy_spec(), (Shader::Attention, "attention", vec![])])
        }
        NnOp::GridSample { mode, padding_mode, .. } => {
            v.float(0)?;
            v.float(1)?;
            crate::graph::sample::grid_mode_code(mode)?;
            crate::graph::sample::grid_padding_code(padding_mode)?;
            match v.rank(0) {
                Some(3..=5) => {}
                Some(r) => return Err(format!("GridSample of a rank-{r} input")),
                None => return Err("input rank unknown".into()),
            }
            Ok(vec![(Shader::Sample, "grid_sample", vec![])])
        }
        NnOp::RotaryEmbedding { .. } => {
            for i in 0..3 {
                v.float(i)?;
            }
            if v.input(3).is_some() {
                int_input(v, 3, "position_ids")?;
            }
            Ok(vec![(Shader::Rotary, "rotary", vec![])])
        }
        NnOp::LpPool { .. } => pool_nd(v),
        NnOp::FlexAttention { score_mod, prob_mod, softmax_precision, .. } => {
            if score_mod.is_some() || prob_mod.is_some() {
                return Err("FlexAttention with score_mod/prob_mod subgraphs is not run on the GPU".into());
            }
            for i in 0..3 {
                v.float(i)?;
            }
            if let Some(p) = softmax_precision
                && !matches!(p, 1 | 11)
            {
                return Err(format!("FlexAttention softmax_precision {p} (the GPU computes the softmax in float32)"));
            }
            Ok(vec![copy_spec(), (Shader::Attention, "attention", vec![])])
        }
        NnOp::Col2Im { .. } => {
            v.float(0)?;
            v.host(1, "image_shape")?;
            v.host(2, "block_shape")?;
            Ok(vec![(Shader::PoolNd, "col2im", vec![])])
        }
        NnOp::Einsum { .. } => {
            let n = v.n.inputs.len();
            if n == 0 || n > 4 {
                return Err(format!("Einsum of {n} operands (the GPU kernel takes 1 to 4)"));
            }
            let d = v.dt(0)?;
            for i in 0..n {
                v.float(i)?;
                if v.dt(i)? != d {
                    return Err("Einsum operands differ in type".into());
                }
            }
            Ok(vec![(Shader::Einsum, "einsum", vec![])])
        }
        NnOp::AffineGrid { .. } => {
            v.float(0)?;
            v.host(1, "size")?;
            Ok(vec![(Shader::Sample, "affine_grid", vec![])])
        }
        NnOp::LinearAttention { update_rule, .. } => {
            for i in 0..6 {
                if i < 3 || v.input(i).is_some() {
                    v.float(i)?;
                }
            }
            if !matches!(update_rule.as_str(), "linear" | "gated" | "delta" | "gated_delta") {
                return Err(format!("update_rule '{update_rule}'"));
            }
            Ok(vec![(Shader::LinearAttention, "linear_attention", vec![])])
        }
        NnOp::CausalConvWithState { activation } => {
            for i in [0, 1, 2, 3] {
                if i < 2 || v.input(i).is_some() {
                    v.float(i)?;
                }
            }
            if !matches!(activation.as_str(), "none" | "silu" | "swish") {
                return Err(format!("activation '{activation}'"));
            }
            Ok(vec![(Shader::Sequence, "causal_conv", vec![])])
        }
        NnOp::SwiGLU { .. } => {
            v.float(0)?;
            v.float(1)?;
            if v.dt(0)? != v.dt(1)? {
                return Err("SwiGLU inputs differ in type".into());
            }
            Ok(vec![(Shader::Math, "swiglu", vec![])])
        }
        NnOp::LpNormalization { p, .. } => {
            v.float(0)?;
            if !matches!(p, 1 | 2) {
                return Err(format!("LpNormalization p = {p}"));
            }
            Ok(vec![(Shader::Rowwise, "lp_norm", vec![])])
        }
        other => not_implemented(other.name()),
    }
}

/// Tensor (data movement and construction) operators.
pub(super) fn tensor(v: &NodeView, t: &T) -> Result<Vec<Spec>, String> {
    match t {
        T::ConstantOfShape { value } => {
            v.host(0, "shape")?;
            if let Some(c) = value
                && !gpu_dtype(c.dtype())
            {
                return Err(format!("ConstantOfShape value of type {}", c.dtype()));
            }
            Ok(vec![(Shader::Generate, "fill", vec![])])
        }
        T::Range {} => {
            let d = v.dev(0)?;
            if !matches!(dt_code(d), 0 | 1) {
                return Err(format!("Range on {d}"));
            }
            for (i, w) in [(0, "start"), (1, "limit"), (2, "delta")] {
                v.host(i, w)?;
            }
            Ok(vec![(Shader::Generate, "range", vec![("DT", dt_code(d))])])
        }
        T::ScatterElements { reduction, .. } | T::ScatterND { reduction } => scatter(v, reduction),
        T::Scatter { .. } => scatter(v, "none"),
        T::TensorScatter { mode, .. } => {
            let d = v.dev(0)?;
            if v.dev(1)? != d {
                return Err("update and cache differ in type".into());
            }
            if v.input(2).is_some() {
                int_input(v, 2, "write_indices")?;
            }
            if !matches!(mode.as_str(), "linear" | "circular") {
                return Err(format!("TensorScatter mode '{mode}'"));
            }
            Ok(vec![copy_spec(), (Shader::Scatter, "tensor_scatter", vec![])])
        }
        T::OneHot { .. } => {
            let d = v.dev(0)?;
            if !matches!(dt_code(d), 0 | 1) {
                return Err(format!("OneHot indices of type {d}"));
            }
            v.host(1, "depth")?;
            v.dev(2)?;
            Ok(vec![(Shader::Scatter, "one_hot", vec![])])
        }
        T::GatherND { .. } => {
            v.dev(0)?;
            int_input(v, 1, "indices")?;
            Ok(vec![(Shader::Index, "gather_nd", vec![])])
        }
        T::ReverseSequence { .. } => {
            v.dev(0)?;
            int_input(v, 1, "sequence_lens")?;
            Ok(vec![(Shader::Index, "reverse_sequence", vec![])])
        }
        T::CenterCropPad { .. } => {
            v.dev(0)?;
            v.host(1, "shape")?;
            Ok(vec![(Shader::Movement, "pad", vec![("PAD_MODE", 0)])])
        }
        T::EyeLike { .. } => {
            v.dev(0)?;
            Ok(vec![(Shader::Generate, "eye", vec![])])
        }
        other => not_implemented(other.name()),
    }
}

/// ScatterElements / ScatterND: data and updates of one type, int indices.
fn scatter(v: &NodeView, reduction: &str) -> Result<Vec<Spec>, String> {
    let d = v.dev(0)?;
    if v.dev(2)? != d {
        return Err("updates and data differ in type".into());
    }
    int_input(v, 1, "indices")?;
    let red = crate::graph::scatter::reduction_code(reduction)?;
    let dt = dt_code(d);
    if red != 0 && (!matches!(dt, 0 | 1) || matches!(d, DType::I64 | DType::U64)) {
        return Err(format!("scatter reduction '{reduction}' on {d}"));
    }
    let entry = if matches!(v.n.op, Op::Tensor(T::ScatterND { .. })) { "scatter_nd" } else { "scatter_elements" };
    Ok(vec![copy_spec(), (Shader::Scatter, entry, vec![("DT", dt), ("RED", red)])])
}

/// Signal-processing operators.
pub(super) fn signal(v: &NodeView, s: &strata_ir::ops::SignalOp) -> Result<Vec<Spec>, String> {
    use strata_ir::ops::SignalOp;
    match s {
        SignalOp::DFT { .. } => {
            v.float(0)?;
            v.host(1, "dft_length")?;
            v.host(2, "axis")?;
            Ok(vec![(Shader::Dft, "dft", vec![])])
        }
        other => not_implemented(other.name()),
    }
}

/// Reductions and other row-wise operators.
pub(super) fn reduce(v: &NodeView, r: &R) -> Result<Vec<Spec>, String> {
    match r {
        R::SoftmaxCrossEntropyLoss { reduction, .. } | R::NegativeLogLikelihoodLoss { reduction, .. } => {
            v.float(0)?;
            int_input(v, 1, "target")?;
            if v.input(2).is_some() {
                v.float(2)?;
            }
            if !matches!(reduction.as_str(), "none" | "sum" | "mean") {
                return Err(format!("reduction '{reduction}'"));
            }
            let mut specs = Vec::new();
            if matches!(r, R::SoftmaxCrossEntropyLoss { .. }) {
                specs.push((Shader::Norm, "softmax", vec![("MODE", 1)]));
            }
            specs.push((Shader::Loss, "loss_elem", vec![]));
            specs.push((Shader::Loss, "loss_reduce", vec![]));
            Ok(specs)
        }
        R::Hardmax { .. } | R::HardmaxLegacy { .. } => {
            v.float(0)?;
            Ok(vec![(Shader::Rowwise, "hardmax", vec![])])
        }
        R::CumSum { .. } | R::CumProd { .. } => {
            let d = v.dev(0)?;
            if !matches!(dt_code(d), 0 | 1) || matches!(d, DType::I64 | DType::U64) {
                return Err(format!("{} on {d} (the GPU accumulates float32 or 32-bit integers)", r.name()));
            }
            v.host(1, "axis")?;
            Ok(vec![(Shader::Rowwise, "cumulate", vec![("DT", dt_code(d))])])
        }
        R::TopK { .. } => {
            let d = v.dev(0)?;
            if !matches!(dt_code(d), 0 | 1) {
                return Err(format!("TopK on {d}"));
            }
            v.host(1, "k")?;
            Ok(vec![(Shader::Rowwise, "top_k", vec![("DT", dt_code(d))])])
        }
        other => not_implemented(other.name()),
    }
}
