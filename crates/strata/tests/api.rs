//! The public API: loading, running, artifacts, and clear errors (never a
//! panic or huge allocation) on bad models and bad inputs.

use prost::Message;
use strata::{DType, Error, Session, SessionOptions, Tensor, Value};
use strata_onnx::proto::*;
use strata_test_support::onnx::{
    chain_model, constant_of_shape_model, endless_loop_model, f32s, huge_declared_tensor_model, model, nested_if_model,
    node, vi,
};

/// y = x + x, x: float32[n, 3]
fn add_model() -> Vec<u8> {
    model(
        vec![node("Add", &["x", "x"], &["y"], vec![])],
        vec![vi("x", 1, &[-1, 3])],
        vec![vi("y", 1, &[-1, 3])],
        vec![],
    )
}

#[test]
fn runs_a_model_from_bytes() -> anyhow::Result<()> {
    let s = Session::from_bytes(&add_model(), SessionOptions::default())?;
    assert_eq!(s.inputs()[0].name, "x");
    let out = s.run(&[("x", f32s(vec![2, 3], &[1., 2., 3., 4., 5., 6.]))])?;
    assert_eq!(out[0].0, "y");
    assert_eq!(out[0].1.as_tensor().unwrap().to_f64_vec(), vec![2., 4., 6., 8., 10., 12.]);
    Ok(())
}

#[test]
fn builtin_example_runs_and_artifact_roundtrips() -> anyhow::Result<()> {
    let m = strata::examples::tiny_mlp();
    let s = Session::from_model(m.clone(), SessionOptions::default())?;
    let x = f32s(vec![1, 4], &[1.0, -2.0, 0.5, 3.0]);
    let a = s.run(&[("x", x.clone())])?;
    let bytes = strata::ir::artifact::write(&m)?;
    let s2 = Session::from_bytes(&bytes, SessionOptions::default())?;
    let b = s2.run(&[("x", x)])?;
    assert_eq!(a, b);
    Ok(())
}

fn load_err(bytes: &[u8]) -> String {
    match Session::from_bytes(bytes, SessionOptions::default()) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_and_corrupt_protobuf_give_errors() {
    let m = add_model();
    for cut in [1, m.len() / 3, m.len() / 2, m.len() - 1] {
        let e = load_err(&m[..cut]);
        assert!(e.contains("cannot") || e.contains("invalid"), "{e}");
    }
    let mut corrupt = m.clone();
    for (i, b) in corrupt.iter_mut().enumerate() {
        if i % 7 == 3 {
            *b ^= 0x5a;
        }
    }
    let _ = Session::from_bytes(&corrupt, SessionOptions::default()); // must not panic
    assert!(load_err(b"\xff\xff\xff\xff garbage").contains("cannot"));
}

#[test]
fn huge_declared_tensor_is_rejected_without_allocating() {
    let m = huge_declared_tensor_model();
    let e = load_err(&m);
    assert!(e.contains("'w'") && e.contains("needs"), "{e}");
    // Declared in typed fields, without data.
    let big2 = TensorProto { dims: vec![1_000_000_000_000], data_type: 7, name: "w".into(), ..Default::default() };
    let m = model(
        vec![node("Add", &["x", "w"], &["y"], vec![])],
        vec![vi("x", 7, &[1])],
        vec![vi("y", 7, &[1])],
        vec![big2],
    );
    assert!(load_err(&m).contains("'w'"));
}

#[test]
fn huge_runtime_tensor_is_rejected() {
    // ConstantOfShape with a 10^12-element shape computed at run time.
    let m = constant_of_shape_model();
    let s = Session::from_bytes(&m, SessionOptions::default()).unwrap();
    let shape = Value::Tensor(Tensor::from_i64(vec![2], &[1_000_000, 1_000_000]).unwrap());
    let e = s.run(&[("shape", shape)]).unwrap_err().to_string();
    assert!(e.contains("ConstantOfShape") && (e.contains("limit") || e.contains("no reference kernel")), "{e}");
}

#[test]
fn gather_index_out_of_range_is_a_clear_error() {
    let m = model(
        vec![node("Gather", &["data", "idx"], &["y"], vec![])],
        vec![vi("data", 1, &[3]), vi("idx", 7, &[1])],
        vec![vi("y", 1, &[1])],
        vec![],
    );
    let s = Session::from_bytes(&m, SessionOptions::default()).unwrap();
    let e = s
        .run(&[
            ("data", f32s(vec![3], &[1., 2., 3.])),
            ("idx", Value::Tensor(Tensor::from_i64(vec![1], &[7]).unwrap())),
        ])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Gather_node") && e.contains('7'), "{e}");
}

#[test]
fn wrong_inputs_are_reported_by_name() {
    let s = Session::from_bytes(&add_model(), SessionOptions::default()).unwrap();
    let e = s.run(&[("x", f32s(vec![2, 4], &[0.0; 8]))]).unwrap_err();
    assert!(matches!(e, Error::Input(_)) && e.to_string().contains("dimension 1 must be 3"), "{e}");
    let e = s.run(&[("x", Value::Tensor(Tensor::from_i64(vec![1, 3], &[1, 2, 3]).unwrap()))]).unwrap_err();
    assert!(e.to_string().contains("must be float32, got int64"), "{e}");
    let e = s.run(&[]).unwrap_err();
    assert!(e.to_string().contains("missing input 'x'"), "{e}");
    let e = s.run(&[("x", f32s(vec![1, 3], &[0.0; 3])), ("nope", f32s(vec![1], &[0.0]))]).unwrap_err();
    assert!(e.to_string().contains("unknown input 'nope'"), "{e}");
    let e = s.run(&[("x", f32s(vec![3], &[0.0; 3]))]).unwrap_err();
    assert!(e.to_string().contains("rank 2"), "{e}");
}

#[test]
fn artifact_checksum_and_version_are_checked() {
    let bytes = strata::ir::artifact::write(&strata::examples::tiny_mlp()).unwrap();
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    assert!(load_err(&bad).contains("checksum"));
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&99u32.to_le_bytes());
    let e = load_err(&newer);
    assert!(e.contains("version 99") && e.contains("newer"), "{e}");
    assert!(load_err(&bytes[..40]).contains(".strata"));
}

#[test]
fn unsupported_operator_error_names_op_domain_opset_and_node() {
    let m =
        model(vec![node("NoSuchOp", &["x"], &["y"], vec![])], vec![vi("x", 1, &[1])], vec![vi("y", 1, &[1])], vec![]);
    let e = load_err(&m);
    assert!(e.contains("NoSuchOp_node") && e.contains("NoSuchOp") && e.contains("ai.onnx") && e.contains("21"), "{e}");
}

#[test]
fn session_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Session>();
    let _ = DType::F32;
}

#[test]
fn recursive_model_local_function_is_rejected() {
    let f = FunctionProto {
        name: "Loopy".into(),
        domain: "local".into(),
        input: vec!["a".into()],
        output: vec!["b".into()],
        node: vec![NodeProto {
            op_type: "Loopy".into(),
            domain: "local".into(),
            input: vec!["a".into()],
            output: vec!["b".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let m = ModelProto {
        ir_version: 10,
        opset_import: vec![
            OperatorSetIdProto { domain: String::new(), version: 21 },
            OperatorSetIdProto { domain: "local".into(), version: 1 },
        ],
        graph: Some(GraphProto {
            node: vec![NodeProto {
                op_type: "Loopy".into(),
                domain: "local".into(),
                name: "call".into(),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![vi("x", 1, &[1])],
            output: vec![vi("y", 1, &[1])],
            ..Default::default()
        }),
        functions: vec![f],
        ..Default::default()
    }
    .encode_to_vec();
    let e = load_err(&m);
    assert!(e.contains("recursively"), "{e}");
}

// ---------------------------------------------------------------------------
// Memory-mapped artifacts, concurrency, resource limits.

/// A path in the temp directory unique to this test process and `tag`.
fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("strata-api-{}-{tag}", std::process::id()))
}

/// Address ranges of this process's mappings of `path` (from /proc/self/maps).
#[cfg(target_os = "linux")]
fn mapped_ranges(path: &std::path::Path) -> Vec<std::ops::Range<usize>> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let want = path.canonicalize().unwrap();
    maps.lines()
        .filter(|l| l.trim_end().ends_with(want.to_str().unwrap()))
        .map(|l| {
            let (a, b) = l.split_whitespace().next().unwrap().split_once('-').unwrap();
            usize::from_str_radix(a, 16).unwrap()..usize::from_str_radix(b, 16).unwrap()
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn strata_artifact_weights_are_memory_mapped_not_copied() -> anyhow::Result<()> {
    let m = strata::examples::tiny_mlp();
    let path = temp_path("mapped.strata");
    std::fs::write(&path, strata::ir::artifact::write(&m)?)?;
    let s = Session::from_path(&path, SessionOptions::default())?;
    let ranges = mapped_ranges(&path);
    assert!(!ranges.is_empty(), "the artifact is not memory-mapped");
    let mut checked = 0;
    for g in &s.model().graphs {
        for (_, t) in &g.initializers {
            let bytes = t.bytes().expect("numeric weight").as_slice();
            let (start, end) = (bytes.as_ptr() as usize, bytes.as_ptr() as usize + bytes.len());
            assert!(
                ranges.iter().any(|r| r.start <= start && end <= r.end),
                "weight bytes at {start:#x}..{end:#x} are not inside the file's mapping {ranges:x?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
    // Same results as the in-memory model.
    let x = f32s(vec![2, 4], &[1.0, -2.0, 0.5, 3.0, 0.0, 1.0, 2.0, -1.0]);
    let want = Session::from_model(m, SessionOptions::default())?.run(&[("x", x.clone())])?;
    assert_eq!(s.run(&[("x", x)])?, want);
    // The map lives as long as the session; dropping it unmaps the file.
    drop(s);
    assert!(mapped_ranges(&path).is_empty(), "the map outlived the session");
    std::fs::remove_file(&path)?;
    Ok(())
}

fn data_dir() -> std::path::PathBuf {
    match std::env::var_os("STRATA_DATA_DIR") {
        Some(d) => d.into(),
        None => std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/strata"),
    }
}

/// A real model of the `onnx-models` suite and its first recorded input.
fn real_model_with(case: &str, options: SessionOptions) -> anyhow::Result<(Session, Vec<(String, Value)>)> {
    let dir = data_dir().join("onnx-models").join(case);
    anyhow::ensure!(dir.join("model.onnx").exists(), "missing {}: run `cargo xtask fetch-data`", dir.display());
    let s = Session::from_path(dir.join("model.onnx"), options)?;
    let mut inputs = Vec::new();
    for (i, info) in s.inputs().iter().enumerate() {
        let bytes = std::fs::read(dir.join("test_data_set_0").join(format!("input_{i}.pb")))?;
        inputs.push((info.name.clone(), strata_onnx::decode_value(&bytes, &info.ty)?));
    }
    Ok((s, inputs))
}

/// 8 threads × 100 runs of one session all give the single-threaded result.
fn eight_threads_share_one_session(options: SessionOptions) -> anyhow::Result<()> {
    const THREADS: usize = 8;
    const RUNS: usize = 100;
    let (s, inputs) = real_model_with("ppocr_mobile_v2_cls", options)?;
    let named: Vec<(&str, Value)> = inputs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let want = s.run(&named)?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (s, named, want) = (&s, &named, &want);
                scope.spawn(move || -> anyhow::Result<()> {
                    for r in 0..RUNS {
                        let got = s.run(named)?;
                        anyhow::ensure!(&got == want, "thread {t}, run {r}: outputs differ");
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("no panic"))
    })
}

#[test]
fn one_session_runs_from_eight_threads_with_identical_results() -> anyhow::Result<()> {
    eight_threads_share_one_session(SessionOptions::default())
}

#[test]
fn one_cpu_session_with_kernel_threads_runs_from_eight_threads_with_identical_results() -> anyhow::Result<()> {
    let opts = SessionOptions { backends: vec!["cpu".into()], threads: 2, ..Default::default() };
    eight_threads_share_one_session(opts)
}

#[test]
fn cpu_results_do_not_depend_on_the_thread_count() -> anyhow::Result<()> {
    assert_eq!(strata::CpuBackendAdapter::new(3, 1 << 20, u64::MAX).threads(), 3);
    let root = data_dir().join("onnx-models");
    let mut cases: Vec<String> = std::fs::read_dir(&root)
        .map_err(|e| anyhow::anyhow!("{}: {e}: run `cargo xtask fetch-data`", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.onnx").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    anyhow::ensure!(!cases.is_empty(), "no models in {}: run `cargo xtask fetch-data`", root.display());
    for case in &cases {
        let mut first: Option<Vec<(String, Value)>> = None;
        for threads in [1, 2, 3, 4] {
            let opts = SessionOptions { backends: vec!["cpu".into()], threads, ..Default::default() };
            let (s, inputs) = real_model_with(case, opts)?;
            let on_cpu = s.placement().iter().filter(|p| p.backend == "cpu").count();
            anyhow::ensure!(on_cpu > 0, "{case}: no node placed on the cpu backend");
            let named: Vec<(&str, Value)> = inputs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
            let got = s.run(&named)?;
            match &first {
                None => first = Some(got),
                Some(want) => anyhow::ensure!(&got == want, "{case}: {threads} threads differ from 1 thread"),
            }
        }
    }
    Ok(())
}

#[test]
fn a_million_node_graph_is_rejected_by_max_nodes() {
    const N: usize = 1_000_000;
    let m = chain_model("Identity", N, &[1]);
    let opts = SessionOptions { max_nodes: 100_000, ..Default::default() };
    let e = Session::from_bytes(&m, opts).err().expect("over the node limit").to_string();
    assert!(e.contains("1000000 nodes") && e.contains("limit of 100000"), "{e}");
}

/// Values captured across several graph levels (the innermost branch reads
/// the main graph's `x`; every level's `If` reads the main graph's `c`).
#[test]
fn nested_if_subgraphs_capture_values_across_levels() -> anyhow::Result<()> {
    for depth in [1, 2, 3, 8] {
        let s = Session::from_bytes(&nested_if_model(depth), SessionOptions::default())?;
        for cond in [1.0, 0.0] {
            let c = Value::Tensor(Tensor::from_f64(DType::Bool, vec![], &[cond])?);
            let out = s.run(&[("c", c), ("x", f32s(vec![1], &[5.0]))])?;
            assert_eq!(out[0].1.as_tensor().unwrap().to_f64_vec(), vec![5.0], "depth {depth}");
        }
    }
    Ok(())
}

#[test]
fn deeply_nested_if_subgraphs_are_a_clear_error() {
    for depth in [200, 2_000] {
        let e = load_err(&nested_if_model(depth));
        assert!(e.contains("cannot") && e.contains("recursion"), "depth {depth}: {e}");
    }
}

#[test]
fn runaway_loop_stops_with_a_clear_error() -> anyhow::Result<()> {
    let opts = SessionOptions { max_loop_iterations: 1_000, ..Default::default() };
    let s = Session::from_bytes(&endless_loop_model(), opts)?;
    let inputs = |m: i64| {
        vec![
            ("m", Value::Tensor(Tensor::from_i64(vec![], &[m]).unwrap())),
            ("cond", Value::Tensor(Tensor::from_f64(DType::Bool, vec![], &[1.0]).unwrap())),
            ("v", f32s(vec![1], &[3.0])),
        ]
    };
    // Within the limit it runs.
    let out = s.run(&inputs(1_000))?;
    assert_eq!(out[0].1.as_tensor().unwrap().to_f64_vec(), vec![3.0]);
    // A huge trip count with a condition that stays true is stopped.
    let e = s.run(&inputs(i64::MAX)).unwrap_err().to_string();
    assert!(e.contains("Loop") && e.contains("did not finish within 1000 iterations"), "{e}");
    // The session (and the process) keep working afterwards.
    assert!(s.run(&inputs(5)).is_ok());
    Ok(())
}

/// Ten `Tile`s of `x`, every result a graph output (so all stay live).
fn many_live_tiles_model() -> Vec<u8> {
    let names: Vec<String> = (0..10).map(|i| format!("y{i}")).collect();
    model(
        names.iter().map(|y| node("Tile", &["x", "reps"], &[y.as_str()], vec![])).collect(),
        vec![vi("x", 1, &[1_000]), vi("reps", 7, &[1])],
        names.iter().map(|y| vi(y, 1, &[-1])).collect(),
        vec![],
    )
}

#[test]
fn total_memory_limit_stops_a_run_at_the_node_that_passes_it() -> anyhow::Result<()> {
    // Each Tile output is 20,000 elements (160,000 bytes as the reference
    // holds them); ten live at once need 1.6 MB, the limit is 1 MB.
    let limit = 1_000_000u64;
    let s = Session::from_bytes(
        &many_live_tiles_model(),
        SessionOptions { backends: vec!["reference".into()], max_memory_bytes: limit, ..Default::default() },
    )?;
    let run = |r: i64| {
        s.run(&[
            ("x", f32s(vec![1_000], &[1.0; 1_000])),
            ("reps", Value::Tensor(Tensor::from_i64(vec![1], &[r]).unwrap())),
        ])
    };
    let e = run(20).unwrap_err().to_string();
    // The seventh output is the one that passes the limit: 7 x 160,000.
    assert!(e.contains("(Tile)") && e.contains("would need 1120000 bytes"), "{e}");
    assert!(e.contains("memory limit of 1000000 bytes"), "{e}");
    // Smaller tensors fit, and the failed run gave its memory back: the same
    // session keeps working, run after run.
    for _ in 0..3 {
        assert_eq!(run(10)?.len(), 10);
    }
    assert!(run(20).is_err());
    assert_eq!(run(10)?[9].1.as_tensor().unwrap().shape(), &[10_000]);
    Ok(())
}

#[test]
fn total_memory_limit_stops_a_cpu_run_at_the_node_that_passes_it() -> anyhow::Result<()> {
    // The cpu backend holds float32 as 4 bytes: each Tile output is 80,000
    // bytes; with the 4,008 bytes of inputs, the seventh output passes 500 KB.
    let s = Session::from_bytes(
        &many_live_tiles_model(),
        SessionOptions { max_memory_bytes: 500_000, strict: true, ..Default::default() },
    )?;
    assert!(s.placement().iter().all(|p| p.backend == "cpu"));
    let run = |r: i64| {
        s.run(&[
            ("x", f32s(vec![1_000], &[1.0; 1_000])),
            ("reps", Value::Tensor(Tensor::from_i64(vec![1], &[r]).unwrap())),
        ])
    };
    let e = run(20).unwrap_err().to_string();
    assert!(e.contains("(Tile)") && e.contains("564008 bytes"), "{e}");
    assert!(e.contains("memory limit of 500000 bytes"), "{e}");
    for _ in 0..3 {
        assert_eq!(run(10)?.len(), 10);
    }
    Ok(())
}

#[test]
fn weights_larger_than_the_memory_limit_fail_at_load() {
    let w = TensorProto {
        dims: vec![300_000],
        data_type: 1,
        name: "w".into(),
        raw_data: Some(vec![0u8; 1_200_000]),
        ..Default::default()
    };
    let m = model(
        vec![node("Add", &["x", "w"], &["y"], vec![])],
        vec![vi("x", 1, &[300_000])],
        vec![vi("y", 1, &[300_000])],
        vec![w],
    );
    let e = Session::from_bytes(&m, SessionOptions { max_memory_bytes: 1_000_000, ..Default::default() })
        .err()
        .expect("over the limit")
        .to_string();
    assert!(e.contains("weights take 1200000 bytes") && e.contains("memory limit of 1000000 bytes"), "{e}");
    assert!(Session::from_bytes(&m, SessionOptions { max_memory_bytes: 2_000_000, ..Default::default() }).is_ok());
}

#[test]
fn oversize_output_is_rejected_by_max_tensor_elements() -> anyhow::Result<()> {
    let m = model(
        vec![node("Tile", &["x", "reps"], &["y"], vec![])],
        vec![vi("x", 1, &[100]), vi("reps", 7, &[1])],
        vec![vi("y", 1, &[-1])],
        vec![],
    );
    let s = Session::from_bytes(&m, SessionOptions { max_tensor_elements: 10_000, ..Default::default() })?;
    let run = |r: i64| {
        s.run(&[("x", f32s(vec![100], &[1.0; 100])), ("reps", Value::Tensor(Tensor::from_i64(vec![1], &[r]).unwrap()))])
    };
    assert_eq!(run(100)?[0].1.as_tensor().unwrap().shape(), &[10_000]);
    let e = run(101).unwrap_err().to_string();
    assert!(e.contains("Tile") && e.contains("limit of 10000 elements"), "{e}");
    Ok(())
}

#[test]
fn artifact_versions_outside_the_supported_range_name_found_and_supported() {
    use strata::ir::artifact::{MIN_VERSION, VERSION};
    let bytes = strata::ir::artifact::write(&strata::examples::tiny_mlp()).unwrap();
    // Every supported version loads (the header version is not under the checksum).
    for v in MIN_VERSION..=VERSION {
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&v.to_le_bytes());
        Session::from_bytes(&b, SessionOptions::default()).unwrap();
    }
    let range = format!("versions {MIN_VERSION} to {VERSION}");
    for v in [0, MIN_VERSION.wrapping_sub(1), VERSION + 1, u32::MAX] {
        if (MIN_VERSION..=VERSION).contains(&v) {
            continue;
        }
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&v.to_le_bytes());
        let e = load_err(&b);
        assert!(e.contains(&format!("version {v} ")) && e.contains(&range), "{e}");
        assert_eq!(e.contains("newer"), v > VERSION, "{e}");
    }
    // The same checks apply to memory-mapped files.
    let path = temp_path("newer.strata");
    let mut b = bytes.clone();
    b[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let e = Session::from_path(&path, SessionOptions::default()).err().expect("newer version").to_string();
    assert!(e.contains(&format!("version {}", VERSION + 1)) && e.contains(&range), "{e}");
    // A corrupt mapped file fails on its checksum.
    let n = b.len();
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[n - 1] ^= 0xff;
    std::fs::write(&path, &b).unwrap();
    let e = Session::from_path(&path, SessionOptions::default()).err().expect("corrupt").to_string();
    assert!(e.contains("checksum"), "{e}");
    std::fs::remove_file(&path).unwrap();
}

/// IR whose main graph calls `If` on subgraphs that nest `depth` levels, or
/// (with `cycle`) whose two subgraphs call each other.
fn nested_if_ir(depth: usize, cycle: bool) -> strata::Model {
    use strata::ir::ops::{ControlOp, ElementwiseOp};
    use strata::ir::{Graph, GraphId, Node, Op, ValueType};
    let b = ValueType::Tensor { dtype: DType::Bool, shape: Some(vec![]) };
    let f = ValueType::Tensor { dtype: DType::F32, shape: Some(vec![strata::Dim::Known(1)]) };
    let n = if cycle { 3 } else { depth + 1 };
    let mut graphs = Vec::with_capacity(n);
    let ident = || Op::Elementwise(ElementwiseOp::Identity {});
    for gi in 0..n {
        let mut g = Graph { name: format!("g{gi}"), ..Default::default() };
        let (c, x) = (g.add_value("c", b.clone()), g.add_value("x", f.clone()));
        let (cc, y) = (g.add_value("cc", b.clone()), g.add_value("y", f.clone()));
        if gi == 0 {
            g.inputs = vec![c, x];
        } else {
            // Outer c and x are captured under the same value ids.
            g.captures = vec![(c, c), (x, x)];
        }
        let inner = if cycle { [1, 2, 1][gi] } else { gi + 1 };
        let op = if gi + 1 < n || cycle {
            Op::Control(ControlOp::If { then_branch: GraphId(inner as u32), else_branch: GraphId(inner as u32) })
        } else {
            ident()
        };
        // The If reads a copy of c: a node input that its own subgraphs also
        // capture is currently moved out before they run (an interpreter bug).
        g.add_node(Node { name: format!("c{gi}"), op: ident(), inputs: vec![Some(c)], outputs: vec![Some(cc)] });
        let inputs = if matches!(op, Op::Control(_)) { vec![Some(cc)] } else { vec![Some(x)] };
        g.add_node(Node { name: format!("n{gi}"), op, inputs, outputs: vec![Some(y)] });
        g.outputs = vec![y];
        graphs.push(g);
    }
    strata::Model {
        graphs,
        main: GraphId(0),
        opsets: vec![(String::new(), 21)],
        producer: "test".into(),
        metadata: vec![],
    }
}

#[test]
fn hostile_subgraph_structure_in_an_artifact_is_rejected() -> anyhow::Result<()> {
    let run = |m: strata::Model| -> Result<Vec<(String, Value)>, String> {
        let bytes = strata::ir::artifact::write(&m).map_err(|e| e.to_string())?;
        let s = Session::from_bytes(&bytes, SessionOptions::default()).map_err(|e| e.to_string())?;
        let c = Value::Tensor(Tensor::from_f64(DType::Bool, vec![], &[1.0]).unwrap());
        s.run(&[("c", c), ("x", f32s(vec![1], &[2.0]))]).map_err(|e| e.to_string())
    };
    let ok = run(nested_if_ir(3, false)).map_err(anyhow::Error::msg)?;
    assert_eq!(ok[0].1.as_tensor().unwrap().to_f64_vec(), vec![2.0]);
    let e = run(nested_if_ir(0, true)).unwrap_err();
    assert!(e.contains("subgraph"), "{e}");
    let e = run(nested_if_ir(100_000, false)).unwrap_err();
    assert!(e.contains("deep"), "{e}");
    Ok(())
}

/// A model mixing uint8 and float16 tensors with float32 compute:
/// `z = y * y` where `y = float(float16(relu(x + float(q))) + h)`, with `q` a
/// uint8 input and `h` a float16 weight; also returns the float16 sum.
fn mixed_dtype_model() -> Vec<u8> {
    let to = |t: i64| AttributeProto { name: "to".into(), r#type: 2, i: t, ..Default::default() };
    let h: Vec<u8> = [0x3800u16, 0x3E00, 0xC000, 0x4200].iter().flat_map(|b| b.to_le_bytes()).collect();
    model(
        vec![
            node("Cast", &["q"], &["qf"], vec![to(1)]),
            node("Add", &["x", "qf"], &["a"], vec![]),
            node("Relu", &["a"], &["r"], vec![]),
            node("Cast", &["r"], &["b16"], vec![to(10)]),
            NodeProto { name: "add16".into(), ..node("Add", &["b16", "h"], &["c16"], vec![]) },
            NodeProto { name: "crop".into(), ..node("CenterCropPad", &["c16", "size"], &["d16"], vec![]) },
            NodeProto { name: "back".into(), ..node("Cast", &["d16"], &["y"], vec![to(1)]) },
            node("Mul", &["y", "y"], &["z"], vec![]),
        ],
        vec![vi("x", 1, &[4]), vi("q", 2, &[4])],
        vec![vi("z", 1, &[4]), vi("c16", 10, &[4])],
        vec![
            TensorProto { dims: vec![4], data_type: 10, name: "h".into(), raw_data: Some(h), ..Default::default() },
            TensorProto { dims: vec![1], data_type: 7, name: "size".into(), int64_data: vec![4], ..Default::default() },
        ],
    )
}

#[test]
fn the_default_backend_is_cpu_and_a_model_with_uint8_and_float16_tensors_runs_there_with_fallback() -> anyhow::Result<()>
{
    assert_eq!(SessionOptions::default().backends, vec!["cpu".to_string()]);
    assert_eq!(strata::DEFAULT_BACKEND, "cpu");
    assert_eq!(strata::backend_names()[0], "cpu");
    let m = mixed_dtype_model();
    let x = f32s(vec![4], &[-300.0, 0.25, 1.0, 2.5]);
    let q = Value::Tensor(Tensor::from_bytes(DType::U8, vec![4], strata::ir::Buffer::from_vec(vec![1, 2, 3, 250]))?);
    let feeds = [("x", x), ("q", q)];
    let s = Session::from_bytes(&m, SessionOptions::default())?;
    let on = |node: &str| s.placement().iter().find(|p| p.node == node).map(|p| p.backend.clone());
    // float32, uint8 and float16 compute runs on cpu; a node it has no
    // kernel for (CenterCropPad) falls back visibly.
    for n in ["Add_node", "Relu_node", "Mul_node", "add16", "back"] {
        assert_eq!(on(n).as_deref(), Some("cpu"), "{n}");
    }
    let crop = s.placement().iter().find(|p| p.node == "crop").expect("placed");
    assert_eq!(crop.backend, "reference");
    assert!(crop.reason.contains("cpu:") && crop.reason.contains("CenterCropPad"), "{}", crop.reason);
    let got = s.run(&feeds)?;
    let reference = SessionOptions { backends: vec!["reference".into()], ..Default::default() };
    let want = Session::from_bytes(&m, reference)?.run(&feeds)?;
    assert_eq!(got, want, "cpu with fallback must equal the reference");
    // y = [0+0.5, 2.25+1.5, 4-2, 252.5+3] (float16 rounds 252.5 to 252.5), z = y*y.
    let z = got[0].1.as_tensor().expect("tensor").to_f64_vec();
    assert_eq!(z, vec![0.25, 14.0625, 4.0, 255.5 * 255.5]);
    assert_eq!(got[1].1.as_tensor().expect("tensor").dtype(), DType::F16);
    // Strict placement on cpu names a node it cannot run.
    let strict = SessionOptions { strict: true, ..Default::default() };
    let e = Session::from_bytes(&m, strict).err().expect("strict cpu refuses CenterCropPad").to_string();
    assert!(e.contains("cannot run") && e.contains("cpu") && e.contains("crop"), "{e}");
    Ok(())
}

#[test]
fn profile_times_cpu_nodes_one_by_one_and_other_partitions_whole() -> anyhow::Result<()> {
    let m = mixed_dtype_model();
    let q = Value::Tensor(Tensor::from_bytes(DType::U8, vec![4], strata::ir::Buffer::from_vec(vec![1, 2, 3, 4]))?);
    let feeds = [("x", f32s(vec![4], &[1.0, 2.0, 3.0, 4.0])), ("q", q)];
    let plain = Session::from_bytes(&m, SessionOptions::default())?;
    plain.run(&feeds)?;
    assert!(plain.profile().is_empty(), "profiling is off by default");
    let s = Session::from_bytes(&m, SessionOptions { profile: true, optimize: false, ..Default::default() })?;
    assert!(s.fused_groups().is_empty(), "nothing is fused with optimize off");
    for _ in 0..3 {
        s.run(&feeds)?;
    }
    let p = s.profile();
    // Every cpu node is its own entry; reference partitions are timed whole.
    for node in ["Add_node", "Relu_node", "Mul_node"] {
        let e = p.iter().find(|e| e.node == node).unwrap_or_else(|| panic!("{node} in {p:?}"));
        assert_eq!((e.backend.as_str(), e.runs), ("cpu", 3), "{e:?}");
    }
    assert!(p.iter().any(|e| e.backend == "reference" && e.runs == 3), "{p:?}");
    // Entries cover every node once: cpu nodes by name, the rest in partitions.
    let cpu = p.iter().filter(|e| e.backend == "cpu").count();
    assert_eq!(cpu, s.placement().iter().filter(|pl| pl.backend == "cpu").count());
    // Fused (the default), a group is one entry named after its nodes, with the same outputs.
    let f = Session::from_bytes(&m, SessionOptions { profile: true, ..Default::default() })?;
    assert_eq!(f.run(&feeds)?, s.run(&feeds)?);
    let groups = f.fused_groups();
    assert!(!groups.is_empty(), "the cpu float chain is fused");
    let p = f.profile();
    for g in &groups {
        assert_eq!(g.backend, "cpu");
        let e = p.iter().find(|e| e.node == g.nodes.join("+")).unwrap_or_else(|| panic!("{g:?} in {p:?}"));
        assert_eq!((e.op.as_str(), e.runs), (g.ops.as_str(), 1), "{e:?}");
    }
    Ok(())
}

#[test]
fn profile_descends_into_the_branches_of_control_flow() -> anyhow::Result<()> {
    let bytes = strata::ir::artifact::write(&nested_if_ir(2, false))?;
    let s = Session::from_bytes(&bytes, SessionOptions { profile: true, ..Default::default() })?;
    let c = Value::Tensor(Tensor::from_f64(DType::Bool, vec![], &[1.0])?);
    for _ in 0..3 {
        s.run(&[("c", c.clone()), ("x", f32s(vec![1], &[2.0]))])?;
    }
    let p = s.profile();
    let find = |node: &str| p.iter().find(|e| e.node == node).unwrap_or_else(|| panic!("{node} in {p:?}"));
    // The If's own entry, then its branches' nodes by path: the chosen
    // branch ran three times, the other never.
    assert_eq!((find("n0").op.as_str(), find("n0").backend.as_str(), find("n0").runs), ("If", "host", 3));
    let inner = find("n0/then_branch/n1");
    assert_eq!((inner.op.as_str(), inner.runs), ("If", 3), "{inner:?}");
    let leaf = find("n0/then_branch/n1/then_branch/n2");
    assert_eq!((leaf.op.as_str(), leaf.backend.as_str(), leaf.runs), ("Identity", "cpu", 3), "{leaf:?}");
    assert_eq!(find("n0/else_branch/n1/else_branch/n2").runs, 0);
    Ok(())
}

/// `Scan` over the rows of `xs` (read last to first) with a state `s`:
/// `s' = s @ w + row`, scan output `s' * 2` stacked on axis 1; `w` is an
/// outer weight the body captures, the body's inputs are left untyped (as
/// functions expanded from ONNX leave them).
fn scan_model() -> Vec<u8> {
    use strata_test_support::onnx::{f32_init, ints_attr};
    let untyped = |n: &str| ValueInfoProto { name: n.into(), r#type: None, doc_string: String::new() };
    let body = GraphProto {
        name: "body".into(),
        node: vec![
            node("MatMul", &["s_in", "w"], &["sw"], vec![]),
            node("Add", &["sw", "row"], &["s_out"], vec![]),
            node("Add", &["s_out", "s_out"], &["out"], vec![]),
        ],
        input: vec![untyped("s_in"), untyped("row")],
        output: vec![untyped("s_out"), untyped("out")],
        ..Default::default()
    };
    let body_attr = AttributeProto { name: "body".into(), r#type: 5, g: Some(body), ..Default::default() };
    let attrs = vec![
        body_attr,
        strata_test_support::onnx::int_attr("num_scan_inputs", 1),
        ints_attr("scan_input_directions", &[1]),
        ints_attr("scan_output_axes", &[1]),
    ];
    model(
        vec![node("Scan", &["s", "xs"], &["s_final", "ys"], attrs)],
        vec![vi("s", 1, &[1, 2]), vi("xs", 1, &[3, 1, 2])],
        vec![vi("s_final", 1, &[1, 2]), vi("ys", 1, &[1, 3, 2])],
        vec![f32_init("w", &[2, 2], &[0.5, -1.0, 2.0, 0.25])],
    )
}

/// `Loop(m, , v)` whose body adds its iteration number to `v` and scans
/// out `v * v`.
fn counting_loop_model() -> Vec<u8> {
    let body = GraphProto {
        name: "body".into(),
        node: vec![
            node("Identity", &["cond_in"], &["cond_out"], vec![]),
            node("Cast", &["i"], &["fi"], vec![strata_test_support::onnx::int_attr("to", 1)]),
            node("Add", &["v_in", "fi"], &["v_out"], vec![]),
            node("Mul", &["v_out", "v_out"], &["sq"], vec![]),
        ],
        input: vec![vi("i", 7, &[]), vi("cond_in", 9, &[]), vi("v_in", 1, &[2])],
        output: vec![vi("cond_out", 9, &[]), vi("v_out", 1, &[2]), vi("sq", 1, &[2])],
        ..Default::default()
    };
    let body_attr = AttributeProto { name: "body".into(), r#type: 5, g: Some(body), ..Default::default() };
    model(
        vec![node("Loop", &["m", "", "v"], &["v_final", "sqs"], vec![body_attr])],
        vec![vi("m", 7, &[]), vi("v", 1, &[2])],
        vec![vi("v_final", 1, &[2]), vi("sqs", 1, &[-1, 2])],
        vec![],
    )
}

/// With a fast backend, the host runs `Loop` and `Scan` and their bodies'
/// nodes go to that backend (strictly, even with untyped body inputs);
/// results equal the reference's, including a loop that never runs.
#[test]
fn loop_and_scan_bodies_run_on_the_fast_backend() -> anyhow::Result<()> {
    let strict = SessionOptions { strict: true, ..Default::default() };
    let reference = SessionOptions { backends: vec!["reference".into()], ..Default::default() };
    type Runs<'a> = Vec<Vec<(&'a str, Value)>>;
    let cases: Vec<(Vec<u8>, Runs, &str)> = vec![
        (
            scan_model(),
            vec![vec![("s", f32s(vec![1, 2], &[1.0, -2.0])), ("xs", f32s(vec![3, 1, 2], &[1., 2., 3., 4., 5., 6.]))]],
            "Scan",
        ),
        (
            counting_loop_model(),
            [0i64, 1, 4]
                .iter()
                .map(|&m| {
                    vec![
                        ("m", Value::Tensor(Tensor::from_i64(vec![], &[m]).unwrap())),
                        ("v", f32s(vec![2], &[0.5, -3.0])),
                    ]
                })
                .collect(),
            "Loop",
        ),
    ];
    for (m, runs, op) in cases {
        let fast = Session::from_bytes(&m, strict.clone())?;
        let oracle = Session::from_bytes(&m, reference.clone())?;
        let top = fast.placement().iter().find(|p| p.op == op).expect("the control node");
        assert_eq!(top.backend, "host", "{op}: {top:?}");
        let body: Vec<_> = fast.placement().iter().filter(|p| p.node.contains("/body/")).collect();
        assert!(!body.is_empty() && body.iter().all(|p| p.backend == "cpu"), "{op}: {body:?}");
        for inputs in runs {
            let got = fast.run(&inputs)?;
            let want = oracle.run(&inputs)?;
            assert_eq!(got, want, "{op}");
        }
    }
    // Spot values: the loop that never runs gives an empty [0, 2] scan output.
    let s = Session::from_bytes(&counting_loop_model(), strict)?;
    let run = |m: i64| {
        s.run(&[("m", Value::Tensor(Tensor::from_i64(vec![], &[m]).unwrap())), ("v", f32s(vec![2], &[0.5, -3.0]))])
    };
    let out = run(0)?;
    assert_eq!(out[1].1.as_tensor().unwrap().shape(), &[0, 2]);
    // m = 3: v goes +0, +1, +2 -> [3.5, 0]; squares of [0.5,-3], [1.5,-2], [3.5,0].
    let out = run(3)?;
    assert_eq!(out[0].1.as_tensor().unwrap().to_f64_vec(), vec![3.5, 0.0]);
    assert_eq!(out[1].1.as_tensor().unwrap().to_f64_vec(), vec![0.25, 9.0, 2.25, 4.0, 12.25, 0.0]);
    Ok(())
}
