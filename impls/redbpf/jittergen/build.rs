//! Builds the TC program (`kernel/`) with cargo-bpf into `$OUT_DIR/jittergen.elf`.

#[path = "../build_support.rs"]
mod build_support;

fn main() {
    // types/ is jittergen-aya-types' file, which the kernel program is built from too.
    println!("cargo:rerun-if-changed=../../aya/jittergen/types/src");
    build_support::build_kernel("jittergen");
}
