//! Kernel type bindings for the program, generated from the build machine's BTF.
//!
//! Rust BPF programs get no CO-RE relocations (rustc and bpf-linker emit no
//! `preserve_access_index` accesses), so unlike the libbpf-rs build the offsets of `tcp_sock`,
//! `sock` and the tracepoint's record are fixed when this crate is built: the object reads the
//! right fields on kernels with the same layout as the build machine's, which is why the harness
//! builds it on the machine it runs on. bpftool turns `/sys/kernel/btf/vmlinux` into a C header
//! (as for libbpf), bindgen turns the types the program uses into `$OUT_DIR/vmlinux.rs`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

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
    let header = out_dir.join("vmlinux.h");
    std::fs::write(&header, &dump.stdout).expect("writing vmlinux.h to OUT_DIR");

    bindgen::Builder::default()
        .header(header.to_str().expect("UTF-8 path"))
        .use_core()
        .ctypes_prefix("::aya_ebpf::cty")
        .layout_tests(false)
        .generate_comments(false)
        .derive_debug(false)
        .derive_copy(false)
        .allowlist_type("trace_event_raw_inet_sock_set_state")
        .allowlist_type("tcp_sock")
        .allowlist_type("sock_flags")
        .allowlist_var("TCP_.*|IPPROTO_TCP")
        .allowlist_item("TCP_.*|IPPROTO_TCP")
        .constified_enum_module("sock_flags")
        .generate()
        .expect("bindgen on vmlinux.h")
        .write_to_file(out_dir.join("vmlinux.rs"))
        .expect("writing vmlinux.rs");
    println!("cargo:rerun-if-changed=build.rs");
}
