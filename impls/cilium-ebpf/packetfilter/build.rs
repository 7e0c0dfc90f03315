//! bpf2go over impls/kernel/packetfilter (UAPI headers only), the Go loader into a C archive;
//! see impls/cilium-ebpf/build-support.
fn main() {
    cilium_ebpf_build::build(cilium_ebpf_build::Headers::Uapi);
}
