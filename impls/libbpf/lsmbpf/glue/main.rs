//! Tool glue: the shared lsmbpf lifecycle driving the C loader lsmbpf.c.

use std::ffi::{c_int, c_void};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::lsmbpf::abi::{Settings, COUNTER_COUNT};
use bpfeval_shared::lsmbpf::Backend;
use libbpf_glue::{check, poll, RecordSink};
use libbpf_sys as _; // links libbpf

#[repr(C)]
struct Lsm {
    _opaque: [u8; 0],
}

extern "C" {
    fn lsm_load(out: *mut *mut Lsm, settings: *const u8) -> c_int;
    fn lsm_destroy(l: *mut Lsm);
    fn lsm_attach(l: *mut Lsm) -> c_int;
    fn lsm_counters(l: *mut Lsm, out: *mut u64) -> c_int;
    fn lsm_poll(l: *mut Lsm, timeout_ms: c_int, sink: RecordSink, ctx: *mut c_void) -> c_int;
}

/// Owns the C loader's state; dropping it detaches and closes everything.
struct CLsm(*mut Lsm);

impl Drop for CLsm {
    fn drop(&mut self) {
        // SAFETY: the pointer came from lsm_load and is destroyed once.
        unsafe { lsm_destroy(self.0) }
    }
}

fn load(settings: &Settings) -> Result<CLsm> {
    let mut l = std::ptr::null_mut();
    // SAFETY: lsm_load reads 32 bytes of settings and writes a valid pointer on success.
    check(unsafe { lsm_load(&mut l, settings.to_bytes().as_ptr()) }, "loading the BPF object (verifier)")?;
    Ok(CLsm(l))
}

// SAFETY (every call below): self.0 is a live loader state; buffers are as long as C reads or writes.
impl Backend for CLsm {
    fn attach(&mut self) -> Result<()> {
        check(unsafe { lsm_attach(self.0) }, "attaching the LSM program")
    }

    fn counters(&self) -> Result<Vec<u64>> {
        let mut out = vec![0u64; COUNTER_COUNT as usize];
        check(unsafe { lsm_counters(self.0, out.as_mut_ptr()) }, "reading counters")?;
        Ok(out)
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        poll(timeout, sink, |ms, s, ctx| unsafe { lsm_poll(self.0, ms, s, ctx) })
    }
}

fn main() {
    bpfeval_shared::lsmbpf::run("libbpf", load)
}
