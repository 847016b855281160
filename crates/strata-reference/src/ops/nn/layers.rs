//! Reference kernels for part of `strata_ir::ops::NnOp` (see `nn.rs`):
//! normalisations (`norm`), recurrent layers (`recurrent`), dropout
//! (`dropout`), non-maximum suppression (`detection`), the training
//! optimisers (`training`) and the matrix determinant (here).

use strata_ir::ops::NnOp;

use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx, one};
use crate::util::check_numel;
use crate::value::{Tensor, Value};

mod detection;
mod dropout;
mod norm;
mod recurrent;
mod training;

/// Run one operator of this part of the family.
pub fn run(op: &NnOp, args: &Args, ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use NnOp::*;
    match op {
        BatchNormalization { spatial: Some(0), .. } if args.tensor(0)?.rank() > 2 => {
            bail!("BatchNormalization with spatial=0 is not supported")
        }
        BatchNormalization { epsilon, momentum, training_mode, .. } => {
            norm::batch_norm(args, ctx, *epsilon as f64, *momentum as f64, *training_mode != 0)
        }
        InstanceNormalization { epsilon } => norm::instance_norm(args, *epsilon as f64),
        LayerNormalization { axis, epsilon, stash_type } => norm::layer_norm(args, *axis, *epsilon as f64, *stash_type),
        GroupNormalization { epsilon, num_groups, .. } => norm::group_norm(args, *epsilon as f64, *num_groups),
        RMSNormalization { axis, epsilon, .. } => norm::rms_norm(args, *axis, *epsilon as f64),
        LpNormalization { axis, p } => norm::lp_norm(args, *axis, *p),
        MeanVarianceNormalization { axes } => norm::mean_variance_norm(args, axes),
        LRN { alpha, beta, bias, size } => norm::lrn(args, *alpha as f64, *beta as f64, *bias as f64, *size),
        Dropout { seed, ratio, .. } => dropout::dropout(args, ctx, *seed, *ratio),
        Det {} => det(args.tensor(0)?),
        NonMaxSuppression { center_point_box } => detection::non_max_suppression(args, *center_point_box),
        RNN { .. } | GRU { .. } | LSTM { .. } => recurrent::run(op, args),
        Adagrad { decay_factor, epsilon, norm_coefficient } => {
            training::adagrad(args, *decay_factor as f64, *epsilon as f64, *norm_coefficient as f64)
        }
        Adam { alpha, beta, epsilon, norm_coefficient, norm_coefficient_post } => training::adam(
            args,
            *alpha as f64,
            *beta as f64,
            *epsilon as f64,
            *norm_coefficient as f64,
            *norm_coefficient_post as f64,
        ),
        Momentum { alpha, beta, mode, norm_coefficient } => {
            training::momentum(args, *alpha as f64, *beta as f64, *mode, *norm_coefficient as f64)
        }
        // Routed here only by `nn.rs`, whose match names every operator.
        other => bail!("internal: {} is not an operator of this part of the family", other.name()),
    }
}

/// A required input that must hold floating-point data.
fn float_input<'a>(args: &'a Args, i: usize, what: &str) -> KResult<&'a Tensor> {
    let t = args.tensor(i)?;
    if t.f().is_err() {
        bail!("{what} must be a floating-point tensor, got {}", t.dtype);
    }
    Ok(t)
}

/// An optional input that, when present, must hold floating-point data.
fn opt_float_input<'a>(args: &'a Args, i: usize, what: &str) -> KResult<Option<&'a Tensor>> {
    match args.opt_tensor(i)? {
        Some(_) => float_input(args, i, what).map(Some),
        None => Ok(None),
    }
}

/// Determinant of each square matrix in the last two dimensions, by
/// Gaussian elimination with partial pivoting in f64.
fn det(x: &Tensor) -> KResult<Vec<Value>> {
    let v = x.f().map_err(|_| crate::error::KernelError::new(format!("Det needs a float tensor, got {}", x.dtype)))?;
    let r = x.rank();
    if r < 2 || x.shape[r - 1] != x.shape[r - 2] {
        bail!("Det needs square matrices in the last two dimensions, got shape {:?}", x.shape);
    }
    let n = x.shape[r - 1];
    let batch_shape = x.shape[..r - 2].to_vec();
    let batch = check_numel(&batch_shape)?;
    let mut out = Vec::with_capacity(batch);
    for b in 0..batch {
        let mut a = v[b * n * n..(b + 1) * n * n].to_vec();
        let mut d = 1.0;
        for col in 0..n {
            // Pick the row with the largest magnitude in this column.
            let mut pivot = col;
            for row in col + 1..n {
                if a[row * n + col].abs() > a[pivot * n + col].abs() {
                    pivot = row;
                }
            }
            if a[pivot * n + col] == 0.0 {
                d = 0.0;
                break;
            }
            if pivot != col {
                for k in 0..n {
                    a.swap(col * n + k, pivot * n + k);
                }
                d = -d;
            }
            let p = a[col * n + col];
            d *= p;
            for row in col + 1..n {
                let factor = a[row * n + col] / p;
                for k in col..n {
                    a[row * n + k] -= factor * a[col * n + k];
                }
            }
        }
        out.push(d);
    }
    one(Tensor::from_f(x.dtype, batch_shape, out)?)
}
