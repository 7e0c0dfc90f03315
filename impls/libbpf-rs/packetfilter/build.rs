//! Builds the skeleton of impls/kernel/packetfilter/packetfilter.bpf.c (UAPI headers only); see impls/libbpf-rs/build-support.
fn main() {
    libbpf_skel_build::build_skeleton(libbpf_skel_build::Headers::Uapi);
}
