//! Tool glue: the shared packetfilter lifecycle driving the C loader packetfilter.c.

use std::ffi::{c_int, c_longlong, c_void};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::cli::XdpMode;
use bpfeval_shared::packetfilter::abi::{Settings, VERDICT_COUNT};
use bpfeval_shared::packetfilter::{Backend, LoadParams};
use libbpf_glue::{Loaded, RecordSink, check, counter, counters, poll};
use libbpf_sys as _; // links libbpf

#[repr(C)]
struct Filter {
    _opaque: [u8; 0],
}

extern "C" {
    fn filter_load(out: *mut *mut Filter, capacity: u32) -> c_int;
    fn filter_destroy(f: *mut Filter);
    fn filter_set_rule(f: *mut Filter, v6: c_int, prefixlen: u32, data: *const u8, rule: c_longlong) -> c_int;
    fn filter_set_settings(f: *mut Filter, generation: u32, settings: *const u8) -> c_int;
    fn filter_set_generation(f: *mut Filter, generation: u32) -> c_int;
    fn filter_verdicts(f: *mut Filter, out: *mut u64) -> c_int;
    fn filter_rule_hits(f: *mut Filter, rule: u32, hits: *mut u64) -> c_int;
    fn filter_clear_rule_hits(f: *mut Filter, rule: u32) -> c_int;
    fn filter_attach(f: *mut Filter, ifindex: c_int, skb_mode: c_int) -> c_int;
    fn filter_poll(f: *mut Filter, timeout_ms: c_int, sink: RecordSink, ctx: *mut c_void) -> c_int;
}

/// The C loader's state; dropping it detaches and closes everything.
struct CFilter(Loaded<Filter>);

fn load(params: &LoadParams) -> Result<CFilter> {
    // SAFETY: filter_load writes a valid pointer on success.
    let loaded = Loaded::new("loading the BPF object", |out| unsafe { filter_load(out, params.capacity) }, filter_destroy)?;
    Ok(CFilter(loaded))
}

// SAFETY (every call below): self.0 holds a live loader state; buffers are as long as C reads or writes.
impl Backend for CFilter {
    fn set_rule_v4(&mut self, prefixlen: u32, data: [u8; 8], rule: Option<u32>) -> Result<()> {
        let rule = rule.map_or(-1, c_longlong::from);
        check(unsafe { filter_set_rule(self.0.ptr(), 0, prefixlen, data.as_ptr(), rule) }, "updating rules_v4")
    }

    fn set_rule_v6(&mut self, prefixlen: u32, data: [u8; 20], rule: Option<u32>) -> Result<()> {
        let rule = rule.map_or(-1, c_longlong::from);
        check(unsafe { filter_set_rule(self.0.ptr(), 1, prefixlen, data.as_ptr(), rule) }, "updating rules_v6")
    }

    fn set_settings(&mut self, generation: u32, settings: &Settings) -> Result<()> {
        check(unsafe { filter_set_settings(self.0.ptr(), generation, settings.to_bytes().as_ptr()) }, "updating settings")
    }

    fn set_generation(&mut self, generation: u32) -> Result<()> {
        check(unsafe { filter_set_generation(self.0.ptr(), generation) }, "updating generation")
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        counters(VERDICT_COUNT, "reading verdicts", |out| unsafe { filter_verdicts(self.0.ptr(), out) })
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        counter("reading rule_hits", |out| unsafe { filter_rule_hits(self.0.ptr(), rule, out) })
    }

    fn clear_rule_hits(&mut self, rule: u32) -> Result<()> {
        check(unsafe { filter_clear_rule_hits(self.0.ptr(), rule) }, "clearing rule_hits")
    }

    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        let skb = matches!(mode, XdpMode::Skb) as c_int;
        check(unsafe { filter_attach(self.0.ptr(), ifindex as c_int, skb) }, "bpf_link_create(BPF_XDP)")
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        poll(timeout, sink, |ms, s, ctx| unsafe { filter_poll(self.0.ptr(), ms, s, ctx) })
    }
}

fn main() {
    bpfeval_shared::packetfilter::run("libbpf", load)
}
