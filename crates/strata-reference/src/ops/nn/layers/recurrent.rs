//! The recurrent layers RNN, GRU and LSTM.
//!
//! Inputs are read in the layout-0 view (`X[t, b, :]`, `initial_h[d, b, :]`)
//! whatever the `layout` attribute; every (direction, batch row) is then run
//! as its own sequence of steps over plain vectors, and the outputs are
//! written in the requested layout. Gate blocks are stacked in the weight
//! matrices in ONNX order: RNN `i`, GRU `z r h`, LSTM `i o f c` (peepholes
//! `i o f`).
//!
//! `sequence_lens[b]` limits row `b` to its first steps (a reverse pass
//! starts from its last valid step); `Y` is zero past the end, and `Y_h` /
//! `Y_c` hold the state after the last valid step (zero for a length of 0).
//! `clip` bounds the input of every activation to `[-clip, clip]`, the
//! stored cell state is not clipped.

use strata_ir::ops::NnOp;
use strata_ir::ops::recurrent::{Activation, ActivationFn, Cell};

use super::{float_input, opt_float_input};
use crate::bail;
use crate::error::{KResult, KernelError};
use crate::ops::Args;
use crate::util::check_numel;
use crate::value::{Tensor, Value};

/// Apply an activation function (parameters decoded in the IR).
fn apply(f: &ActivationFn, x: f64) -> f64 {
    use crate::ops::elementwise::sigmoid;
    let (a, b) = (f.alpha, f.beta);
    match f.kind {
        Activation::Relu => x.max(0.0),
        Activation::Tanh => libm::tanh(x),
        Activation::Sigmoid => sigmoid(x),
        Activation::Affine => a * x + b,
        Activation::LeakyRelu => {
            if x >= 0.0 {
                x
            } else {
                a * x
            }
        }
        Activation::ThresholdedRelu => {
            if x >= a {
                x
            } else {
                0.0
            }
        }
        Activation::ScaledTanh => a * libm::tanh(b * x),
        Activation::HardSigmoid => (a * x + b).clamp(0.0, 1.0),
        Activation::Elu => {
            if x >= 0.0 {
                x
            } else {
                a * (libm::exp(x) - 1.0)
            }
        }
        Activation::Softsign => x / (1.0 + x.abs()),
        Activation::Softplus => {
            if x > 30.0 {
                x
            } else {
                libm::log1p(libm::exp(x))
            }
        }
    }
}

/// The weights of one direction.
struct Dir<'a> {
    /// `[gates * hidden, input]`
    w: &'a [f64],
    /// `[gates * hidden, hidden]`
    r: &'a [f64],
    /// Input and recurrence biases, `[gates * hidden]` each.
    wb: &'a [f64],
    rb: &'a [f64],
    /// LSTM peepholes `[3 * hidden]` (i, o, f).
    p: &'a [f64],
    /// Activations of this direction (f, g, h as the cell uses them).
    acts: &'a [ActivationFn],
    input: usize,
    hidden: usize,
    clip: Option<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

impl Dir<'_> {
    /// `W[row] . x + Wb[row]`
    fn xw(&self, row: usize, x: &[f64]) -> f64 {
        dot(&self.w[row * self.input..(row + 1) * self.input], x) + self.wb[row]
    }
    /// `R[row] . h + Rb[row]`
    fn hr(&self, row: usize, h: &[f64]) -> f64 {
        dot(&self.r[row * self.hidden..(row + 1) * self.hidden], h) + self.rb[row]
    }
    /// Activation `k` of this direction applied to a clipped input.
    fn act(&self, k: usize, v: f64) -> f64 {
        let v = match self.clip {
            Some(c) => v.max(-c).min(c),
            None => v,
        };
        apply(&self.acts[k], v)
    }

    /// One step: new hidden state (and new cell state for LSTM).
    fn step(&self, cell: Cell, x: &[f64], h: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let hs = self.hidden;
        match cell {
            Cell::Rnn => ((0..hs).map(|j| self.act(0, self.xw(j, x) + self.hr(j, h))).collect(), vec![]),
            Cell::Gru { linear_before_reset } => {
                let z: Vec<f64> = (0..hs).map(|j| self.act(0, self.xw(j, x) + self.hr(j, h))).collect();
                let r: Vec<f64> = (0..hs).map(|j| self.act(0, self.xw(hs + j, x) + self.hr(hs + j, h))).collect();
                let rh: Vec<f64> = r.iter().zip(h).map(|(a, b)| a * b).collect();
                let new_h = (0..hs)
                    .map(|j| {
                        let row = 2 * hs + j;
                        let pre = if linear_before_reset {
                            self.xw(row, x) + r[j] * self.hr(row, h)
                        } else {
                            self.xw(row, x) + self.hr(row, &rh)
                        };
                        let cand = self.act(1, pre);
                        (1.0 - z[j]) * cand + z[j] * h[j]
                    })
                    .collect();
                (new_h, vec![])
            }
            Cell::Lstm { input_forget } => {
                let mut new_h = Vec::with_capacity(hs);
                let mut new_c = Vec::with_capacity(hs);
                for j in 0..hs {
                    let pre = |g: usize| self.xw(g * hs + j, x) + self.hr(g * hs + j, h);
                    let (p_i, p_o, p_f) = (self.p[j], self.p[hs + j], self.p[2 * hs + j]);
                    let i = self.act(0, pre(0) + p_i * c[j]);
                    let f = if input_forget { 1.0 - i } else { self.act(0, pre(2) + p_f * c[j]) };
                    let cand = self.act(1, pre(3));
                    let c_new = f * c[j] + i * cand;
                    let o = self.act(0, pre(1) + p_o * c_new);
                    new_h.push(o * self.act(2, c_new));
                    new_c.push(c_new);
                }
                (new_h, new_c)
            }
        }
    }
}

/// Check a tensor's shape.
fn expect_shape(t: &Tensor, shape: &[usize], what: &str) -> KResult<()> {
    if t.shape != shape {
        bail!("{what} must have shape {shape:?}, got {:?}", t.shape);
    }
    Ok(())
}

/// Run RNN, GRU or LSTM.
pub fn run(op: &NnOp, args: &Args) -> KResult<Vec<Value>> {
    let attrs = op.recurrent_attrs().map_err(KernelError::new)?;
    let cell = attrs.cell;
    let is_lstm = matches!(cell, Cell::Lstm { .. });
    let num_dir = attrs.num_directions();
    let batch_major = attrs.batch_major;
    let clip = attrs.clip.map(f64::from);
    let g = cell.gates();

    let x = float_input(args, 0, "X")?;
    if x.rank() != 3 {
        bail!("X must have rank 3, got shape {:?}", x.shape);
    }
    let (seq, batch) = if batch_major { (x.shape[1], x.shape[0]) } else { (x.shape[0], x.shape[1]) };
    let input = x.shape[2];
    let r_t = float_input(args, 2, "R")?;
    if r_t.rank() != 3 {
        bail!("R must have rank 3, got shape {:?}", r_t.shape);
    }
    let hidden = r_t.shape[2];
    if let Some(hsz) = attrs.hidden_size
        && hsz != hidden
    {
        bail!("hidden_size {hsz} does not match R of shape {:?}", r_t.shape);
    }
    expect_shape(r_t, &[num_dir, g * hidden, hidden], "R")?;
    let w_t = float_input(args, 1, "W")?;
    expect_shape(w_t, &[num_dir, g * hidden, input], "W")?;
    let bias = match opt_float_input(args, 3, "B")? {
        Some(b) => {
            expect_shape(b, &[num_dir, 2 * g * hidden], "B")?;
            b.f()?.to_vec()
        }
        None => vec![0.0; num_dir * 2 * g * hidden],
    };
    let seq_lens: Vec<usize> = match args.opt_tensor(4)? {
        Some(s) => {
            expect_shape(s, &[batch], "sequence_lens")?;
            let mut v = Vec::with_capacity(batch);
            for &l in &s.to_i64()? {
                if l < 0 || l as usize > seq {
                    bail!("sequence_lens value {l} is outside [0, {seq}]");
                }
                v.push(l as usize);
            }
            v
        }
        None => vec![seq; batch],
    };
    let state_shape = if batch_major { [batch, num_dir, hidden] } else { [num_dir, batch, hidden] };
    // Initial states rearranged to [num_dir, batch, hidden].
    let initial = |i: usize, what: &str| -> KResult<Vec<f64>> {
        match opt_float_input(args, i, what)? {
            Some(t) => {
                expect_shape(t, &state_shape, what)?;
                let v = t.f()?;
                let mut out = Vec::with_capacity(v.len());
                for d in 0..num_dir {
                    for b in 0..batch {
                        let at = if batch_major { b * num_dir + d } else { d * batch + b };
                        out.extend_from_slice(&v[at * hidden..(at + 1) * hidden]);
                    }
                }
                Ok(out)
            }
            None => Ok(vec![0.0; num_dir * batch * hidden]),
        }
    };
    let h0 = initial(5, "initial_h")?;
    let c0 = if is_lstm { initial(6, "initial_c")? } else { vec![] };
    let peep = match (is_lstm, opt_float_input(args, 7, "P")?) {
        (true, Some(p)) => {
            expect_shape(p, &[num_dir, 3 * hidden], "P")?;
            p.f()?.to_vec()
        }
        _ => vec![0.0; num_dir * 3 * hidden],
    };

    let y_shape = if batch_major { vec![batch, seq, num_dir, hidden] } else { vec![seq, num_dir, batch, hidden] };
    check_numel(&y_shape)?;
    let (xv, wv, rv) = (x.f()?, w_t.f()?, r_t.f()?);
    // Outputs in layout 0: Y [seq, num_dir, batch, hidden], states
    // [num_dir, batch, hidden].
    let mut y = vec![0.0; seq * num_dir * batch * hidden];
    let mut y_h = vec![0.0; num_dir * batch * hidden];
    let mut y_c = vec![0.0; num_dir * batch * hidden];
    let (gh, gi) = (g * hidden, g * hidden * input);
    for d in 0..num_dir {
        let dir = Dir {
            w: &wv[d * gi..(d + 1) * gi],
            r: &rv[d * gh * hidden..(d + 1) * gh * hidden],
            wb: &bias[d * 2 * gh..d * 2 * gh + gh],
            rb: &bias[d * 2 * gh + gh..(d + 1) * 2 * gh],
            p: &peep[d * 3 * hidden..(d + 1) * 3 * hidden],
            acts: &attrs.activations[d],
            input,
            hidden,
            clip,
        };
        let reverse = attrs.direction.runs_reverse(d);
        for b in 0..batch {
            let state = (d * batch + b) * hidden;
            let mut h = h0[state..state + hidden].to_vec();
            let mut c = if is_lstm { c0[state..state + hidden].to_vec() } else { vec![] };
            let len = seq_lens[b];
            for k in 0..len {
                let t = if reverse { len - 1 - k } else { k };
                let xi = if batch_major { b * seq + t } else { t * batch + b };
                let (nh, nc) = dir.step(cell, &xv[xi * input..(xi + 1) * input], &h, &c);
                h = nh;
                c = nc;
                let at = ((t * num_dir + d) * batch + b) * hidden;
                y[at..at + hidden].copy_from_slice(&h);
            }
            if len > 0 {
                y_h[state..state + hidden].copy_from_slice(&h);
                if is_lstm {
                    y_c[state..state + hidden].copy_from_slice(&c);
                }
            }
        }
    }

    // Rearrange to the requested layout.
    let (y, y_h, y_c) = if batch_major {
        let mut y2 = Vec::with_capacity(y.len());
        for b in 0..batch {
            for t in 0..seq {
                for d in 0..num_dir {
                    let at = ((t * num_dir + d) * batch + b) * hidden;
                    y2.extend_from_slice(&y[at..at + hidden]);
                }
            }
        }
        let states = |s: &[f64]| -> Vec<f64> {
            let mut out = Vec::with_capacity(s.len());
            for b in 0..batch {
                for d in 0..num_dir {
                    let at = (d * batch + b) * hidden;
                    out.extend_from_slice(&s[at..at + hidden]);
                }
            }
            out
        };
        (y2, states(&y_h), states(&y_c))
    } else {
        (y, y_h, y_c)
    };
    let mut outs = vec![
        Value::Tensor(Tensor::from_f(x.dtype, y_shape, y)?),
        Value::Tensor(Tensor::from_f(x.dtype, state_shape.to_vec(), y_h)?),
    ];
    if is_lstm {
        outs.push(Value::Tensor(Tensor::from_f(x.dtype, state_shape.to_vec(), y_c)?));
    }
    Ok(outs)
}
