//! The build script of every Aya implementation `impls/aya/<usecase>/`: builds its `kernel/`
//! crate (`<usecase>-aya-kernel`) for bpfel-unknown-none with the nightly pinned in
//! `impls/aya/nightly-toolchain` and bpf-linker. aya-build copies the object to
//! `$OUT_DIR/<kernel bin name>`, where the loader's `include_bytes_aligned!` finds it.

use std::env;
use std::path::PathBuf;

/// Call from `build.rs`; panics (failing the build) with aya-build's error.
pub fn build_kernel() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let loader = env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    // One pin for every Aya kernel program, shared with scripts/setup.sh.
    let pin = dir.join("../nightly-toolchain");
    let nightly = std::fs::read_to_string(&pin).unwrap_or_else(|e| panic!("reading {}: {e}", pin.display()));
    println!("cargo:rerun-if-changed={}", pin.display());
    // aya-build watches `root_dir`; the types the program is built from live next to it.
    println!("cargo:rerun-if-changed={}", dir.join("types").display());
    let root_dir = dir.join("kernel");
    let name = format!("{loader}-kernel");
    let kernel = aya_build::Package {
        name: &name,
        root_dir: root_dir.to_str().expect("UTF-8 path"),
        ..Default::default()
    };
    if let Err(e) = aya_build::build_ebpf([kernel], aya_build::Toolchain::Custom(nightly.trim())) {
        panic!("building {name} with {}: {e:#}", nightly.trim());
    }
}
