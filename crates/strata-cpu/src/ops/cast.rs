//! `Cast`, `CastLike` and `BitCast` between every held element type.
//!
//! The common pairs (float32, int64, int32, bool, float16, bfloat16) have
//! loops of their own; every other pair goes through f64 (floats exactly)
//! or i128 (integers exactly) with the IR's encodings of the narrow float
//! types, by the rules of the reference: floats to integers truncate toward
//! zero (NaN gives 0) and wrap, integers wrap, float8 types saturate when
//! asked, float8e8m0 rounds by `round_mode`.

use std::sync::Arc;

use strata_ir::dtype::{E8M0Round, encode_e8m0_bits, encode_float_bits};
use strata_ir::{Buffer, DType, TensorData};

use super::{Ctx, Kernel, input};
use crate::error::{CpuError, Result, bail};
use crate::narrow::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use crate::tensor::{CpuTensor, Data};

/// `f` over every element, in parallel chunks for large inputs.
pub(super) fn par_map<T: Copy + Sync, U: Copy + Default + Send>(
    ctx: &Ctx,
    v: &[T],
    f: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    const CHUNK: usize = 1 << 14;
    let mut out = vec![U::default(); v.len()];
    ctx.pool.for_each_chunk(&mut out, CHUNK, v.len() * 2, |i, o| {
        for (o, &x) in o.iter_mut().zip(&v[i * CHUNK..]) {
            *o = f(x);
        }
    });
    out
}

/// `Cast` to a fixed type (`CastLike` resolves its target at compile time).
pub(super) struct CastKernel {
    pub to: DType,
    pub saturate: bool,
    pub round: E8M0Round,
}

/// The elements of an integer or bool tensor, exactly.
fn ints(t: &CpuTensor) -> Option<Vec<i128>> {
    Some(match &t.data {
        Data::I64(v) => v.iter().map(|&x| x as i128).collect(),
        Data::I32(v) => v.iter().map(|&x| x as i128).collect(),
        Data::U64(v) => v.iter().map(|&x| x as i128).collect(),
        Data::U32(v) => v.iter().map(|&x| x as i128).collect(),
        Data::I16(v) => v.iter().map(|&x| x as i128).collect(),
        Data::U16(v) => v.iter().map(|&x| x as i128).collect(),
        Data::I8(v) => v.iter().map(|&x| x as i128).collect(),
        Data::U8(v) | Data::Bool(v) => v.iter().map(|&x| x as i128).collect(),
        Data::F32(_) | Data::F64(_) | Data::Half(_) | Data::Small(_) => return None,
    })
}

/// Integer values (already wrapped to `to`) in `to`'s storage.
fn int_storage(to: DType, v: Vec<i128>) -> Result<Data> {
    let w = |x: &i128| to.wrap_int(*x);
    Ok(match to {
        DType::I64 => Data::I64(Arc::new(v.iter().map(|x| w(x) as i64).collect())),
        DType::I32 => Data::I32(Arc::new(v.iter().map(|x| w(x) as i32).collect())),
        DType::U64 => Data::U64(Arc::new(v.iter().map(|x| w(x) as u64).collect())),
        DType::U32 => Data::U32(Arc::new(v.iter().map(|x| w(x) as u32).collect())),
        DType::I16 => Data::I16(Arc::new(v.iter().map(|x| w(x) as i16).collect())),
        DType::U16 => Data::U16(Arc::new(v.iter().map(|x| w(x) as u16).collect())),
        DType::I8 | DType::I4 | DType::I2 => Data::I8(Arc::new(v.iter().map(|x| w(x) as i8).collect())),
        DType::U8 | DType::U4 | DType::U2 => Data::U8(Arc::new(v.iter().map(|x| w(x) as u8).collect())),
        d => bail!("{d} is not an integer type"),
    })
}

impl CastKernel {
    /// The pairs with loops of their own.
    fn fast(&self, ctx: &Ctx, x: &CpuTensor) -> Option<Data> {
        use DType::{BF16, F16, F32, I32, I64};
        let (to, from) = (self.to, x.dtype);
        Some(match (&x.data, to) {
            (Data::F32(v), I64) => Data::I64(Arc::new(par_map(ctx, v, |f| f as i64))),
            (Data::F32(v), I32) => Data::I32(Arc::new(par_map(ctx, v, |f| f as i32))),
            (Data::F32(v), DType::Bool) => Data::Bool(Arc::new(par_map(ctx, v, |f| u8::from(f != 0.0)))),
            (Data::F32(v), F16) => Data::Half(Arc::new(par_map(ctx, v, f32_to_f16))),
            (Data::F32(v), BF16) => Data::Half(Arc::new(par_map(ctx, v, f32_to_bf16))),
            (Data::Half(v), F32) if from == F16 => Data::F32(Arc::new(par_map(ctx, v, f16_to_f32))),
            (Data::Half(v), F32) if from == BF16 => Data::F32(Arc::new(par_map(ctx, v, bf16_to_f32))),
            (Data::I64(v), F32) => Data::F32(Arc::new(par_map(ctx, v, |i| i as f32))),
            (Data::I64(v), I32) => Data::I32(Arc::new(par_map(ctx, v, |i| i as i32))),
            (Data::I64(v), DType::Bool) => Data::Bool(Arc::new(par_map(ctx, v, |i| u8::from(i != 0)))),
            (Data::I32(v), F32) => Data::F32(Arc::new(par_map(ctx, v, |i| i as f32))),
            (Data::I32(v), I64) => Data::I64(Arc::new(par_map(ctx, v, i64::from))),
            (Data::I32(v), DType::Bool) => Data::Bool(Arc::new(par_map(ctx, v, |i| u8::from(i != 0)))),
            (Data::Bool(v), F32) => Data::F32(Arc::new(par_map(ctx, v, f32::from))),
            (Data::Bool(v), I64) => Data::I64(Arc::new(par_map(ctx, v, i64::from))),
            (Data::Bool(v), I32) => Data::I32(Arc::new(par_map(ctx, v, i32::from))),
            _ => return None,
        })
    }

    /// Any other pair, through f64 / i128.
    fn general(&self, x: &CpuTensor) -> Result<Data> {
        let to = self.to;
        if to == DType::Bool {
            return Ok(Data::Bool(Arc::new(x.to_f64_vec().iter().map(|&f| u8::from(f != 0.0)).collect())));
        }
        if to.is_int() {
            let v = match ints(x) {
                Some(v) => v,
                None => x.to_f64_vec().iter().map(|&f| if f.is_nan() { 0 } else { f.trunc() as i128 }).collect(),
            };
            return int_storage(to, v);
        }
        let v = x.to_f64_vec();
        Ok(match to {
            DType::F32 => Data::F32(Arc::new(v.iter().map(|&f| f as f32).collect())),
            DType::F64 => Data::F64(Arc::new(v)),
            DType::F16 | DType::BF16 => {
                Data::Half(Arc::new(v.iter().map(|&f| encode_float_bits(to, f, false) as u16).collect()))
            }
            DType::F8E8M0 => {
                Data::Small(Arc::new(v.iter().map(|&f| encode_e8m0_bits(f, self.saturate, self.round) as u8).collect()))
            }
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F4E2M1 => {
                Data::Small(Arc::new(v.iter().map(|&f| encode_float_bits(to, f, self.saturate) as u8).collect()))
            }
            d => bail!("cannot cast to {d}"),
        })
    }
}

impl Kernel for CastKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.dtype == self.to {
            return Ok(vec![x.clone()]);
        }
        let data = match self.fast(ctx, x) {
            Some(d) => d,
            None => self.general(x)?,
        };
        Ok(vec![CpuTensor { dtype: self.to, shape: x.shape.clone(), data }])
    }
}

/// `BitCast`: the same bytes read as another type of the same width.
pub(super) struct BitCastKernel(pub DType);

impl Kernel for BitCastKernel {
    fn run(&self, _ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let x = input(inputs, 0)?;
        if x.dtype.bits() != self.0.bits() {
            bail!("cannot bit-cast {} to {}: sizes differ", x.dtype, self.0);
        }
        let host = x.to_host()?;
        let bytes = host.bytes().map(|b| b.as_slice().to_vec()).unwrap_or_default();
        let t = TensorData::from_bytes(self.0, x.shape.clone(), Buffer::from_vec(bytes))
            .map_err(|e| CpuError::Kernel(e.to_string()))?;
        Ok(vec![CpuTensor::from_host(&t)?])
    }
}
