//! Reference kernels for `strata_ir::ops::ElementwiseOp`.

use strata_ir::ops::ElementwiseOp as E;
use strata_ir::ops::elementwise::{GeluApprox, ShiftDirection};
use strata_ir::{Buffer, DType, TensorData};

use super::{Args, Ctx, one};
use crate::bail;
use crate::error::{KResult, KernelError};
use crate::util::{broadcast_map, broadcast_shapes};
use crate::value::{Data, Tensor, Value, data_class};

/// Run one operator of this family.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &E, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    use libm as m;
    let x = || args.tensor(0);
    match op {
        E::Abs {} => signed_unary(x()?, f64::abs, |v| v.abs()),
        E::Neg {} => signed_unary(x()?, |v| -v, |v| -v),
        E::Sign {} => signed_unary(
            x()?,
            |v| {
                if v.is_nan() {
                    v
                } else if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            },
            |v| v.signum(),
        ),
        E::Acos {} => float_unary(x()?, m::acos),
        E::Acosh {} => float_unary(x()?, m::acosh),
        E::Asin {} => float_unary(x()?, m::asin),
        E::Asinh {} => float_unary(x()?, m::asinh),
        E::Atan {} => float_unary(x()?, m::atan),
        E::Atanh {} => float_unary(x()?, m::atanh),
        E::Ceil {} => float_unary(x()?, m::ceil),
        E::Floor {} => float_unary(x()?, m::floor),
        E::Round {} => float_unary(x()?, f64::round_ties_even),
        E::Cos {} => float_unary(x()?, m::cos),
        E::Cosh {} => float_unary(x()?, m::cosh),
        E::Sin {} => float_unary(x()?, m::sin),
        E::Sinh {} => float_unary(x()?, m::sinh),
        E::Tan {} => float_unary(x()?, m::tan),
        E::Tanh {} => float_unary(x()?, m::tanh),
        E::Erf {} => float_unary(x()?, m::erf),
        E::Exp {} => float_unary(x()?, m::exp),
        E::Log {} => float_unary(x()?, m::log),
        E::Sqrt {} => float_unary(x()?, m::sqrt),
        E::Reciprocal {} => float_unary(x()?, |v| 1.0 / v),
        E::Not {} => {
            let t = x()?;
            one(Tensor::from_b(t.shape.clone(), t.b()?.iter().map(|b| !b).collect())?)
        }
        E::BitwiseNot {} => {
            let t = x()?;
            one(Tensor::from_i(t.dtype, t.shape.clone(), t.i()?.iter().map(|v| !v).collect())?)
        }
        E::IsNaN {} => {
            let t = x()?;
            one(Tensor::from_b(t.shape.clone(), t.f()?.iter().map(|v| v.is_nan()).collect())?)
        }
        E::IsInf { detect_negative, detect_positive } => {
            let t = x()?;
            let (n, p) = (*detect_negative != 0, *detect_positive != 0);
            one(Tensor::from_b(
                t.shape.clone(),
                t.f()?.iter().map(|&v| v.is_infinite() && ((v > 0.0 && p) || (v < 0.0 && n))).collect(),
            )?)
        }
        E::Relu {} => signed_unary(x()?, |v| if v > 0.0 { v } else { 0.0 * v.signum().max(0.0) }, |v| v.max(0)),
        E::Sigmoid {} => float_unary(x()?, sigmoid),
        E::Softplus {} => float_unary(x()?, |v| if v > 30.0 { v } else { m::log1p(m::exp(v)) }),
        E::Softsign {} => float_unary(x()?, |v| v / (1.0 + v.abs())),
        E::HardSwish {} => float_unary(x()?, |v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0)),
        E::Mish {} => float_unary(x()?, |v| v * m::tanh(if v > 30.0 { v } else { m::log1p(m::exp(v)) })),
        E::Elu { alpha } => {
            let a = *alpha as f64;
            float_unary(x()?, move |v| if v < 0.0 { a * (m::exp(v) - 1.0) } else { v })
        }
        E::Celu { alpha } => {
            let a = *alpha as f64;
            float_unary(x()?, move |v| v.max(0.0) + (a * (m::exp(v / a) - 1.0)).min(0.0))
        }
        E::Selu { alpha, gamma } => {
            let (a, g) = (*alpha as f64, *gamma as f64);
            float_unary(x()?, move |v| if v > 0.0 { g * v } else { g * (a * m::exp(v) - a) })
        }
        E::LeakyRelu { alpha } => {
            let a = *alpha as f64;
            float_unary(x()?, move |v| if v < 0.0 { a * v } else { v })
        }
        E::ThresholdedRelu { alpha } => {
            let a = *alpha as f64;
            float_unary(x()?, move |v| if v > a { v } else { 0.0 })
        }
        E::HardSigmoid { alpha, beta } => {
            let (a, b) = (*alpha as f64, *beta as f64);
            float_unary(x()?, move |v| (a * v + b).clamp(0.0, 1.0))
        }
        E::Gelu { approximate } => match approximate {
            GeluApprox::None => float_unary(x()?, |v| 0.5 * v * (1.0 + m::erf(v / std::f64::consts::SQRT_2))),
            GeluApprox::Tanh => float_unary(x()?, |v| {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * v * (1.0 + m::tanh(k * (v + 0.044715 * v * v * v)))
            }),
        },
        E::Shrink { bias, lambd } => {
            let (b, l) = (*bias as f64, *lambd as f64);
            let t = x()?;
            let f = |v: f64| {
                if v < -l {
                    v + b
                } else if v > l {
                    v - b
                } else {
                    0.0
                }
            };
            let vals = t.to_f64()?.into_iter().map(f).collect();
            one(Tensor::from_f64_any(t.dtype, t.shape.clone(), vals)?)
        }
        E::Swish { alpha } => {
            let a = *alpha as f64;
            float_unary(x()?, move |v| v * sigmoid(a * v))
        }
        E::PRelu {} => binary(
            x()?,
            args.tensor(1)?,
            x()?.dtype,
            |a, b| Ok(if a < 0.0 { a * b } else { a }),
            |a, b| Ok(if a < 0 { a * b } else { a }),
        ),
        E::Clip { min, max } => clip(args, *min, *max),
        E::Add {} => arith(args, |a, b| Ok(a + b), |a, b| Ok(a + b)),
        E::Sub {} => arith(args, |a, b| Ok(a - b), |a, b| Ok(a - b)),
        E::Mul {} => arith(args, |a, b| Ok(a * b), |a, b| Ok(a * b)),
        E::Div {} => arith(
            args,
            |a, b| Ok(a / b),
            |a, b| {
                if b == 0 {
                    bail!("integer division by zero")
                }
                Ok(a / b)
            },
        ),
        E::Pow {} => pow(args),
        E::Mod { fmod } => {
            let fm = *fmod != 0;
            arith(
                args,
                move |a, b| Ok(if fm { m::fmod(a, b) } else { python_float_mod(a, b) }),
                move |a, b| {
                    if b == 0 {
                        bail!("integer modulo by zero")
                    }
                    let r = a % b;
                    Ok(if !fm && r != 0 && ((r < 0) != (b < 0)) { r + b } else { r })
                },
            )
        }
        E::BitShift { direction } => {
            let left = *direction == ShiftDirection::Left;
            let bits = x()?.dtype.bits() as i128;
            // Shift amounts outside [0, bits) give 0, except a right shift
            // of a negative signed value, which gives -1 (all sign bits).
            // Inside the range a right shift is arithmetic (floor division by
            // 2^b) and a left shift wraps to the type's width.
            int_binary(args, move |a, b| {
                if !(0..bits).contains(&b) {
                    Ok(if !left && a < 0 { -1 } else { 0 })
                } else if left {
                    Ok(a << b)
                } else {
                    Ok(a >> b)
                }
            })
        }
        E::BitwiseAnd {} => int_binary(args, |a, b| Ok(a & b)),
        E::BitwiseOr {} => int_binary(args, |a, b| Ok(a | b)),
        E::BitwiseXor {} => int_binary(args, |a, b| Ok(a ^ b)),
        E::Equal {} => compare(args, |o| o == Some(std::cmp::Ordering::Equal)),
        E::Greater {} => compare(args, |o| o == Some(std::cmp::Ordering::Greater)),
        E::GreaterOrEqual {} => {
            compare(args, |o| matches!(o, Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)))
        }
        E::Less {} => compare(args, |o| o == Some(std::cmp::Ordering::Less)),
        E::LessOrEqual {} => compare(args, |o| matches!(o, Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal))),
        E::And {} => bool_binary(args, |a, b| a && b),
        E::Or {} => bool_binary(args, |a, b| a || b),
        E::Xor {} => bool_binary(args, |a, b| a ^ b),
        E::Max {} => variadic(args, |a, b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }, |a, b| a.max(b)),
        E::Min {} => variadic(args, |a, b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }, |a, b| a.min(b)),
        E::Sum {} => variadic(args, |a, b| a + b, |a, b| a + b),
        E::Mean {} => {
            let n = args.tensors()?.len() as f64;
            let s = variadic(args, |a, b| a + b, |a, b| a + b)?;
            let t = s[0].tensor()?;
            float_unary(t, move |v| v / n)
        }
        E::Where {} => where_op(args),
        E::Identity {} => Ok(vec![args.value(0)?.clone()]),
        E::Cast { to, saturate, round_mode } => one(cast(x()?, *to, *saturate != 0, *round_mode)?),
        E::CastLike { saturate, round_mode } => one(cast(x()?, args.tensor(1)?.dtype, *saturate != 0, *round_mode)?),
        E::BitCast { to } => one(bitcast(x()?, *to)?),
    }
}

/// 1 / (1 + e^-x), written to avoid overflow for large |x|.
pub fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + libm::exp(-v))
    } else {
        let e = libm::exp(v);
        e / (1.0 + e)
    }
}

/// Apply `f` to every element of a float tensor.
pub fn float_unary(t: &Tensor, f: impl Fn(f64) -> f64) -> KResult<Vec<Value>> {
    let v = t.f().map_err(|_| KernelError::new(format!("expected a floating-point tensor, got {}", t.dtype)))?;
    one(Tensor::from_f(t.dtype, t.shape.clone(), v.iter().map(|&x| f(x)).collect())?)
}

fn signed_unary(t: &Tensor, f: impl Fn(f64) -> f64, g: impl Fn(i128) -> i128) -> KResult<Vec<Value>> {
    match &t.data {
        Data::F(v) => one(Tensor::from_f(t.dtype, t.shape.clone(), v.iter().map(|&x| f(x)).collect())?),
        Data::I(v) => one(Tensor::from_i(t.dtype, t.shape.clone(), v.iter().map(|&x| g(x)).collect())?),
        _ => bail!("expected a numeric tensor, got {}", t.dtype),
    }
}

/// Broadcast two tensors and combine element pairs.
pub fn binary(
    a: &Tensor,
    b: &Tensor,
    out: DType,
    f: impl Fn(f64, f64) -> KResult<f64>,
    g: impl Fn(i128, i128) -> KResult<i128>,
) -> KResult<Vec<Value>> {
    let shape = broadcast_shapes(&[&a.shape, &b.shape])?;
    let (ma, mb) = (broadcast_map(&a.shape, &shape), broadcast_map(&b.shape, &shape));
    match (&a.data, &b.data) {
        (Data::F(x), Data::F(y)) => {
            let v = ma.iter().zip(&mb).map(|(&i, &j)| f(x[i], y[j])).collect::<KResult<Vec<_>>>()?;
            one(Tensor::from_f(out, shape, v)?)
        }
        (Data::I(x), Data::I(y)) => {
            let v = ma.iter().zip(&mb).map(|(&i, &j)| g(x[i], y[j])).collect::<KResult<Vec<_>>>()?;
            one(Tensor::from_i(out, shape, v)?)
        }
        _ => bail!("unsupported input types {} and {}", a.dtype, b.dtype),
    }
}

fn arith(
    args: &Args,
    f: impl Fn(f64, f64) -> KResult<f64>,
    g: impl Fn(i128, i128) -> KResult<i128>,
) -> KResult<Vec<Value>> {
    let (a, b) = (args.tensor(0)?, args.tensor(1)?);
    if a.dtype != b.dtype {
        bail!("input types differ: {} and {}", a.dtype, b.dtype);
    }
    binary(a, b, a.dtype, f, g)
}

fn int_binary(args: &Args, g: impl Fn(i128, i128) -> KResult<i128>) -> KResult<Vec<Value>> {
    let (a, b) = (args.tensor(0)?, args.tensor(1)?);
    if !a.dtype.is_int() || a.dtype != b.dtype {
        bail!("expected two integer tensors of one type, got {} and {}", a.dtype, b.dtype);
    }
    binary(a, b, a.dtype, |_, _| bail!("unreachable"), g)
}

fn pow(args: &Args) -> KResult<Vec<Value>> {
    let (a, b) = (args.tensor(0)?, args.tensor(1)?);
    let shape = broadcast_shapes(&[&a.shape, &b.shape])?;
    let (ma, mb) = (broadcast_map(&a.shape, &shape), broadcast_map(&b.shape, &shape));
    let y = b.to_f64()?;
    match &a.data {
        Data::F(x) => {
            one(Tensor::from_f(a.dtype, shape, ma.iter().zip(&mb).map(|(&i, &j)| libm::pow(x[i], y[j])).collect())?)
        }
        Data::I(x) => {
            let yi = b.to_i64()?;
            let v = ma
                .iter()
                .zip(&mb)
                .map(|(&i, &j)| {
                    if b.dtype.is_float() {
                        libm::pow(x[i] as f64, y[j]) as i128
                    } else if yi[j] < 0 {
                        0
                    } else {
                        let mut r: i128 = 1;
                        for _ in 0..yi[j].min(128) {
                            r = a.dtype.wrap_int(r.wrapping_mul(x[i]));
                        }
                        r
                    }
                })
                .collect();
            one(Tensor::from_i(a.dtype, shape, v)?)
        }
        _ => bail!("unsupported input type {}", a.dtype),
    }
}

fn compare(args: &Args, pred: impl Fn(Option<std::cmp::Ordering>) -> bool) -> KResult<Vec<Value>> {
    let (a, b) = (args.tensor(0)?, args.tensor(1)?);
    let shape = broadcast_shapes(&[&a.shape, &b.shape])?;
    let (ma, mb) = (broadcast_map(&a.shape, &shape), broadcast_map(&b.shape, &shape));
    let v: Vec<bool> = match (&a.data, &b.data) {
        (Data::F(x), Data::F(y)) => ma.iter().zip(&mb).map(|(&i, &j)| pred(x[i].partial_cmp(&y[j]))).collect(),
        (Data::I(x), Data::I(y)) => ma.iter().zip(&mb).map(|(&i, &j)| pred(Some(x[i].cmp(&y[j])))).collect(),
        (Data::B(x), Data::B(y)) => ma.iter().zip(&mb).map(|(&i, &j)| pred(Some(x[i].cmp(&y[j])))).collect(),
        (Data::S(x), Data::S(y)) => ma.iter().zip(&mb).map(|(&i, &j)| pred(Some(x[i].cmp(&y[j])))).collect(),
        _ => bail!("cannot compare {} with {}", a.dtype, b.dtype),
    };
    one(Tensor::from_b(shape, v)?)
}

fn bool_binary(args: &Args, f: impl Fn(bool, bool) -> bool) -> KResult<Vec<Value>> {
    let (a, b) = (args.tensor(0)?, args.tensor(1)?);
    let shape = broadcast_shapes(&[&a.shape, &b.shape])?;
    let (ma, mb) = (broadcast_map(&a.shape, &shape), broadcast_map(&b.shape, &shape));
    let (x, y) = (a.b()?, b.b()?);
    one(Tensor::from_b(shape, ma.iter().zip(&mb).map(|(&i, &j)| f(x[i], y[j])).collect())?)
}

fn variadic(args: &Args, f: impl Fn(f64, f64) -> f64, g: impl Fn(i128, i128) -> i128) -> KResult<Vec<Value>> {
    let ts = args.tensors()?;
    let first = *ts.first().ok_or_else(|| KernelError::new("needs at least one input"))?;
    let mut acc = first.clone();
    for t in &ts[1..] {
        if t.dtype != first.dtype {
            bail!("input types differ: {} and {}", first.dtype, t.dtype);
        }
        acc = binary(&acc, t, first.dtype, |a, b| Ok(f(a, b)), |a, b| Ok(g(a, b)))?.remove(0).into_tensor()?;
    }
    one(acc)
}

fn clip(args: &Args, amin: Option<f32>, amax: Option<f32>) -> KResult<Vec<Value>> {
    let t = args.tensor(0)?;
    let lo = match args.opt_tensor(1)? {
        Some(m) => Some(m.scalar_f64()?),
        None => amin.map(|v| v as f64),
    };
    let hi = match args.opt_tensor(2)? {
        Some(m) => Some(m.scalar_f64()?),
        None => amax.map(|v| v as f64),
    };
    match &t.data {
        Data::F(v) => one(Tensor::from_f(
            t.dtype,
            t.shape.clone(),
            v.iter()
                .map(|&x| {
                    let mut y = x;
                    if let Some(l) = lo
                        && y < l
                    {
                        y = l;
                    }
                    if let Some(h) = hi
                        && y > h
                    {
                        y = h;
                    }
                    y
                })
                .collect(),
        )?),
        Data::I(v) => {
            let (lo, hi) = (lo.map(|x| x as i128), hi.map(|x| x as i128));
            one(Tensor::from_i(
                t.dtype,
                t.shape.clone(),
                v.iter().map(|&x| x.max(lo.unwrap_or(i128::MIN)).min(hi.unwrap_or(i128::MAX))).collect(),
            )?)
        }
        _ => bail!("unsupported input type {}", t.dtype),
    }
}

fn where_op(args: &Args) -> KResult<Vec<Value>> {
    let (c, a, b) = (args.tensor(0)?, args.tensor(1)?, args.tensor(2)?);
    if a.dtype != b.dtype {
        bail!("X and Y types differ: {} and {}", a.dtype, b.dtype);
    }
    let shape = broadcast_shapes(&[&c.shape, &a.shape, &b.shape])?;
    let (mc, ma, mb) =
        (broadcast_map(&c.shape, &shape), broadcast_map(&a.shape, &shape), broadcast_map(&b.shape, &shape));
    let cond = c.b()?;
    // Pick from A or B by index, exactly (data movement).
    let n = shape.iter().product::<usize>();
    let mut from_a = Vec::with_capacity(n);
    let mut from_b = Vec::with_capacity(n);
    for k in 0..n {
        from_a.push(ma[k]);
        from_b.push(mb[k]);
    }
    let pa = a.data.gather(&from_a);
    let pb = b.data.gather(&from_b);
    let data = match (pa, pb) {
        (Data::F(x), Data::F(y)) => Data::F((0..n).map(|k| if cond[mc[k]] { x[k] } else { y[k] }).collect()),
        (Data::I(x), Data::I(y)) => Data::I((0..n).map(|k| if cond[mc[k]] { x[k] } else { y[k] }).collect()),
        (Data::B(x), Data::B(y)) => Data::B((0..n).map(|k| if cond[mc[k]] { x[k] } else { y[k] }).collect()),
        (Data::S(x), Data::S(y)) => {
            Data::S((0..n).map(|k| if cond[mc[k]] { x[k].clone() } else { y[k].clone() }).collect())
        }
        _ => bail!("mismatched data"),
    };
    one(Tensor::new(a.dtype, shape, data)?)
}

/// Floating-point modulo with the sign of the divisor (numpy `mod`,
/// Python `%`): `fmod` adjusted by `b` when the signs differ; a zero result
/// takes the sign of `b`; `b == 0` gives NaN.
fn python_float_mod(a: f64, b: f64) -> f64 {
    let r = libm::fmod(a, b);
    if b == 0.0 || r.is_nan() {
        return r;
    }
    if r == 0.0 {
        return 0f64.copysign(b);
    }
    if (b < 0.0) != (r < 0.0) { r + b } else { r }
}

/// Format a float the way numpy's `astype(str)` does for float16, float32
/// and float64 (other float types are formatted as float32): the shortest
/// decimal digits that read back as the same value of that type, in
/// positional notation when the value is 0 or `1e-4 <= |v| < limit`
/// (limit 1e3 for float16, 1e6 for float32, 1e16 for float64), else in
/// scientific notation with an exponent of at least two digits.
pub fn python_float_str(v: f64, dtype: DType) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let (ty, limit) = match dtype {
        DType::F16 => (DType::F16, 1e3),
        DType::F64 => (DType::F64, 1e16),
        _ => (DType::F32, 1e6),
    };
    let a = v.abs();
    let (digits, exp) = shortest_digits(a, ty);
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let n = digits.len() as i32;
    if a == 0.0 || (1e-4 <= a && a < limit) {
        let s = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            format!("{}.{}", &digits[..(exp + 1) as usize], &digits[(exp + 1) as usize..])
        };
        format!("{sign}{s}")
    } else {
        let m = if n > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits.clone() };
        format!("{sign}{m}e{}{:02}", if exp < 0 { "-" } else { "+" }, exp.abs())
    }
}

/// Whether the decimal `text` reads back as exactly `a` in float type `ty`
/// (float16 via float64, which cannot double-round a short decimal).
fn reads_back(text: &str, a: f64, ty: DType) -> Option<f64> {
    let ok = match ty {
        DType::F32 => text.parse::<f32>().ok().map(|x| x as f64),
        DType::F64 => text.parse::<f64>().ok(),
        _ => text.parse::<f64>().ok().map(|x| ty.round_float(x)),
    };
    if ok == Some(a) { text.parse::<f64>().ok() } else { None }
}

/// The shortest decimal digits `d1 d2 ... dn` and exponent `e` with
/// `d1.d2...dn × 10^e` reading back as the non-negative finite `a` in type
/// `ty`; among equally short candidates the one nearest to `a`.
fn shortest_digits(a: f64, ty: DType) -> (String, i32) {
    if a == 0.0 {
        return ("0".into(), 0);
    }
    for p in 1..=17usize {
        // The correctly rounded p-digit decimal, plus its two neighbours
        // (next to a power of two a neighbour may read back when it does not).
        let s = format!("{:.*e}", p - 1, a);
        let Some((mant, e)) = s.split_once('e') else { continue };
        let Ok(e) = e.parse::<i32>() else { continue };
        let Ok(m) = mant.replace('.', "").parse::<u64>() else { continue };
        let mut best: Option<(f64, u64)> = None;
        for cand in [m, m.wrapping_sub(1), m + 1] {
            if cand.to_string().len() != p {
                continue;
            }
            if let Some(val) = reads_back(&format!("{cand}e{}", e - (p as i32 - 1)), a, ty) {
                let err = (val - a).abs();
                if best.is_none_or(|(b, _)| err < b) {
                    best = Some((err, cand));
                }
            }
        }
        if let Some((_, d)) = best {
            let digits = d.to_string();
            let digits = digits.trim_end_matches('0');
            return (if digits.is_empty() { "0".into() } else { digits.into() }, e);
        }
    }
    // Unreachable for finite values: 17 digits always read back.
    let s = format!("{a:e}");
    let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
    (mant.replace('.', ""), e.parse().unwrap_or(0))
}

/// Parse a number the way Python's `float()` does (surrounding whitespace,
/// `inf`/`infinity`/`nan` in any case, optional sign).
fn parse_float(s: &str) -> KResult<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => Ok(f64::INFINITY),
        "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => Ok(f64::NAN),
        _ => match t.parse() {
            Ok(v) => Ok(v),
            Err(_) => bail!("cannot convert the string '{s}' to a number"),
        },
    }
}

/// Convert a tensor to another element type.
pub fn cast(t: &Tensor, to: DType, saturate: bool, round_mode: strata_ir::dtype::E8M0Round) -> KResult<Tensor> {
    let shape = t.shape.clone();
    if to == DType::String {
        let v: Vec<String> = match &t.data {
            Data::S(s) => s.clone(),
            Data::F(v) => v.iter().map(|&x| python_float_str(x, t.dtype)).collect(),
            Data::I(v) => v.iter().map(|x| x.to_string()).collect(),
            Data::B(v) => v.iter().map(|&b| if b { "True".into() } else { "False".into() }).collect(),
        };
        return Tensor::from_s(shape, v);
    }
    let vals: Vec<f64> = match &t.data {
        Data::S(s) => s.iter().map(|x| parse_float(x)).collect::<KResult<_>>()?,
        _ => t.to_f64()?,
    };
    match data_class(to) {
        'f' => {
            if to == DType::F8E8M0 {
                let v = vals.iter().map(|&x| e8m0_round(x, saturate, round_mode)).collect();
                return Tensor::from_f(to, shape, v);
            }
            let narrow =
                matches!(to, DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F4E2M1);
            let v = if narrow {
                vals.iter()
                    .map(|&x| {
                        strata_ir::dtype::decode_float_bits(to, strata_ir::dtype::encode_float_bits(to, x, saturate))
                    })
                    .collect()
            } else {
                vals
            };
            Tensor::from_f(to, shape, v)
        }
        'i' => {
            let v = match &t.data {
                Data::I(v) => v.clone(),
                Data::S(s) => {
                    // Integer text exactly; other numeric text truncated toward zero.
                    s.iter()
                        .map(|x| x.trim().parse::<i128>().or_else(|_| parse_float(x).map(|f| f as i128)))
                        .collect::<KResult<_>>()?
                }
                _ => vals.iter().map(|&x| if x.is_nan() { 0 } else { x.trunc() as i128 }).collect(),
            };
            Tensor::from_i(to, shape, v)
        }
        'b' => Tensor::from_b(shape, vals.iter().map(|&x| x != 0.0).collect()),
        _ => bail!("cannot cast to {to}"),
    }
}

/// Round to a float8e8m0 value (a power of two, or NaN) the ONNX way; see
/// [`strata_ir::dtype::encode_e8m0_bits`].
fn e8m0_round(x: f64, saturate: bool, mode: strata_ir::dtype::E8M0Round) -> f64 {
    let bits = strata_ir::dtype::encode_e8m0_bits(x, saturate, mode);
    strata_ir::dtype::decode_float_bits(DType::F8E8M0, bits)
}

fn bitcast(t: &Tensor, to: DType) -> KResult<Tensor> {
    let host = t.to_host()?;
    let bytes = host.bytes().ok_or_else(|| KernelError::new("cannot bit-cast strings"))?;
    if t.dtype.bits() != to.bits() || to == DType::String {
        bail!("cannot bit-cast {} to {to}: sizes differ", t.dtype);
    }
    let out = TensorData::from_bytes(to, t.shape.clone(), Buffer::from_vec(bytes.as_slice().to_vec()))
        .map_err(|e| KernelError::new(e.to_string()))?;
    Tensor::from_host(&out)
}

#[cfg(test)]
mod tests {
    use super::python_float_str;

    #[test]
    fn python_like_float_strings() {
        use strata_ir::DType::{F16, F32, F64};
        assert_eq!(python_float_str(0.5, F32), "0.5");
        assert_eq!(python_float_str(1.0, F32), "1.0");
        assert_eq!(python_float_str(1e-5, F64), "1e-05");
        assert_eq!(python_float_str(1.5e20, F64), "1.5e+20");
        assert_eq!(python_float_str(-123.25, F32), "-123.25");
        assert_eq!(python_float_str(0.0001, F64), "0.0001");
        assert_eq!(python_float_str(-0.0, F32), "-0.0");
        assert_eq!(python_float_str(0.1f32 as f64, F32), "0.1");
        assert_eq!(python_float_str(1e-4f32 as f64, F32), "1e-04");
        assert_eq!(python_float_str(1e6, F32), "1e+06");
        assert_eq!(python_float_str(999999.9375, F32), "999999.94");
        assert_eq!(python_float_str(65504.0, F16), "6.55e+04");
        assert_eq!(python_float_str(0.333251953125, F16), "0.3333");
        assert_eq!(python_float_str(1e16, F64), "1e+16");
        assert_eq!(python_float_str(9999999999999998.0, F64), "9999999999999998.0");
    }
}
