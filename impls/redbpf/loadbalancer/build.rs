//! Builds the XDP program (`kernel/`) with cargo-bpf into `$OUT_DIR/loadbalancer.elf`.

#[path = "../build_support.rs"]
mod build_support;

fn main() {
    // types/ is loadbalancer-aya-types' file, which the kernel program is built from too.
    println!("cargo:rerun-if-changed=../../aya/loadbalancer/types/src");
    build_support::build_kernel("loadbalancer");
}
