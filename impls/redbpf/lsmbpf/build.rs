//! Builds the BPF LSM program (`kernel/`) with cargo-bpf into `$OUT_DIR/lsmbpf.elf`, then
//! leaves in `$OUT_DIR/lsmbpf-aya.elf` the copy aya loads, without the sections aya 0.14 fails
//! on: RedBPF's `maps.ext` (type names for RedBPF's loader; aya reads every `maps*` section as
//! map definitions: "error parsing map `MAP_BTF_counters`"), and with it `.BTF` and `.rel.BTF`,
//! which relocate against `maps.ext`'s symbols. The program needs no BTF: it has no CO-RE
//! relocations, and its maps are legacy definitions.

use std::path::PathBuf;
use std::process::Command;

#[path = "../build_support.rs"]
mod build_support;

const SECTIONS: [&str; 3] = ["maps.ext", ".BTF", ".rel.BTF"];

fn main() {
    // types/ is lsmbpf-aya-types' file (build_kernel watches types/ itself).
    println!("cargo:rerun-if-changed=../../aya/lsmbpf/types/src/lib.rs");
    build_support::build_kernel("lsmbpf");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut objcopy = Command::new("llvm-objcopy-13");
    for section in SECTIONS {
        objcopy.arg(format!("--remove-section={section}"));
    }
    let status = objcopy
        .arg(out.join("lsmbpf.elf"))
        .arg(out.join("lsmbpf-aya.elf"))
        .status()
        .expect("running llvm-objcopy-13 (Debian llvm-13, installed by scripts/setup.sh)");
    assert!(status.success(), "llvm-objcopy-13 failed");
}
