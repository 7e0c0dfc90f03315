//! Generates `vmlinux.h` from the build machine's BTF, compiles kernel/comtrace.bpf.c with clang
//! against it and generates the libbpf skeleton (`OUT_DIR/comtrace.skel.rs`) that main.rs
//! includes. The header only supplies type definitions; the program reads kernel structs with
//! CO-RE, so libbpf fixes the offsets for the running kernel at load time.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "kernel/comtrace.bpf.c";
const BTF: &str = "/sys/kernel/btf/vmlinux";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dump = Command::new("bpftool")
        .args(["btf", "dump", "file", BTF, "format", "c"])
        .output()
        .unwrap_or_else(|e| panic!("running bpftool (apt package bpftool): {e}"));
    if !dump.status.success() {
        panic!("bpftool btf dump file {BTF} failed: {}", String::from_utf8_lossy(&dump.stderr));
    }
    std::fs::write(out_dir.join("vmlinux.h"), &dump.stdout).expect("writing vmlinux.h to OUT_DIR");

    let include = format!("-I{}", out_dir.display());
    SkeletonBuilder::new()
        .source(SRC)
        // Kept in OUT_DIR (not a temp dir) so the harness can measure the object's size.
        .obj(out_dir.join("comtrace.bpf.o"))
        .clang_args([include.as_str(), "-Wall", "-Werror"])
        .build_and_generate(out_dir.join("comtrace.skel.rs"))
        .unwrap_or_else(|e| panic!("building the BPF skeleton from {SRC}: {e:#}"));
    println!("cargo:rerun-if-changed=kernel");
}
