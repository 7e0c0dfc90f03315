//! Builds the tracepoint program (`kernel/`) for bpfel-unknown-none with the pinned nightly and
//! bpf-linker; aya-build copies the object to `$OUT_DIR/comtrace` (the kernel bin's name).
//! The kernel crate's own build script generates its kernel type bindings from this machine's BTF.
use std::path::Path;

fn main() -> aya_build::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // One pin for every Aya kernel program, shared with scripts/setup.sh.
    let pin = dir.join("../nightly-toolchain");
    let nightly = std::fs::read_to_string(&pin)?;
    println!("cargo:rerun-if-changed={}", pin.display());
    // aya-build watches `root_dir`; the types the program is built from live next to it.
    println!("cargo:rerun-if-changed={}", dir.join("types").display());
    let root_dir = dir.join("kernel");
    let kernel = aya_build::Package {
        name: "comtrace-aya-kernel",
        root_dir: root_dir.to_str().expect("UTF-8 path"),
        ..Default::default()
    };
    aya_build::build_ebpf([kernel], aya_build::Toolchain::Custom(nightly.trim()))
}
