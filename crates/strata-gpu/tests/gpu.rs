//! GPU backend tests: every WGSL file validates and translates to MSL,
//! SPIR-V and HLSL; every kernel agrees with the reference backend on small
//! models built in code, within explicit tolerances.
//!
//! Without a GPU adapter the differential tests fail when `CI` is set and
//! are skipped with a loud message otherwise.

use std::sync::{Arc, OnceLock};

use strata_gpu::{GpuBackend, GpuError, Shader};
use strata_ir::ops::{ElementwiseOp as E, NnOp, ReduceOp as R, TensorOp as T};
use strata_ir::{DType, Dim, Graph, GraphId, HostValue, Model, Node, NodeId, Op, TensorData, ValueType};

// ---------------------------------------------------------------- shaders

fn entry_points(m: &naga::Module) -> Vec<String> {
    m.entry_points.iter().map(|e| e.name.clone()).collect()
}

#[test]
fn every_shader_validates_and_translates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    assert!(files.len() >= Shader::ALL.len(), "missing shader files in {}", dir.display());
    for s in Shader::ALL {
        assert!(files.iter().any(|f| f.file_name().is_some_and(|n| n == s.name())), "{} not on disk", s.name());
    }
    for path in files {
        let name = path.display().to_string();
        let src = std::fs::read_to_string(&path).expect("readable");
        let module =
            naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
        let info = validator.validate(&module).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));
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
}

// Operator families and recurrent layers, in modules of this one test binary.
#[path = "gpu/operators.rs"]
mod operators;
#[path = "gpu/recurrent.rs"]
mod recurrent;

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

/// A model under construction: named values, nodes, inputs and weights.
struct Builder {
    g: Graph,
}

impl Builder {
    fn new() -> Self {
        Builder { g: Graph { name: "t".into(), ..Default::default() } }
    }
    fn val(&mut self, name: &str) -> strata_ir::ValueId {
        match self.g.find_value(name) {
            Some(v) => v,
            None => self.g.add_value(name, ValueType::Unknown),
        }
    }
    fn input(&mut self, name: &str, dtype: DType) -> &mut Self {
        let v = self.g.add_value(name, ValueType::tensor(dtype));
        self.g.inputs.push(v);
        self
    }
    /// Declare the element type of an intermediate or output value.
    fn typed(&mut self, name: &str, dtype: DType) -> &mut Self {
        self.g.add_value(name, ValueType::tensor(dtype));
        self
    }
    /// An input of known rank (dimensions named, sizes left symbolic).
    fn input_rank(&mut self, name: &str, dtype: DType, rank: usize) -> &mut Self {
        let shape = (0..rank).map(|i| Dim::Sym(format!("{name}{i}"))).collect();
        let v = self.g.add_value(name, ValueType::Tensor { dtype, shape: Some(shape) });
        self.g.inputs.push(v);
        self
    }
    fn weight(&mut self, name: &str, t: TensorData) -> &mut Self {
        let shape = t.shape().iter().map(|&d| Dim::Known(d as u64)).collect();
        let v = self.g.add_value(name, ValueType::Tensor { dtype: t.dtype(), shape: Some(shape) });
        self.g.initializers.push((v, t));
        self
    }
    fn node(&mut self, op: Op, ins: &[&str], outs: &[&str]) -> &mut Self {
        let inputs = ins.iter().map(|n| if n.is_empty() { None } else { Some(self.val(n)) }).collect();
        let outputs = outs.iter().map(|n| Some(self.val(n))).collect();
        self.g.add_node(Node { name: format!("n{}", self.g.nodes.len()), op, inputs, outputs });
        self
    }
    fn output(&mut self, name: &str) -> &mut Self {
        let v = self.val(name);
        self.g.outputs.push(v);
        self
    }
    fn build(&mut self) -> Model {
        let mut m = Model {
            graphs: vec![std::mem::take(&mut self.g)],
            main: GraphId(0),
            opsets: vec![(String::new(), 21)],
            producer: "strata-gpu tests".into(),
            metadata: vec![],
        };
        strata_ir::infer::infer_types(&mut m).expect("types infer");
        m
    }
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

/// Comparison rule for float outputs: |gpu - ref| <= atol + rtol * |ref|.
#[derive(Clone, Copy)]
struct Tol {
    atol: f64,
    rtol: f64,
}

const EXACT: Tol = Tol { atol: 0.0, rtol: 0.0 };
/// A few ULP (f32 epsilon is 1.19e-7).
const ULPS: Tol = Tol { atol: 1e-7, rtol: 6e-7 };
/// Transcendentals (GPU exp/log/tanh are not correctly rounded).
const TRANSC: Tol = Tol { atol: 2e-6, rtol: 4e-6 };

/// Error bound of an f32 sum of `k` products of magnitude <= 1.
fn reduction(k: usize) -> Tol {
    Tol { atol: 2.0 * k as f64 * 1.2e-7, rtol: 1e-6 }
}

/// Run `model` on the GPU and on the reference, compare every output.
fn check(model: Model, inputs: Vec<TensorData>, tol: Tol) {
    let Some(b) = backend() else { return };
    let g = model.main_graph();
    for i in 0..g.nodes.len() {
        if let Err(r) = b.supports(&model, model.main, NodeId(i as u32)) {
            panic!("node {} ({}) not supported: {r}", g.nodes[i].name, g.nodes[i].op.name());
        }
    }
    let host: Vec<HostValue> = inputs.iter().cloned().map(HostValue::Tensor).collect();
    let want = strata_reference::run_model(&model, &host).expect("reference runs");
    let compiled = b.compile(Arc::new(model)).expect("compiles");
    let dev: Vec<_> = inputs.iter().map(|t| b.upload(t).expect("uploads")).collect();
    let refs: Vec<_> = dev.iter().collect();
    // Run twice: the second run reuses pooled buffers.
    for _ in 0..2 {
        let outs = pollster::block_on(compiled.run(&refs)).expect("runs");
        assert_eq!(outs.len(), want.len());
        for (k, (o, w)) in outs.iter().zip(&want).enumerate() {
            let got = pollster::block_on(b.download(o)).expect("downloads");
            let w = w.as_tensor().expect("tensor");
            assert_eq!(got.dtype(), w.dtype(), "output {k} dtype");
            assert_eq!(got.shape(), w.shape(), "output {k} shape");
            if w.dtype().is_float() {
                let (gv, wv) = (got.to_f64_vec(), w.to_f64_vec());
                for (i, (x, y)) in gv.iter().zip(&wv).enumerate() {
                    let ok = (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol.atol + tol.rtol * y.abs();
                    assert!(ok, "output {k} element {i}: gpu {x} vs reference {y} (diff {:e})", (x - y).abs());
                }
            } else {
                assert_eq!(got.to_i64_vec(), w.to_i64_vec(), "output {k}");
            }
        }
    }
}

fn unary_model(op: Op) -> Model {
    Builder::new().input("x", DType::F32).node(op, &["x"], &["y"]).output("y").build()
}

fn pool_model(op: Op) -> Model {
    Builder::new().input_rank("x", DType::F32, 4).node(op, &["x"], &["y"]).output("y").build()
}

// ---------------------------------------------------------------- elementwise

#[test]
fn unary_activations() {
    let x = data(&[3, 5, 7], 1, -6.0, 6.0);
    let cases: Vec<(Op, Tol)> = vec![
        (Op::Elementwise(E::Relu {}), EXACT),
        (Op::Elementwise(E::Abs {}), EXACT),
        (Op::Elementwise(E::Neg {}), EXACT),
        (Op::Elementwise(E::Floor {}), EXACT),
        (Op::Elementwise(E::Ceil {}), EXACT),
        (Op::Elementwise(E::Round {}), EXACT),
        (Op::Elementwise(E::Sign {}), EXACT),
        (Op::Elementwise(E::LeakyRelu { alpha: 0.1 }), ULPS),
        (Op::Elementwise(E::HardSigmoid { alpha: 0.2, beta: 0.5 }), ULPS),
        (Op::Elementwise(E::HardSwish {}), ULPS),
        (Op::Elementwise(E::Clip { min: Some(-1.5), max: Some(2.0) }), EXACT),
        (Op::Elementwise(E::Softsign {}), ULPS),
        (Op::Elementwise(E::Reciprocal {}), ULPS),
        (Op::Elementwise(E::Sigmoid {}), TRANSC),
        (Op::Elementwise(E::Tanh {}), TRANSC),
        (Op::Elementwise(E::Exp {}), TRANSC),
        (Op::Elementwise(E::Erf {}), TRANSC),
        (Op::Elementwise(E::Gelu { approximate: "none".into() }), TRANSC),
        (Op::Elementwise(E::Gelu { approximate: "tanh".into() }), TRANSC),
        (Op::Elementwise(E::Softplus {}), TRANSC),
        (Op::Elementwise(E::Elu { alpha: 1.0 }), TRANSC),
        (Op::Elementwise(E::Selu { alpha: 1.67, gamma: 1.05 }), TRANSC),
        (Op::Elementwise(E::Mish {}), TRANSC),
        (Op::Elementwise(E::Swish { alpha: 1.0 }), TRANSC),
    ];
    for (op, tol) in cases {
        eprintln!("{}", op.name());
        check(unary_model(op), vec![x.clone()], tol);
    }
    // Small arguments, where naive tanh/softplus formulas cancel.
    let small = data(&[64], 3, -0.01, 0.01);
    for op in [E::Tanh {}, E::Mish {}, E::Gelu { approximate: "tanh".into() }, E::Sigmoid {}] {
        check(unary_model(Op::Elementwise(op)), vec![small.clone()], TRANSC);
    }
    let neg = data(&[64], 4, -12.0, -6.0);
    for op in [E::Mish {}, E::Softplus {}] {
        check(unary_model(Op::Elementwise(op)), vec![neg.clone()], TRANSC);
    }
    let pos = data(&[4, 9], 2, 0.01, 50.0);
    check(unary_model(Op::Elementwise(E::Log {})), vec![pos.clone()], TRANSC);
    check(unary_model(Op::Elementwise(E::Sqrt {})), vec![pos], ULPS);
}

#[test]
fn binary_broadcasting() {
    let a = data(&[2, 3, 4], 3, -3.0, 3.0);
    let b = data(&[3, 1], 4, 0.5, 2.0);
    for (op, tol) in [
        (E::Add {}, EXACT),
        (E::Sub {}, EXACT),
        (E::Mul {}, EXACT),
        (E::Div {}, ULPS),
        (E::Max {}, EXACT),
        (E::Min {}, EXACT),
        (E::Pow {}, Tol { atol: 1e-6, rtol: 1e-5 }),
        (E::Equal {}, EXACT),
        (E::Greater {}, EXACT),
        (E::LessOrEqual {}, EXACT),
        (E::PRelu {}, EXACT),
    ] {
        eprintln!("{}", op.name());
        let m = Builder::new()
            .input("a", DType::F32)
            .input("b", DType::F32)
            .node(Op::Elementwise(op), &["a", "b"], &["y"])
            .output("y")
            .build();
        check(m, vec![a.clone(), b.clone()], tol);
    }
    // Variadic Sum and Mean over three broadcast inputs.
    for op in [E::Sum {}, E::Mean {}] {
        let m = Builder::new()
            .input("a", DType::F32)
            .input("b", DType::F32)
            .input("c", DType::F32)
            .node(Op::Elementwise(op), &["a", "b", "c"], &["y"])
            .output("y")
            .build();
        check(m, vec![a.clone(), b.clone(), data(&[4], 5, -1.0, 1.0)], ULPS);
    }
}

#[test]
fn where_and_cast() {
    let x = data(&[2, 5], 6, -2.0, 2.0);
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("zero", TensorData::from_f32(vec![], &[0.0]).expect("scalar"))
        .node(Op::Elementwise(E::Greater {}), &["x", "zero"], &["c"])
        .node(Op::Elementwise(E::Neg {}), &["x"], &["n"])
        .node(Op::Elementwise(E::Where {}), &["c", "x", "n"], &["y"])
        .node(Op::Elementwise(E::Cast { to: DType::I32, saturate: 1, round_mode: "up".into() }), &["x"], &["i"])
        .node(Op::Elementwise(E::Cast { to: DType::F32, saturate: 1, round_mode: "up".into() }), &["c"], &["cf"])
        .output("y")
        .output("i")
        .output("cf")
        .output("c")
        .build();
    check(m, vec![x], EXACT);
}

#[test]
fn large_tensor_uses_2d_dispatch() {
    let n = 65_535 * 64 + 1000;
    let x = data(&[n], 7, -1.0, 1.0);
    check(unary_model(Op::Elementwise(E::Relu {})), vec![x], EXACT);
}

// ---------------------------------------------------------------- matmul, conv, pool

#[test]
fn matmul_batched_broadcast() {
    let cases: [(&[usize], &[usize]); 5] = [
        (&[5, 7], &[7, 4]),
        (&[2, 1, 5, 7], &[3, 7, 4]),
        (&[7], &[3, 7, 4]),
        (&[2, 5, 7], &[7]),
        (&[33, 70], &[70, 19]),
    ];
    for (sa, sb) in cases {
        let m = Builder::new()
            .input("a", DType::F32)
            .input("b", DType::F32)
            .node(Op::Nn(NnOp::MatMul {}), &["a", "b"], &["y"])
            .output("y")
            .build();
        let k = sa[sa.len() - 1];
        check(m, vec![data(sa, 8, -1.0, 1.0), data(sb, 9, -1.0, 1.0)], reduction(k));
    }
}

#[test]
fn gemm_transposed_with_bias() {
    let m = Builder::new()
        .input("a", DType::F32)
        .weight("b", data(&[6, 9], 10, -1.0, 1.0))
        .weight("c", data(&[6], 11, -1.0, 1.0))
        .node(
            Op::Nn(NnOp::Gemm { alpha: 0.5, beta: 2.0, transA: 1, transB: 1, broadcast: None }),
            &["a", "b", "c"],
            &["y"],
        )
        .output("y")
        .build();
    check(m, vec![data(&[9, 5], 12, -1.0, 1.0)], reduction(9));
}

#[test]
fn conv_groups_pads_strides_dilations() {
    let conv = |pads: Vec<i64>, strides: Vec<i64>, dil: Vec<i64>, group: i64| {
        Op::Nn(NnOp::Conv {
            auto_pad: strata_ir::window::AutoPad::NotSet,
            dilations: Some(dil),
            group,
            kernel_shape: None,
            pads: Some(pads),
            strides: Some(strides),
        })
    };
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[6, 2, 3, 3], 13, -1.0, 1.0))
        .weight("b", data(&[6], 14, -1.0, 1.0))
        .node(conv(vec![1, 2, 0, 1], vec![2, 1], vec![1, 2], 2), &["x", "w", "b"], &["y"])
        .output("y")
        .build();
    check(m, vec![data(&[2, 4, 9, 11], 15, -1.0, 1.0)], reduction(2 * 9 + 1));
    // 1-D convolution with SAME_UPPER padding and no bias.
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[3, 2, 4], 16, -1.0, 1.0))
        .node(
            Op::Nn(NnOp::Conv {
                auto_pad: strata_ir::window::AutoPad::SameUpper,
                dilations: None,
                group: 1,
                kernel_shape: None,
                pads: None,
                strides: Some(vec![2]),
            }),
            &["x", "w"],
            &["y"],
        )
        .output("y")
        .build();
    check(m, vec![data(&[1, 2, 13], 17, -1.0, 1.0)], reduction(8));
    // Rank known from the input alone.
    let m = Builder::new()
        .input_rank("x", DType::F32, 4)
        .input("w", DType::F32)
        .node(conv(vec![0, 0, 0, 0], vec![1, 1], vec![1, 1], 1), &["x", "w"], &["y"])
        .output("y")
        .build();
    check(m, vec![data(&[1, 3, 5, 5], 31, -1.0, 1.0), data(&[2, 3, 2, 2], 32, -1.0, 1.0)], reduction(12));
}

#[test]
fn pooling() {
    let x = data(&[2, 3, 8, 7], 18, -1.0, 1.0);
    let mp = Op::Nn(NnOp::MaxPool {
        auto_pad: strata_ir::window::AutoPad::NotSet,
        ceil_mode: true,
        dilations: None,
        kernel_shape: vec![3, 2],
        pads: Some(vec![1, 0, 1, 1]),
        storage_order: 0,
        strides: Some(vec![2, 2]),
    });
    check(pool_model(mp), vec![x.clone()], EXACT);
    for include in [0, 1] {
        let ap = Op::Nn(NnOp::AveragePool {
            auto_pad: strata_ir::window::AutoPad::NotSet,
            ceil_mode: false,
            count_include_pad: include != 0,
            dilations: None,
            kernel_shape: vec![3, 3],
            pads: Some(vec![1, 1, 1, 1]),
            strides: Some(vec![1, 2]),
        });
        check(pool_model(ap), vec![x.clone()], reduction(9));
    }
    check(pool_model(Op::Nn(NnOp::GlobalAveragePool {})), vec![x], reduction(56));
}

#[test]
fn conv_transpose() {
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[4, 3, 3, 2], 34, -1.0, 1.0))
        .weight("b", data(&[6], 35, -1.0, 1.0))
        .node(
            Op::Nn(NnOp::ConvTranspose {
                auto_pad: strata_ir::window::AutoPad::NotSet,
                dilations: Some(vec![1, 2]),
                group: 2,
                kernel_shape: None,
                output_padding: Some(vec![1, 0]),
                output_shape: None,
                pads: Some(vec![1, 0, 0, 1]),
                strides: Some(vec![2, 3]),
            }),
            &["x", "w", "b"],
            &["y"],
        )
        .output("y")
        .build();
    check(m, vec![data(&[2, 4, 5, 4], 36, -1.0, 1.0)], reduction(2 * 6 + 1));
}

#[test]
fn resize_modes() {
    let x = data(&[1, 2, 5, 4], 37, -1.0, 1.0);
    for (mode, coord, nearest, scales) in [
        ("nearest", "asymmetric", "floor", [1.0f32, 1.0, 2.0, 3.0]),
        ("nearest", "half_pixel", "round_prefer_floor", [1.0, 1.0, 0.6, 1.7]),
        ("nearest", "tf_half_pixel_for_nn", "round_prefer_ceil", [1.0, 1.0, 2.0, 2.0]),
        ("nearest", "half_pixel_symmetric", "ceil", [1.0, 1.0, 1.3, 0.7]),
        ("linear", "pytorch_half_pixel", "round_prefer_floor", [1.0, 1.0, 0.2, 1.0]),
        ("linear", "half_pixel", "round_prefer_floor", [1.0, 1.0, 2.0, 2.0]),
        ("linear", "align_corners", "round_prefer_floor", [1.0, 1.0, 1.6, 2.5]),
        ("linear", "pytorch_half_pixel", "round_prefer_floor", [1.0, 1.0, 0.5, 1.5]),
        ("linear", "asymmetric", "round_prefer_floor", [1.0, 1.0, 3.0, 0.75]),
    ] {
        eprintln!("{mode} {coord} {nearest}");
        let op = Op::Nn(NnOp::Resize {
            antialias: false,
            axes: None,
            coordinate_transformation_mode: strata_ir::resample::Coord::from_name(coord).expect("mode"),
            cubic_coeff_a: -0.75,
            exclude_outside: false,
            extrapolation_value: 0.0,
            keep_aspect_ratio_policy: strata_ir::resample::AspectRatioPolicy::Stretch,
            mode: strata_ir::resample::ResizeMode::from_name(mode).expect("mode"),
            nearest_mode: strata_ir::resample::NearestMode::from_name(nearest).expect("mode"),
        });
        let m = Builder::new()
            .input("x", DType::F32)
            .weight("scales", TensorData::from_f32(vec![4], &scales).expect("scales"))
            .node(op, &["x", "", "scales"], &["y"])
            .output("y")
            .build();
        check(m, vec![x.clone()], Tol { atol: 1e-6, rtol: 1e-6 });
    }
    // `sizes` for the two spatial axes only.
    let op = Op::Nn(NnOp::Resize {
        antialias: false,
        axes: Some(vec![-2, -1]),
        coordinate_transformation_mode: strata_ir::resample::Coord::HalfPixel,
        cubic_coeff_a: -0.75,
        exclude_outside: false,
        extrapolation_value: 0.0,
        keep_aspect_ratio_policy: strata_ir::resample::AspectRatioPolicy::Stretch,
        mode: strata_ir::resample::ResizeMode::Linear,
        nearest_mode: strata_ir::resample::NearestMode::RoundPreferFloor,
    });
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("sizes", i64s(vec![2], &[7, 3]))
        .node(op, &["x", "", "", "sizes"], &["y"])
        .output("y")
        .build();
    check(m, vec![x], Tol { atol: 1e-6, rtol: 1e-6 });
}

// ---------------------------------------------------------------- reductions, normalisation

#[test]
fn reductions_and_softmax() {
    let x = data(&[3, 4, 5], 19, -2.0, 2.0);
    let axes = Some(vec![0, 2]);
    for (op, tol) in [
        (R::ReduceSum { axes: axes.clone(), keepdims: 1, noop_with_empty_axes: 0 }, reduction(15)),
        (R::ReduceMean { axes: axes.clone(), keepdims: 0, noop_with_empty_axes: 0 }, reduction(15)),
        (R::ReduceMax { axes: Some(vec![-1]), keepdims: 1, noop_with_empty_axes: 0 }, EXACT),
        (R::ReduceMin { axes: None, keepdims: 0, noop_with_empty_axes: 0 }, EXACT),
        (R::ReduceLogSumExp { axes: Some(vec![1]), keepdims: 1, noop_with_empty_axes: 0 }, TRANSC),
        (R::Softmax { axis: 1 }, TRANSC),
        (R::LogSoftmax { axis: -1 }, TRANSC),
    ] {
        eprintln!("{}", op.name());
        check(unary_model(Op::Reduce(op)), vec![x.clone()], tol);
    }
}

#[test]
fn arg_reductions() {
    // Ties included: values on a coarse grid.
    let v: Vec<f32> = (0..60).map(|i| ((i * 7) % 5) as f32).collect();
    let x = TensorData::from_f32(vec![3, 4, 5], &v).expect("valid");
    for (axis, keepdims, last) in [(0, 1, 0), (1, 0, 1), (-1, 1, 1), (2, 0, 0)] {
        for op in [
            R::ArgMax { axis, keepdims, select_last_index: last },
            R::ArgMin { axis, keepdims, select_last_index: last },
        ] {
            check(unary_model(Op::Reduce(op)), vec![x.clone()], EXACT);
        }
    }
}

#[test]
fn trilu_upper_lower() {
    let x = data(&[2, 4, 5], 40, -1.0, 1.0);
    for (upper, k) in [(1, 0), (0, 1), (1, -2), (0, -1)] {
        let m = Builder::new()
            .input("x", DType::F32)
            .weight("k", i64s(vec![], &[k]))
            .node(Op::Tensor(T::Trilu { upper }), &["x", "k"], &["y"])
            .output("y")
            .build();
        check(m, vec![x.clone()], EXACT);
    }
}

#[test]
fn layer_and_batch_norm() {
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("s", data(&[4, 6], 20, 0.5, 1.5))
        .weight("b", data(&[4, 6], 21, -1.0, 1.0))
        .node(Op::Nn(NnOp::LayerNormalization { axis: -2, epsilon: 1e-5, stash_type: 1 }), &["x", "s", "b"], &["y"])
        .output("y")
        .build();
    check(m, vec![data(&[3, 4, 6], 22, -2.0, 2.0)], Tol { atol: 1e-5, rtol: 1e-5 });
    // With the optional Mean and InvStdDev outputs, and RMSNormalization.
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("s", data(&[6], 41, 0.5, 1.5))
        .typed("mean", DType::F32)
        .typed("inv", DType::F32)
        .node(
            Op::Nn(NnOp::LayerNormalization { axis: -1, epsilon: 1e-5, stash_type: 1 }),
            &["x", "s"],
            &["y", "mean", "inv"],
        )
        .node(Op::Nn(NnOp::RMSNormalization { axis: -1, epsilon: 1e-5, stash_type: 1 }), &["x", "s"], &["r"])
        .output("y")
        .output("mean")
        .output("inv")
        .output("r")
        .build();
    check(m, vec![data(&[3, 4, 6], 42, -2.0, 2.0)], Tol { atol: 1e-5, rtol: 1e-5 });
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("s", data(&[3], 23, 0.5, 1.5))
        .weight("b", data(&[3], 24, -1.0, 1.0))
        .weight("mean", data(&[3], 25, -1.0, 1.0))
        .weight("var", data(&[3], 26, 0.5, 2.0))
        .node(
            Op::Nn(NnOp::BatchNormalization { epsilon: 1e-5, momentum: 0.9, training_mode: 0, spatial: None }),
            &["x", "s", "b", "mean", "var"],
            &["y"],
        )
        .output("y")
        .build();
    check(m, vec![data(&[2, 3, 4, 5], 27, -2.0, 2.0)], Tol { atol: 1e-6, rtol: 2e-6 });
}

// ---------------------------------------------------------------- data movement (exact)

fn i64s(shape: Vec<usize>, v: &[i64]) -> TensorData {
    TensorData::from_i64(shape, v).expect("valid")
}

#[test]
fn reshape_then_split_is_exact() {
    let x = data(&[2, 3, 4, 5], 28, -5.0, 5.0);
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("shape", i64s(vec![3], &[6, -1, 5]))
        .weight("split", i64s(vec![2], &[1, 3]))
        .node(Op::Tensor(T::Reshape { allowzero: 0, shape: None }), &["x", "shape"], &["r"])
        .node(Op::Tensor(T::Split { axis: 1, num_outputs: None, split: None }), &["r", "split"], &["s0", "s1"])
        .output("s0")
        .output("s1")
        .build();
    check(m, vec![x.clone()], EXACT);
}

#[test]
fn movement_ops_one_by_one() {
    let x = data(&[2, 3, 4, 5], 29, -5.0, 5.0);
    let single = |op: Op, extra: Vec<(&str, TensorData)>| {
        let mut b = Builder::new();
        b.input("x", DType::F32);
        let mut ins = vec!["x".to_string()];
        for (name, t) in extra {
            b.weight(name, t);
            ins.push(name.to_string());
        }
        let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
        b.typed("y", DType::F32).node(op, &refs, &["y"]).output("y").build()
    };
    let cases: Vec<(&str, Model)> = vec![
        ("transpose", single(Op::Tensor(T::Transpose { perm: Some(vec![2, 0, 3, 1]) }), vec![])),
        (
            "slice",
            single(
                Op::Tensor(T::Slice { starts: None, ends: None, axes: None }),
                vec![
                    ("starts", i64s(vec![2], &[3, -1])),
                    ("ends", i64s(vec![2], &[0, -100])),
                    ("axes", i64s(vec![2], &[1, 2])),
                    ("steps", i64s(vec![2], &[-1, -2])),
                ],
            ),
        ),
        (
            "pad-reflect",
            single(
                Op::Tensor(T::Pad { mode: "reflect".into(), pads: None, value: None }),
                vec![("pads", i64s(vec![8], &[0, 1, 0, 2, 1, 0, 2, 1]))],
            ),
        ),
        (
            "pad-edge",
            single(
                Op::Tensor(T::Pad { mode: "edge".into(), pads: None, value: None }),
                vec![("pads", i64s(vec![8], &[0, 1, 0, 2, 1, 0, 2, 1]))],
            ),
        ),
        (
            "pad-constant",
            single(
                Op::Tensor(T::Pad { mode: "constant".into(), pads: None, value: None }),
                vec![("pads", i64s(vec![8], &[0, 1, 0, 2, 1, 0, 2, 1]))],
            ),
        ),
        ("unsqueeze", single(Op::Tensor(T::Unsqueeze { axes: None }), vec![("axes", i64s(vec![1], &[0]))])),
        ("flatten", single(Op::Tensor(T::Flatten { axis: 2 }), vec![])),
        ("expand", single(Op::Tensor(T::Expand {}), vec![("shape", i64s(vec![5], &[2, 1, 3, 4, 5]))])),
        ("gather", single(Op::Tensor(T::Gather { axis: 2 }), vec![("idx", i64s(vec![2, 2], &[0, -1, 2, 1]))])),
        ("depth-to-space-dcr", single(Op::Tensor(T::DepthToSpace { blocksize: 1, mode: "DCR".into() }), vec![])),
        ("tile", single(Op::Tensor(T::Tile {}), vec![("reps", i64s(vec![4], &[2, 1, 3, 1]))])),
        (
            "gather-elements",
            single(
                Op::Tensor(T::GatherElements { axis: 1 }),
                vec![("idx", i64s(vec![2, 2, 4, 1], &[0, 2, -1, 1, 2, 0, 1, -3, 1, 1, 0, 2, 2, 2, 0, -2]))],
            ),
        ),
    ];
    for (name, m) in cases {
        eprintln!("{name}");
        check(m, vec![x.clone()], EXACT);
    }
    let m = Builder::new()
        .input("x", DType::F32)
        .node(Op::Tensor(T::Concat { axis: 1 }), &["x", "x"], &["y"])
        .output("y")
        .build();
    check(m, vec![x.clone()], EXACT);
    for mode in ["DCR", "CRD"] {
        let m = Builder::new()
            .input("x", DType::F32)
            .typed("y", DType::F32)
            .node(Op::Tensor(T::DepthToSpace { blocksize: 2, mode: mode.into() }), &["x"], &["y"])
            .output("y")
            .build();
        check(m, vec![data(&[2, 8, 3, 2], 44, -1.0, 1.0)], EXACT);
    }
    for mode in ["DCR", "CRD"] {
        let m = Builder::new()
            .input("x", DType::F32)
            .typed("y", DType::F32)
            .node(Op::Tensor(T::SpaceToDepth { blocksize: 2, mode: mode.into() }), &["x"], &["y"])
            .output("y")
            .build();
        check(m, vec![data(&[2, 3, 4, 6], 45, -1.0, 1.0)], EXACT);
    }
    // Gather with indices given at run time (int64, range-checked on upload).
    let m = Builder::new()
        .input("x", DType::F32)
        .input("i", DType::I64)
        .node(Op::Tensor(T::Gather { axis: 0 }), &["x", "i"], &["y"])
        .output("y")
        .build();
    check(m, vec![x, i64s(vec![3], &[1, 0, -1])], EXACT);
}

// ---------------------------------------------------------------- element types

fn cast(to: DType, saturate: i64) -> Op {
    Op::Elementwise(E::Cast { to, saturate, round_mode: "up".into() })
}

#[test]
fn casts_round_to_narrow_floats_like_the_reference() {
    // Ties, overflow thresholds, subnormals, signed zero, NaN and infinities
    // of float16, bfloat16, the float8 kinds and float4e2m1, then random values.
    let mut v: Vec<f32> = vec![
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        65504.0,
        65519.99,
        65520.0,
        1e-8,
        2f32.powi(-25),
        3.0 * 2f32.powi(-26),
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        448.0,
        464.0,
        470.0,
        1e6,
        -1e6,
        240.0,
        248.0,
        57344.0,
        61440.0,
        1e-3,
        -2.5e-3,
        0.25,
        5.0,
        7.0,
        1.0 + 2f32.powi(-8),
        f32::from_bits(0x3f80_8000),
        f32::from_bits(0x3f81_8000),
        f32::MAX,
        1e-40,
    ];
    let r = data(&[64], 41, -300.0, 300.0).to_f64_vec();
    v.extend(r.iter().map(|&x| x as f32));
    v.extend(r.iter().map(|&x| (x * 1e-4) as f32));
    let x = TensorData::from_f32(vec![v.len()], &v).expect("valid");
    let mut b = Builder::new();
    b.input("x", DType::F32);
    let targets = [
        (DType::F16, 1),
        (DType::BF16, 1),
        (DType::F8E4M3FN, 1),
        (DType::F8E4M3FN, 0),
        (DType::F8E4M3FNUZ, 1),
        (DType::F8E4M3FNUZ, 0),
        (DType::F8E5M2, 1),
        (DType::F8E5M2, 0),
        (DType::F8E5M2FNUZ, 1),
        (DType::F8E5M2FNUZ, 0),
        (DType::F4E2M1, 1),
        (DType::F8E8M0, 1),
        (DType::F8E8M0, 0),
    ];
    for (i, (to, sat)) in targets.iter().enumerate() {
        let (y, z) = (format!("y{i}"), format!("z{i}"));
        // Narrow, then widen again (the widening aliases the words).
        b.node(cast(*to, *sat), &["x"], &[&y]).node(cast(DType::F32, 1), &[&y], &[&z]).output(&y).output(&z);
    }
    for mode in ["down", "nearest"] {
        let y = format!("e8m0_{mode}");
        b.node(Op::Elementwise(E::Cast { to: DType::F8E8M0, saturate: 1, round_mode: mode.into() }), &["x"], &[&y]);
        b.output(&y);
    }
    check(b.build(), vec![x], EXACT);
}

#[test]
fn narrow_float_arithmetic_is_rounded_to_the_type() {
    let a = data(&[4, 8], 42, -4.0, 4.0).to_f64_vec();
    let c = data(&[4, 8], 43, -4.0, 4.0).to_f64_vec();
    for d in [DType::F16, DType::BF16] {
        let x = TensorData::from_f64(d, vec![4, 8], &a).expect("valid");
        let y = TensorData::from_f64(d, vec![4, 8], &c).expect("valid");
        let m = Builder::new()
            .input("x", d)
            .input("y", d)
            .node(Op::Elementwise(E::Mul {}), &["x", "y"], &["p"])
            .node(Op::Elementwise(E::Sub {}), &["p", "x"], &["s"])
            .node(Op::Elementwise(E::Relu {}), &["s"], &["r"])
            .output("s")
            .output("r")
            .build();
        // f32 products of two 11- or 8-bit significands are exact, so
        // rounding once to the type matches the reference exactly.
        check(m, vec![x, y], EXACT);
    }
}

#[test]
fn small_and_unsigned_integers_wrap_like_numpy() {
    let i8s = |v: &[i128]| TensorData::from_i128(DType::I8, vec![v.len()], v).expect("valid");
    let x = i8s(&[127, -128, 100, -100, 5, -7, 64, 1]);
    let y = i8s(&[1, -1, 100, 27, 3, 2, 2, 9]);
    let m = Builder::new()
        .input("x", DType::I8)
        .input("y", DType::I8)
        .node(Op::Elementwise(E::Add {}), &["x", "y"], &["add"])
        .node(Op::Elementwise(E::Mul {}), &["x", "y"], &["mul"])
        .node(Op::Elementwise(E::Neg {}), &["x"], &["neg"])
        .node(Op::Elementwise(E::Div {}), &["x", "y"], &["div"])
        .node(Op::Elementwise(E::Mod { fmod: 0 }), &["x", "y"], &["mod"])
        .node(Op::Elementwise(E::Pow {}), &["x", "y"], &["pow"])
        .node(Op::Elementwise(E::BitShift { direction: "LEFT".into() }), &["x", "y"], &["shl"])
        .node(Op::Elementwise(E::BitShift { direction: "RIGHT".into() }), &["x", "y"], &["shr"])
        .node(cast(DType::U8, 1), &["x"], &["u"])
        .node(Op::Elementwise(E::Sub {}), &["u", "u"], &["zero"])
        .node(Op::Elementwise(E::Sub {}), &["zero", "u"], &["negu"])
        .output("add")
        .output("mul")
        .output("neg")
        .output("div")
        .output("mod")
        .output("pow")
        .output("shl")
        .output("shr")
        .output("negu")
        .build();
    check(m, vec![x, y], EXACT);

    // uint32 beyond i32::MAX: comparisons, division and casts see unsigned values.
    let u = TensorData::from_i128(DType::U32, vec![4], &[4_000_000_000, 7, 2_147_483_648, 0]).expect("valid");
    let w = TensorData::from_i128(DType::U32, vec![4], &[3, 4_000_000_000, 2_147_483_647, 1]).expect("valid");
    let m = Builder::new()
        .input("u", DType::U32)
        .input("w", DType::U32)
        .node(Op::Elementwise(E::Greater {}), &["u", "w"], &["gt"])
        .node(Op::Elementwise(E::Div {}), &["u", "w"], &["div"])
        .node(Op::Elementwise(E::Sub {}), &["u", "w"], &["sub"])
        .node(Op::Elementwise(E::Max {}), &["u", "w"], &["max"])
        .node(cast(DType::F32, 1), &["u"], &["f"])
        .node(cast(DType::U16, 1), &["u"], &["h"])
        .output("gt")
        .output("div")
        .output("sub")
        .output("max")
        .output("f")
        .output("h")
        .build();
    check(m, vec![u, w], EXACT);
}

#[test]
fn quantize_and_dequantize_match_the_reference() {
    use strata_ir::ops::QuantOp;
    let x = data(&[2, 3, 4], 44, -300.0, 300.0);
    let scale = TensorData::from_f32(vec![3], &[2.0, 0.7, 3.0]).expect("valid");
    let zp = TensorData::from_i128(DType::I8, vec![3], &[0, -3, 5]).expect("valid");
    let q =
        Op::Quant(QuantOp::QuantizeLinear { axis: 1, block_size: 0, output_dtype: None, saturate: 1, precision: None });
    let dq = Op::Quant(QuantOp::DequantizeLinear { axis: 1, block_size: 0, output_dtype: None });
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("s", scale)
        .weight("z", zp)
        .typed("q", DType::I8)
        .typed("d", DType::F32)
        .node(q, &["x", "s", "z"], &["q"])
        .node(dq, &["q", "s", "z"], &["d"])
        .output("q")
        .output("d")
        .build();
    check(m, vec![x], EXACT);
}

#[test]
fn int64_overflow_and_division_by_zero_are_errors() {
    let Some(b) = backend() else { return };
    let run = |m: Model, inputs: Vec<TensorData>| -> Result<(), GpuError> {
        let c = b.compile(Arc::new(m))?;
        let dev: Vec<_> = inputs.iter().map(|t| b.upload(t)).collect::<Result<_, _>>()?;
        let refs: Vec<_> = dev.iter().collect();
        pollster::block_on(c.run(&refs)).map(|_| ())
    };
    let add = |d: DType| {
        Builder::new()
            .input_rank("x", d, 2)
            .input_rank("y", d, 2)
            .node(Op::Elementwise(E::Add {}), &["x", "y"], &["s"])
            .output("s")
            .build()
    };
    let big = i64s(vec![1, 2], &[1 << 30, 5]);
    assert!(
        run(add(DType::I64), vec![big.clone(), i64s(vec![1, 2], &[1 << 30, 6])])
            .is_err_and(|e| { matches!(&e, GpuError::Value(m) if m.contains("does not fit")) })
    );
    assert_eq!(run(add(DType::I64), vec![big.clone(), i64s(vec![1, 2], &[(1 << 30) - 1, -6])]).ok(), Some(()));
    let u = |v: &[i128]| TensorData::from_i128(DType::U64, vec![1, 2], v).expect("valid");
    assert!(run(add(DType::U64), vec![u(&[4_000_000_000, 1]), u(&[300_000_000, 1])]).is_err());
    let div = Builder::new()
        .input_rank("x", DType::I32, 2)
        .input_rank("y", DType::I32, 2)
        .node(Op::Elementwise(E::Div {}), &["x", "y"], &["q"])
        .output("q")
        .build();
    let i32s = |v: &[i128]| TensorData::from_i128(DType::I32, vec![1, 2], v).expect("valid");
    let r = run(div, vec![i32s(&[4, 5]), i32s(&[2, 0])]);
    assert!(matches!(&r, Err(GpuError::Value(m)) if m.contains("division by zero")), "{r:?}");
}

// ---------------------------------------------------------------- errors and reasons

#[test]
fn int64_out_of_i32_range_is_an_error() {
    let Some(b) = backend() else { return };
    // Small int64 tensors beyond 32 bits upload for host use only; larger
    // ones are refused.
    let mut v = vec![1i64; 2000];
    v[1] = 1 << 40;
    let t = i64s(vec![2000], &v);
    match b.upload(&t) {
        Err(GpuError::Value(m)) => assert!(m.contains("does not fit in i32"), "{m}"),
        other => panic!("expected a range error, got {other:?}"),
    }
}

#[test]
fn unsupported_nodes_have_reasons() {
    let Some(b) = backend() else { return };
    let m = Builder::new()
        .input("x", DType::F32)
        .node(Op::Tensor(T::Shape { start: 0, end: None }), &["x"], &["shape"])
        .input("lo", DType::F32)
        .node(Op::Elementwise(E::Clip { min: None, max: None }), &["x", "lo"], &["r"])
        .node(Op::Nn(NnOp::Det {}), &["x"], &["d"])
        .output("shape")
        .output("r")
        .output("d")
        .build();
    let reasons: Vec<String> = (0..3).map(|i| b.supports(&m, m.main, NodeId(i)).expect_err("unsupported")).collect();
    assert!(reasons[0].contains("shape metadata"), "{}", reasons[0]);
    // A shape given as a graph input arrives with a host copy: supported.
    let m = Builder::new()
        .input("x", DType::F32)
        .input("s", DType::I64)
        .node(Op::Tensor(T::Reshape { allowzero: 0, shape: None }), &["x", "s"], &["r"])
        .output("r")
        .build();
    assert_eq!(b.supports(&m, m.main, NodeId(0)), Ok(()));
    check(m, vec![data(&[2, 6], 33, 0.0, 1.0), i64s(vec![3], &[3, -1, 2])], EXACT);
    assert!(reasons[1].contains("computed at run time"), "{}", reasons[1]);
    assert!(reasons[2].contains("Det"), "{}", reasons[2]);
}

#[test]
fn tensors_of_a_replaced_device_are_rejected() {
    let Some(b) = backend() else { return };
    let t = b.upload(&data(&[4], 30, 0.0, 1.0)).expect("uploads");
    let other = pollster::block_on(GpuBackend::new()).expect("second device");
    match pollster::block_on(other.download(&t)) {
        Err(GpuError::DeviceLost(_)) => {}
        r => panic!("expected DeviceLost, got {r:?}"),
    }
}

#[test]
fn recovers_from_device_loss() {
    if backend().is_none() {
        return;
    }
    // A backend of its own: the shared one must survive for other tests.
    let b = pollster::block_on(GpuBackend::new()).expect("device");
    let m = Arc::new(unary_model(Op::Elementwise(E::Relu {})));
    let x = data(&[8], 43, -1.0, 1.0);
    let compiled = b.compile(m.clone()).expect("compiles");
    let t = b.upload(&x).expect("uploads");
    b.device().simulate_loss();
    match pollster::block_on(compiled.run(&[&t])) {
        Err(GpuError::DeviceLost(_)) => {}
        r => panic!("expected DeviceLost, got {:?}", r.map(|v| v.len())),
    }
    // Compiling again creates a new device and re-uploads the weights.
    let compiled = b.compile(compiled.model().clone()).expect("recompiles on a new device");
    let t = b.upload(&x).expect("uploads again");
    let out = pollster::block_on(compiled.run(&[&t])).expect("runs");
    let got = pollster::block_on(b.download(&out[0])).expect("downloads");
    let want: Vec<f64> = x.to_f64_vec().iter().map(|v| v.max(0.0)).collect();
    assert_eq!(got.to_f64_vec(), want);
}

#[test]
fn intermediates_reuse_buffers() {
    if backend().is_none() {
        return;
    }
    // A device of its own, so that other tests do not touch its pool.
    let b = pollster::block_on(GpuBackend::new()).expect("device");
    let mut m = Builder::new();
    m.input("v0", DType::F32);
    let ops = [E::Relu {}, E::Neg {}, E::Abs {}, E::Sigmoid {}];
    for i in 0..20 {
        m.node(Op::Elementwise(ops[i % 4].clone()), &[&format!("v{i}")], &[&format!("v{}", i + 1)]);
    }
    let m = m.output("v20").build();
    let compiled = b.compile(Arc::new(m)).expect("compiles");
    let x = b.upload(&data(&[100_000], 46, -1.0, 1.0)).expect("uploads");
    let before = b.device().buffers_created();
    let out = pollster::block_on(compiled.run(&[&x])).expect("runs");
    let first = b.device().buffers_created() - before;
    // 20 intermediates, but at most two live at once (plus the parameter block).
    assert!(first <= 3, "{first} buffers created for a chain of 20 ops");
    drop(out);
    let out = pollster::block_on(compiled.run(&[&x])).expect("runs again");
    assert_eq!(b.device().buffers_created() - before, first, "second run reuses pooled buffers");
    drop(out);
}
