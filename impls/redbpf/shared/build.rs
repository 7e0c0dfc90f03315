//! Builds `lifecycle/` (bpfeval-shared as a shared object, a member of the root workspace) with
//! the root workspace's toolchain and lockfile and this crate's use case features, and leaves the
//! library in OUT_DIR for `include_bytes!`. This build runs on Rust 1.59; the nested one on the toolchain named in the
//! root `rust-toolchain.toml`, in a target directory of its own inside this build's: one for
//! every loader built there, so that, like bpfeval-shared in the root workspace, its crates are
//! compiled once, not once per tool (it is our plumbing, not RedBPF's cost).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

// Only `clean_cargo_env` is used here.
#[allow(dead_code)]
#[path = "../build_support.rs"]
mod build_support;

const LIBRARY: &str = "libbpfeval_shared_lifecycle.so";

fn main() {
    let here = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = here.join("../../..").canonicalize().expect("the repository root");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let toolchain_file = root.join("rust-toolchain.toml");
    let toolchain = channel(&toolchain_file);
    for path in [
        &toolchain_file,
        &root.join("Cargo.lock"),
        &root.join("impls/shared"),
        &here.join("lifecycle"),
        &here.join("ffi"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    // The use cases this loader enabled (`CARGO_FEATURE_<NAME>`); the lifecycle has the same ones.
    let features: Vec<String> = env::vars()
        .filter_map(|(key, _)| key.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase().replace('_', "-")))
        .collect();

    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    assert!(out.ancestors().nth(2).and_then(Path::file_name) == Some(std::ffi::OsStr::new("build")), "unexpected OUT_DIR {}", out.display());
    let target = out.ancestors().nth(4).expect("OUT_DIR is inside the target directory").join("lifecycle-target");
    let mut cargo = Command::new("rustup");
    cargo
        .args(["run", &toolchain, "cargo", "build", "--release", "--locked", "-p", "bpfeval-shared-lifecycle"])
        .args(["--features", &features.join(",")])
        .current_dir(&root);
    // What this (1.59) cargo tells its build scripts must not leak into the nested cargo.
    build_support::clean_cargo_env(&mut cargo);
    cargo.env("CARGO_TARGET_DIR", &target);
    let status = cargo.status().expect("running rustup (see scripts/setup.sh)");
    assert!(status.success(), "building bpfeval-shared-lifecycle with {} failed", toolchain);
    // Stripped like the loaders the harness measures, since it is embedded in them.
    let status = Command::new("strip")
        .arg("-o")
        .arg(out.join(LIBRARY))
        .arg(target.join("release").join(LIBRARY))
        .status()
        .expect("running strip");
    assert!(status.success(), "strip {} failed", LIBRARY);
}

/// `channel = "..."` of a rust-toolchain.toml.
fn channel(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("reading the root rust-toolchain.toml");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .next()
        .expect("a channel in the root rust-toolchain.toml")
}
