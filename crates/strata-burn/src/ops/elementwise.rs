//! Elementwise operators: unary math and activations, binary arithmetic
//! with numpy broadcasting (operands reshaped to equal rank and expanded
//! before burn sees them), variadic Max/Min/Sum/Mean, Clip.

use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, BoolStore, Scalar};
use strata_ir::ops::ElementwiseOp as E;
use strata_ir::ops::elementwise::GeluApprox;

use super::{NodeInfo, Out, Unsupported, broadcast, expand_to, input};
use crate::tensor::BurnTensor;

/// A unary float function burn has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Unary {
    Abs,
    Neg,
    Exp,
    Log,
    Sqrt,
    Reciprocal,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Sigmoid,
    Relu,
    Erf,
    Floor,
    Ceil,
    Round,
    Gelu,
    LeakyRelu(f32),
    HardSigmoid(f32, f32),
}

/// A binary arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
}

/// A compiled elementwise node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Elementwise {
    Unary(Unary),
    /// Binary, or variadic folded left to right (`mean`: divide by the count after).
    Fold {
        op: Binary,
        mean: bool,
    },
    Clip {
        min: Option<Bound>,
        max: Option<Bound>,
    },
    /// Operators over every held type (`typed.rs`).
    Typed(super::typed::Typed),
    /// Composite activations and float predicates (`activation.rs`).
    Act(super::activation::Act),
}

/// A Clip bound: an attribute or weight, or a scalar input read when the node runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bound {
    Const(f32),
    Input(usize),
}

impl Bound {
    fn get<B: Backend>(self, ins: &[Option<&BurnTensor<B>>]) -> Result<Option<f32>, String> {
        match self {
            Bound::Const(v) => Ok(Some(v)),
            Bound::Input(i) => match ins.get(i).copied().flatten() {
                None => Ok(None),
                Some(t) => match t.host_f64()?.as_slice() {
                    [v] => Ok(Some(*v as f32)),
                    _ => Err("Clip bound is not a scalar".into()),
                },
            },
        }
    }
}

pub(crate) fn plan(op: &E, info: &NodeInfo) -> Result<Elementwise, Unsupported> {
    use Elementwise::{Fold, Unary as U};
    if let Some(k) = super::typed::plan(op, info) {
        return k.map(Elementwise::Typed);
    }
    if let Some(k) = super::activation::plan(op, info) {
        return k.map(Elementwise::Act);
    }
    let k = match op {
        E::Abs {} => U(Unary::Abs),
        E::Neg {} => U(Unary::Neg),
        E::Exp {} => U(Unary::Exp),
        E::Log {} => U(Unary::Log),
        E::Sqrt {} => U(Unary::Sqrt),
        E::Reciprocal {} => U(Unary::Reciprocal),
        E::Sin {} => U(Unary::Sin),
        E::Cos {} => U(Unary::Cos),
        E::Tan {} => U(Unary::Tan),
        E::Asin {} => U(Unary::Asin),
        E::Acos {} => U(Unary::Acos),
        E::Atan {} => U(Unary::Atan),
        E::Sinh {} => U(Unary::Sinh),
        E::Cosh {} => U(Unary::Cosh),
        E::Tanh {} => U(Unary::Tanh),
        E::Asinh {} => U(Unary::Asinh),
        E::Acosh {} => U(Unary::Acosh),
        E::Atanh {} => U(Unary::Atanh),
        E::Sigmoid {} => U(Unary::Sigmoid),
        E::Relu {} => U(Unary::Relu),
        E::Erf {} => U(Unary::Erf),
        E::Floor {} => U(Unary::Floor),
        E::Ceil {} => U(Unary::Ceil),
        E::Round {} => U(Unary::Round),
        E::Gelu { approximate: GeluApprox::None } => U(Unary::Gelu),
        E::LeakyRelu { alpha } => U(Unary::LeakyRelu(*alpha)),
        E::HardSigmoid { alpha, beta } => U(Unary::HardSigmoid(*alpha, *beta)),
        E::Add {} => Fold { op: Binary::Add, mean: false },
        E::Sub {} => Fold { op: Binary::Sub, mean: false },
        E::Mul {} => Fold { op: Binary::Mul, mean: false },
        E::Div {} => Fold { op: Binary::Div, mean: false },
        E::Pow {} => Fold { op: Binary::Pow, mean: false },
        E::Max {} => Fold { op: Binary::Max, mean: false },
        E::Min {} => Fold { op: Binary::Min, mean: false },
        E::Sum {} => Fold { op: Binary::Add, mean: false },
        E::Mean {} => Fold { op: Binary::Add, mean: true },
        E::Clip { min, max } => {
            let bound = |i: usize, attr: &Option<f32>| -> Result<Option<Bound>, Unsupported> {
                if !info.has_input(i) {
                    return Ok(attr.map(Bound::Const));
                }
                match info.constant(i) {
                    Some(t) if t.numel() == 1 => Ok(t.to_f64_vec().first().map(|v| Bound::Const(*v as f32))),
                    Some(_) => Err("Clip bound is not a scalar".into()),
                    None => Ok(Some(Bound::Input(i))),
                }
            };
            let k = Elementwise::Clip { min: bound(1, min)?, max: bound(2, max)? };
            info.require_f32(&[1, 2])?;
            return Ok(k);
        }
        _ => return Err(format!("no {} kernel on burn", op.name())),
    };
    if let Fold { .. } = k
        && info.node.inputs.iter().flatten().count() == 0
    {
        return Err("no operands".into());
    }
    info.require_f32(&[])?;
    Ok(k)
}

fn unary<B: Backend>(u: Unary, x: FloatTensor<B>) -> FloatTensor<B> {
    match u {
        Unary::Abs => B::float_abs(x),
        Unary::Neg => B::float_neg(x),
        Unary::Exp => B::float_exp(x),
        Unary::Log => B::float_log(x),
        Unary::Sqrt => B::float_sqrt(x),
        Unary::Reciprocal => B::float_recip(x),
        Unary::Sin => B::float_sin(x),
        Unary::Cos => B::float_cos(x),
        Unary::Tan => B::float_tan(x),
        Unary::Asin => B::float_asin(x),
        Unary::Acos => B::float_acos(x),
        Unary::Atan => B::float_atan(x),
        Unary::Sinh => B::float_sinh(x),
        Unary::Cosh => B::float_cosh(x),
        Unary::Tanh => B::float_tanh(x),
        Unary::Asinh => B::float_asinh(x),
        Unary::Acosh => B::float_acosh(x),
        Unary::Atanh => B::float_atanh(x),
        Unary::Sigmoid => B::sigmoid(x),
        Unary::Relu => B::relu(x),
        Unary::Erf => B::float_erf(x),
        Unary::Floor => B::float_floor(x),
        Unary::Ceil => B::float_ceil(x),
        Unary::Round => B::float_round(x),
        Unary::Gelu => B::gelu(x),
        Unary::LeakyRelu(a) => B::leaky_relu(x, Scalar::from(a)),
        Unary::HardSigmoid(a, b) => B::hard_sigmoid(x, Scalar::from(a), Scalar::from(b)),
    }
}

/// `a op b` on operands of the same burn shape.
pub(crate) fn binary<B: Backend>(op: Binary, a: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
    match op {
        Binary::Add => B::float_add(a, b),
        Binary::Sub => B::float_sub(a, b),
        Binary::Mul => B::float_mul(a, b),
        Binary::Div => B::float_div(a, b),
        Binary::Pow => B::float_powf(a, b),
        Binary::Max => {
            let take_b = B::float_lower(a.clone(), b.clone(), BoolStore::Native);
            B::float_mask_where(a, take_b, b)
        }
        Binary::Min => {
            let take_b = B::float_greater(a.clone(), b.clone(), BoolStore::Native);
            B::float_mask_where(a, take_b, b)
        }
    }
}

/// `a op b` with numpy broadcasting.
pub(crate) fn broadcast_binary<B: Backend>(
    op: Binary,
    a: &BurnTensor<B>,
    b: &BurnTensor<B>,
) -> Result<BurnTensor<B>, String> {
    let out = broadcast(&a.shape, &b.shape)?;
    Ok(BurnTensor::new(out.clone(), binary::<B>(op, expand_to(a, &out), expand_to(b, &out))))
}

impl Elementwise {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>]) -> Out<B> {
        match self {
            Elementwise::Typed(k) => k.run(ins),
            Elementwise::Act(k) => k.run(ins),
            Elementwise::Unary(u) => {
                let x = input(ins, 0)?;
                Ok(vec![BurnTensor::new(x.shape.clone(), unary::<B>(*u, x.f()?))])
            }
            Elementwise::Fold { op, mean } => {
                let mut it = ins.iter().flatten();
                let first = it.next().ok_or("no operands")?;
                let mut acc = (*first).clone();
                let mut count = 1usize;
                for t in it {
                    acc = broadcast_binary(*op, &acc, t)?;
                    count += 1;
                }
                if *mean {
                    acc = BurnTensor::new(acc.shape.clone(), B::float_div_scalar(acc.f()?, Scalar::from(count as f32)));
                }
                Ok(vec![acc])
            }
            Elementwise::Clip { min, max } => {
                let x = input(ins, 0)?;
                let mut p = x.f()?;
                if let Some(m) = min.map(|b| b.get(ins)).transpose()?.flatten() {
                    p = B::float_clamp_min(p, Scalar::from(m));
                }
                if let Some(m) = max.map(|b| b.get(ins)).transpose()?.flatten() {
                    p = B::float_clamp_max(p, Scalar::from(m));
                }
                Ok(vec![BurnTensor::new(x.shape.clone(), p)])
            }
        }
    }
}
