//! Builds the tracepoint program (`kernel/`) with cargo-bpf into `$OUT_DIR/comtrace.elf`.

#[path = "../build_support.rs"]
mod build_support;

fn main() {
    build_support::build_kernel("comtrace");
}
