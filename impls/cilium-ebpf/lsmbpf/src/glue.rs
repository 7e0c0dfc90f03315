//! lsmbpf-cilium-ebpf: the shared Rust lifecycle (`bpfeval_shared::lsmbpf::run`) with a backend
//! whose library calls are the Go loader's (../lsmbpf.go). Tool glue.

use std::ffi::c_char;
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::lsmbpf::abi::{Settings, COUNTER_COUNT};
use bpfeval_shared::lsmbpf::Backend;
use cilium_ebpf_glue::{self as go, Loaded};

extern "C" {
    fn lsmbpf_load(pidns_dev: u64, pidns_ino: u64, mntns_ino: u32, criterion: u32, mode: u32) -> *mut c_char;
    fn lsmbpf_attach() -> *mut c_char;
}

struct GoLsm(Loaded);

impl Backend for GoLsm {
    fn attach(&mut self) -> Result<()> {
        // SAFETY: no arguments.
        go::check(unsafe { lsmbpf_attach() })
    }

    fn counters(&self) -> Result<Vec<u64>> {
        go::percpu_sums("counters", COUNTER_COUNT)
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        go::poll(timeout, sink)
    }
}

fn main() {
    bpfeval_shared::lsmbpf::run("cilium-ebpf", |s: &Settings| {
        // SAFETY: plain integers; the Go side owns what it loads until `Loaded` is dropped.
        let loaded = unsafe { lsmbpf_load(s.pidns_dev, s.pidns_ino, s.mntns_ino, s.criterion, s.mode) };
        Ok(GoLsm(Loaded::new(loaded)?))
    })
}
