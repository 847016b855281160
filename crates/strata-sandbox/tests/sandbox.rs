//! The engine in wasm under wasmtime: the real models and the ONNX node
//! suite give bit-identical outputs to the native reference backend, and
//! hostile models (huge declared tensors, deep graphs, a loop that never
//! ends, allocation past the memory cap) fail with a clear error within
//! their limit while the host keeps working.
//!
//! Needs the guest: `cargo build -p strata-wasi --release --target
//! wasm32-wasip1` (done by `cargo xtask sandbox`, part of `cargo xtask test`).
#![cfg(feature = "wasmtime")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use strata::{DType, Session, SessionOptions, Tensor, Value};
use strata_sandbox::{GuestOptions, Sandbox, SandboxError, SandboxOptions};
use strata_test_support::onnx::{
    chain_model, constant_of_shape_model, endless_loop_model, f32s, huge_declared_tensor_model, i64s, model,
    nested_if_model, node, vi,
};
use strata_wasi::ErrorStage;

/// One compiled guest for every test of this binary.
/// Native sessions compared with the guest run the reference backend, as
/// the guest does (the default native backend is `cpu`).
fn native_options() -> SessionOptions {
    SessionOptions { backends: vec!["reference".into()], ..Default::default() }
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let start = Instant::now();
        let s = Sandbox::new(SandboxOptions::default()).expect("the guest builds and compiles");
        eprintln!("guest compiled in {:.2} s", start.elapsed().as_secs_f64());
        s
    })
}

fn with(memory_limit_bytes: usize, deadline: Duration, session: GuestOptions) -> Sandbox {
    sandbox().with_options(SandboxOptions { memory_limit_bytes, deadline, session })
}

fn data_dir() -> PathBuf {
    strata_conformance::data_root()
}

// ---- models (built with strata-test-support's ONNX builders) ----

/// y = x * x + x, x: float32[n, 3]: a good model to run after every failure.
fn good_model() -> Vec<u8> {
    model(
        vec![node("Mul", &["x", "x"], &["xx"], vec![]), node("Add", &["xx", "x"], &["y"], vec![])],
        vec![vi("x", 1, &[-1, 3])],
        vec![vi("y", 1, &[-1, 3])],
        vec![],
    )
}

/// The host and the sandbox still work: the good model gives the native result.
fn host_keeps_working(sb: &Sandbox) {
    let m = good_model();
    let x = f32s(vec![2, 3], &[0.1, -2.5, 3.0, 1e-3, 7.25, -0.0]);
    let native = Session::from_bytes(&m, native_options()).unwrap().run(&[("x", x.clone())]).unwrap();
    assert_eq!(sb.run(&m, &[("x", x)]).expect("the good model runs after a failure"), native);
}

fn native_outputs(
    model: &[u8],
    inputs: &[(&str, Value)],
    options: SessionOptions,
) -> Result<Vec<(String, Value)>, String> {
    let s = Session::from_bytes(model, options).map_err(|e| e.to_string())?;
    s.run(inputs).map_err(|e| e.to_string())
}

/// Decoded inputs of data set `ds` typed by the session's declared inputs.
fn read_inputs(session: &Session, ds: &Path) -> anyhow::Result<Vec<(String, Value)>> {
    let mut inputs = Vec::new();
    for (i, info) in session.inputs().iter().enumerate() {
        let f = ds.join(format!("input_{i}.pb"));
        if !f.exists() {
            break;
        }
        inputs.push((info.name.clone(), strata_onnx::decode_value(&std::fs::read(&f)?, &info.ty)?));
    }
    Ok(inputs)
}

fn as_refs(v: &[(String, Value)]) -> Vec<(&str, Value)> {
    v.iter().map(|(n, v)| (n.as_str(), v.clone())).collect()
}

// ---- real models ----

#[test]
fn real_models_are_bit_identical_to_native() -> anyhow::Result<()> {
    let suite = strata_conformance::load_suite(strata_conformance::SuiteKind::OnnxModels, &data_dir())?;
    anyhow::ensure!(!suite.is_empty(), "the onnx-models suite is empty");
    let sb = sandbox();
    for case in &suite {
        let bytes = std::fs::read(case.dir.join("model.onnx"))?;
        let session = Session::from_bytes(&bytes, native_options())?;
        for ds in &case.data_sets {
            let inputs = read_inputs(&session, ds)?;
            let t = Instant::now();
            let native = session.run(&as_refs(&inputs))?;
            let native_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let wasm = sb.run(&bytes, &as_refs(&inputs)).map_err(|e| anyhow::anyhow!("{}: {e}", case.name))?;
            let wasm_s = t.elapsed().as_secs_f64();
            assert_eq!(wasm.len(), native.len(), "{}", case.name);
            for ((wn, wv), (nn, nv)) in wasm.iter().zip(&native) {
                assert_eq!(wn, nn, "{}", case.name);
                assert!(
                    wv == nv,
                    "{}: output '{wn}' differs from native: {} vs {}",
                    case.name,
                    wv.describe(),
                    nv.describe()
                );
            }
            eprintln!(
                "{}: {} outputs bit-identical (native {native_s:.2} s, wasm {wasm_s:.2} s)",
                case.name,
                wasm.len()
            );
        }
    }
    eprintln!("real models: {} of {} bit-identical to native", suite.len(), suite.len());
    Ok(())
}

// ---- hostile models ----

fn expect_err(r: Result<Vec<(String, Value)>, SandboxError>) -> SandboxError {
    match r {
        Ok(outs) => panic!("expected an error, got {} outputs", outs.len()),
        Err(e) => e,
    }
}

#[test]
fn huge_declared_tensor_is_a_model_error() {
    let sb = with(256 << 20, Duration::from_secs(20), GuestOptions::default());
    let m = huge_declared_tensor_model();
    let t = Instant::now();
    let e = expect_err(sb.run(&m, &[("x", f32s(vec![1], &[1.0]))]));
    let elapsed = t.elapsed();
    eprintln!("huge declared tensor: {e} ({} ms)", elapsed.as_millis());
    // Natively it is refused too; the wording may differ (on wasm32 the
    // element count already overflows the 32-bit size type).
    let native = Session::from_bytes(&m, native_options()).err().expect("native refuses it too").to_string();
    eprintln!("  (native: {native})");
    assert!(native.contains("'w'"), "{native}");
    assert!(matches!(&e, SandboxError::Model { stage: ErrorStage::Load, .. }), "{e}");
    assert!(e.to_string().starts_with("model error: ") && e.to_string().contains("'w'"), "{e}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    // A 10^12-element tensor computed at run time is refused by the engine's limit.
    let m = constant_of_shape_model();
    let t = Instant::now();
    let e = expect_err(sb.run(&m, &[("shape", i64s(vec![2], &[1_000_000, 1_000_000]))]));
    eprintln!("huge runtime tensor: {e} ({} ms)", t.elapsed().as_millis());
    assert!(
        matches!(&e, SandboxError::Model { stage: ErrorStage::Run, message } if message.contains("ConstantOfShape")),
        "{e}"
    );
    host_keeps_working(&sb);
}

#[test]
fn deep_graphs_fail_clearly_or_match_native() {
    const N: usize = 100_000;
    let m = chain_model("Neg", N, &[4]);
    let x = f32s(vec![4], &[1.5, -2.0, 0.0, 3.25]);
    // Over the node limit given to the engine in the sandbox: a load error.
    let limited = GuestOptions { max_nodes: 50_000, ..GuestOptions::default() };
    let sb = with(512 << 20, Duration::from_secs(30), limited);
    let t = Instant::now();
    let e = expect_err(sb.run(&m, &[("x", x.clone())]));
    let elapsed = t.elapsed();
    eprintln!("10^5-node chain over max_nodes: {e} ({} ms)", elapsed.as_millis());
    assert!(
        matches!(&e, SandboxError::Model { stage: ErrorStage::Load, message }
            if message.contains("100000 nodes") && message.contains("limit of 50000")),
        "{e}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    // Within the limits the same deep graph runs, exactly as natively.
    let sb = with(1 << 30, Duration::from_secs(60), GuestOptions::default());
    let t = Instant::now();
    let wasm = sb.run(&m, &[("x", x.clone())]).expect("the 10^5-node chain runs in the sandbox");
    eprintln!("10^5-node chain within limits: ran in {} ms", t.elapsed().as_millis());
    assert_eq!(wasm, native_outputs(&m, &[("x", x)], native_options()).unwrap());
    // Subgraphs nested 2,000 deep (building a deeper one costs quadratic
    // time here): refused by the parser's recursion limit.
    let m = nested_if_model(2_000);
    let t = Instant::now();
    let c = Value::Tensor(Tensor::from_f64(DType::Bool, vec![], &[1.0]).unwrap());
    let e = expect_err(sb.run(&m, &[("c", c), ("x", f32s(vec![1], &[5.0]))]));
    let elapsed = t.elapsed();
    eprintln!("If nested 2,000 deep: {e} ({} ms)", elapsed.as_millis());
    assert!(
        matches!(&e, SandboxError::Model { stage: ErrorStage::Load, message } if message.contains("recursion")),
        "{e}"
    );
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    host_keeps_working(&sb);
}

#[test]
fn a_loop_that_never_ends_is_stopped_by_the_deadline() {
    const DEADLINE: Duration = Duration::from_millis(1500);
    // The engine's own loop cap raised as far as it goes: only the deadline can stop it.
    let unbounded = GuestOptions { max_loop_iterations: u64::MAX, ..GuestOptions::default() };
    let sb = with(256 << 20, DEADLINE, unbounded);
    let inputs = |m: i64| {
        vec![
            ("m", i64s(vec![], &[m])),
            ("cond", Value::Tensor(Tensor::from_f64(DType::Bool, vec![], &[1.0]).unwrap())),
            ("v", f32s(vec![1], &[3.0])),
        ]
    };
    // A bounded trip count finishes, as natively.
    let m = endless_loop_model();
    assert_eq!(sb.run(&m, &inputs(100)).unwrap(), native_outputs(&m, &inputs(100), native_options()).unwrap());
    let t = Instant::now();
    let e = expect_err(sb.run(&m, &inputs(i64::MAX)));
    let elapsed = t.elapsed();
    eprintln!("endless Loop: {e} ({} ms, deadline {} ms)", elapsed.as_millis(), DEADLINE.as_millis());
    assert!(matches!(e, SandboxError::Deadline { deadline } if deadline == DEADLINE), "{e}");
    assert_eq!(e.to_string(), "deadline of 1500 ms exceeded");
    assert!(elapsed >= DEADLINE && elapsed < DEADLINE + Duration::from_secs(1), "{elapsed:?}");
    host_keeps_working(&sb);
}

#[test]
fn allocation_past_the_memory_cap_is_stopped() {
    const CAP: usize = 256 << 20;
    // The engine's tensor limit raised so that only the sandbox's cap applies.
    let generous = GuestOptions { max_tensor_elements: 1 << 31, ..GuestOptions::default() };
    let sb = with(CAP, Duration::from_secs(60), generous);
    // ConstantOfShape of 2^28 float32 elements: 1 GiB.
    let m = model(
        vec![node("ConstantOfShape", &["shape"], &["y"], vec![])],
        vec![vi("shape", 7, &[1])],
        vec![vi("y", 1, &[-1])],
        vec![],
    );
    // Below the cap it runs, as natively.
    let small = [("shape", i64s(vec![1], &[1 << 20]))];
    assert_eq!(sb.run(&m, &small).unwrap(), native_outputs(&m, &small, native_options()).unwrap());
    let t = Instant::now();
    let e = expect_err(sb.run(&m, &[("shape", i64s(vec![1], &[1 << 28]))]));
    let elapsed = t.elapsed();
    eprintln!("ConstantOfShape of 1 GiB under a 256 MiB cap: {e} ({} ms)", elapsed.as_millis());
    match e {
        SandboxError::MemoryLimit { limit, requested } => assert!(limit == CAP && requested > CAP, "{requested}"),
        other => panic!("expected the memory limit, got {other}"),
    }
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    // Many tensors, each under the engine's limit, that together exceed the cap:
    // 64 outputs of Expand, each 16 MiB.
    let outs: Vec<String> = (0..64).map(|i| format!("y{i}")).collect();
    let nodes = outs.iter().map(|o| node("Expand", &["x", "shape"], &[o], vec![])).collect();
    let m = model(
        nodes,
        vec![vi("x", 1, &[1]), vi("shape", 7, &[1])],
        outs.iter().map(|o| vi(o, 1, &[-1])).collect(),
        vec![],
    );
    let t = Instant::now();
    let e = expect_err(sb.run(&m, &[("x", f32s(vec![1], &[2.0])), ("shape", i64s(vec![1], &[1 << 22]))]));
    let elapsed = t.elapsed();
    eprintln!("64 x 16 MiB Expand outputs under a 256 MiB cap: {e} ({} ms)", elapsed.as_millis());
    assert!(matches!(e, SandboxError::MemoryLimit { limit: CAP, .. }), "{e}");
    assert!(e.to_string().starts_with("memory limit of 268435456 bytes exceeded"), "{e}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    host_keeps_working(&sb);
}

#[test]
fn garbage_model_bytes_are_a_model_error() {
    let sb = sandbox();
    for bytes in [&b"\xff\xff\xff\xff garbage"[..], &good_model()[..10], b""] {
        let e = expect_err(sb.run(bytes, &[]));
        let native = Session::from_bytes(bytes, native_options()).err().expect("native refuses it").to_string();
        assert!(matches!(&e, SandboxError::Model { stage: ErrorStage::Load, message } if *message == native), "{e}");
    }
    host_keeps_working(sb);
}

/// A minimal WASI command (hand-assembled wasm): one page of memory and a
/// `_start` whose body is `body` (no locals).
fn wasm_command(body: &[u8]) -> Vec<u8> {
    let section = |id: u8, content: &[u8]| {
        let mut s = vec![id, content.len() as u8];
        s.extend_from_slice(content);
        s
    };
    let mut code = vec![1, body.len() as u8 + 1, 0];
    code.extend_from_slice(body);
    [
        &b"\0asm\x01\0\0\0"[..],
        &section(1, &[1, 0x60, 0, 0]), // type 0: () -> ()
        &section(3, &[1, 0]),          // function 0 has type 0
        &section(5, &[1, 0, 1]),       // memory 0: at least one page
        &section(7, &[[2, 6].as_slice(), b"memory", &[2, 0, 6], b"_start", &[0, 0]].concat()),
        &section(10, &code),
    ]
    .concat()
}

#[test]
fn a_guest_that_traps_or_spins_is_stopped() {
    let opts = SandboxOptions { deadline: Duration::from_millis(300), ..SandboxOptions::default() };
    // `unreachable`
    let trapping = Sandbox::from_wasm(&wasm_command(&[0x00, 0x0b]), opts.clone()).unwrap();
    let e = expect_err(trapping.run(&good_model(), &[]));
    eprintln!("guest executing `unreachable`: {e}");
    assert!(matches!(&e, SandboxError::Trap(m) if m.contains("unreachable")), "{e}");
    // `loop br 0 end`: spins without calling anything.
    let spinning = Sandbox::from_wasm(&wasm_command(&[0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b]), opts).unwrap();
    let t = Instant::now();
    let e = expect_err(spinning.run(&good_model(), &[]));
    eprintln!("guest spinning in a loop: {e} ({} ms)", t.elapsed().as_millis());
    assert!(matches!(e, SandboxError::Deadline { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // A module that is not wasm.
    let e = Sandbox::from_wasm(b"not wasm", SandboxOptions::default()).unwrap_err();
    assert!(matches!(e, SandboxError::Guest(_)), "{e}");
    host_keeps_working(sandbox());
}

// ---- the ONNX node suite ----

/// How one node case compared.
enum CaseCompare {
    /// Every data set: both succeeded with bit-identical outputs.
    Identical { native_passes: bool },
    /// Both refused (load or run); `same_message`: with the same message.
    BothFail { same_message: bool },
    /// Anything else: outputs differ, or only one side failed, or the messages differ.
    Differ { native_passes: bool, what: String },
}

/// Where two output lists first differ: output name, element and bits.
fn first_difference(native: &[(String, Value)], wasm: &[(String, Value)]) -> String {
    if native.len() != wasm.len() {
        return format!("{} outputs natively, {} in wasm", native.len(), wasm.len());
    }
    for ((name, n), (_, w)) in native.iter().zip(wasm) {
        if n == w {
            continue;
        }
        let (Some(nt), Some(wt)) = (n.as_tensor(), w.as_tensor()) else {
            return format!("output '{name}' differs: {} vs {}", n.describe(), w.describe());
        };
        let (Some(nb), Some(wb)) = (nt.bytes(), wt.bytes()) else {
            return format!("output '{name}' differs ({})", n.describe());
        };
        let size = nt.dtype().byte_len(1).unwrap_or(1).max(1);
        let diff = nb.as_slice().iter().zip(wb.as_slice()).position(|(a, b)| a != b).unwrap_or(0) / size;
        let bits = |b: &[u8]| b.get(diff * size..(diff + 1) * size).map(|x| format!("{x:02x?}")).unwrap_or_default();
        return format!(
            "output '{name}' ({}) differs first at element {diff}: native bytes {} vs wasm {}",
            n.describe(),
            bits(nb.as_slice()),
            bits(wb.as_slice())
        );
    }
    "outputs differ".into()
}

fn compare_case(sb: &Sandbox, case: &strata_conformance::Case) -> anyhow::Result<CaseCompare> {
    let bytes = std::fs::read(case.dir.join("model.onnx"))?;
    let opts = native_options();
    let session = match Session::from_bytes(&bytes, opts.clone()) {
        Ok(s) => s,
        Err(native) => {
            return Ok(match sb.run(&bytes, &[]) {
                Err(e) => CaseCompare::BothFail {
                    same_message: matches!(&e, SandboxError::Model { message, .. } if *message == native.to_string()),
                },
                Ok(outs) => CaseCompare::Differ {
                    native_passes: false,
                    what: format!("native load failed ({native}), wasm gave {} outputs", outs.len()),
                },
            });
        }
    };
    let mut native_passes = !case.data_sets.is_empty();
    let mut both_failed = None;
    for ds in &case.data_sets {
        let inputs = read_inputs(&session, ds)?;
        let native = session.run(&as_refs(&inputs)).map_err(|e| e.to_string());
        let wasm = sb.run(&bytes, &as_refs(&inputs));
        match (&native, &wasm) {
            (Ok(n), Ok(w)) => {
                // Does the native run pass the case's own check?
                for (i, (_, v)) in n.iter().enumerate() {
                    let f = ds.join(format!("output_{i}.pb"));
                    let ok = std::fs::read(&f)
                        .ok()
                        .and_then(|b| strata_onnx::decode_value(&b, &session.outputs()[i].ty).ok());
                    native_passes &= ok.is_some_and(|exp| {
                        strata_conformance::compare_values(v, &exp, strata_conformance::Tolerance::ONNX).is_ok()
                    });
                }
                if n != w {
                    return Ok(CaseCompare::Differ { native_passes, what: first_difference(n, w) });
                }
            }
            (Err(n), Err(w)) => {
                native_passes = false;
                let same = matches!(w, SandboxError::Model { message, .. } if message == n);
                both_failed = Some(both_failed.unwrap_or(true) && same);
            }
            _ => {
                return Ok(CaseCompare::Differ {
                    native_passes: native.is_ok() && native_passes,
                    what: format!("native: {:?}, wasm: {:?}", native.as_ref().map(|o| o.len()), wasm.map(|o| o.len())),
                });
            }
        }
    }
    Ok(match both_failed {
        Some(same_message) => CaseCompare::BothFail { same_message },
        None => CaseCompare::Identical { native_passes },
    })
}

#[test]
fn node_suite_is_bit_identical_to_native() -> anyhow::Result<()> {
    let cases = strata_conformance::load_suite(strata_conformance::SuiteKind::OnnxNode, &data_dir())?;
    anyhow::ensure!(!cases.is_empty(), "the onnx-node suite is empty");
    // Per case: 1 GiB of guest memory and 60 s.
    let sb = with(1 << 30, Duration::from_secs(60), GuestOptions::default());
    let start = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(cases.len()));
    std::thread::scope(|s| {
        for _ in 0..std::thread::available_parallelism().map_or(2, |n| n.get()).min(4) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let r = compare_case(&sb, case).map_err(|e| e.to_string());
                    results.lock().unwrap().push((case.name.clone(), r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut identical, mut identical_passing, mut differ, mut differ_passing) = (0, 0, 0, 0);
    let (mut both_fail, mut both_fail_same_message) = (0, 0);
    let mut problems = Vec::new();
    for (name, r) in &results {
        match r {
            Ok(CaseCompare::Identical { native_passes }) => {
                identical += 1;
                identical_passing += *native_passes as usize;
            }
            Ok(CaseCompare::BothFail { same_message }) => {
                both_fail += 1;
                both_fail_same_message += *same_message as usize;
                if !same_message {
                    eprintln!("  {name}: fails in both, with different messages");
                }
            }
            Ok(CaseCompare::Differ { native_passes, what }) => {
                differ += 1;
                differ_passing += *native_passes as usize;
                problems.push(format!("{name}: {what}"));
            }
            Err(e) => problems.push(format!("{name}: cannot read the case: {e}")),
        }
    }
    eprintln!(
        "node suite in wasm vs native: {} cases compared in {:.1} s: {identical} bit-identical ({identical_passing} of \
         them passing natively), {differ} differing ({differ_passing} passing natively), {both_fail} failing in both \
         ({both_fail_same_message} with the same message)",
        results.len(),
        start.elapsed().as_secs_f64()
    );
    for p in &problems {
        eprintln!("  {p}");
    }
    assert!(problems.is_empty(), "{} cases differ between wasm and native (listed above)", problems.len());
    assert_eq!(identical + both_fail, cases.len());
    Ok(())
}
