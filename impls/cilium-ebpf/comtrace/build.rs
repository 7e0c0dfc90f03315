//! bpf2go over impls/kernel/comtrace (a vmlinux.h of this machine's BTF), the Go loader into a C archive;
//! see impls/cilium-ebpf/build-support.
fn main() {
    cilium_ebpf_build::build(cilium_ebpf_build::Headers::Vmlinux);
}
