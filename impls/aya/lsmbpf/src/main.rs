//! lsmbpf with Aya: the loader (src/lib.rs) with the Aya program (kernel/, built by build.rs).

fn main() {
    let object = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lsmbpf"));
    bpfeval_shared::lsmbpf::run("aya", |s| lsmbpf_aya::AyaLsm::load(object, s))
}
