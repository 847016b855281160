//! Dropout. In inference (the default, and always for the pre-opset-12
//! forms) it is the identity with an all-true mask. In training mode each
//! element is kept when a uniform draw in [0, 1) is >= `ratio` and scaled
//! by `1 / (1 - ratio)`.
//!
//! The draws come from MT19937 seeded with the `seed` attribute (0 when
//! absent), turned into doubles with 53 random bits, one per element in
//! row-major order: the same stream as `numpy.random.RandomState(seed)
//! .uniform(0, 1, shape)`, so results are deterministic and reproducible
//! outside this backend.

use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx};
use crate::value::{Tensor, Value};

/// Run Dropout (`ratio_attr` is the pre-opset-12 attribute).
pub fn dropout(args: &Args, ctx: &dyn Ctx, seed: Option<i64>, ratio_attr: Option<f32>) -> KResult<Vec<Value>> {
    let x = args.tensor(0)?;
    let ratio = match args.opt_tensor(1)? {
        Some(r) => r.scalar_f64()?,
        None => ratio_attr.map_or(0.5, |r| r as f64),
    };
    let training = match args.opt_tensor(2)? {
        Some(t) => t.scalar_i64()? != 0,
        None => false,
    };
    let want_mask = ctx.n_outputs() > 1;
    if !training || ratio == 0.0 {
        let mut outs = vec![Value::Tensor(x.clone())];
        if want_mask {
            outs.push(Value::Tensor(Tensor::from_b(x.shape.clone(), vec![true; x.numel()])?));
        }
        return Ok(outs);
    }
    if !(0.0..1.0).contains(&ratio) {
        bail!("ratio must be in [0, 1), got {ratio}");
    }
    let seed = seed.unwrap_or(0);
    if !(0..=u32::MAX as i64).contains(&seed) {
        bail!("seed must be in [0, 2^32), got {seed}");
    }
    let xv = x.f().map_err(|_| {
        crate::error::KernelError::new(format!("training Dropout needs a float tensor, got {}", x.dtype))
    })?;
    let mut rng = Mt19937::new(seed as u32);
    let mask: Vec<bool> = (0..xv.len()).map(|_| rng.next_f64() >= ratio).collect();
    let scale = 1.0 / (1.0 - ratio);
    let y = xv.iter().zip(&mask).map(|(&v, &keep)| if keep { v * scale } else { 0.0 }).collect();
    let mut outs = vec![Value::Tensor(Tensor::from_f(x.dtype, x.shape.clone(), y)?)];
    if want_mask {
        outs.push(Value::Tensor(Tensor::from_b(x.shape.clone(), mask)?));
    }
    Ok(outs)
}

/// The 32-bit Mersenne Twister (Matsumoto & Nishimura, 1998).
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    /// Seed with the reference `init_genrand` procedure.
    fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    /// Regenerate the 624 words of state.
    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// The next tempered 32-bit output.
    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// A double in [0, 1) from 27 + 26 random bits of two outputs.
    fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }
}
