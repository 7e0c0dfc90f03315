//! Builds the skeleton of impls/kernel/lsmbpf/lsmbpf.bpf.c (reads kernel structs: CO-RE against a vmlinux.h from this machine's BTF); see impls/libbpf-rs/build-support.
fn main() {
    libbpf_skel_build::build_skeleton(libbpf_skel_build::Headers::Vmlinux);
}
