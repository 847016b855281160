//! Matrix products: Gemm, MatMul and Einsum.
//!
//! Floats are multiplied and summed in f64, integers in i128 (wrapping to
//! the output type when the tensor is built); sums run over the reduced
//! index in increasing order.

use strata_ir::einsum::Equation;

use crate::bail;
use crate::error::{KResult, KernelError};
use crate::ops::{Args, one};
use crate::util::{broadcast_map, broadcast_shapes, check_numel, strides as row_strides};
use crate::value::{Data, Tensor, Value};

use super::next_index;

/// The arithmetic a product kernel needs, for f64 and (wrapping) i128.
trait Num: Copy {
    const ZERO: Self;
    const ONE: Self;
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
}

impl Num for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    fn add(self, o: f64) -> f64 {
        self + o
    }
    fn mul(self, o: f64) -> f64 {
        self * o
    }
}

impl Num for i128 {
    const ZERO: i128 = 0;
    const ONE: i128 = 1;
    fn add(self, o: i128) -> i128 {
        self.wrapping_add(o)
    }
    fn mul(self, o: i128) -> i128 {
        self.wrapping_mul(o)
    }
}

/// Gemm: `Y = alpha * A' B' + beta * C` where `A'`, `B'` are `A`, `B`
/// optionally transposed and `C` (optional) broadcasts to `(M, N)`.
///
/// Integer inputs: the products are summed exactly, then combined with
/// alpha, beta and C in f64 and truncated to the output type.
pub(super) fn gemm(args: &Args, alpha: f64, beta: f64, trans_a: bool, trans_b: bool) -> KResult<Vec<Value>> {
    let a = args.tensor(0)?;
    let b = args.tensor(1)?;
    if a.rank() != 2 || b.rank() != 2 {
        bail!("A and B must be matrices, got shapes {:?} and {:?}", a.shape, b.shape);
    }
    let (m, k) = if trans_a { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
    let (kb, n) = if trans_b { (b.shape[1], b.shape[0]) } else { (b.shape[0], b.shape[1]) };
    if k != kb {
        bail!("inner dimensions differ: A' is {m}x{k}, B' is {kb}x{n}");
    }
    // Element (i, j) of A' and of B'.
    let ai = |i: usize, p: usize| if trans_a { p * m + i } else { i * k + p };
    let bi = |p: usize, j: usize| if trans_b { j * k + p } else { p * n + j };
    let c_vals = match args.opt_tensor(2)? {
        None => vec![0.0; m * n],
        Some(c) => {
            if broadcast_shapes(&[&c.shape, &[m, n]])? != [m, n] {
                bail!("C of shape {:?} does not broadcast to ({m}, {n})", c.shape);
            }
            let cv = c.to_f64()?;
            broadcast_map(&c.shape, &[m, n]).into_iter().map(|i| cv[i]).collect()
        }
    };
    let mut y = Vec::with_capacity(m * n);
    match (&a.data, &b.data) {
        (Data::F(av), Data::F(bv)) => {
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0.0;
                    for p in 0..k {
                        acc += av[ai(i, p)] * bv[bi(p, j)];
                    }
                    y.push(alpha * acc + beta * c_vals[i * n + j]);
                }
            }
        }
        (Data::I(av), Data::I(bv)) => {
            for i in 0..m {
                for j in 0..n {
                    let mut acc: i128 = 0;
                    for p in 0..k {
                        acc = acc.wrapping_add(av[ai(i, p)].wrapping_mul(bv[bi(p, j)]));
                    }
                    y.push(alpha * acc as f64 + beta * c_vals[i * n + j]);
                }
            }
        }
        _ => bail!("A and B must both be float or both integer, got {} and {}", a.dtype, b.dtype),
    }
    one(Tensor::from_f64_any(a.dtype, vec![m, n], y)?)
}

/// Batched matrix product of `a` `(batch.., m, k)` and `b` `(batch.., k, n)`
/// (batch shapes already broadcast to `batch`).
fn matmul_loop<T: Num>(a: &[T], b: &[T], a_shape: &[usize], b_shape: &[usize], batch: &[usize]) -> Vec<T> {
    let (ra, rb) = (a_shape.len(), b_shape.len());
    let (m, k, n) = (a_shape[ra - 2], a_shape[ra - 1], b_shape[rb - 1]);
    let a_batch = broadcast_map(&a_shape[..ra - 2], batch);
    let b_batch = broadcast_map(&b_shape[..rb - 2], batch);
    let mut y = Vec::with_capacity(a_batch.len() * m * n);
    for (&ab, &bb) in a_batch.iter().zip(&b_batch) {
        let (a0, b0) = (ab * m * k, bb * k * n);
        for i in 0..m {
            for j in 0..n {
                let mut acc = T::ZERO;
                for p in 0..k {
                    acc = acc.add(a[a0 + i * k + p].mul(b[b0 + p * n + j]));
                }
                y.push(acc);
            }
        }
    }
    y
}

/// MatMul with numpy semantics: batch axes broadcast; a 1-D `A` is a row
/// vector and a 1-D `B` a column vector, their added axis removed again.
pub(super) fn matmul(a: &Tensor, b: &Tensor) -> KResult<Vec<Value>> {
    if a.rank() == 0 || b.rank() == 0 {
        bail!("MatMul operands must not be scalars, got shapes {:?} and {:?}", a.shape, b.shape);
    }
    let mut a_shape = a.shape.clone();
    let mut b_shape = b.shape.clone();
    if a.rank() == 1 {
        a_shape.insert(0, 1);
    }
    if b.rank() == 1 {
        b_shape.push(1);
    }
    let (ra, rb) = (a_shape.len(), b_shape.len());
    if a_shape[ra - 1] != b_shape[rb - 2] {
        bail!("inner dimensions differ: shapes {:?} and {:?}", a.shape, b.shape);
    }
    let batch = broadcast_shapes(&[&a_shape[..ra - 2], &b_shape[..rb - 2]])?;
    let mut out_shape = batch.clone();
    if a.rank() > 1 {
        out_shape.push(a_shape[ra - 2]);
    }
    if b.rank() > 1 {
        out_shape.push(b_shape[rb - 1]);
    }
    check_numel(&out_shape)?;
    let data = match (&a.data, &b.data) {
        (Data::F(av), Data::F(bv)) => Data::F(matmul_loop(av, bv, &a_shape, &b_shape, &batch)),
        (Data::I(av), Data::I(bv)) => Data::I(matmul_loop(av, bv, &a_shape, &b_shape, &batch)),
        _ => bail!("A and B must both be float or both integer, got {} and {}", a.dtype, b.dtype),
    };
    one(Tensor::new(a.dtype, out_shape, data)?)
}

/// Einsum: sum of products of the operands over every index not in the
/// output. The equation was parsed at import; [`Equation::resolve`] gives
/// the index variables and each operand's steps against these shapes.
pub(super) fn einsum(args: &Args, equation: &Equation) -> KResult<Vec<Value>> {
    let inputs = args.tensors()?;
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| &t.shape[..]).collect();
    let c = equation.resolve(&shapes).map_err(KernelError::new)?;
    let Some(&first) = inputs.first() else { bail!("Einsum needs at least one input") };
    check_numel(&c.out_shape)?;
    let (sizes, steps, out_shape) = (&c.sizes, &c.steps, c.out_shape.clone());
    let order: Vec<usize> = c.out_vars.iter().chain(&c.sum_vars).copied().collect();
    let out_steps = {
        let st = row_strides(&out_shape);
        let mut step = vec![0usize; sizes.len()];
        for (i, &v) in c.out_vars.iter().enumerate() {
            step[v] = st[i];
        }
        step
    };

    let ordered_sizes: Vec<usize> = order.iter().map(|&v| sizes[v]).collect();
    let n_out: usize = out_shape.iter().product();
    let data = match &first.data {
        Data::F(_) => {
            let ops = inputs.iter().map(|t| t.f()).collect::<KResult<Vec<_>>>()?;
            Data::F(einsum_loop(&ops, steps, &out_steps, &order, &ordered_sizes, n_out))
        }
        Data::I(_) => {
            let ops = inputs.iter().map(|t| t.i()).collect::<KResult<Vec<_>>>()?;
            Data::I(einsum_loop(&ops, steps, &out_steps, &order, &ordered_sizes, n_out))
        }
        _ => bail!("Einsum needs numeric inputs, got {}", first.dtype),
    };
    one(Tensor::new(first.dtype, out_shape, data)?)
}

/// Visit every assignment of the index variables (output ones first, in
/// `order`) and add the product of the operands into the output element.
fn einsum_loop<T: Num>(
    ops: &[&[T]],
    steps: &[Vec<usize>],
    out_steps: &[usize],
    order: &[usize],
    sizes: &[usize],
    n_out: usize,
) -> Vec<T> {
    let mut out = vec![T::ZERO; n_out];
    if sizes.contains(&0) {
        return out;
    }
    let mut idx = vec![0usize; order.len()];
    loop {
        let mut prod = T::ONE;
        for (op, step) in ops.iter().zip(steps) {
            let flat: usize = order.iter().zip(&idx).map(|(&v, &i)| i * step[v]).sum();
            prod = prod.mul(op[flat]);
        }
        let o: usize = order.iter().zip(&idx).map(|(&v, &i)| i * out_steps[v]).sum();
        out[o] = out[o].add(prod);
        if !next_index(&mut idx, sizes) {
            break;
        }
    }
    out
}
