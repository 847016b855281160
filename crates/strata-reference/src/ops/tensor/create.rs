//! Construction kernels: Constant, ConstantOfShape, Range and EyeLike (the
//! random generators are their own family, `ops/random.rs`).

use strata_ir::DType;
use strata_ir::ops::TensorOp;

use super::ints;
use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx, one};
use crate::util::{check_numel, to_dims};
use crate::value::{Data, Tensor, Value};

/// Run one construction operator.
pub fn run(op: &TensorOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use TensorOp::*;
    match op {
        Constant { value } => one(Tensor::from_host(value)?),
        ConstantOfShape { value } => {
            let shape = to_dims(&ints(args.tensor(0)?, "shape")?, "shape")?;
            let n = check_numel(&shape)?;
            let v = match value {
                Some(v) => Tensor::from_host(v)?,
                None => Tensor::zeros(DType::F32, vec![1])?,
            };
            if v.numel() != 1 {
                bail!("value must hold exactly one element, got shape {:?}", v.shape);
            }
            one(Tensor::new(v.dtype, shape, v.data.gather(&vec![0; n]))?)
        }
        Range {} => range(args.tensor(0)?, args.tensor(1)?, args.tensor(2)?),
        EyeLike { dtype, k } => {
            let x = args.tensor(0)?;
            if x.rank() != 2 {
                bail!("input must be 2-D, got shape {:?}", x.shape);
            }
            let dt = dtype.unwrap_or(x.dtype);
            let (rows, cols) = (x.shape[0], x.shape[1]);
            let mut v = Vec::with_capacity(rows * cols);
            for i in 0..rows {
                for j in 0..cols {
                    v.push(if j as i128 - i as i128 == *k as i128 { 1.0 } else { 0.0 });
                }
            }
            one(Tensor::from_f64_any(dt, x.shape.clone(), v)?)
        }
        // Routed here only by `tensor.rs`, whose match names every operator.
        other => bail!("internal: {} is not a creation operator", other.name()),
    }
}

/// Range: `start, start + delta, ...` while before `limit`; the count is
/// `max(ceil((limit - start) / delta), 0)`.
fn range(start: &Tensor, limit: &Tensor, delta: &Tensor) -> KResult<Vec<Value>> {
    for t in [start, limit, delta] {
        if t.numel() != 1 || t.dtype != start.dtype {
            bail!("start, limit and delta must be scalars of one type, got {} {:?}", t.dtype, t.shape);
        }
    }
    let dt = start.dtype;
    match (&start.data, &limit.data, &delta.data) {
        (Data::I(s), Data::I(l), Data::I(d)) => {
            let (s, l, d) = (s[0], l[0], d[0]);
            if d == 0 {
                bail!("delta must not be 0");
            }
            // Ceiling division of the span by the step, in exact integers.
            let (span, step) = if d > 0 { (l - s, d) } else { (s - l, -d) };
            let n = if span > 0 { (span + step - 1) / step } else { 0 };
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            check_numel(&[n])?;
            one(Tensor::from_i(dt, vec![n], (0..n).map(|i| s + i as i128 * d).collect())?)
        }
        (Data::F(s), Data::F(l), Data::F(d)) => {
            let (s, l, d) = (s[0], l[0], d[0]);
            if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
                bail!("range needs a finite start and limit and a finite, non-zero delta");
            }
            let n = libm::ceil((l - s) / d).max(0.0);
            if n > usize::MAX as f64 / 2.0 {
                bail!("range of {n} elements is too large");
            }
            let n = n as usize;
            check_numel(&[n])?;
            one(Tensor::from_f(dt, vec![n], (0..n).map(|i| s + i as f64 * d).collect())?)
        }
        _ => bail!("Range does not support {dt}"),
    }
}
