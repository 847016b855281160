//! GPU backend tests: every WGSL file (and the WGSL generated for fused
//! programs) validates and translates to MSL, SPIR-V and HLSL; every kernel agrees with the reference backend on small
//! models built in code, within explicit tolerances.
//!
//! Without a GPU adapter the differential tests fail when `CI` is set and
//! are skipped with a loud message otherwise.

use std::sync::{Arc, OnceLock};

use strata_gpu::{GpuBackend, GpuError, Shader};
use strata_ir::ops::{ElementwiseOp as E, NnOp, ReduceOp as R, TensorOp as T};
use strata_ir::{DType, Model, NodeId, Op, TensorData};
use strata_test_support::harness::{Floats, Target, Tol, check_against_reference, reason};
use strata_test_support::ir::Builder;

// ---------------------------------------------------------------- shaders

fn entry_points(m: &naga::Module) -> Vec<String> {
    m.entry_points.iter().map(|e| e.name.clone()).collect()
}

#[test]
fn every_shader_validates_and_translates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_name().expect("file name").to_string_lossy().into_owned())
        .filter(|n| n != "prelude.wgsl")
        .collect();
    files.sort();
    let mut names: Vec<String> = Shader::ALL.iter().map(|s| s.name().to_string()).collect();
    names.sort();
    assert_eq!(files, names, "every file of shaders/ is a kernel family of strata-gpu");
    for s in Shader::ALL {
        validate_wgsl(s.name(), s.source());
    }
}

/// WGSL `src` parses, validates, and every entry point translates to MSL,
/// SPIR-V and HLSL (as naga does for wgpu's backends).
fn validate_wgsl(name: &str, src: &str) {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
    let info = validator.validate(&module).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    for ep in entry_points(&module) {
        let constants = naga::back::PipelineConstants::default();
        let (m, i) = naga::back::pipeline_constants::process_overrides(
            &module,
            &info,
            Some((naga::ShaderStage::Compute, &ep)),
            &constants,
        )
        .unwrap_or_else(|e| panic!("{name}::{ep}: overrides: {e}"));
        let msl_pipe = naga::back::msl::PipelineOptions {
            entry_point: Some((naga::ShaderStage::Compute, ep.clone())),
            ..Default::default()
        };
        naga::back::msl::write_string(&m, &i, &naga::back::msl::Options::default(), &msl_pipe)
            .unwrap_or_else(|e| panic!("{name}::{ep}: MSL: {e}"));
        let spv_pipe =
            naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: ep.clone() };
        naga::back::spv::write_vec(&m, &i, &naga::back::spv::Options::default(), Some(&spv_pipe))
            .unwrap_or_else(|e| panic!("{name}::{ep}: SPIR-V: {e}"));
        let hlsl_opts = naga::back::hlsl::Options::default();
        let hlsl_pipe =
            naga::back::hlsl::PipelineOptions { entry_point: Some((naga::ShaderStage::Compute, ep.clone())) };
        let mut out = String::new();
        naga::back::hlsl::Writer::new(&mut out, &hlsl_opts, &hlsl_pipe)
            .write(&m, &i, None)
            .unwrap_or_else(|e| panic!("{name}::{ep}: HLSL: {e}"));
    }
}

// The differential tests, by family, in modules of this one test binary.
#[path = "gpu/device.rs"]
mod device;
#[path = "gpu/elementwise.rs"]
mod elementwise;
#[path = "gpu/fused.rs"]
mod fused;
#[path = "gpu/movement.rs"]
mod movement;
#[path = "gpu/nn.rs"]
mod nn;
#[path = "gpu/operators.rs"]
mod operators;
#[path = "gpu/recurrent.rs"]
mod recurrent;
#[path = "gpu/types.rs"]
mod types;

// ---------------------------------------------------------------- harness

fn backend() -> Option<&'static GpuBackend> {
    static B: OnceLock<Option<GpuBackend>> = OnceLock::new();
    B.get_or_init(|| match pollster::block_on(GpuBackend::new()) {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var("CI").is_ok() {
                panic!("CI is set and no GPU adapter is available: {e}");
            }
            eprintln!("\n!!!!!!!! SKIPPING GPU TESTS: {e} !!!!!!!!\n");
            None
        }
    })
    .as_ref()
}

/// Deterministic pseudo-random floats in [lo, hi).
fn data(shape: &[usize], seed: u32, lo: f32, hi: f32) -> TensorData {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            lo + (hi - lo) * ((s >> 8) as f32 / (1u32 << 24) as f32)
        })
        .collect();
    TensorData::from_f32(shape.to_vec(), &v).expect("valid")
}

/// A few ULP (f32 epsilon is 1.19e-7).
const ULPS: Tol = Tol { atol: 1e-7, rtol: 6e-7 };
/// Transcendentals (GPU exp/log/tanh are not correctly rounded).
const TRANSC: Tol = Tol { atol: 2e-6, rtol: 4e-6 };
const EXACT: Tol = Tol::EXACT;

/// Error bound of an f32 sum of `k` products of magnitude <= 1.
fn reduction(k: usize) -> Tol {
    Tol { atol: 2.0 * k as f64 * 1.2e-7, rtol: 1e-6 }
}

/// The GPU backend under test: a model compiled once and run `runs` times
/// (a second run reuses pooled buffers).
struct Gpu {
    b: &'static GpuBackend,
    runs: usize,
}

impl Target for Gpu {
    const NAME: &'static str = "gpu";
    fn supports(&self, m: &Model, node: NodeId) -> Result<(), String> {
        reason(self.b.supports(m, m.main, node))
    }
    fn runs(&self, m: Model, inputs: &[TensorData]) -> Vec<Vec<TensorData>> {
        let compiled = self.b.compile(Arc::new(m)).expect("compiles");
        let dev: Vec<_> = inputs.iter().map(|t| self.b.upload(t).expect("uploads")).collect();
        let refs: Vec<_> = dev.iter().collect();
        (0..self.runs)
            .map(|_| {
                let outs = pollster::block_on(compiled.run(&refs)).expect("runs");
                outs.iter().map(|o| pollster::block_on(self.b.download(o)).expect("downloads")).collect()
            })
            .collect()
    }
}

/// Run `model` on the GPU `runs` times and on the reference; every float
/// output must agree within `tol`, everything else exactly.
fn check_runs(model: Model, inputs: &[TensorData], tol: Tol, runs: usize) {
    let Some(b) = backend() else { return };
    check_against_reference(&Gpu { b, runs }, model, inputs, tol, Floats::All);
}

/// Run `model` on the GPU (twice) and on the reference, compare every output.
fn check(model: Model, inputs: Vec<TensorData>, tol: Tol) {
    check_runs(model, &inputs, tol, 2);
}

fn i64s(shape: Vec<usize>, v: &[i64]) -> TensorData {
    TensorData::from_i64(shape, v).expect("valid")
}

fn unary_model(op: Op) -> Model {
    Builder::new().input("x", DType::F32).node(op, &["x"], &["y"]).output("y").build()
}

fn pool_model(op: Op) -> Model {
    Builder::new().input_rank("x", DType::F32, 4).node(op, &["x"], &["y"]).output("y").build()
}
