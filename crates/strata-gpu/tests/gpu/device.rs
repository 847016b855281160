//! Errors with reasons, device loss and buffer reuse.

use super::*;

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
        .node(Op::Tensor(T::NonZero {}), &["x"], &["d"])
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
    assert!(reasons[2].contains("NonZero"), "{}", reasons[2]);
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
