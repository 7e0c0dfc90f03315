//! Builds impls/kernel/lsmbpf (CO-RE against a vmlinux.h from this machine's BTF), its C skeleton and lsmbpf.c; see impls/libbpf/build-support.
fn main() {
    libbpf_c_build::build(libbpf_c_build::Headers::Vmlinux);
}
