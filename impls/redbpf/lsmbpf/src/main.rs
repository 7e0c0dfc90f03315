//! lsmbpf with RedBPF, hybrid. The BPF LSM program is RedBPF's (kernel/: redbpf-probes, built by
//! cargo-bpf with Rust 1.59 and LLVM 13). RedBPF cannot load or attach it: its loader has no LSM
//! program type, no attach by BTF id and no bpf_link. So the loader is lsmbpf-aya's, the same
//! code as lsmbpf-aya (impls/aya/lsmbpf/src/lib.rs), given RedBPF's object; build.rs removes
//! the sections aya cannot read.

fn main() {
    let object = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lsmbpf-aya.elf"));
    bpfeval_shared::lsmbpf::run("redbpf", |s| lsmbpf_aya::AyaLsm::load(object, s))
}
