//! Compiles kernel/loadbalancer.bpf.c with clang and generates the libbpf skeleton
//! (`OUT_DIR/loadbalancer.skel.rs`) that main.rs includes.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "kernel/loadbalancer.bpf.c";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // `-target bpf` drops clang's multiarch include dir, where Debian keeps <asm/types.h>
    // (included by <linux/bpf.h>). libbpf's own headers (<bpf/bpf_helpers.h>) are supplied by
    // libbpf-cargo from the vendored libbpf-sys.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    SkeletonBuilder::new()
        .source(SRC)
        // Kept in OUT_DIR (not a temp dir) so the harness can measure the object's size.
        .obj(out_dir.join("loadbalancer.bpf.o"))
        .clang_args([multiarch.as_str(), "-Wall", "-Werror"])
        .build_and_generate(out_dir.join("loadbalancer.skel.rs"))
        .unwrap_or_else(|e| panic!("building the BPF skeleton from {SRC}: {e:#}"));
    println!("cargo:rerun-if-changed=kernel");
}
