//! Tool glue: the shared lsmbpf lifecycle driving the C loader lsmbpf.c.

use std::ffi::{c_int, c_void};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::lsmbpf::abi::{Settings, COUNTER_COUNT};
use bpfeval_shared::lsmbpf::Backend;
use libbpf_glue::{Loaded, RecordSink, check, counters, poll};
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

/// The C loader's state; dropping it detaches and closes everything.
struct CLsm(Loaded<Lsm>);

fn load(settings: &Settings) -> Result<CLsm> {
    // SAFETY: lsm_load reads 32 bytes of settings and writes a valid pointer on success.
    let loaded = Loaded::new("loading the BPF object (verifier)", |out| unsafe { lsm_load(out, settings.to_bytes().as_ptr()) }, lsm_destroy)?;
    Ok(CLsm(loaded))
}

// SAFETY (every call below): self.0 holds a live loader state; buffers are as long as C reads or writes.
impl Backend for CLsm {
    fn attach(&mut self) -> Result<()> {
        check(unsafe { lsm_attach(self.0.ptr()) }, "attaching the LSM program")
    }

    fn counters(&self) -> Result<Vec<u64>> {
        counters(COUNTER_COUNT, "reading counters", |out| unsafe { lsm_counters(self.0.ptr(), out) })
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        poll(timeout, sink, |ms, s, ctx| unsafe { lsm_poll(self.0.ptr(), ms, s, ctx) })
    }
}

fn main() {
    bpfeval_shared::lsmbpf::run("libbpf", load)
}
