//! Elementwise operators over every held type (float32, int64/int32 as
//! burn ints, bool): comparisons (bool results), logical operators, Not,
//! Where, Cast/CastLike between the held types, integer arithmetic and
//! Identity. Operands are broadcast as numpy does, reshaped to equal rank
//! and expanded before burn sees them.

use burn_backend::{Backend, Scalar};
use strata_ir::DType;
use strata_ir::ops::ElementwiseOp as E;

use super::elementwise::Binary;
use super::{NodeInfo, Out, Unsupported, broadcast, expand_prim, input};
use crate::tensor::{BOOL, BurnTensor, INT, Prim, float_dtype, held};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A logical binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logic {
    And,
    Or,
    Xor,
}

/// An integer unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntUnary {
    Neg,
    Abs,
    Sign,
}

/// A compiled type-aware elementwise node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Typed {
    Compare(Cmp),
    Logic(Logic),
    Not,
    Where,
    Cast(DType),
    IntBinary(Binary),
    IntUnary(IntUnary),
    Identity,
    /// Mod: the remainder with the divisor's sign (`fmod` false) or the
    /// dividend's (`fmod` true, C's fmod).
    Mod {
        fmod: bool,
    },
}

fn int(d: Option<DType>) -> bool {
    matches!(d, Some(DType::I64 | DType::I32))
}

/// Plan the operators this module runs (`None`: not one of them, or a
/// float32 form `elementwise` runs).
pub(crate) fn plan(op: &E, info: &NodeInfo) -> Option<Result<Typed, Unsupported>> {
    let d0 = info.in_dtype(0);
    let k = match op {
        E::Equal {} => Typed::Compare(Cmp::Eq),
        E::Less {} => Typed::Compare(Cmp::Lt),
        E::LessOrEqual {} => Typed::Compare(Cmp::Le),
        E::Greater {} => Typed::Compare(Cmp::Gt),
        E::GreaterOrEqual {} => Typed::Compare(Cmp::Ge),
        E::And {} => Typed::Logic(Logic::And),
        E::Or {} => Typed::Logic(Logic::Or),
        E::Xor {} => Typed::Logic(Logic::Xor),
        E::Not {} => Typed::Not,
        E::Where {} => Typed::Where,
        E::Identity {} => Typed::Identity,
        E::Cast { to, saturate, .. } => {
            let _ = saturate;
            Typed::Cast(*to)
        }
        E::CastLike { .. } => match info.in_dtype(1) {
            Some(d) => Typed::Cast(d),
            None => return Some(Err("CastLike's target type is unknown".into())),
        },
        E::Add {} | E::Sub {} | E::Mul {} | E::Div {} | E::Max {} | E::Min {} if int(d0) => {
            if info.node.inputs.iter().flatten().count() != 2 && !matches!(op, E::Max {} | E::Min {}) {
                return Some(Err("integer arithmetic of other than two operands".into()));
            }
            Typed::IntBinary(match op {
                E::Add {} => Binary::Add,
                E::Sub {} => Binary::Sub,
                E::Mul {} => Binary::Mul,
                E::Div {} => Binary::Div,
                E::Max {} => Binary::Max,
                _ => Binary::Min,
            })
        }
        E::Mod { fmod } if int(d0) => Typed::Mod { fmod: *fmod != 0 },
        E::Mod { fmod } if d0 == Some(DType::F32) => Typed::Mod { fmod: *fmod != 0 },
        E::Neg {} if int(d0) => Typed::IntUnary(IntUnary::Neg),
        E::Abs {} if int(d0) => Typed::IntUnary(IntUnary::Abs),
        E::Sign {} if int(d0) => Typed::IntUnary(IntUnary::Sign),
        _ => return None,
    };
    let check = || -> Result<(), Unsupported> {
        info.require_held(&[])?;
        match &k {
            Typed::Cast(to) if !held(*to) => {
                Err(format!("Cast to {to} (the burn backend holds float32/64, float16, bfloat16, int64, int32, bool)"))
            }
            Typed::Logic(_) | Typed::Not if info.in_dtype(0) != Some(DType::Bool) => {
                Err("logical operator on non-bool".into())
            }
            Typed::Where if info.in_dtype(0) != Some(DType::Bool) => Err("Where condition is not bool".into()),
            Typed::Compare(c) if d0 == Some(DType::Bool) && *c != Cmp::Eq => Err("ordering of bool tensors".into()),
            _ => Ok(()),
        }
    };
    Some(check().map(|()| k))
}

/// The operands broadcast to a common shape (any kinds).
fn broadcast_all<B: Backend>(ts: &[&BurnTensor<B>]) -> Result<(Vec<usize>, Vec<Prim<B>>), String> {
    let mut shape: Vec<usize> = Vec::new();
    for t in ts {
        shape = broadcast(&shape, &t.shape)?;
    }
    Ok((shape.clone(), ts.iter().map(|t| expand_prim(t, &shape)).collect()))
}

fn compare<B: Backend>(c: Cmp, a: Prim<B>, b: Prim<B>) -> Result<Prim<B>, String> {
    Ok(Prim::Bool(match (a, b) {
        (Prim::Float(a), Prim::Float(b)) => match c {
            Cmp::Eq => B::float_equal(a, b, BOOL),
            Cmp::Lt => B::float_lower(a, b, BOOL),
            Cmp::Le => B::float_lower_equal(a, b, BOOL),
            Cmp::Gt => B::float_greater(a, b, BOOL),
            Cmp::Ge => B::float_greater_equal(a, b, BOOL),
        },
        (Prim::Int(a), Prim::Int(b)) => match c {
            Cmp::Eq => B::int_equal(a, b, BOOL),
            Cmp::Lt => B::int_lower(a, b, BOOL),
            Cmp::Le => B::int_lower_equal(a, b, BOOL),
            Cmp::Gt => B::int_greater(a, b, BOOL),
            Cmp::Ge => B::int_greater_equal(a, b, BOOL),
        },
        (Prim::Bool(a), Prim::Bool(b)) if c == Cmp::Eq => B::bool_equal(a, b),
        _ => return Err("comparison of operands of different kinds".into()),
    }))
}

/// `p` cast to `to` (a held type).
fn cast<B: Backend>(p: Prim<B>, to: DType) -> Prim<B> {
    let float = matches!(to, DType::F32 | DType::F64 | DType::F16 | DType::BF16);
    match p {
        Prim::Float(p) if float => Prim::Float(B::float_cast(p, float_dtype(to))),
        Prim::Float(p) if to == DType::Bool => Prim::Bool(B::float_not_equal_elem(p, Scalar::from(0.0f32), BOOL)),
        Prim::Float(p) => Prim::Int(B::float_into_int(p, INT)),
        Prim::Int(p) if float => Prim::Float(B::int_into_float(p, float_dtype(to))),
        Prim::Int(p) if to == DType::Bool => Prim::Bool(B::int_not_equal_elem(p, Scalar::from(0i64), BOOL)),
        Prim::Int(p) => Prim::Int(p),
        Prim::Bool(p) if float => Prim::Float(B::bool_into_float(p, float_dtype(to))),
        Prim::Bool(p) if to == DType::Bool => Prim::Bool(p),
        Prim::Bool(p) => Prim::Int(B::bool_into_int(p, INT)),
    }
}

fn int_binary<B: Backend>(op: Binary, a: Prim<B>, b: Prim<B>) -> Result<Prim<B>, String> {
    let (Prim::Int(a), Prim::Int(b)) = (a, b) else { return Err("integer operator on non-integers".into()) };
    Ok(Prim::Int(match op {
        Binary::Add => B::int_add(a, b),
        Binary::Sub => B::int_sub(a, b),
        Binary::Mul => B::int_mul(a, b),
        Binary::Div => B::int_div(a, b),
        Binary::Max => {
            let take_b = B::int_lower(a.clone(), b.clone(), BOOL);
            B::int_mask_where(a, take_b, b)
        }
        Binary::Min => {
            let take_b = B::int_greater(a.clone(), b.clone(), BOOL);
            B::int_mask_where(a, take_b, b)
        }
        Binary::Pow => return Err("integer Pow".into()),
    }))
}

impl Typed {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>]) -> Out<B> {
        let x = input(ins, 0)?;
        match self {
            Typed::Identity => Ok(vec![x.clone()]),
            Typed::Not => Ok(vec![BurnTensor::of(x.shape.clone(), DType::Bool, Prim::Bool(B::bool_not(x.b()?)))]),
            Typed::Cast(to) => Ok(vec![BurnTensor::of(x.shape.clone(), *to, cast(x.prim.clone(), *to))]),
            Typed::IntUnary(u) => {
                let p = x.i()?;
                let p = match u {
                    IntUnary::Neg => B::int_neg(p),
                    IntUnary::Abs => B::int_abs(p),
                    IntUnary::Sign => B::int_sign(p),
                };
                Ok(vec![BurnTensor::of(x.shape.clone(), x.dtype, Prim::Int(p))])
            }
            Typed::Where => {
                let (shape, mut ps) = broadcast_all(&[x, input(ins, 1)?, input(ins, 2)?])?;
                let (b, a) = (ps.pop().ok_or("operand")?, ps.pop().ok_or("operand")?);
                let Some(Prim::Bool(c)) = ps.pop() else { return Err("Where condition is not bool".into()) };
                let dtype = input(ins, 1)?.dtype;
                Ok(vec![BurnTensor::of(shape, dtype, Prim::choose(c, a, b)?)])
            }
            Typed::Compare(c) => {
                let (shape, mut ps) = broadcast_all(&[x, input(ins, 1)?])?;
                let (b, a) = (ps.pop().ok_or("operand")?, ps.pop().ok_or("operand")?);
                Ok(vec![BurnTensor::of(shape, DType::Bool, compare(*c, a, b)?)])
            }
            Typed::Logic(l) => {
                let (shape, mut ps) = broadcast_all(&[x, input(ins, 1)?])?;
                let (Some(Prim::Bool(b)), Some(Prim::Bool(a))) = (ps.pop(), ps.pop()) else {
                    return Err("logical operator on non-bool".into());
                };
                let p = match l {
                    Logic::And => B::bool_and(a, b),
                    Logic::Or => B::bool_or(a, b),
                    Logic::Xor => B::bool_xor(a, b),
                };
                Ok(vec![BurnTensor::of(shape, DType::Bool, Prim::Bool(p))])
            }
            Typed::Mod { fmod } => {
                let (shape, mut ps) = broadcast_all(&[x, input(ins, 1)?])?;
                let (b, a) = (ps.pop().ok_or("operand")?, ps.pop().ok_or("operand")?);
                let p = match (a, b) {
                    (Prim::Int(a), Prim::Int(b)) => {
                        // burn's remainder takes the divisor's sign; C's fmod the dividend's.
                        let r = B::int_remainder(a.clone(), b.clone());
                        if *fmod {
                            let zero = Scalar::from(0i64);
                            let differ =
                                B::bool_xor(B::int_lower_elem(r.clone(), zero, BOOL), B::int_lower_elem(a, zero, BOOL));
                            let fix = B::bool_and(differ, B::int_not_equal_elem(r.clone(), zero, BOOL));
                            Prim::Int(B::int_mask_where(r.clone(), fix, B::int_sub(r, b)))
                        } else {
                            Prim::Int(r)
                        }
                    }
                    (Prim::Float(a), Prim::Float(b)) => {
                        let r = B::float_remainder(a.clone(), b.clone());
                        if !*fmod {
                            return Ok(vec![BurnTensor::of(shape, x.dtype, Prim::Float(r))]);
                        }
                        let zero = Scalar::from(0.0f32);
                        let differ =
                            B::bool_xor(B::float_lower_elem(r.clone(), zero, BOOL), B::float_lower_elem(a, zero, BOOL));
                        let fix = B::bool_and(differ, B::float_not_equal_elem(r.clone(), zero, BOOL));
                        Prim::Float(B::float_mask_where(r.clone(), fix, B::float_sub(r, b)))
                    }
                    _ => return Err("Mod of operands of different kinds".into()),
                };
                Ok(vec![BurnTensor::of(shape, x.dtype, p)])
            }
            Typed::IntBinary(op) => {
                let mut acc = x.clone();
                for t in ins.iter().skip(1).flatten() {
                    let (shape, mut ps) = broadcast_all(&[&acc, t])?;
                    let (b, a) = (ps.pop().ok_or("operand")?, ps.pop().ok_or("operand")?);
                    acc = BurnTensor::of(shape, x.dtype, int_binary(*op, a, b)?);
                }
                Ok(vec![acc])
            }
        }
    }
}
