//! Builds kernel/ (comtrace-aya-kernel) for bpfel-unknown-none; see impls/aya/build-support.
//! The kernel crate's own build script generates its kernel type bindings from this machine's BTF.
fn main() {
    aya_kernel_build::build_kernel();
}
