//! Activations and float predicates burn has no single operation for,
//! composed from its elementwise operations: HardSwish, Softplus, Softsign,
//! Mish, Elu, Celu, Selu, ThresholdedRelu, Shrink, Swish, Gelu (tanh form),
//! Sign, IsNaN, IsInf and PRelu (slope broadcast as numpy does).

use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, Scalar};
use strata_ir::DType;
use strata_ir::ops::ElementwiseOp as E;
use strata_ir::ops::elementwise::GeluApprox;

use super::{NodeInfo, Out, Unsupported, broadcast, expand_to, input};
use crate::tensor::{BOOL, BurnTensor, Prim};

/// A compiled composite activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Act {
    HardSwish,
    Softplus,
    Softsign,
    Mish,
    Elu(f32),
    Celu(f32),
    Selu(f32, f32),
    ThresholdedRelu(f32),
    Shrink { bias: f32, lambd: f32 },
    Swish(f32),
    GeluTanh,
    Sign,
    IsNaN,
    IsInf { negative: bool, positive: bool },
    PRelu,
}

/// Plan the operators of this module (`None`: not one of them).
pub(crate) fn plan(op: &E, info: &NodeInfo) -> Option<Result<Act, Unsupported>> {
    let k = match op {
        E::HardSwish {} => Act::HardSwish,
        E::Softplus {} => Act::Softplus,
        E::Softsign {} => Act::Softsign,
        E::Mish {} => Act::Mish,
        E::Elu { alpha } => Act::Elu(*alpha),
        E::Celu { alpha } => Act::Celu(*alpha),
        E::Selu { alpha, gamma } => Act::Selu(*alpha, *gamma),
        E::ThresholdedRelu { alpha } => Act::ThresholdedRelu(*alpha),
        E::Shrink { bias, lambd } => Act::Shrink { bias: *bias, lambd: *lambd },
        E::Swish { alpha } => Act::Swish(*alpha),
        E::Gelu { approximate: GeluApprox::Tanh } => Act::GeluTanh,
        E::Sign {} => Act::Sign,
        E::IsNaN {} => Act::IsNaN,
        E::IsInf { detect_negative, detect_positive } => {
            Act::IsInf { negative: *detect_negative != 0, positive: *detect_positive != 0 }
        }
        E::PRelu {} => Act::PRelu,
        _ => return None,
    };
    let check = || -> Result<(), Unsupported> {
        if info.in_dtype(0) != Some(DType::F32) {
            return Err("the operand is not float32".into());
        }
        info.require_held(&[])
    };
    Some(check().map(|()| k))
}

fn s(v: f32) -> Scalar {
    Scalar::from(v)
}

/// `mask ? a : x`.
fn pick<B: Backend>(x: FloatTensor<B>, mask: burn_backend::tensor::BoolTensor<B>, a: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mask_where(x, mask, a)
}

/// exp(x) - 1 scaled by `alpha`, where x < 0; x elsewhere.
fn elu<B: Backend>(x: FloatTensor<B>, alpha: f32) -> FloatTensor<B> {
    let neg = B::float_mul_scalar(B::float_sub_scalar(B::float_exp(x.clone()), s(1.0)), s(alpha));
    let mask = B::float_lower_elem(x.clone(), s(0.0), BOOL);
    pick::<B>(x, mask, neg)
}

fn softplus<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_log1p(B::float_exp(x))
}

impl Act {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>]) -> Out<B> {
        let t = input(ins, 0)?;
        let x = t.f()?;
        let shape = t.shape.clone();
        let float = |p: FloatTensor<B>| Ok(vec![BurnTensor::new(shape.clone(), p)]);
        let boolean = |p| Ok(vec![BurnTensor::of(shape.clone(), DType::Bool, Prim::Bool(p))]);
        match *self {
            Act::HardSwish => float(B::float_mul(x.clone(), B::hard_sigmoid(x, s(1.0 / 6.0), s(0.5)))),
            Act::Softplus => float(softplus::<B>(x)),
            Act::Softsign => float(B::float_div(x.clone(), B::float_add_scalar(B::float_abs(x), s(1.0)))),
            Act::Mish => float(B::float_mul(x.clone(), B::float_tanh(softplus::<B>(x)))),
            Act::Elu(a) => float(elu::<B>(x, a)),
            // a·elu(x/a): a(exp(x/a) - 1) below zero, x above.
            Act::Celu(a) => float(B::float_mul_scalar(elu::<B>(B::float_div_scalar(x, s(a)), 1.0), s(a))),
            Act::Selu(a, g) => {
                let neg = B::float_mul_scalar(B::float_sub_scalar(B::float_exp(x.clone()), s(1.0)), s(a));
                let mask = B::float_greater_elem(x.clone(), s(0.0), BOOL);
                float(B::float_mul_scalar(pick::<B>(neg, mask, x), s(g)))
            }
            Act::ThresholdedRelu(a) => {
                let zero = B::float_mul_scalar(x.clone(), s(0.0));
                let mask = B::float_greater_elem(x.clone(), s(a), BOOL);
                float(pick::<B>(zero, mask, x))
            }
            Act::Shrink { bias, lambd } => {
                let zero = B::float_mul_scalar(x.clone(), s(0.0));
                let lo = B::float_lower_elem(x.clone(), s(-lambd), BOOL);
                let hi = B::float_greater_elem(x.clone(), s(lambd), BOOL);
                let y = pick::<B>(zero, lo, B::float_add_scalar(x.clone(), s(bias)));
                float(pick::<B>(y, hi, B::float_sub_scalar(x, s(bias))))
            }
            Act::Swish(a) => float(B::float_mul(x.clone(), B::sigmoid(B::float_mul_scalar(x, s(a))))),
            Act::GeluTanh => {
                let c = (2.0f64 / std::f64::consts::PI).sqrt() as f32;
                let cube = B::float_mul(B::float_mul(x.clone(), x.clone()), x.clone());
                let inner = B::float_mul_scalar(B::float_add(x.clone(), B::float_mul_scalar(cube, s(0.044715))), s(c));
                let y = B::float_mul_scalar(B::float_add_scalar(B::float_tanh(inner), s(1.0)), s(0.5));
                float(B::float_mul(x, y))
            }
            Act::Sign => float(B::float_sign(x)),
            Act::IsNaN => boolean(B::float_is_nan(x, BOOL)),
            Act::IsInf { negative, positive } => {
                let inf = B::float_is_inf(x.clone(), BOOL);
                let m = match (negative, positive) {
                    (true, true) => inf,
                    (false, true) => B::bool_and(inf, B::float_greater_elem(x, s(0.0), BOOL)),
                    (true, false) => B::bool_and(inf, B::float_lower_elem(x, s(0.0), BOOL)),
                    (false, false) => B::bool_and(inf.clone(), B::bool_not(inf)),
                };
                boolean(m)
            }
            Act::PRelu => {
                let slope = input(ins, 1)?;
                let out = broadcast(&t.shape, &slope.shape)?;
                let (x, sl) = (expand_to(t, &out), expand_to(slope, &out));
                let mask = B::float_lower_elem(x.clone(), s(0.0), BOOL);
                Ok(vec![BurnTensor::new(out, pick::<B>(x.clone(), mask, B::float_mul(x, sl)))])
            }
        }
    }
}
