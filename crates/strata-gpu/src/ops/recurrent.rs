//! RNN, GRU and LSTM on the GPU (`recurrent.wgsl`), their attributes
//! decoded once by the IR (`NnOp::recurrent_attrs`) and turned into kernel
//! codes by the planning step ([`Recurrent::parse`]).
//!
//! The input projection of every time step is one batched matrix product
//! (`matmul.wgsl`, one batch entry per direction); then each step is one
//! dispatch of `recurrent_step` (GRU: two, the reset and update gates
//! first), both directions together, with the state ping-ponging between
//! two slots of one state buffer. Initial states are copied into the
//! first slot and final states out of the last one with `copy_strided`,
//! which also converts between the internal `[dir, batch, hidden]` order
//! and layout 1's `[batch, dir, hidden]`.

use super::*;
use crate::kernels::TILE;
use crate::shape::contiguous;
use crate::wgsl::{wgsl_codes, wgsl_params};
use strata_ir::ops::recurrent::{Activation, Cell, Direction};

wgsl_params! {
    /// `recurrent_step`: one time step `step` of `mode` ([`step_mode`]) over
    /// `n` = dirs * batch * hidden units; flags 0 or 1; activation slot a
    /// (f, g, h) of direction d at `act_*[3 d + a]` ([`activation`] codes).
    pub(crate) struct RecurrentParams {
        n: u32, mode: u32, step: u32, seq: u32, dirs: u32, batch: u32, hidden: u32, batch_major: u32,
        has_bias: u32, has_peepholes: u32, has_lens: u32, no_initial_h: u32, no_initial_c: u32, reverse: u32,
        has_clip: u32, clip: f32, input_forget: u32, linear_before_reset: u32, gates: u32, write_y: u32,
        act_code: [u32; 6], act_alpha: [f32; 6], act_beta: [f32; 6],
    }
}

wgsl_codes! {
    /// What one dispatch of `recurrent_step` computes (`RecurrentParams::mode`).
    pub(crate) mod step_mode: REC { RNN = 0, GRU_GATES = 1, GRU_UPDATE = 2, LSTM = 3 }
    /// Activation functions (`RecurrentParams::act_code`).
    pub(crate) mod activation: ACT {
        RELU = 0, TANH = 1, SIGMOID = 2, AFFINE = 3, LEAKY_RELU = 4, THRESHOLDED_RELU = 5, SCALED_TANH = 6,
        HARD_SIGMOID = 7, ELU = 8, SOFTSIGN = 9, SOFTPLUS = 10,
    }
}

/// How a recurrent layer runs.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Initial states in, final states out (and layout changes).
    copy: Kernel,
    /// The input projection of every time step.
    matmul: Kernel,
    /// One time step.
    step: Kernel,
    rec: Recurrent,
}

/// A recurrent node's attributes, checked.
#[derive(Debug, Clone)]
struct Recurrent {
    cell: Cell,
    /// 1 or 2 (bidirectional).
    dirs: usize,
    /// `direction` is "reverse" (a bidirectional layer's second direction
    /// always runs in reverse).
    reverse: bool,
    /// `layout` 1: batch-major inputs and outputs.
    batch_major: bool,
    clip: Option<f32>,
    hidden_size: Option<i64>,
    /// Per direction, per activation slot (f, g, h as the cell uses them):
    /// the `recurrent.wgsl` code and its alpha and beta.
    acts: Vec<[(u32, f32, f32); 3]>,
}

impl Recurrent {
    /// The attributes of an RNN, GRU or LSTM node, decoded once by the IR
    /// (`NnOp::recurrent_attrs`), as `recurrent.wgsl` codes.
    fn parse(o: &NnOp) -> std::result::Result<Recurrent, String> {
        let a = o.recurrent_attrs()?;
        let code = |k: Activation| match k {
            Activation::Relu => activation::RELU,
            Activation::Tanh => activation::TANH,
            Activation::Sigmoid => activation::SIGMOID,
            Activation::Affine => activation::AFFINE,
            Activation::LeakyRelu => activation::LEAKY_RELU,
            Activation::ThresholdedRelu => activation::THRESHOLDED_RELU,
            Activation::ScaledTanh => activation::SCALED_TANH,
            Activation::HardSigmoid => activation::HARD_SIGMOID,
            Activation::Elu => activation::ELU,
            Activation::Softsign => activation::SOFTSIGN,
            Activation::Softplus => activation::SOFTPLUS,
        };
        let acts = a
            .activations
            .iter()
            .map(|fns| {
                let mut slots = [(0, 0.0, 0.0); 3];
                for (slot, f) in slots.iter_mut().zip(fns) {
                    *slot = (code(f.kind), f.alpha as f32, f.beta as f32);
                }
                slots
            })
            .collect();
        Ok(Recurrent {
            cell: a.cell,
            dirs: a.num_directions(),
            reverse: a.direction == Direction::Reverse,
            batch_major: a.batch_major,
            clip: a.clip,
            hidden_size: a.hidden_size.map(|h| h as i64),
            acts,
        })
    }
}

/// RNN, GRU and LSTM: float inputs (X, W, R, B, initial_h, initial_c, P),
/// integer sequence_lens.
pub(super) fn plan(v: &NodeView, o: &NnOp, k: &mut Kernels) -> std::result::Result<Plan, String> {
    let rec = Recurrent::parse(o)?;
    for (i, what) in [(0, "X"), (1, "W"), (2, "R")] {
        v.float(i).map_err(|e| format!("{what}: {e}"))?;
    }
    let lstm = matches!(rec.cell, Cell::Lstm { .. });
    let mut optional = vec![(3, "B"), (5, "initial_h")];
    if lstm {
        optional.extend([(6, "initial_c"), (7, "P")]);
    }
    for (i, what) in optional {
        if v.input(i).is_some() {
            v.float(i).map_err(|e| format!("{what}: {e}"))?;
        }
    }
    if v.input(4).is_some() {
        match v.dt(4)? {
            DType::I32 | DType::I64 => {}
            d => return Err(format!("sequence_lens of type {d}")),
        }
    }
    for i in 0..3 {
        match v.rank(i) {
            Some(3) | None => {}
            Some(r) => return Err(format!("input {i} of rank {r}; RNN/GRU/LSTM inputs X, W, R have rank 3")),
        }
    }
    Ok(Plan {
        copy: k.copy(),
        matmul: k.get(Shader::Matmul, "matmul", &[]),
        step: k.get(Shader::Recurrent, "recurrent_step", &[]),
        rec,
    })
}

impl Exec<'_> {
    /// Check that input `i` (when present) has shape `want`.
    fn rec_shape(&self, i: usize, what: &str, want: &[usize]) -> Result<Option<&GpuTensor>> {
        match self.opt_input(i) {
            Some(t) if t.shape != want => {
                Err(GpuError::Shape(format!("{what} must have shape {want:?}, got {:?}", t.shape)))
            }
            t => Ok(t),
        }
    }

    /// Run an RNN, GRU or LSTM node.
    pub(super) fn recurrent(&self, ctx: &mut Ctx, plan: &Plan) -> Result<Vec<GpuTensor>> {
        let rec = &plan.rec;
        let lstm = matches!(rec.cell, Cell::Lstm { .. });
        let (x, w, r) = (self.input(0)?, self.input(1)?, self.input(2)?);
        if x.shape.len() != 3 || r.shape.len() != 3 {
            return Err(GpuError::Shape(format!("X {:?} and R {:?} must have rank 3", x.shape, r.shape)));
        }
        let (seq, batch) = if rec.batch_major { (x.shape[1], x.shape[0]) } else { (x.shape[0], x.shape[1]) };
        let input = x.shape[2];
        let hidden = r.shape[2];
        if let Some(h) = rec.hidden_size
            && usize::try_from(h).ok() != Some(hidden)
        {
            return Err(GpuError::Shape(format!("hidden_size {h} does not match R of shape {:?}", r.shape)));
        }
        let (dirs, g) = (rec.dirs, rec.cell.gates());
        let gh = g * hidden;
        if r.shape != [dirs, gh, hidden] {
            return Err(GpuError::Shape(format!("R must have shape {:?}, got {:?}", [dirs, gh, hidden], r.shape)));
        }
        if w.shape != [dirs, gh, input] {
            return Err(GpuError::Shape(format!("W must have shape {:?}, got {:?}", [dirs, gh, input], w.shape)));
        }
        let bias = self.rec_shape(3, "B", &[dirs, 2 * gh])?;
        let lens = self.rec_shape(4, "sequence_lens", &[batch])?;
        let state_shape = if rec.batch_major { vec![batch, dirs, hidden] } else { vec![dirs, batch, hidden] };
        let h0 = self.rec_shape(5, "initial_h", &state_shape)?;
        let (c0, peep) = if lstm {
            (self.rec_shape(6, "initial_c", &state_shape)?, self.rec_shape(7, "P", &[dirs, 3 * hidden])?)
        } else {
            (None, None)
        };
        if let Some(t) = self.host(4)
            && let Some(l) = t.to_i64_vec().into_iter().find(|&l| l < 0 || l as u64 > seq as u64)
        {
            return Err(GpuError::Value(format!("sequence_lens value {l} is outside [0, {seq}]")));
        }

        // Input projection: xw[d] = X (as [rows, input] . W[d]^T.
        let rows = seq * batch;
        let xw = ctx.alloc(DType::F32, vec![dirs, rows, gh])?;
        if rows > 0 && gh > 0 {
            let p = self.mm_params(rows, gh, input, dirs, &[dirs], &[0], &[gh * input], false, true, None, 1.0, 0.0)?;
            let max = ctx.dev.limits.max_compute_workgroups_per_dimension as usize;
            let (gx, gy) = (gh.div_ceil(TILE as usize), rows.div_ceil(TILE as usize));
            if gx > max || gy > max || dirs > max {
                return Err(GpuError::Limit(format!(
                    "input projection {dirs}x{rows}x{gh} exceeds the dispatch limit of {max} workgroups per dimension"
                )));
            }
            ctx.dispatch(&plan.matmul, &p, &xw, &[x, w, x], [gx as u32, gy as u32, dirs as u32])?;
        }

        // State: h and c of slots 0 and 1, then the GRU gates z and r.
        let ss = dirs * batch * hidden;
        let regions = if matches!(rec.cell, Cell::Gru { .. }) { 6 } else { 4 };
        let state = ctx.alloc(DType::F32, vec![regions * ss])?;
        // Internal order [dir, batch, hidden]; the strides of the same
        // coordinates in a state tensor of the node's layout.
        let internal = [vec![dirs, batch, hidden], contiguous(&[dirs, batch, hidden])];
        let outer: Vec<usize> =
            if rec.batch_major { vec![hidden, dirs * hidden, 1] } else { contiguous(&[dirs, batch, hidden]) };
        let signed = |s: &[usize]| -> Vec<i64> { s.iter().map(|&v| v as i64).collect() };
        for (init, region) in [(h0, 0), (c0, 1)] {
            if let Some(t) = init {
                self.copy(ctx, &plan.copy, &state, t, &internal[0], 0, &signed(&outer), region * ss, &internal[1])?;
            }
        }

        let y_shape = if rec.batch_major { vec![batch, seq, dirs, hidden] } else { vec![seq, dirs, batch, hidden] };
        let want_y = self.wants(0);
        let y = ctx.alloc(DType::F32, if want_y { y_shape } else { vec![1] })?;

        let acts = rec.acts.iter().flatten();
        let mut p = RecurrentParams {
            n: ss,
            seq,
            dirs,
            batch,
            hidden,
            batch_major: usize::from(rec.batch_major),
            has_bias: usize::from(bias.is_some()),
            has_peepholes: usize::from(peep.is_some()),
            has_lens: usize::from(lens.is_some()),
            no_initial_h: usize::from(h0.is_none()),
            no_initial_c: usize::from(c0.is_none()),
            reverse: usize::from(rec.reverse),
            has_clip: usize::from(rec.clip.is_some()),
            clip: rec.clip.unwrap_or(0.0),
            gates: g,
            write_y: usize::from(want_y),
            act_code: acts.clone().map(|&(code, _, _)| code as usize).collect(),
            act_alpha: acts.clone().map(|&(_, alpha, _)| alpha).collect(),
            act_beta: acts.map(|&(_, _, beta)| beta).collect(),
            ..Default::default()
        };
        match rec.cell {
            Cell::Lstm { input_forget } => p.input_forget = usize::from(input_forget),
            Cell::Gru { linear_before_reset } => p.linear_before_reset = usize::from(linear_before_reset),
            Cell::Rnn => {}
        }
        let modes: &[u32] = match rec.cell {
            Cell::Rnn => &[step_mode::RNN],
            Cell::Gru { .. } => &[step_mode::GRU_GATES, step_mode::GRU_UPDATE],
            Cell::Lstm { .. } => &[step_mode::LSTM],
        };
        // Absent optional operands are bound as R (never read).
        let ins = [&xw, r, bias.unwrap_or(r), peep.unwrap_or(r), lens.unwrap_or(r)];
        // At least one step: with seq 0 it sets the (zero-length) final states to zero.
        let steps = seq.max(1);
        for k in 0..steps {
            for &mode in modes {
                p.mode = mode as usize;
                p.step = k;
                let mut bind = vec![&y];
                bind.extend(ins);
                ctx.dispatch_n(&plan.step, &p.words()?, &state, &bind, ss)?;
            }
        }
        ctx.release(xw);

        let last = steps % 2;
        let mut outs = vec![y];
        let wanted = self.n.outputs.len().min(if lstm { 3 } else { 2 });
        for (k, region) in [(1, 0), (2, 1)].into_iter().take(wanted.saturating_sub(1)) {
            if !self.wants(k) {
                // Not wanted: any tensor fills the position.
                outs.push(state.clone());
                continue;
            }
            let t = ctx.alloc(DType::F32, state_shape.clone())?;
            let off = ((2 * last + region) * ss) as i64;
            self.copy(ctx, &plan.copy, &t, &state, &internal[0], off, &signed(&internal[1]), 0, &outer)?;
            outs.push(t);
        }
        if !want_y {
            ctx.release(outs[0].clone());
        }
        ctx.release(state);
        Ok(outs)
    }
}
