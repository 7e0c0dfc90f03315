//! Builds impls/kernel/loadbalancer (UAPI headers only), its C skeleton and loadbalancer.c; see impls/libbpf/build-support.
fn main() {
    libbpf_c_build::build(libbpf_c_build::Headers::Uapi);
}
