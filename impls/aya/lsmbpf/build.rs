//! Builds kernel/ (lsmbpf-aya-kernel) for bpfel-unknown-none; see impls/aya/build-support. Not
//! for the library alone (feature `program` off), which lsmbpf-redbpf uses with its own program.
fn main() {
    if std::env::var_os("CARGO_FEATURE_PROGRAM").is_some() {
        aya_kernel_build::build_kernel();
    }
}
