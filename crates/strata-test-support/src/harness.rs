//! One model on a backend under test against the reference backend: every
//! node must be supported, and every output must match the reference's
//! (floats within an explicit [`Tol`], everything else bit for bit).

use std::fmt::Display;

use strata_ir::{DType, HostValue, Model, NodeId, TensorData};

/// Comparison rule for float elements: `|got - ref| <= atol + rtol·|ref|`
/// (equal values and two NaNs always pass).
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    /// Absolute part of the bound.
    pub atol: f64,
    /// Part of the bound relative to the reference's magnitude.
    pub rtol: f64,
}

impl Tol {
    /// Bit for bit (but NaN matches NaN).
    pub const EXACT: Tol = Tol { atol: 0.0, rtol: 0.0 };

    /// Whether `got` is within this tolerance of the reference value `want`.
    pub fn allows(&self, got: f64, want: f64) -> bool {
        (got.is_nan() && want.is_nan()) || got == want || (got - want).abs() <= self.atol + self.rtol * want.abs()
    }
}

/// Which float outputs [`Tol`] applies to; other outputs compare bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floats {
    /// Every float element type (narrow floats compared through f64).
    All,
    /// Float32 only (float16, bfloat16 and float64 outputs exact).
    F32Only,
}

/// A backend under test, wrapped by its test crate.
pub trait Target {
    /// Its name in failure messages.
    const NAME: &'static str;
    /// Whether it runs node `node` of the main graph, or why not.
    fn supports(&self, model: &Model, node: NodeId) -> Result<(), String>;
    /// Compile `model` and run it on `inputs` (once or more: the outputs of
    /// every run are compared).
    fn runs(&self, model: Model, inputs: &[TensorData]) -> Vec<Vec<TensorData>>;
}

/// A support check's reason, for [`Target::supports`] implementations.
pub fn reason<E: Display>(r: Result<(), E>) -> Result<(), String> {
    r.map_err(|e| e.to_string())
}

/// Run `model` on `target` and on the reference backend; every run's
/// outputs must match the reference's (element type, shape, values under
/// `tol` for the floats `floats` selects). Returns the last run's outputs.
pub fn check_against_reference<T: Target>(
    target: &T,
    model: Model,
    inputs: &[TensorData],
    tol: Tol,
    floats: Floats,
) -> Vec<TensorData> {
    let g = model.main_graph();
    for i in 0..g.nodes.len() {
        if let Err(r) = target.supports(&model, NodeId(i as u32)) {
            panic!("{}: node {} ({}) not supported: {r}", T::NAME, g.nodes[i].name, g.nodes[i].op.name());
        }
    }
    let host: Vec<HostValue> = inputs.iter().cloned().map(HostValue::Tensor).collect();
    let want = strata_reference::run_model(&model, &host).expect("reference runs");
    let mut last = Vec::new();
    for got in target.runs(model, inputs) {
        assert_eq!(got.len(), want.len(), "number of outputs");
        for (k, (o, w)) in got.iter().zip(&want).enumerate() {
            let w = w.as_tensor().expect("tensor output");
            assert_outputs_match(T::NAME, k, o, w, tol, floats);
        }
        last = got;
    }
    last
}

/// Output `k` of backend `name`, `got`, against the reference's `want`.
pub fn assert_outputs_match(name: &str, k: usize, got: &TensorData, want: &TensorData, tol: Tol, floats: Floats) {
    assert_eq!(got.dtype(), want.dtype(), "output {k} type");
    assert_eq!(got.shape(), want.shape(), "output {k} shape");
    let toleranced = match floats {
        Floats::All => want.dtype().is_float(),
        Floats::F32Only => want.dtype() == DType::F32,
    };
    if toleranced {
        for (i, (x, y)) in got.to_f64_vec().iter().zip(&want.to_f64_vec()).enumerate() {
            assert!(
                tol.allows(*x, *y),
                "output {k} element {i}: {name} {x} vs reference {y} (diff {:e}, tolerance {:e})",
                (x - y).abs(),
                tol.atol + tol.rtol * y.abs()
            );
        }
    } else {
        assert_eq!(got, want, "output {k} must match exactly");
    }
}
