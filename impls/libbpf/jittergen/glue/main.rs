//! Tool glue: the shared jittergen lifecycle driving the C loader jittergen.c.

use std::ffi::c_int;

use anyhow::Result;
use bpfeval_shared::jittergen::abi::{self, COUNTER_COUNT};
use bpfeval_shared::jittergen::{Backend, Iface, TcMode};
use libbpf_glue::check;
use libbpf_sys as _; // links libbpf

#[repr(C)]
struct Jitter {
    _opaque: [u8; 0],
}

extern "C" {
    fn jitter_load(out: *mut *mut Jitter) -> c_int;
    fn jitter_destroy(j: *mut Jitter);
    fn jitter_set_rule(j: *mut Jitter, index: u32, rule: *const u8) -> c_int;
    fn jitter_set_settings(j: *mut Jitter, settings: *const u8) -> c_int;
    fn jitter_counters(j: *mut Jitter, out: *mut u64) -> c_int;
    fn jitter_rule_hits(j: *mut Jitter, rule: u32, hits: *mut u64) -> c_int;
    fn jitter_attach(j: *mut Jitter, ifindex: c_int, tcx: c_int) -> c_int;
}

/// Owns the C loader's state; dropping it detaches and closes everything.
struct CJitter(*mut Jitter);

impl Drop for CJitter {
    fn drop(&mut self) {
        // SAFETY: the pointer came from jitter_load and is destroyed once.
        unsafe { jitter_destroy(self.0) }
    }
}

fn load() -> Result<CJitter> {
    let mut j = std::ptr::null_mut();
    // SAFETY: jitter_load writes a valid pointer on success.
    check(unsafe { jitter_load(&mut j) }, "loading the BPF object (verifier)")?;
    Ok(CJitter(j))
}

// SAFETY (every call below): self.0 is a live loader state; buffers are as long as C reads or writes.
impl Backend for CJitter {
    fn set_rule(&mut self, index: u32, rule: &abi::Rule) -> Result<()> {
        check(unsafe { jitter_set_rule(self.0, index, rule.to_bytes().as_ptr()) }, "updating rules")
    }

    fn set_settings(&mut self, settings: &abi::Settings) -> Result<()> {
        check(unsafe { jitter_set_settings(self.0, settings.to_bytes().as_ptr()) }, "updating settings")
    }

    fn counters(&self) -> Result<Vec<u64>> {
        let mut out = vec![0u64; COUNTER_COUNT as usize];
        check(unsafe { jitter_counters(self.0, out.as_mut_ptr()) }, "reading counters")?;
        Ok(out)
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        let mut hits = 0;
        check(unsafe { jitter_rule_hits(self.0, rule, &mut hits) }, "reading rule_hits")?;
        Ok(hits)
    }

    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()> {
        let (tcx, what) = match mode {
            TcMode::Tcx => (1, "bpf_link_create(BPF_TCX_EGRESS)"),
            TcMode::Netlink => (0, "attaching the cls_bpf filter under clsact"),
        };
        check(unsafe { jitter_attach(self.0, iface.index as c_int, tcx) }, what)
    }
}

fn main() {
    bpfeval_shared::jittergen::run("libbpf", load)
}
