//! Tool glue: the shared comtrace lifecycle driving the C loader comtrace.c.

use std::ffi::{c_int, c_void};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::comtrace::abi::COUNTER_COUNT;
use bpfeval_shared::comtrace::{Backend, LoadParams, PortList};
use libbpf_glue::{Loaded, RecordSink, check, counters, poll};
use libbpf_sys as _; // links libbpf

#[repr(C)]
struct Tracer {
    _opaque: [u8; 0],
}

extern "C" {
    fn tracer_load(out: *mut *mut Tracer, target_pid: u32, filter_lports: c_int, filter_rports: c_int) -> c_int;
    fn tracer_destroy(t: *mut Tracer);
    fn tracer_allow_port(t: *mut Tracer, remote: c_int, port: u16) -> c_int;
    fn tracer_attach(t: *mut Tracer) -> c_int;
    fn tracer_counters(t: *mut Tracer, out: *mut u64) -> c_int;
    fn tracer_poll(t: *mut Tracer, timeout_ms: c_int, sink: RecordSink, ctx: *mut c_void) -> c_int;
}

/// The C loader's state; dropping it detaches and closes everything.
struct CTracer(Loaded<Tracer>);

fn load(params: &LoadParams) -> Result<CTracer> {
    let (l, r) = (params.filter_local_ports as c_int, params.filter_remote_ports as c_int);
    // SAFETY: tracer_load writes a valid pointer on success.
    let loaded = Loaded::new("loading the BPF object", |out| unsafe { tracer_load(out, params.target_pid, l, r) }, tracer_destroy)?;
    Ok(CTracer(loaded))
}

// SAFETY (every call below): self.0 holds a live loader state; buffers are as long as C reads or writes.
impl Backend for CTracer {
    fn allow_port(&mut self, list: PortList, port: u16) -> Result<()> {
        let remote = matches!(list, PortList::Remote) as c_int;
        check(unsafe { tracer_allow_port(self.0.ptr(), remote, port) }, "updating the port list")
    }

    fn attach(&mut self) -> Result<()> {
        check(unsafe { tracer_attach(self.0.ptr()) }, "attaching to sock:inet_sock_set_state")
    }

    fn counters(&self) -> Result<Vec<u64>> {
        counters(COUNTER_COUNT, "reading counters", |out| unsafe { tracer_counters(self.0.ptr(), out) })
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        poll(timeout, sink, |ms, s, ctx| unsafe { tracer_poll(self.0.ptr(), ms, s, ctx) })
    }
}

fn main() {
    bpfeval_shared::comtrace::run("libbpf", load)
}
