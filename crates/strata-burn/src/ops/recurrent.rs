//! RNN, GRU and LSTM with their default activations, built from burn's
//! matmuls and elementwise operations: the input projection of every time
//! step at once (one matmul per direction), then one recurrent matmul per
//! step; biases, initial states, peepholes, `clip`, `layout` 1 and both
//! directions. `sequence_lens` must cover the whole sequence (read when
//! the node runs); other activations and `input_forget` are declined.

use burn_backend::tensor::FloatTensor;
use burn_backend::{Backend, Scalar, Slice};
use strata_ir::ops::NnOp as N;
use strata_ir::ops::recurrent::{Cell, RecurrentAttrs};

use super::{NodeInfo, Out, Unsupported, input};
use crate::tensor::BurnTensor;

/// A compiled recurrent layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recurrent {
    attrs: RecurrentAttrs,
}

/// Plan RNN/GRU/LSTM (`None`: another operator).
pub(crate) fn plan(op: &N, info: &NodeInfo) -> Option<Result<Recurrent, Unsupported>> {
    if !matches!(op, N::RNN { .. } | N::GRU { .. } | N::LSTM { .. }) {
        return None;
    }
    let check = || -> Result<Recurrent, Unsupported> {
        let attrs = op.recurrent_attrs()?;
        if !attrs.default_activations() {
            return Err("recurrent layer with non-default activations".into());
        }
        if attrs.cell == (Cell::Lstm { input_forget: true }) {
            return Err("LSTM with input_forget".into());
        }
        info.require_f32(&[4])?;
        Ok(Recurrent { attrs })
    };
    Some(check())
}

/// Columns `[k·h, (k+1)·h)` of a 2-D tensor with `rows` rows.
fn cols<B: Backend>(t: &FloatTensor<B>, rows: usize, k: usize, h: usize) -> FloatTensor<B> {
    B::float_slice(
        t.clone(),
        &[Slice::new(0, Some(rows as isize), 1), Slice::new((k * h) as isize, Some(((k + 1) * h) as isize), 1)],
    )
}

/// Row `d` of a `[D, ...]` tensor as `shape`.
fn part<B: Backend>(t: &BurnTensor<B>, d: usize, shape: &[usize]) -> FloatTensor<B> {
    let mut s: Vec<Slice> = t.shape.iter().map(|&n| Slice::new(0, Some(n as isize), 1)).collect();
    s[0] = Slice::new(d as isize, Some(d as isize + 1), 1);
    let p = B::float_slice(t.reshaped(&t.shape), &s);
    BurnTensor::<B>::new(std::iter::once(1).chain(t.shape[1..].iter().copied()).collect(), p).reshaped(shape)
}

impl Recurrent {
    pub(crate) fn run<B: Backend>(&self, ins: &[Option<&BurnTensor<B>>], device: &B::Device) -> Out<B> {
        let a = &self.attrs;
        let (x, w, r) = (input(ins, 0)?, input(ins, 1)?, input(ins, 2)?);
        if x.shape.len() != 3 || w.shape.len() != 3 || r.shape.len() != 3 {
            return Err("X, W and R are not 3-D".into());
        }
        let (seq, batch, inp) =
            if a.batch_major { (x.shape[1], x.shape[0], x.shape[2]) } else { (x.shape[0], x.shape[1], x.shape[2]) };
        let dirs = a.num_directions();
        let g = a.cell.gates();
        let h = r.shape[2];
        if w.shape != [dirs, g * h, inp] || r.shape != [dirs, g * h, h] || seq == 0 || batch == 0 {
            return Err(format!("W {:?} / R {:?} do not fit X {:?}", w.shape, r.shape, x.shape));
        }
        if let Some(lens) = ins.get(4).copied().flatten()
            && lens.host_ints()?.iter().any(|&l| l != seq as i64)
        {
            return Err("sequence_lens shorter than the sequence".into());
        }
        // X as [seq, batch, I].
        let xs = if a.batch_major { B::float_swap_dims(x.f()?, 0, 1) } else { x.f()? };
        let x2 = BurnTensor::<B>::new(vec![seq, batch, inp], xs).reshaped(&[seq * batch, inp]);
        let clip = |t: FloatTensor<B>| match a.clip {
            Some(c) => B::float_clamp(t, Scalar::from(-c), Scalar::from(c)),
            None => t,
        };
        let bias = ins.get(3).copied().flatten();
        let state = |i: usize, d: usize| -> Result<FloatTensor<B>, String> {
            match ins.get(i).copied().flatten() {
                Some(t) if t.shape == [dirs, batch, h] => Ok(part(t, d, &[batch, h])),
                Some(t) => Err(format!("initial state of shape {:?}", t.shape)),
                None => Ok(B::float_zeros(burn_backend::Shape::from(vec![batch, h]), device, crate::tensor::FLOAT)),
            }
        };
        let (mut ys, mut hs, mut cs) = (Vec::new(), Vec::new(), Vec::new());
        for d in 0..dirs {
            let wd = B::float_transpose(part(w, d, &[g * h, inp]));
            let rd = B::float_transpose(part(r, d, &[g * h, h]));
            let mut xw = B::float_matmul(x2.clone(), wd);
            let mut rb: Option<FloatTensor<B>> = None;
            if let Some(b) = bias {
                if b.shape != [dirs, 2 * g * h] {
                    return Err(format!("B of shape {:?}", b.shape));
                }
                let bd = part(b, d, &[1, 2 * g * h]);
                let wb = cols::<B>(&bd, 1, 0, g * h);
                let rbv = cols::<B>(&bd, 1, 1, g * h);
                xw = B::float_add(xw, B::float_expand(wb, burn_backend::Shape::from(vec![seq * batch, g * h])));
                rb = Some(B::float_expand(rbv, burn_backend::Shape::from(vec![batch, g * h])));
            }
            let peep = match ins.get(7).copied().flatten() {
                Some(p) if p.shape == [dirs, 3 * h] => {
                    let pd = part(p, d, &[1, 3 * h]);
                    let e = |k| B::float_expand(cols::<B>(&pd, 1, k, h), burn_backend::Shape::from(vec![batch, h]));
                    Some((e(0), e(1), e(2)))
                }
                Some(p) => return Err(format!("P of shape {:?}", p.shape)),
                None => None,
            };
            let mut hp = state(5, d)?;
            let mut cp = state(6, d)?;
            let mut outs: Vec<Option<FloatTensor<B>>> = vec![None; seq];
            let reverse = a.direction.runs_reverse(d);
            for step in 0..seq {
                let t = if reverse { seq - 1 - step } else { step };
                let xt = B::float_slice(
                    xw.clone(),
                    &[
                        Slice::new((t * batch) as isize, Some(((t + 1) * batch) as isize), 1),
                        Slice::new(0, Some((g * h) as isize), 1),
                    ],
                );
                let gate = |k: usize, with_r: bool, hh: &FloatTensor<B>| {
                    let mut v = cols::<B>(&xt, batch, k, h);
                    if with_r {
                        v = B::float_add(v, cols::<B>(&B::float_matmul(hh.clone(), rd.clone()), batch, k, h));
                        if let Some(rb) = &rb {
                            v = B::float_add(v, cols::<B>(rb, batch, k, h));
                        }
                    }
                    v
                };
                let hr = B::float_matmul(hp.clone(), rd.clone());
                let hr = match &rb {
                    Some(rb) => B::float_add(hr, rb.clone()),
                    None => hr,
                };
                let pre = |k: usize| B::float_add(cols::<B>(&xt, batch, k, h), cols::<B>(&hr, batch, k, h));
                match a.cell {
                    Cell::Rnn => hp = B::float_tanh(clip(pre(0))),
                    Cell::Lstm { .. } => {
                        let (mut i, mut f) = (pre(0), pre(2));
                        if let Some((pi, _, pf)) = &peep {
                            i = B::float_add(i, B::float_mul(pi.clone(), cp.clone()));
                            f = B::float_add(f, B::float_mul(pf.clone(), cp.clone()));
                        }
                        let (i, f) = (B::sigmoid(clip(i)), B::sigmoid(clip(f)));
                        let c_new =
                            B::float_add(B::float_mul(f, cp.clone()), B::float_mul(i, B::float_tanh(clip(pre(3)))));
                        let mut o = pre(1);
                        if let Some((_, po, _)) = &peep {
                            o = B::float_add(o, B::float_mul(po.clone(), c_new.clone()));
                        }
                        hp = B::float_mul(B::sigmoid(clip(o)), B::float_tanh(clip(c_new.clone())));
                        cp = c_new;
                    }
                    Cell::Gru { linear_before_reset } => {
                        let z = B::sigmoid(clip(pre(0)));
                        let rr = B::sigmoid(clip(pre(1)));
                        let cand = if linear_before_reset {
                            B::float_add(cols::<B>(&xt, batch, 2, h), B::float_mul(rr, cols::<B>(&hr, batch, 2, h)))
                        } else {
                            gate(2, true, &B::float_mul(rr, hp.clone()))
                        };
                        let cand = B::float_tanh(clip(cand));
                        let keep = B::float_mul(z.clone(), hp.clone());
                        let one_minus = B::float_add_scalar(B::float_neg(z), Scalar::from(1.0f32));
                        hp = B::float_add(B::float_mul(one_minus, cand), keep);
                    }
                }
                outs[t] = Some(hp.clone());
            }
            ys.push(outs.into_iter().map(|o| o.expect("every step ran")).collect::<Vec<_>>());
            hs.push(hp);
            cs.push(cp);
        }
        // Y as [seq, D, batch, H] (or [batch, seq, D, H] with layout 1).
        let mut steps = Vec::with_capacity(seq);
        for t in 0..seq {
            let per: Vec<FloatTensor<B>> = (0..dirs).map(|d| ys[d][t].clone()).collect();
            steps.push(B::float_cat(per, 0));
        }
        let y = BurnTensor::<B>::new(vec![seq * dirs * batch, h], B::float_cat(steps, 0))
            .with_shape(vec![seq, dirs, batch, h]);
        let yh = BurnTensor::<B>::new(vec![dirs * batch, h], B::float_cat(hs, 0)).with_shape(vec![dirs, batch, h]);
        let yc = BurnTensor::<B>::new(vec![dirs * batch, h], B::float_cat(cs, 0)).with_shape(vec![dirs, batch, h]);
        if !a.batch_major {
            return Ok(vec![y, yh, yc]);
        }
        let y = BurnTensor::new(vec![batch, seq, dirs, h], B::float_permute(y.f()?, &[2, 0, 1, 3]));
        let swap = |t: BurnTensor<B>| -> Result<BurnTensor<B>, String> {
            Ok(BurnTensor::new(vec![batch, dirs, h], B::float_swap_dims(t.f()?, 0, 1)))
        };
        Ok(vec![y, swap(yh)?, swap(yc)?])
    }
}
