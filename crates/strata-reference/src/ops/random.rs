//! Reference kernels for `strata_ir::ops::RandomOp`: RandomNormal,
//! RandomUniform, their `Like` forms, Bernoulli and Multinomial.
//!
//! They use a small deterministic generator (SplitMix64) seeded from the
//! `seed` attribute (or a fixed default), so a run is reproducible on every
//! target. Their values cannot match other runtimes, whose generators
//! differ; only shapes, types and distributions agree.

use strata_ir::DType;
use strata_ir::ops::RandomOp;

use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx, one};
use crate::util::{check_numel, to_dims};
use crate::value::{Tensor, Value, data_class};

/// Run one random generator.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn run(op: &RandomOp, args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    match op {
        RandomOp::RandomNormal { dtype, mean, scale, seed, shape } => {
            let shape = to_dims(shape, "shape")?;
            random(*dtype, shape, *seed, |r| *mean as f64 + *scale as f64 * r.normal())
        }
        RandomOp::RandomUniform { dtype, high, low, seed, shape } => {
            let shape = to_dims(shape, "shape")?;
            random(*dtype, shape, *seed, |r| *low as f64 + (*high as f64 - *low as f64) * r.uniform())
        }
        RandomOp::RandomNormalLike { dtype, mean, scale, seed } => {
            let x = args.tensor(0)?;
            random(dtype.unwrap_or(x.dtype), x.shape.clone(), *seed, |r| *mean as f64 + *scale as f64 * r.normal())
        }
        RandomOp::RandomUniformLike { dtype, high, low, seed } => {
            let x = args.tensor(0)?;
            random(dtype.unwrap_or(x.dtype), x.shape.clone(), *seed, |r| {
                *low as f64 + (*high as f64 - *low as f64) * r.uniform()
            })
        }
        RandomOp::Bernoulli { dtype, seed } => {
            let x = args.tensor(0)?;
            let p = x.f()?;
            let mut rng = Rng::new(*seed);
            let v = p.iter().map(|&p| if rng.uniform() < p { 1.0 } else { 0.0 }).collect();
            let dt = dtype.unwrap_or(x.dtype);
            if data_class(dt) == 's' {
                bail!("Bernoulli cannot produce {dt}");
            }
            one(Tensor::from_f64_any(dt, x.shape.clone(), v)?)
        }
        RandomOp::Multinomial { dtype, sample_size, seed } => multinomial(args.tensor(0)?, *dtype, *sample_size, *seed),
    }
}

/// A tensor of `dtype` (a float type) filled with draws from `draw`.
fn random(
    dtype: DType,
    shape: Vec<usize>,
    seed: Option<f32>,
    mut draw: impl FnMut(&mut Rng) -> f64,
) -> KResult<Vec<Value>> {
    if !dtype.is_float() {
        bail!("random values must be of a float type, not {dtype}");
    }
    let n = check_numel(&shape)?;
    let mut rng = Rng::new(seed);
    let v = (0..n).map(|_| draw(&mut rng)).collect();
    one(Tensor::from_f(dtype, shape, v)?)
}

/// Multinomial: `sample_size` class indices per batch row, drawn from the
/// softmax of the row's (unnormalised log-probability) values.
fn multinomial(x: &Tensor, dtype: DType, sample_size: i64, seed: Option<f32>) -> KResult<Vec<Value>> {
    if x.rank() != 2 {
        bail!("input must be 2-D [batch, classes], got shape {:?}", x.shape);
    }
    if !matches!(dtype, DType::I32 | DType::I64) {
        bail!("output type must be int32 or int64, not {dtype}");
    }
    if sample_size < 1 {
        bail!("sample_size must be positive, got {sample_size}");
    }
    let (batch, classes) = (x.shape[0], x.shape[1]);
    if classes == 0 {
        bail!("there are no classes to sample from");
    }
    let shape = vec![batch, sample_size as usize];
    check_numel(&shape)?;
    let logits = x.f()?;
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for b in 0..batch {
        let row = &logits[b * classes..(b + 1) * classes];
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Cumulative (unnormalised) probabilities.
        let mut cum = Vec::with_capacity(classes);
        let mut total = 0.0;
        for &v in row {
            total += libm::exp(v - max);
            cum.push(total);
        }
        for _ in 0..sample_size {
            let r = rng.uniform() * total;
            let class = cum.iter().position(|&c| r < c).unwrap_or(classes - 1);
            out.push(class as i128);
        }
    }
    one(Tensor::from_i(dtype, shape, out)?)
}

/// SplitMix64: a tiny, well-mixed, deterministic generator.
struct Rng(u64);

impl Rng {
    fn new(seed: Option<f32>) -> Rng {
        Rng(seed.map_or(0, |s| s.to_bits() as u64) ^ 0x5EED_0F57_2A7A)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // in (0, 1], so the log is finite
        let u2 = self.uniform();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * std::f64::consts::PI * u2)
    }
}
