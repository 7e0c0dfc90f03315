//! The build script of every libbpf (C) implementation `impls/libbpf/<usecase>/`, as
//! libbpf-bootstrap builds its tools: the kernel program's object (compiled exactly as for
//! libbpf-rs, [`libbpf_skel_build::build_object`]), its C skeleton from `bpftool gen skeleton`
//! into `$OUT_DIR/<usecase>.skel.h`, and the C loader `<usecase>.c` with `../common/helpers.c`,
//! compiled by cc against the headers of the libbpf that libbpf-sys builds (v1.5.1, the one
//! libbpf-rs links) and linked with it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use libbpf_skel_build::Headers;

/// Call from `build.rs`; panics (failing the build) with the reason.
pub fn build(headers: Headers) {
    let usecase = libbpf_skel_build::usecase();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let kernel = libbpf_skel_build::build_object(headers);
    let object = out_dir.join(format!("{usecase}.bpf.o"));
    skeleton(&object, &usecase, &out_dir.join(format!("{usecase}.skel.h")));

    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let common = manifest.parent().expect("packages live in impls/libbpf/<usecase>").join("common");
    // libbpf-sys (links = "bpf") exports the directory of libbpf's headers to direct dependents;
    // the UAPI headers libbpf is built with (Debian 6.1's lack TCX) stay in its sources.
    let libbpf = env::var_os("DEP_BPF_INCLUDE").expect("DEP_BPF_INCLUDE: the package must depend on libbpf-sys");
    let sources = [manifest.join(format!("{usecase}.c")), common.join("helpers.c")];
    cc::Build::new()
        .files(&sources)
        .include(&out_dir) // the skeleton
        .include(kernel.parent().expect("the kernel program is in a directory"))
        .include(&common)
        .include(libbpf)
        .include(libbpf_uapi())
        .flag("-Wall")
        .flag("-Werror")
        .compile(&format!("{usecase}_loader"));
    for file in sources.iter().chain([&common.join("helpers.h")]) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

/// `libbpf/include/uapi` in the libbpf-sys sources (where libbpf-tools takes its UAPI headers
/// from too), found through `cargo metadata`.
fn libbpf_uapi() -> PathBuf {
    let cargo = env::var_os("CARGO").expect("cargo sets CARGO");
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked", "--filter-platform", &target])
        .current_dir(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("running cargo metadata: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata --offline (to find libbpf-sys' UAPI headers) failed; it needs every crate of \
         Cargo.lock downloaded: run `cargo fetch --locked` first (`make build` does).\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "libbpf-sys")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("libbpf-sys in the dependency graph");
    Path::new(manifest).with_file_name("libbpf").join("include").join("uapi")
}

fn skeleton(object: &Path, usecase: &str, out: &Path) {
    let gen = Command::new("bpftool")
        .args(["gen", "skeleton"])
        .arg(object)
        .args(["name", &format!("{usecase}_bpf")])
        .output()
        .unwrap_or_else(|e| panic!("running bpftool (`make setup` installs it): {e}"));
    assert!(gen.status.success(), "bpftool gen skeleton {}: {}", object.display(), String::from_utf8_lossy(&gen.stderr));
    std::fs::write(out, &gen.stdout).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
