//! Fused nodes ([`strata_ir::ops::FusedOp`], made by the IR's fusion pass
//! when this backend compiles a partition): the producer's kernel, then the
//! whole elementwise program in one pass over its output, chunk by chunk
//! while the chunk is in cache, written in place when the shapes allow.
//! Every step computes what its unfused kernel computes (the same scalar
//! functions), so fusing never changes a bit.

use strata_ir::ops::ElementwiseOp as E;
use strata_ir::ops::FusedOp;
use strata_ir::ops::fused::Operand;
use strata_ir::{DType, Graph, Node, Op};

use super::elementwise::{Arg, Binary, Unary, bound};
use super::{Ctx, Kernel, NodeInfo, broadcast, broadcast_strides, unsupported};
use crate::error::{Result, bail};
use crate::tensor::{CpuTensor, Data};

/// One step, as this backend runs it.
#[derive(Debug, Clone, Copy)]
enum Lane {
    Unary(Unary),
    Binary(Binary),
}

/// How a step runs here, if it can run lane by lane (float32 only).
fn lane(op: &E, args: usize) -> Option<Lane> {
    if let Some(u) = Unary::of(op) {
        let ok = matches!(u, Unary::Clip(..)) && args <= 3 || args == 1;
        return ok.then_some(Lane::Unary(u));
    }
    Binary::of(op).filter(|_| args == 2).map(Lane::Binary)
}

/// Whether `node` can be a step of a fused program on this backend.
pub(crate) fn can_step(graph: &Graph, node: &Node) -> bool {
    let Op::Elementwise(op) = &node.op else { return false };
    let info = NodeInfo { graph, node };
    // Clip's bounds are read once per run, so they must come from outside
    // any group: weights or graph inputs.
    let bounds_outside = !matches!(op, E::Clip { .. })
        || node.inputs.iter().skip(1).flatten().all(|v| graph.initializer(*v).is_some() || graph.inputs.contains(v));
    lane(op, node.inputs.len()).is_some() && bounds_outside && info.require_dtypes(&[DType::F32]).is_ok()
}

/// Whether `node` can be the producer of a fused group on this backend: a
/// float32 single-output kernel that runs here.
pub(crate) fn can_produce(graph: &Graph, node: &Node) -> bool {
    let info = NodeInfo { graph, node };
    !matches!(node.op, Op::Elementwise(_) | Op::Fused(_) | Op::Control(_))
        && node.outputs.len() == 1
        && info.out_dtype(0) == Some(DType::F32)
        && super::kernel(&info).is_ok()
}

struct FusedKernel {
    producer: Option<Box<dyn Kernel>>,
    producer_inputs: usize,
    steps: Vec<(Lane, Vec<Operand>)>,
}

/// Build a fused node: the producer's kernel as if it were its own node.
pub(crate) fn build(f: &FusedOp, info: &NodeInfo) -> Result<Box<dyn Kernel>> {
    f.check(info.node.inputs.len()).map_err(unsupported)?;
    let p = f.producer_inputs as usize;
    let producer = match &f.producer {
        Some(op) => {
            let node = Node {
                name: info.node.name.clone(),
                op: (**op).clone(),
                inputs: info.node.inputs[..p].to_vec(),
                outputs: info.node.outputs.clone(),
            };
            Some(super::kernel(&NodeInfo { graph: info.graph, node: &node })?)
        }
        None => None,
    };
    let steps = f
        .steps
        .iter()
        .map(|s| {
            lane(&s.op, s.args.len())
                .map(|l| (l, s.args.clone()))
                .ok_or_else(|| unsupported(format!("{} cannot run fused here", s.op.name())))
        })
        .collect::<Result<_>>()?;
    for i in p..info.node.inputs.len() {
        if info.has_input(i) && info.in_dtype(i) != Some(DType::F32) {
            return Err(unsupported("fused inputs must be float32"));
        }
    }
    Ok(Box::new(FusedKernel { producer, producer_inputs: p, steps }))
}

/// Elements per chunk of the program (each step's result fits in L1).
const CHUNK: usize = 2048;

/// How an operand is read for output positions.
enum Source<'a> {
    /// Same shape as the output.
    Full(&'a [f32]),
    Scalar(f32),
    /// Broadcast: element at `Σ index_d · strides[d]`; constant over each
    /// aligned run of `period` output positions (the trailing axes it is
    /// broadcast along, e.g. `H·W` for a per-channel `[1, C, 1, 1]`).
    Strided(&'a [f32], Vec<usize>, usize),
}

impl Source<'_> {
    fn of<'a>(v: &'a [f32], shape: &[usize], out: &[usize]) -> Source<'a> {
        if shape == out {
            Source::Full(v)
        } else if v.len() == 1 {
            Source::Scalar(v[0])
        } else {
            let st = broadcast_strides(shape, out);
            let period = out.iter().zip(&st).rev().take_while(|(_, s)| **s == 0).map(|(d, _)| *d).product();
            Source::Strided(v, st, period)
        }
    }

    /// The one value of output positions `s .. s + len`, if they all read
    /// the same element.
    fn constant(&self, out: &[usize], s: usize, len: usize) -> Option<f32> {
        match self {
            Source::Scalar(x) => Some(*x),
            Source::Strided(v, st, period) if *period > 1 && len > 0 && s / period == (s + len - 1) / period => {
                let (mut rem, mut off) = (s, 0);
                for d in (0..out.len()).rev() {
                    off += (rem % out[d].max(1)) * st[d];
                    rem /= out[d].max(1);
                }
                Some(v[off])
            }
            _ => None,
        }
    }

    /// Values for output positions `s .. s + buf.len()` (`out` the output
    /// shape), into `buf` unless they can be read in place.
    fn read<'b>(&'b self, out: &[usize], s: usize, buf: &'b mut [f32]) -> &'b [f32] {
        match self {
            Source::Full(v) => &v[s..s + buf.len()],
            Source::Scalar(x) => {
                buf.fill(*x);
                buf
            }
            Source::Strided(v, st, _) => {
                gather(v, st, out, s, buf);
                buf
            }
        }
    }
}

/// `buf[k] = v[offset of output position s + k]` for a broadcast operand
/// with strides `st` (0 along broadcast axes), walked run by run along the
/// innermost axis (a run reading one element is a fill).
fn gather(v: &[f32], st: &[usize], out: &[usize], s: usize, buf: &mut [f32]) {
    let rank = out.len();
    if rank == 0 || buf.is_empty() {
        buf.fill(v.first().copied().unwrap_or(0.0));
        return;
    }
    let mut idx = vec![0usize; rank];
    let mut rem = s;
    for d in (0..rank).rev() {
        idx[d] = rem % out[d].max(1);
        rem /= out[d].max(1);
    }
    let mut off: usize = idx.iter().zip(st).map(|(i, s)| i * s).sum();
    let (last, sl) = (rank - 1, st[rank - 1]);
    let mut k = 0;
    while k < buf.len() {
        let run = (out[last] - idx[last]).min(buf.len() - k);
        let dst = &mut buf[k..k + run];
        if sl == 0 {
            dst.fill(v[off]);
        } else {
            for (t, b) in dst.iter_mut().enumerate() {
                *b = v[off + t * sl];
            }
        }
        k += run;
        // Advance by `run` along the innermost axis, carrying outwards.
        idx[last] += run;
        off += run * sl;
        let mut d = last;
        while idx[d] == out[d] && d > 0 {
            off -= out[d] * st[d];
            idx[d] = 0;
            d -= 1;
            idx[d] += 1;
            off += st[d];
        }
    }
}

/// Where a chunk's operands come from.
struct Env<'a> {
    shape: &'a [usize],
    /// The producer's values are the chunk itself (copied before it is overwritten).
    in_place: bool,
    producer: Option<Source<'a>>,
    externals: Vec<Option<Source<'a>>>,
    /// Programs run over pieces that do not cross a multiple of this (the
    /// shortest period of a broadcast operand), so such operands are one
    /// value per piece.
    split: usize,
}

impl Env<'_> {
    /// Operand `a` for output positions `s .. s + buf.len()`.
    fn get<'x>(
        &'x self,
        a: &Operand,
        s: usize,
        buf: &'x mut [f32],
        done: &'x [f32],
        producer_vals: &'x [f32],
    ) -> Arg<'x> {
        let len = buf.len();
        let src = match a {
            Operand::Producer if self.in_place => return Arg::Slice(producer_vals),
            Operand::Producer => self.producer.as_ref(),
            Operand::Input(j) => self.externals.get(*j as usize).and_then(|s| s.as_ref()),
            Operand::Step(j) => return Arg::Slice(&done[*j as usize * len..(*j as usize + 1) * len]),
            Operand::Absent => None,
        };
        match src {
            Some(src) => match src.constant(self.shape, s, len) {
                Some(x) => Arg::Scalar(x),
                None => Arg::Slice(src.read(self.shape, s, buf)),
            },
            None => Arg::Slice(buf),
        }
    }
}

/// The whole program for the output positions `s .. s + chunk.len()`,
/// written into `chunk` (which holds the producer's values when in place);
/// `scratch` holds at least `nsteps + 3` chunks.
#[inline(always)]
fn program_chunk(
    env: &Env,
    steps: &[(Lane, &[Operand])],
    in_place: bool,
    s: usize,
    scratch: &mut [f32],
    chunk: &mut [f32],
) {
    let mut t = 0;
    while t < chunk.len() {
        let end = chunk.len().min(t.saturating_add(env.split - (s + t) % env.split));
        program_piece(env, steps, in_place, s + t, scratch, &mut chunk[t..end]);
        t = end;
    }
}

/// [`program_chunk`] for a piece within one period of every broadcast operand.
#[inline(always)]
fn program_piece(
    env: &Env,
    steps: &[(Lane, &[Operand])],
    in_place: bool,
    s: usize,
    scratch: &mut [f32],
    chunk: &mut [f32],
) {
    let (len, nsteps) = (chunk.len(), steps.len());
    // Step results (the last goes straight to the chunk), two buffers for
    // gathered operands, one for the producer's values.
    let (regs, tmp) = scratch.split_at_mut(nsteps * len);
    let (bufs, saved) = tmp.split_at_mut(2 * len);
    let saved = &mut saved[..len];
    let (b0, b1) = bufs.split_at_mut(len);
    for (i, (lane, args)) in steps.iter().enumerate().take(nsteps - 1) {
        let (done, rest) = regs.split_at_mut(i * len);
        // In place, the chunk holds the producer's values until the last step.
        run_step(env, *lane, args, s, b0, b1, done, chunk, &mut rest[..len]);
    }
    let (lane, args) = &steps[nsteps - 1];
    let producer_vals: &[f32] = if in_place && args.contains(&Operand::Producer) {
        saved.copy_from_slice(chunk);
        saved
    } else {
        &[]
    };
    run_step(env, *lane, args, s, b0, b1, &regs[..(nsteps - 1) * len], producer_vals, chunk);
}

/// One step for `dst.len()` output positions from `s`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run_step(
    env: &Env,
    lane: Lane,
    args: &[Operand],
    s: usize,
    b0: &mut [f32],
    b1: &mut [f32],
    done: &[f32],
    producer_vals: &[f32],
    dst: &mut [f32],
) {
    let len = dst.len();
    let (b0, b1) = (&mut b0[..len], &mut b1[..len]);
    match lane {
        Lane::Unary(u) => match env.get(&args[0], s, b0, done, producer_vals) {
            Arg::Slice(x) => u.apply(x, dst),
            Arg::Scalar(x) => {
                u.apply(&[x], &mut dst[..1]);
                let v = dst[0];
                dst.fill(v);
            }
        },
        Lane::Binary(b) => {
            let x = env.get(&args[0], s, b0, done, producer_vals);
            let y = env.get(&args[1], s, b1, done, producer_vals);
            b.apply(x, y, dst);
        }
    }
}

thread_local! {
    /// Per-thread step results and gather buffers of fused programs.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Kernel for FusedKernel {
    fn run(&self, ctx: &Ctx, inputs: &[Option<&CpuTensor>]) -> Result<Vec<CpuTensor>> {
        let p = self.producer_inputs;
        if let (Some(k), [(lane, args)]) = (&self.producer, self.steps.as_slice())
            && matches!(args.first(), Some(Operand::Producer))
        {
            let ext = |i: usize| -> Option<&CpuTensor> {
                match args.get(i) {
                    Some(Operand::Input(j)) => inputs.get(p + *j as usize).copied().flatten(),
                    _ => None,
                }
            };
            let act = match *lane {
                Lane::Unary(Unary::Relu) => Some(crate::gemm::Activation::Relu),
                Lane::Unary(Unary::Clip(lo, hi))
                    if args[1..].iter().all(|a| !matches!(a, Operand::Step(_) | Operand::Producer)) =>
                {
                    let ins = [None, ext(1), ext(2)];
                    Some(crate::gemm::Activation::Clip { lo: bound(&ins, 1, lo)?, hi: bound(&ins, 2, hi)? })
                }
                _ => None,
            };
            if let Some(act) = act
                && let Some(done) = k.run_activated(ctx, &inputs[..p.min(inputs.len())], act)
            {
                return done;
            }
        }
        let produced = match &self.producer {
            Some(k) => k.run(ctx, &inputs[..p.min(inputs.len())])?.into_iter().next(),
            None => None,
        };
        let externals: Vec<Option<&CpuTensor>> = inputs.get(p..).unwrap_or(&[]).to_vec();
        // The output shape: everything the steps read, broadcast.
        let mut shape: Vec<usize> = produced.as_ref().map(|t| t.shape.clone()).unwrap_or_default();
        for t in externals.iter().flatten() {
            shape = broadcast(&shape, &t.shape)?;
        }
        let n = ctx.check_numel(&shape)?;
        // Clip bounds are read now, as the unfused kernel reads them.
        let mut steps = Vec::with_capacity(self.steps.len());
        for (lane, args) in &self.steps {
            let lane = match *lane {
                Lane::Unary(Unary::Clip(lo, hi)) => {
                    let arg = |i: usize| -> Result<Option<&CpuTensor>> {
                        Ok(match args.get(i) {
                            Some(Operand::Input(j)) => externals.get(*j as usize).copied().flatten(),
                            Some(Operand::Absent) | None => None,
                            Some(_) => bail!("Clip bounds computed inside a fused group"),
                        })
                    };
                    let ins = [None, arg(1)?, arg(2)?];
                    Lane::Unary(Unary::Clip(bound(&ins, 1, lo)?, bound(&ins, 2, hi)?))
                }
                other => other,
            };
            steps.push((lane, args.as_slice()));
        }
        // The producer's output is overwritten in place when it has the
        // output's shape and nobody else holds it.
        let (prod_src, mut out): (Option<CpuTensor>, Vec<f32>) = match produced {
            Some(t) if t.shape == shape => match t.data {
                Data::F32(v) => match std::sync::Arc::try_unwrap(v) {
                    Ok(v) => (None, v),
                    Err(v) => {
                        (Some(CpuTensor { dtype: DType::F32, shape: t.shape, data: Data::F32(v) }), ctx.buffer(n))
                    }
                },
                _ => bail!("the fused producer's output is not float32"),
            },
            other => (other, ctx.buffer(n)),
        };
        let in_place = prod_src.is_none() && self.producer.is_some();
        let prod_source = match &prod_src {
            Some(t) => Some(Source::of(t.as_f32()?, &t.shape, &shape)),
            None => None,
        };
        let mut ext_sources = Vec::with_capacity(externals.len());
        for t in &externals {
            ext_sources.push(match t {
                Some(t) => Some(Source::of(t.as_f32()?, &t.shape, &shape)),
                None => None,
            });
        }
        let nsteps = steps.len();
        let split = prod_source
            .iter()
            .chain(ext_sources.iter().flatten())
            .filter_map(|src| match src {
                Source::Strided(_, _, p) if *p > 1 => Some(*p),
                _ => None,
            })
            .min()
            .unwrap_or(usize::MAX);
        let env = Env { shape: &shape, in_place, producer: prod_source, externals: ext_sources, split };
        ctx.pool.for_each_chunk(&mut out, CHUNK, n * nsteps * 2, |ci, chunk| {
            let (s, len) = (ci * CHUNK, chunk.len());
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                if scratch.len() < (nsteps + 3) * len {
                    scratch.resize((nsteps + 3) * len, 0.0);
                }
                crate::simd::vectorized(
                    #[inline(always)]
                    || program_chunk(&env, &steps, in_place, s, &mut scratch, chunk),
                );
            });
        });
        Ok(vec![CpuTensor::f32(shape, out)])
    }
}
