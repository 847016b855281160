//! `strata-test-support` is test-only: no crate of the workspace may list
//! it outside `[dev-dependencies]`.

#[test]
fn only_dev_dependencies_name_this_crate() {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).expect("crates/ is readable") {
        let manifest = entry.expect("dir entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        checked += 1;
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
            } else if line.starts_with("strata-test-support") {
                assert!(
                    section == "[dev-dependencies]",
                    "{}: strata-test-support under {section}, only [dev-dependencies] may name it",
                    manifest.display()
                );
            }
        }
    }
    assert!(checked >= 10, "only {checked} manifests found under {}", crates.display());
}
