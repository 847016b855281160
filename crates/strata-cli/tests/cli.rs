//! End-to-end tests of the `strata` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata::Value;
use strata_conformance::{Expectations, SuiteKind, Tolerance, compare_values, data_root, load_suite};

fn strata() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strata"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run strata");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{cmd:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn run_without_model_uses_the_builtin_example() {
    let out = ok(strata().arg("run"));
    assert!(out.contains("output y: float32[1, 3]"), "{out}");
}

#[test]
fn bad_model_file_fails_with_a_message() {
    let d = temp_dir("bad");
    let p = d.join("bad.onnx");
    std::fs::write(&p, b"\x08\x07\x12\xff\xff").unwrap();
    let out = strata().arg("run").arg(&p).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error:") && err.contains("bad.onnx"), "{err}");
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.exists()).collect()
}

/// Every real model runs through `strata run` (ONNX and compiled `.strata`,
/// on the default backend) and matches onnxruntime's outputs, except those
/// the default backend's manifest lists as expected failures.
#[test]
fn real_models_match_onnxruntime_through_the_cli() -> anyhow::Result<()> {
    let cases = load_suite(SuiteKind::OnnxModels, &data_root())?;
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/expectations");
    let exp = Expectations::load(&Expectations::path_for(&manifest, "onnx-models", strata::DEFAULT_BACKEND))?;
    let mut checked = 0;
    for case in &cases {
        if let Some(reason) = exp.failing.get(&case.name) {
            println!("{}: expected to fail on {} ({reason})", case.name, strata::DEFAULT_BACKEND);
            continue;
        }
        let model = strata_onnx::import_path(&case.dir.join("model.onnx"))?;
        let g = model.main_graph();
        let ds = &case.data_sets[0];
        let dir = temp_dir(&case.name);
        let compiled = dir.join("model.strata");
        ok(strata().arg("compile").arg(case.dir.join("model.onnx")).arg("-o").arg(&compiled));
        let mut args: Vec<String> = Vec::new();
        for (k, f) in numbered(ds, "input").iter().enumerate() {
            let v = g.value(g.inputs[k]);
            let Value::Tensor(t) = strata_onnx::decode_value(&std::fs::read(f)?, &v.ty)? else {
                anyhow::bail!("non-tensor input")
            };
            let npy = dir.join(format!("in{k}.npy"));
            std::fs::write(&npy, strata::npy::write(&t)?)?;
            args.push("--input".into());
            args.push(format!("{}={}", v.name, npy.display()));
        }
        for (label, model_path) in [("onnx", case.dir.join("model.onnx")), ("strata", compiled.clone())] {
            let out_dir = dir.join(format!("out-{label}"));
            ok(strata().arg("run").arg(&model_path).args(&args).arg("--output-dir").arg(&out_dir));
            for (k, f) in numbered(ds, "output").iter().enumerate() {
                let v = g.value(g.outputs[k]);
                let expected = strata_onnx::decode_value(&std::fs::read(f)?, &v.ty)?;
                let got = strata::npy::read(&std::fs::read(out_dir.join(format!("{}.npy", sanitize(&v.name))))?)?;
                compare_values(&Value::Tensor(got), &expected, Tolerance::MODELS)
                    .map_err(|m| anyhow::anyhow!("{} ({label}) output '{}': {m}", case.name, v.name))?;
            }
        }
        checked += 1;
        println!("{}: matches onnxruntime via `strata run` (.onnx and .strata)", case.name);
    }
    println!("{checked} of {} models checked", cases.len());
    Ok(())
}

/// `strata migrate --target reference` on a real model: every node passes
/// per operator and in every stage, and both report files are written.
#[test]
fn migrate_on_the_reference_target_passes_and_writes_reports() -> anyhow::Result<()> {
    let case = data_root().join("onnx-models").join("ppocr_mobile_v2_cls");
    let model = strata_onnx::import_path(&case.join("model.onnx"))?;
    let g = model.main_graph();
    let dir = temp_dir("migrate");
    let mut args: Vec<String> = Vec::new();
    for (k, f) in numbered(&case.join("test_data_set_0"), "input").iter().enumerate() {
        let v = g.value(g.inputs[k]);
        let Value::Tensor(t) = strata_onnx::decode_value(&std::fs::read(f)?, &v.ty)? else {
            anyhow::bail!("non-tensor input")
        };
        let npy = dir.join(format!("in{k}.npy"));
        std::fs::write(&npy, strata::npy::write(&t)?)?;
        args.push("--input".into());
        args.push(format!("{}={}", v.name, npy.display()));
    }
    let report = dir.join("report");
    let out = ok(strata()
        .arg("migrate")
        .arg(case.join("model.onnx"))
        .args(["--target", "reference", "--stages", "3"])
        .args(&args)
        .arg("--report")
        .arg(&report));
    assert!(out.contains("first divergence: none"), "{out}");
    let html = std::fs::read_to_string(report.join("report.html"))?;
    assert!(html.contains("<svg") && html.contains("</html>"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report.join("report.json"))?)?;
    let nodes = json["per_operator"].as_array().map_or(0, |a| a.len());
    // The session folds constants first, so the report covers at most the imported nodes.
    assert!(nodes > 0 && nodes <= g.nodes.len(), "{nodes} nodes reported, {} imported", g.nodes.len());
    assert!(json["per_operator"].as_array().into_iter().flatten().all(|n| n["status"] == "pass"), "{out}");
    assert_eq!(json["summary"]["passed"].as_u64(), Some(nodes as u64));
    assert_eq!(json["summary"]["stages_passed"].as_u64(), Some(3));
    Ok(())
}

/// Top-down bring-up on the GPU: every supported node of a real model passes
/// per operator and in every stage; with a deliberate error injected into one
/// node's kernel output (test-only hook), both phases name exactly that node.
#[test]
fn migrate_to_gpu_names_an_injected_fault_in_both_phases() -> anyhow::Result<()> {
    let cases = load_suite(SuiteKind::OnnxModels, &data_root())?;
    let case = cases.iter().find(|c| c.name == "ppocr_mobile_v2_cls").expect("ppocr_mobile_v2_cls in the suite");
    let model = strata_onnx::import_path(&case.dir.join("model.onnx"))?;
    let g = model.main_graph();
    let dir = temp_dir("migrate-gpu");
    let v = g.value(g.inputs[0]);
    let Value::Tensor(t) = strata_onnx::decode_value(&std::fs::read(case.data_sets[0].join("input_0.pb"))?, &v.ty)?
    else {
        anyhow::bail!("non-tensor input")
    };
    let npy = dir.join("x.npy");
    std::fs::write(&npy, strata::npy::write(&t)?)?;
    let input = format!("{}={}", v.name, npy.display());
    let base = || {
        let mut c = strata();
        c.arg("migrate").arg(case.dir.join("model.onnx")).args(["--target", "gpu", "--stages", "4", "--input", &input]);
        c.env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
        c
    };
    let out = ok(&mut base());
    assert!(out.contains("stages: 4 of 4 passed") && out.contains("first divergence: none"), "{out}");
    let faulty = base().args(["--inject-fault", "Conv@22"]).output()?;
    let text = String::from_utf8_lossy(&faulty.stdout).into_owned() + &String::from_utf8_lossy(&faulty.stderr);
    assert!(!faulty.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("first failing operator: #") && l.ends_with(" Conv@22 (Conv)")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("first divergence: stage") && l.ends_with(" Conv@22 (Conv)")), "{text}");
    Ok(())
}

/// `strata bench --profile` accounts for every node of the model: per op
/// kind (node counts add up to the model's) and the slowest nodes by name.
#[test]
fn bench_profile_lists_time_per_op_kind_and_per_node() -> anyhow::Result<()> {
    let out = ok(strata().args(["bench", "--profile", "--iterations", "3", "--json", "--no-optimize"]));
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(v["backend"], "cpu", "{out}");
    let by_op = v["profile"]["by_op"].as_array().expect("by_op");
    let ops: Vec<&str> = by_op.iter().filter_map(|e| e["op"].as_str()).collect();
    assert!(ops.contains(&"Gemm") && ops.contains(&"Relu"), "{out}");
    let nodes: u64 = by_op.iter().filter_map(|e| e["nodes"].as_u64()).sum();
    assert_eq!(nodes, 3, "the example MLP has 3 nodes: {out}");
    assert!(by_op.iter().all(|e| e["ms_per_run"].as_f64().is_some_and(|t| t >= 0.0)), "{out}");
    let slowest: Vec<&str> =
        v["profile"]["slowest"].as_array().expect("slowest").iter().filter_map(|e| e["node"].as_str()).collect();
    assert_eq!(slowest.len(), 3);
    for n in ["fc1", "fc2", "relu"] {
        assert!(slowest.contains(&n), "{out}");
    }
    let text = ok(strata().args(["bench", "--profile", "--iterations", "2", "--top", "1"]));
    assert!(text.contains("time per op kind") && text.contains("slowest 1 nodes"), "{text}");
    // Optimised (the default), the first Gemm and its Relu run as one fused node.
    let out = ok(strata().args(["bench", "--profile", "--iterations", "2", "--json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    let slowest: Vec<&str> =
        v["profile"]["slowest"].as_array().expect("slowest").iter().filter_map(|e| e["node"].as_str()).collect();
    assert!(slowest.contains(&"fc1+relu") && slowest.contains(&"fc2") && slowest.len() == 2, "{out}");
    Ok(())
}

/// `strata inspect` lists the groups the cpu backend fuses, and none with
/// `--no-optimize`.
#[test]
fn inspect_shows_the_fused_groups() -> anyhow::Result<()> {
    let model = data_root().join("onnx-models").join("ppocr_mobile_v2_cls").join("model.onnx");
    let out = ok(strata().arg("inspect").arg(&model).args(["--backend", "cpu"]));
    assert!(out.contains("fused:") && out.contains("Conv+"), "{out}");
    let plain = ok(strata().arg("inspect").arg(&model).args(["--backend", "cpu", "--no-optimize"]));
    assert!(plain.contains("backend cpu:") && !plain.contains("fused:"), "{plain}");
    Ok(())
}
