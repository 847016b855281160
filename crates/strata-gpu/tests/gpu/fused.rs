//! Fused groups (`GpuBackend::optimized`): the generated WGSL validates
//! and translates like the kernel files; fused and unfused graphs agree
//! with each other and with the reference; fusing saves dispatches.

use super::*;
use strata_ir::ops::FusedOp;
use strata_ir::ops::fused::{Operand, Step};
use strata_ir::window::AutoPad;

fn conv() -> Op {
    Op::Nn(NnOp::Conv {
        auto_pad: AutoPad::NotSet,
        dilations: None,
        group: 1,
        kernel_shape: None,
        pads: Some(vec![1, 1, 1, 1]),
        strides: None,
    })
}

fn step(op: E, args: &[Operand]) -> Step {
    Step { op, args: args.to_vec() }
}

/// Programs covering every kind of step and operand.
fn programs() -> Vec<(&'static str, FusedOp, usize, Vec<Option<f32>>)> {
    use Operand::{Absent, Input as I, Producer as P, Step as S};
    let with = |producer: Option<Op>, producer_inputs: u32, steps: Vec<Step>| FusedOp {
        producer: producer.map(Box::new),
        producer_inputs,
        steps,
        members: vec![],
    };
    vec![
        (
            "conv+bias+relu",
            with(Some(conv()), 2, vec![step(E::Add {}, &[P, I(0)]), step(E::Relu {}, &[S(0)])]),
            1,
            vec![None],
        ),
        (
            "matmul+add+gelu(erf form)",
            with(
                Some(Op::Nn(NnOp::MatMul {})),
                2,
                vec![
                    step(E::Add {}, &[P, I(0)]),
                    step(E::Div {}, &[S(0), I(1)]),
                    step(E::Erf {}, &[S(1)]),
                    step(E::Add {}, &[S(2), I(2)]),
                    step(E::Mul {}, &[S(0), S(3)]),
                    step(E::Mul {}, &[S(4), I(3)]),
                ],
            ),
            4,
            vec![None, Some(std::f32::consts::SQRT_2), Some(1.0), Some(0.5)],
        ),
        (
            "gelu tanh form",
            with(
                None,
                0,
                vec![
                    step(E::Pow {}, &[I(0), I(1)]),
                    step(E::Mul {}, &[S(0), I(2)]),
                    step(E::Add {}, &[I(0), S(1)]),
                    step(E::Mul {}, &[S(2), I(3)]),
                    step(E::Tanh {}, &[S(3)]),
                    step(E::Add {}, &[S(4), I(4)]),
                    step(E::Mul {}, &[I(0), S(5)]),
                    step(E::Mul {}, &[S(6), I(5)]),
                ],
            ),
            6,
            vec![None, Some(3.0), Some(0.044715), Some(0.797_884_6), Some(1.0), Some(0.5)],
        ),
        (
            "clip, hard sigmoid, hard swish, leaky relu, swish",
            with(
                Some(Op::Nn(NnOp::Gemm { alpha: 1.0, beta: 1.0, transA: 0, transB: 1, broadcast: None })),
                3,
                vec![
                    step(E::Clip { min: None, max: None }, &[P, I(0), I(1)]),
                    step(E::Clip { min: Some(-1.0), max: None }, &[S(0), Absent, Absent]),
                    step(E::HardSigmoid { alpha: 0.2, beta: 0.5 }, &[S(1)]),
                    step(E::HardSwish {}, &[S(2)]),
                    step(E::LeakyRelu { alpha: 0.01 }, &[S(3)]),
                    step(E::Sigmoid {}, &[S(4)]),
                    step(E::Mul {}, &[S(4), S(5)]),
                    step(E::Sub {}, &[S(6), I(2)]),
                ],
            ),
            3,
            vec![Some(0.0), Some(f32::INFINITY), None],
        ),
        (
            "elementwise chain with broadcast operands",
            with(
                None,
                0,
                vec![
                    step(E::Mul {}, &[I(0), I(1)]),
                    step(E::Add {}, &[S(0), I(2)]),
                    step(E::Tanh {}, &[S(1)]),
                    step(E::Div {}, &[S(2), I(3)]),
                    step(E::Max {}, &[S(3), I(4)]),
                    step(E::Min {}, &[S(4), I(5)]),
                ],
            ),
            6,
            vec![None, None, None, None, None, Some(2.0)],
        ),
    ]
}

#[test]
fn generated_shaders_validate_and_translate() {
    let mut n = 0;
    for (name, f, inputs, lits) in programs() {
        let epilogue = match f.producer.as_deref() {
            Some(Op::Nn(NnOp::Conv { .. })) => Some(Shader::Conv),
            Some(Op::Nn(NnOp::MatMul {} | NnOp::Gemm { .. })) => Some(Shader::Matmul),
            _ => None,
        };
        let sources = strata_gpu::fused_wgsl(&f, inputs, &|k| lits[k], epilogue).expect(name);
        assert_eq!(sources.len(), 1 + usize::from(epilogue.is_some()), "{name}");
        for (i, src) in sources.iter().enumerate() {
            validate_wgsl(&format!("{name} #{i}"), src);
            n += 1;
        }
    }
    assert!(n >= 8);
}

/// Run `m` on the GPU, optimised or not: outputs and dispatches per run.
fn run(m: &Model, inputs: &[TensorData], optimize: bool) -> Option<(Vec<TensorData>, u64, usize)> {
    let b = backend()?;
    let model = Arc::new(m.clone());
    let model = if optimize { GpuBackend::optimized(model) } else { model };
    let compiled = b.compile(model).expect("compiles");
    let groups = compiled.fused_groups().len();
    let dev: Vec<_> = inputs.iter().map(|t| b.upload(t).expect("uploads")).collect();
    let refs: Vec<_> = dev.iter().collect();
    let (before, _) = strata_gpu::counters();
    let outs = pollster::block_on(compiled.run(&refs)).expect("runs");
    let (after, _) = strata_gpu::counters();
    let outs = outs.iter().map(|o| pollster::block_on(b.download(o)).expect("downloads")).collect();
    let d = compiled.last_dispatches();
    // The process-wide counter saw at least this run's dispatches (other
    // tests run concurrently).
    assert!(after - before >= d);
    Some((outs, d, groups))
}

/// Fused and unfused agree within `tol` (and both with the reference);
/// returns (dispatches unfused, fused, groups).
fn fused_agrees(m: Model, inputs: Vec<TensorData>, tol: Tol) -> Option<(u64, u64, usize)> {
    let (plain, d0, g0) = run(&m, &inputs, false)?;
    let (fused, d1, g1) = run(&m, &inputs, true)?;
    assert_eq!(g0, 0);
    assert!(g1 > 0, "nothing was fused");
    for (a, b) in plain.iter().zip(&fused) {
        assert_eq!(a.shape(), b.shape());
        for (i, (x, y)) in a.to_f64_vec().iter().zip(b.to_f64_vec()).enumerate() {
            assert!((x - y).abs() <= tol.atol + tol.rtol * x.abs(), "element {i}: unfused {x}, fused {y}");
        }
    }
    check_against_reference(&Fused(backend()?), m, &inputs, tol, Floats::All);
    Some((d0, d1, g1))
}

/// The GPU with optimisation on, as a harness target.
struct Fused(&'static GpuBackend);

impl Target for Fused {
    const NAME: &'static str = "gpu (fused)";
    fn supports(&self, m: &Model, node: NodeId) -> Result<(), String> {
        reason(self.0.supports(m, m.main, node))
    }
    fn runs(&self, m: Model, inputs: &[TensorData]) -> Vec<Vec<TensorData>> {
        let compiled = self.0.compile(GpuBackend::optimized(Arc::new(m))).expect("compiles");
        let dev: Vec<_> = inputs.iter().map(|t| self.0.upload(t).expect("uploads")).collect();
        let refs: Vec<_> = dev.iter().collect();
        let outs = pollster::block_on(compiled.run(&refs)).expect("runs");
        vec![outs.iter().map(|o| pollster::block_on(self.0.download(o)).expect("downloads")).collect()]
    }
}

#[test]
fn conv_bias_relu_is_one_dispatch() {
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[6, 3, 3, 3], 1, -1.0, 1.0))
        .weight("b", data(&[1, 6, 1, 1], 2, -1.0, 1.0))
        .node(conv(), &["x", "w"], &["c"])
        .node(Op::Elementwise(E::Add {}), &["c", "b"], &["a"])
        .node(Op::Elementwise(E::Relu {}), &["a"], &["y"])
        .output("y")
        .build();
    let Some((d0, d1, groups)) = fused_agrees(m, vec![data(&[2, 3, 9, 7], 3, -1.0, 1.0)], reduction(27)) else {
        return;
    };
    assert_eq!((d0, d1, groups), (3, 1, 1));
}

#[test]
fn implicit_gemm_conv_bias_relu_is_one_dispatch() {
    // 20 output channels: the conv runs as `conv2d_gemm`, the program in its epilogue.
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[20, 3, 3, 3], 21, -1.0, 1.0))
        .weight("b", data(&[1, 20, 1, 1], 22, -1.0, 1.0))
        .node(conv(), &["x", "w"], &["c"])
        .node(Op::Elementwise(E::Add {}), &["c", "b"], &["a"])
        .node(Op::Elementwise(E::Relu {}), &["a"], &["y"])
        .output("y")
        .build();
    let Some(d) = fused_agrees(m, vec![data(&[2, 3, 9, 7], 23, -1.0, 1.0)], reduction(27)) else { return };
    assert_eq!(d, (3, 1, 1));
}

#[test]
fn matmul_add_is_one_dispatch() {
    let m = Builder::new()
        .input("a", DType::F32)
        .weight("b", data(&[20, 11], 4, -1.0, 1.0))
        .weight("c", data(&[11], 5, -1.0, 1.0))
        .node(Op::Nn(NnOp::MatMul {}), &["a", "b"], &["p"])
        .node(Op::Elementwise(E::Add {}), &["p", "c"], &["y"])
        .output("y")
        .build();
    let Some(d) = fused_agrees(m, vec![data(&[2, 5, 20], 6, -1.0, 1.0)], reduction(20)) else { return };
    assert_eq!(d, (2, 1, 1));
}

#[test]
fn residual_add_after_conv_is_one_dispatch() {
    // y = relu(conv(x) + x): the residual is a full-shape graph input.
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("w", data(&[4, 4, 3, 3], 7, -0.5, 0.5))
        .weight("b", data(&[4], 8, -1.0, 1.0))
        .node(conv(), &["x", "w", "b"], &["c"])
        .node(Op::Elementwise(E::Add {}), &["c", "x"], &["r"])
        .node(Op::Elementwise(E::Relu {}), &["r"], &["y"])
        .output("y")
        .build();
    let Some(d) = fused_agrees(m, vec![data(&[1, 4, 8, 8], 9, -1.0, 1.0)], reduction(36)) else { return };
    assert_eq!(d, (3, 1, 1));
}

#[test]
fn elementwise_chain_with_per_channel_operand_is_one_dispatch() {
    // ((x * scale[c]) + shift) -> HardSwish -> Sub x: four nodes, a
    // per-channel [C, 1, 1] operand, a scalar constant and a full operand.
    let m = Builder::new()
        .input("x", DType::F32)
        .weight("scale", data(&[5, 1, 1], 10, 0.5, 2.0))
        .weight("shift", TensorData::from_f32(vec![], &[0.25]).expect("scalar"))
        .node(Op::Elementwise(E::Mul {}), &["x", "scale"], &["m"])
        .node(Op::Elementwise(E::Add {}), &["m", "shift"], &["a"])
        .node(Op::Elementwise(E::HardSwish {}), &["a"], &["h"])
        .node(Op::Elementwise(E::Sub {}), &["h", "x"], &["y"])
        .output("y")
        .build();
    // Four f32 roundings of values up to 16 (no existing per-op bound
    // covers a chain): 4 ulp of 16.
    let chain = Tol { atol: 8e-6, rtol: 4e-6 };
    let Some(d) = fused_agrees(m, vec![data(&[2, 5, 4, 3], 11, -4.0, 4.0)], chain) else { return };
    assert_eq!(d, (4, 1, 1));
}

#[test]
fn broadcast_beyond_the_producer_runs_the_program_after_it() {
    // The operand is larger than the MatMul's output, so the program
    // cannot be its epilogue: two dispatches, still right.
    let m = Builder::new()
        .input("a", DType::F32)
        .input("r", DType::F32)
        .weight("b", data(&[6, 4], 12, -1.0, 1.0))
        .node(Op::Nn(NnOp::MatMul {}), &["a", "b"], &["p"])
        .node(Op::Elementwise(E::Add {}), &["p", "r"], &["s"])
        .node(Op::Elementwise(E::Sigmoid {}), &["s"], &["y"])
        .output("y")
        .build();
    let inputs = vec![data(&[3, 6], 13, -1.0, 1.0), data(&[2, 3, 4], 14, -1.0, 1.0)];
    let Some(d) = fused_agrees(m, inputs, TRANSC) else { return };
    assert_eq!(d, (3, 2, 1));
}

#[test]
fn gemm_with_erf_gelu_written_out_is_one_dispatch() {
    // Gemm, then GELU as exporters write it: x * 0.5 * (1 + erf(x / sqrt 2)).
    let scalar = |x: f32| TensorData::from_f32(vec![], &[x]).expect("scalar");
    let m = Builder::new()
        .input("a", DType::F32)
        .weight("b", data(&[12, 7], 15, -1.0, 1.0))
        .weight("c", data(&[12], 16, -1.0, 1.0))
        .weight("sqrt2", scalar(std::f32::consts::SQRT_2))
        .weight("one", scalar(1.0))
        .weight("half", scalar(0.5))
        .node(
            Op::Nn(NnOp::Gemm { alpha: 1.0, beta: 1.0, transA: 0, transB: 1, broadcast: None }),
            &["a", "b", "c"],
            &["g"],
        )
        .node(Op::Elementwise(E::Div {}), &["g", "sqrt2"], &["d"])
        .node(Op::Elementwise(E::Erf {}), &["d"], &["e"])
        .node(Op::Elementwise(E::Add {}), &["e", "one"], &["f"])
        .node(Op::Elementwise(E::Mul {}), &["g", "f"], &["h"])
        .node(Op::Elementwise(E::Mul {}), &["h", "half"], &["y"])
        .output("y")
        .build();
    let tol = Tol { atol: reduction(7).atol + TRANSC.atol, rtol: TRANSC.rtol };
    let Some(d) = fused_agrees(m, vec![data(&[6, 7], 17, -1.0, 1.0)], tol) else { return };
    assert_eq!(d, (6, 1, 1));
}

#[test]
fn a_chain_binding_too_many_operands_is_split_into_groups_that_fit() {
    // Eight Adds of nine different inputs: one kernel binds at most six
    // operands, so the chain runs as two groups. A chain of seven unary
    // steps beside it still runs as one group.
    let mut b = Builder::new();
    for i in 0..9 {
        b.input(&format!("x{i}"), DType::F32);
    }
    b.node(Op::Elementwise(E::Add {}), &["x0", "x1"], &["s1"]);
    for i in 2..9 {
        b.node(Op::Elementwise(E::Add {}), &[&format!("s{}", i - 1), &format!("x{i}")], &[&format!("s{i}")]);
    }
    let unary = [E::Neg {}, E::Relu {}, E::Sigmoid {}, E::Neg {}, E::Abs {}, E::Sqrt {}, E::Neg {}];
    for (i, op) in unary.into_iter().enumerate() {
        let x = if i == 0 { "x0".to_string() } else { format!("u{i}") };
        b.node(Op::Elementwise(op), &[&x], &[&format!("u{}", i + 1)]);
    }
    let m = b.output("s8").output("u7").build();
    let inputs: Vec<_> = (0..9).map(|i| data(&[3, 4], 20 + i, -1.0, 1.0)).collect();
    let Some(d) = fused_agrees(m, inputs, Tol { atol: 8.0 * 1.2e-7, rtol: TRANSC.rtol }) else { return };
    assert_eq!(d, (15, 3, 3));
}
