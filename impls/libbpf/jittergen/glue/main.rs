//! Tool glue: the shared jittergen lifecycle driving the C loader jittergen.c.

use std::ffi::c_int;

use anyhow::Result;
use bpfeval_shared::jittergen::abi::{self, COUNTER_COUNT};
use bpfeval_shared::jittergen::{Backend, Iface, TcMode};
use libbpf_glue::{check, counter, counters, Loaded};
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

/// The C loader's state; dropping it detaches and closes everything.
struct CJitter(Loaded<Jitter>);

fn load() -> Result<CJitter> {
    // SAFETY: jitter_load writes a valid pointer on success.
    let loaded = Loaded::new("loading the BPF object (verifier)", |out| unsafe { jitter_load(out) }, jitter_destroy)?;
    Ok(CJitter(loaded))
}

// SAFETY (every call below): self.0 holds a live loader state; buffers are as long as C reads or writes.
impl Backend for CJitter {
    fn set_rule(&mut self, index: u32, rule: &abi::Rule) -> Result<()> {
        check(unsafe { jitter_set_rule(self.0.ptr(), index, rule.to_bytes().as_ptr()) }, "updating rules")
    }

    fn set_settings(&mut self, settings: &abi::Settings) -> Result<()> {
        check(unsafe { jitter_set_settings(self.0.ptr(), settings.to_bytes().as_ptr()) }, "updating settings")
    }

    fn counters(&self) -> Result<Vec<u64>> {
        counters(COUNTER_COUNT, "reading counters", |out| unsafe { jitter_counters(self.0.ptr(), out) })
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        counter("reading rule_hits", |out| unsafe { jitter_rule_hits(self.0.ptr(), rule, out) })
    }

    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()> {
        let (tcx, what) = match mode {
            TcMode::Tcx => (1, "bpf_link_create(BPF_TCX_EGRESS)"),
            TcMode::Netlink => (0, "attaching the cls_bpf filter under clsact"),
        };
        check(unsafe { jitter_attach(self.0.ptr(), iface.index as c_int, tcx) }, what)
    }
}

fn main() {
    bpfeval_shared::jittergen::run("libbpf", load)
}
