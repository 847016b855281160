//! LSTM on f32 (part of the `nn` family): the input projection of every
//! time step in one GEMM per direction, then per step the recurrent GEMM
//! and the cell update. Default activations (sigmoid, tanh, tanh) without
//! `clip` or `sequence_lens`; other forms fall back to another backend.

use strata_ir::DType;
use strata_ir::ops::recurrent::{Cell, Direction, RecurrentAttrs};

use super::{Ctx, Kernel, NodeInfo, input, unsupported};
use crate::error::{Result, bail};
use crate::gemm::{PackedA, PackedB, gemm};
use crate::math;
use crate::tensor::CpuTensor;

pub(crate) struct LstmKernel {
    directions: usize,
    reverse: bool,
    batch_major: bool,
    input_forget: bool,
    hidden_size: Option<usize>,
    /// `Wᵀ` and `Rᵀ` per direction, packed at compile time when they are
    /// weights, with the shapes they came from.
    packed_w: Option<(Vec<usize>, Vec<PackedB>)>,
    packed_r: Option<(Vec<usize>, Vec<PackedB>)>,
}

/// Per direction, `Vᵀ` packed, for a weight `V` of shape `[dirs, rows, k]`.
fn pack_all(info: &NodeInfo, i: usize) -> Result<Option<(Vec<usize>, Vec<PackedB>)>> {
    let Some(t) = info.constant(i) else { return Ok(None) };
    let &[dirs, rows, k] = t.shape() else { return Ok(None) };
    let v = CpuTensor::from_host(t)?;
    let v = v.as_f32()?;
    Ok(Some((t.shape().to_vec(), (0..dirs).map(|d| pack_t(v, d, rows, k)).collect())))
}

/// `Wᵀ` of direction `d` packed as the right operand: `[k, gates·hidden]`.
fn pack_t(v: &[f32], d: usize, rows: usize, k: usize) -> PackedB {
    PackedB::pack(&v[d * rows * k..], k, rows, 1, k)
}

impl Kernel for LstmKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let (x, w, r) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let nd = self.directions;
        let [a0, a1, input_len] = x.shape[..] else { bail!("X must have rank 3, got shape {:?}", x.shape) };
        let (seq, batch) = if self.batch_major { (a1, a0) } else { (a0, a1) };
        let [rd, rg, hidden] = r.shape[..] else { bail!("R must have rank 3, got shape {:?}", r.shape) };
        if rd != nd || rg != 4 * hidden {
            bail!("R must have shape [{nd}, 4·hidden, hidden], got {:?}", r.shape);
        }
        if self.hidden_size.is_some_and(|h| h != hidden) {
            bail!("hidden_size does not match R of shape {:?}", r.shape);
        }
        if w.shape != [nd, 4 * hidden, input_len] {
            bail!("W must have shape [{nd}, {}, {input_len}], got {:?}", 4 * hidden, w.shape);
        }
        let g = 4 * hidden;
        let opt = |i: usize, shape: &[usize], what: &str| -> Result<Option<&[f32]>> {
            match inputs.get(i).copied().flatten() {
                None => Ok(None),
                Some(t) if t.shape == shape => Ok(Some(t.as_f32()?)),
                Some(t) => bail!("{what} must have shape {shape:?}, got {:?}", t.shape),
            }
        };
        let bias = opt(3, &[nd, 2 * g], "B")?;
        let state_shape = if self.batch_major { [batch, nd, hidden] } else { [nd, batch, hidden] };
        let (h0, c0) = (opt(5, &state_shape, "initial_h")?, opt(6, &state_shape, "initial_c")?);
        let peep = opt(7, &[nd, 3 * hidden], "P")?;
        let y_shape = if self.batch_major { vec![batch, seq, nd, hidden] } else { vec![seq, nd, batch, hidden] };
        ctx.check_numel(&y_shape)?;
        ctx.check_numel(&[seq * batch, g])?;
        let (xv, wv, rv) = (x.as_f32()?, w.as_f32()?, r.as_f32()?);
        // X as [seq · batch, input] in time-major order.
        let x0: Vec<f32> = if self.batch_major {
            (0..seq * batch)
                .flat_map(|tb| {
                    let (t, b) = (tb / batch, tb % batch);
                    xv[(b * seq + t) * input_len..(b * seq + t + 1) * input_len].iter().copied()
                })
                .collect()
        } else {
            xv.to_vec()
        };
        let pa_x = PackedA::pack(&x0, seq * batch, input_len, input_len, 1);
        let state_at = |d: usize, b: usize| if self.batch_major { b * nd + d } else { d * batch + b };
        let mut y = vec![0.0f32; seq * nd * batch * hidden];
        let mut yh = vec![0.0f32; nd * batch * hidden];
        let mut yc = vec![0.0f32; nd * batch * hidden];
        for d in 0..nd {
            let reverse = self.reverse || d == 1;
            // Input projections of every step, plus both biases.
            let mut gx = vec![0.0f32; seq * batch * g];
            let runtime_w;
            let pw = match &self.packed_w {
                Some((shape, p)) if *shape == w.shape => &p[d],
                _ => {
                    runtime_w = pack_t(wv, d, g, input_len);
                    &runtime_w
                }
            };
            gemm(ctx.pool, &pa_x, pw, &mut gx, g);
            if let Some(bv) = bias {
                let (wb, rb) = (&bv[d * 2 * g..d * 2 * g + g], &bv[d * 2 * g + g..(d + 1) * 2 * g]);
                for row in gx.chunks_exact_mut(g) {
                    for ((v, a), b) in row.iter_mut().zip(wb).zip(rb) {
                        *v += a + b;
                    }
                }
            }
            let runtime_r;
            let pr = match &self.packed_r {
                Some((shape, p)) if *shape == r.shape => &p[d],
                _ => {
                    runtime_r = pack_t(rv, d, g, hidden);
                    &runtime_r
                }
            };
            let (mut h, mut c) = (vec![0.0f32; batch * hidden], vec![0.0f32; batch * hidden]);
            for b in 0..batch {
                let at = state_at(d, b) * hidden;
                if let Some(v) = h0 {
                    h[b * hidden..(b + 1) * hidden].copy_from_slice(&v[at..at + hidden]);
                }
                if let Some(v) = c0 {
                    c[b * hidden..(b + 1) * hidden].copy_from_slice(&v[at..at + hidden]);
                }
            }
            let zeros = vec![0.0f32; 3 * hidden];
            let p = peep.map_or(&zeros[..], |p| &p[d * 3 * hidden..(d + 1) * 3 * hidden]);
            let mut gh = vec![0.0f32; batch * g];
            for s in 0..seq {
                let t = if reverse { seq - 1 - s } else { s };
                gemm(ctx.pool, &PackedA::pack(&h, batch, hidden, hidden, 1), pr, &mut gh, g);
                for b in 0..batch {
                    let (gxr, ghr) = (&gx[(t * batch + b) * g..][..g], &gh[b * g..][..g]);
                    let (cr, hr) = (&mut c[b * hidden..][..hidden], &mut h[b * hidden..][..hidden]);
                    let input_forget = self.input_forget;
                    // The gates of every hidden unit, in wide vector registers
                    // (the same scalar operations per unit).
                    crate::simd::vectorized(
                        #[inline(always)]
                        || {
                            // Every slice exactly `hidden` long, so the loop has no bounds checks.
                            fn gate(v: &[f32], k: usize, n: usize) -> &[f32] {
                                &v[k * n..(k + 1) * n]
                            }
                            let (xi, xo, xf, xc) = (
                                gate(gxr, 0, hidden),
                                gate(gxr, 1, hidden),
                                gate(gxr, 2, hidden),
                                gate(gxr, 3, hidden),
                            );
                            let (hi, ho, hf, hc) = (
                                gate(ghr, 0, hidden),
                                gate(ghr, 1, hidden),
                                gate(ghr, 2, hidden),
                                gate(ghr, 3, hidden),
                            );
                            let (pi, po, pf) = (gate(p, 0, hidden), gate(p, 1, hidden), gate(p, 2, hidden));
                            let (cr, hr) = (&mut cr[..hidden], &mut hr[..hidden]);
                            for j in 0..hidden {
                                let cj = cr[j];
                                let i = math::sigmoid(xi[j] + hi[j] + pi[j] * cj);
                                let f = if input_forget { 1.0 - i } else { math::sigmoid(xf[j] + hf[j] + pf[j] * cj) };
                                let c_new = f * cj + i * math::tanh(xc[j] + hc[j]);
                                let o = math::sigmoid(xo[j] + ho[j] + po[j] * c_new);
                                cr[j] = c_new;
                                hr[j] = o * math::tanh(c_new);
                            }
                        },
                    );
                    let at = if self.batch_major {
                        ((b * seq + t) * nd + d) * hidden
                    } else {
                        ((t * nd + d) * batch + b) * hidden
                    };
                    y[at..at + hidden].copy_from_slice(&h[b * hidden..(b + 1) * hidden]);
                }
            }
            for b in 0..batch {
                let at = state_at(d, b) * hidden;
                yh[at..at + hidden].copy_from_slice(&h[b * hidden..(b + 1) * hidden]);
                yc[at..at + hidden].copy_from_slice(&c[b * hidden..(b + 1) * hidden]);
            }
        }
        Ok(vec![
            CpuTensor::f32(y_shape, y),
            CpuTensor::f32(state_shape.to_vec(), yh),
            CpuTensor::f32(state_shape.to_vec(), yc),
        ])
    }
}

/// Build an LSTM kernel from its decoded attributes, or say which form is
/// not supported here.
pub(crate) fn build_lstm(info: &NodeInfo, attrs: &RecurrentAttrs) -> Result<Box<dyn Kernel>> {
    let ins: Vec<usize> = (0..info.node.inputs.len()).filter(|&i| info.has_input(i) && i != 4).collect();
    for i in ins {
        if info.in_dtype(i) != Some(DType::F32) {
            return Err(unsupported(format!("LSTM input {i} must be float32")));
        }
    }
    if info.has_input(4) {
        return Err(unsupported("LSTM with sequence_lens"));
    }
    let Cell::Lstm { input_forget } = attrs.cell else {
        return Err(unsupported("only LSTM among the recurrent layers"));
    };
    if attrs.clip.is_some() || !attrs.default_activations() {
        return Err(unsupported("LSTM with clip or non-default activations"));
    }
    Ok(Box::new(LstmKernel {
        directions: attrs.num_directions(),
        reverse: attrs.direction == Direction::Reverse,
        batch_major: attrs.batch_major,
        input_forget,
        hidden_size: attrs.hidden_size,
        packed_w: pack_all(info, 1)?,
        packed_r: pack_all(info, 2)?,
    }))
}
