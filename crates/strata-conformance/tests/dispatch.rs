//! ARCHITECTURE.md's claim that dispatch is exhaustive: the per-op matches
//! of shape inference and of each backend's dispatch carry
//! `#[deny(clippy::wildcard_enum_match_arm)]`, so a catch-all arm over an op
//! enum fails `cargo clippy -D warnings` and the compiler names every place
//! a new operator must be handled. This test checks that the attribute is
//! still on every one of those functions (clippy checks the rest).

use std::path::{Path, PathBuf};

const DENY: &str = "#[deny(clippy::wildcard_enum_match_arm)]";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the function whose signature line starts with `sig` (after
/// indentation) in `file` is directly preceded by [`DENY`].
fn denies_catch_alls(file: &Path, sig: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let found: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with(sig)).collect();
    match found.as_slice() {
        [i] if *i > 0 && lines[i - 1] == DENY => Ok(()),
        [_] => Err(format!("{}: `{sig}` lacks {DENY}", file.display())),
        [] => Err(format!("{}: no `{sig}`", file.display())),
        _ => Err(format!("{}: `{sig}` is ambiguous", file.display())),
    }
}

/// The op families of the IR (its `ops/*.rs` files that declare one).
fn families() -> Vec<String> {
    let dir = repo().join("crates/strata-ir/src/ops");
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .expect("reading strata-ir/src/ops")
        .filter_map(|e| {
            let path = e.expect("reading strata-ir/src/ops").path();
            let text = std::fs::read_to_string(&path).ok()?;
            text.contains("crate::op_family! {").then(|| path.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn per_op_dispatch_names_every_operator() {
    let families = families();
    assert_eq!(families.len(), 10, "op families: {families:?}");
    let mut checks: Vec<(PathBuf, &str)> = Vec::new();
    let r = repo();
    // Shape inference: one rule per family, next to its variants.
    checks.push((r.join("crates/strata-ir/src/infer.rs"), "fn infer_op("));
    for f in &families {
        checks.push((r.join(format!("crates/strata-ir/src/ops/{f}.rs")), "pub fn infer("));
    }
    checks.push((r.join("crates/strata-ir/src/ops/elementwise.rs"), "pub fn ulp_budget("));
    // The reference runs every operator: one `run` per family.
    checks.push((r.join("crates/strata-reference/src/ops/mod.rs"), "pub fn run("));
    for f in &families {
        checks.push((r.join(format!("crates/strata-reference/src/ops/{f}.rs")), "pub fn run("));
    }
    // The CPU backend: `build`, and the family `build`s it calls.
    for f in ["mod", "elementwise", "movement", "nn", "reduce"] {
        checks.push((r.join(format!("crates/strata-cpu/src/ops/{f}.rs")), "pub(crate) fn build("));
    }
    // The GPU backend: `plan`, the planners it hands a whole family
    // (`TensorOp` to movement.rs, `SignalOp` to signal.rs) and the
    // elementwise planner with its code tables.
    checks.push((r.join("crates/strata-gpu/src/ops/mod.rs"), "pub(crate) fn plan("));
    checks.push((r.join("crates/strata-gpu/src/ops/movement.rs"), "pub(super) fn plan("));
    checks.push((r.join("crates/strata-gpu/src/ops/signal.rs"), "pub(super) fn plan("));
    for sig in ["pub(super) fn plan(", "pub(crate) fn unary_code(", "fn binary_code(", "fn int_binary_code("] {
        checks.push((r.join("crates/strata-gpu/src/ops/elementwise.rs"), sig));
    }
    let failures: Vec<String> = checks.iter().filter_map(|(file, sig)| denies_catch_alls(file, sig).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// ARCHITECTURE.md's invariant that no source file in `crates/`, `xtask/`
/// or `shaders/` is over 1,000 lines (generated files aside).
#[test]
fn no_source_file_over_1000_lines() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if p.is_dir() {
                if !matches!(name.as_str(), "target" | "generated" | "node_modules") && !name.starts_with('.') {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "rs" || x == "wgsl") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for d in ["crates", "xtask", "shaders"] {
        walk(&repo().join(d), &mut files);
    }
    assert!(files.len() > 100, "found only {} source files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).ok()?.lines().count();
            (n > 1000).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "source files over 1,000 lines: {long:?}");
}
