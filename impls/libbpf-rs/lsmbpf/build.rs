//! Generates vmlinux.h from the build machine's kernel BTF (never committed: CO-RE relocates the
//! field offsets to the running kernel at load), compiles kernel/lsmbpf.bpf.c with clang and
//! generates the libbpf skeleton (`OUT_DIR/lsmbpf.skel.rs`) that main.rs includes.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "kernel/lsmbpf.bpf.c";
const BTF: &str = "/sys/kernel/btf/vmlinux";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dump = Command::new("bpftool")
        .args(["btf", "dump", "file", BTF, "format", "c"])
        .output()
        .unwrap_or_else(|e| panic!("running bpftool (`make setup` installs it): {e}"));
    assert!(dump.status.success(), "bpftool btf dump {BTF}: {}", String::from_utf8_lossy(&dump.stderr));
    std::fs::write(out_dir.join("vmlinux.h"), &dump.stdout).expect("writing vmlinux.h");

    let include = format!("-I{}", out_dir.display());
    SkeletonBuilder::new()
        .source(SRC)
        // Kept in OUT_DIR (not a temp dir) so the harness can measure the object's size.
        .obj(out_dir.join("lsmbpf.bpf.o"))
        .clang_args([include.as_str(), "-Wall", "-Werror"])
        .build_and_generate(out_dir.join("lsmbpf.skel.rs"))
        .unwrap_or_else(|e| panic!("building the BPF skeleton from {SRC}: {e:#}"));
    println!("cargo:rerun-if-changed=kernel");
    println!("cargo:rerun-if-changed={BTF}");
}
