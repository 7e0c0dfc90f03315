//! Builds kernel/ (lsmbpf-aya-kernel) for bpfel-unknown-none; see impls/aya/build-support.
fn main() {
    aya_kernel_build::build_kernel();
}
