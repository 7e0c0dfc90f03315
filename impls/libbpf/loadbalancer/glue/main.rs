//! Tool glue: the shared loadbalancer lifecycle driving the C loader loadbalancer.c.

use std::ffi::{c_int, c_void};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::cli::XdpMode;
use bpfeval_shared::loadbalancer::abi::{Settings, BACKEND_SIZE, VERDICT_COUNT};
use bpfeval_shared::loadbalancer::Backend;
use libbpf_glue::{Loaded, RecordSink, check, counter, counters, poll};
use libbpf_sys as _; // links libbpf

#[repr(C)]
struct Balancer {
    _opaque: [u8; 0],
}

extern "C" {
    fn balancer_load(out: *mut *mut Balancer) -> c_int;
    fn balancer_destroy(b: *mut Balancer);
    fn balancer_set_settings(b: *mut Balancer, settings: *const u8) -> c_int;
    fn balancer_add_vip(b: *mut Balancer, family: c_int, addr: *const u8, index: u32) -> c_int;
    fn balancer_add_port(b: *mut Balancer, port: *const u8, index: u32) -> c_int;
    fn balancer_set_backend(b: *mut Balancer, slot: u32, backend: *const u8) -> c_int;
    fn balancer_set_table_entry(b: *mut Balancer, index: u32, slot: u32) -> c_int;
    fn balancer_verdicts(b: *mut Balancer, out: *mut u64) -> c_int;
    fn balancer_backend_hits(b: *mut Balancer, slot: u32, hits: *mut u64) -> c_int;
    fn balancer_clear_backend_hits(b: *mut Balancer, slot: u32) -> c_int;
    fn balancer_attach(b: *mut Balancer, ifindex: c_int, skb_mode: c_int) -> c_int;
    fn balancer_poll(b: *mut Balancer, timeout_ms: c_int, sink: RecordSink, ctx: *mut c_void) -> c_int;
}

/// The C loader's state; dropping it detaches and closes everything.
struct CBalancer(Loaded<Balancer>);

fn load() -> Result<CBalancer> {
    // SAFETY: balancer_load writes a valid pointer on success.
    let loaded = Loaded::new("loading the BPF object", |out| unsafe { balancer_load(out) }, balancer_destroy)?;
    Ok(CBalancer(loaded))
}

// SAFETY (every call below): self.0 holds a live loader state; buffers are as long as C reads or writes.
impl Backend for CBalancer {
    fn set_settings(&mut self, settings: &Settings) -> Result<()> {
        check(unsafe { balancer_set_settings(self.0.ptr(), settings.to_bytes().as_ptr()) }, "updating settings")
    }

    fn add_vip_v4(&mut self, addr: [u8; 4], index: u32) -> Result<()> {
        check(unsafe { balancer_add_vip(self.0.ptr(), 4, addr.as_ptr(), index) }, "updating vips_v4")
    }

    fn add_vip_v6(&mut self, addr: [u8; 16], index: u32) -> Result<()> {
        check(unsafe { balancer_add_vip(self.0.ptr(), 6, addr.as_ptr(), index) }, "updating vips_v6")
    }

    fn add_port(&mut self, port: [u8; 2], index: u32) -> Result<()> {
        check(unsafe { balancer_add_port(self.0.ptr(), port.as_ptr(), index) }, "updating ports")
    }

    fn set_backend(&mut self, slot: u32, value: [u8; BACKEND_SIZE]) -> Result<()> {
        check(unsafe { balancer_set_backend(self.0.ptr(), slot, value.as_ptr()) }, "updating backends")
    }

    fn set_table_entry(&mut self, index: u32, slot: u32) -> Result<()> {
        check(unsafe { balancer_set_table_entry(self.0.ptr(), index, slot) }, "updating maglev")
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        counters(VERDICT_COUNT, "reading verdicts", |out| unsafe { balancer_verdicts(self.0.ptr(), out) })
    }

    fn backend_hits(&self, slot: u32) -> Result<u64> {
        counter("reading backend_hits", |out| unsafe { balancer_backend_hits(self.0.ptr(), slot, out) })
    }

    fn clear_backend_hits(&mut self, slot: u32) -> Result<()> {
        check(unsafe { balancer_clear_backend_hits(self.0.ptr(), slot) }, "clearing backend_hits")
    }

    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        let skb = matches!(mode, XdpMode::Skb) as c_int;
        check(unsafe { balancer_attach(self.0.ptr(), ifindex as c_int, skb) }, "bpf_link_create(BPF_XDP)")
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        poll(timeout, sink, |ms, s, ctx| unsafe { balancer_poll(self.0.ptr(), ms, s, ctx) })
    }
}

fn main() {
    bpfeval_shared::loadbalancer::run("libbpf", load)
}
