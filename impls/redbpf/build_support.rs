//! Shared by the build scripts here (`#[path]`): building a kernel program with cargo-bpf, and
//! running another cargo, whose toolchain and settings must come from its own directory, not
//! from the cargo running the build script.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the kernel program in `kernel/` next to the calling package's manifest with
/// `cargo bpf build` (cargo-bpf 2.3.0 with LLVM 13, installed by setup.sh) and copies the object
/// to `$OUT_DIR/<program>.elf`. The program's own `types/` crate, if any, is watched too.
///
/// redbpf-probes generates its kernel bindings from Linux headers at build time. The running
/// kernel's are not installed (and RedBPF's bindgen cannot parse a 6.18 BTF dump), so the build
/// uses Debian's 6.1 headers: `KERNEL_VERSION` if set, else the one `/lib/modules/6.1.*` with a
/// `build/Makefile`.
pub fn build_kernel(program: &str) {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let kernel = dir.join("kernel");
    // Not `kernel/` itself: the nested build touches that directory.
    for path in [kernel.join("src"), kernel.join("Cargo.toml"), dir.join("types")] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-env-changed=KERNEL_VERSION");
    let headers = env::var("KERNEL_VERSION").unwrap_or_else(|_| debian_headers());

    let target = out.join("kernel-target");
    let mut cargo_bpf = Command::new("cargo-bpf");
    cargo_bpf.args(["bpf", "build", "--target-dir"]).arg(&target).current_dir(&kernel);
    // Not this build's cargo settings: cargo-bpf runs `cargo rustc` itself, on the toolchain of
    // impls/redbpf/rust-toolchain.
    clean_cargo_env(&mut cargo_bpf);
    cargo_bpf.env("KERNEL_VERSION", &headers);
    let status = cargo_bpf.status().expect("running cargo-bpf (scripts/setup.sh installs it)");
    assert!(status.success(), "cargo bpf build failed (kernel headers {})", headers);
    let object = target.join("bpf/programs").join(program).join(format!("{}.elf", program));
    std::fs::copy(&object, out.join(format!("{}.elf", program))).expect("copying the BPF object");
}

/// The version directory of Debian's 6.1 kernel headers (package linux-headers-amd64).
fn debian_headers() -> String {
    let mut found: Vec<String> = std::fs::read_dir("/lib/modules")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|v| v.starts_with("6.1.") && Path::new("/lib/modules").join(v).join("build/Makefile").exists())
        .collect();
    found.sort();
    found.pop().expect("no 6.1 kernel headers under /lib/modules: install linux-headers-amd64 (scripts/setup.sh)")
}

/// Removes what cargo tells its build scripts (`CARGO_*`, `RUST*`, ...) from `command`'s
/// environment, keeping where cargo and rustup live.
pub fn clean_cargo_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO") && key != "CARGO_HOME") || (key.starts_with("RUST") && key != "RUSTUP_HOME") {
            command.env_remove(key.as_ref());
        }
    }
}
