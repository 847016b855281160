//! The guest's shadow stack (in linear memory) is 1 MiB by default on
//! wasm32; the reference interpreter recurses into subgraphs, so the wasm
//! build gets the size below. Native builds are unchanged.

/// Shadow stack of the wasm32 guest, in bytes.
const WASM_STACK_BYTES: u32 = 8 << 20;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_FAMILY").is_ok_and(|f| f.split(',').any(|f| f == "wasm")) {
        println!("cargo:rustc-link-arg-bins=-z");
        println!("cargo:rustc-link-arg-bins=stack-size={WASM_STACK_BYTES}");
    }
}
