//! comtrace-cilium-ebpf: the shared Rust lifecycle (`bpfeval_shared::comtrace::run`) with a
//! backend whose library calls are the Go loader's (../comtrace.go). Tool glue.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::comtrace::abi::COUNTER_COUNT;
use bpfeval_shared::comtrace::{Backend, LoadParams, PortList};
use cilium_ebpf_glue::{self as go, Loaded};

extern "C" {
    fn comtrace_load(target_pid: u32, filter_lports: c_int, filter_rports: c_int) -> *mut c_char;
    fn comtrace_attach() -> *mut c_char;
}

struct GoTracer(Loaded);

impl Backend for GoTracer {
    fn allow_port(&mut self, list: PortList, port: u16) -> Result<()> {
        let map = match list {
            PortList::Local => "lports",
            PortList::Remote => "rports",
        };
        go::update(map, &port.to_ne_bytes(), &[1], go::ANY)
    }

    fn attach(&mut self) -> Result<()> {
        // SAFETY: no arguments.
        go::check(unsafe { comtrace_attach() })
    }

    fn counters(&self) -> Result<Vec<u64>> {
        go::percpu_sums("counters", COUNTER_COUNT)
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        go::poll(timeout, sink)
    }
}

fn main() {
    bpfeval_shared::comtrace::run("cilium-ebpf", |p: &LoadParams| {
        // SAFETY: plain integers; the Go side owns what it loads until `Loaded` is dropped.
        let loaded = unsafe { comtrace_load(p.target_pid, p.filter_local_ports.into(), p.filter_remote_ports.into()) };
        Ok(GoTracer(Loaded::new(loaded)?))
    })
}
