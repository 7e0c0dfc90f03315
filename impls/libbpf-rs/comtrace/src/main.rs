//! comtrace loader on libbpf-rs: the library-specific part only (open, set the filters, load,
//! attach, map access, ring buffer). CLI, output and signals live in `bpfeval_shared`.

use std::mem::MaybeUninit;
use std::time::Duration;

use anyhow::{Context, Result};
use bpfeval_shared::comtrace::abi::COUNTER_COUNT;
use bpfeval_shared::comtrace::{Backend, LoadParams, PortList};
use bpfeval_shared::wait::PollSink;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{ErrorKind, Link, MapCore, MapFlags, RingBuffer, RingBufferBuilder, TracepointCategory};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/comtrace.skel.rs"));
}
use skel::{ComtraceSkel, ComtraceSkelBuilder};

/// Field order is drop order: detach first, then the ring buffer, then the BPF object.
struct LibbpfTracer {
    /// The tracepoint's perf event link; the kernel detaches when its fd closes, even if we crash.
    link: Option<Link>,
    events: RingBuffer<'static>,
    /// The sink of the poll under way, which the ring buffer's callback hands records to.
    sink: PollSink,
    skel: ComtraceSkel<'static>,
}

impl LibbpfTracer {
    fn load(params: &LoadParams) -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK) here: libbpf 1.x raises it only on kernels without memcg
        // accounting of BPF memory (< 5.11) and does not fail when it cannot.
        //
        // libbpf-rs skeletons borrow caller-provided storage for the object; leaking it gives a
        // 'static skeleton for this one-object, process-lifetime loader. Dropping the skeleton
        // still closes the object (maps, program).
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = ComtraceSkelBuilder::default().open(storage).context("opening the BPF object")?;
        // The filters are `const volatile` globals: written into .rodata before load, constants
        // for the verifier afterwards.
        let rodata = open.maps.rodata_data.as_deref_mut().context("the object has no .rodata")?;
        rodata.target_pid = params.target_pid;
        rodata.filter_lports = params.filter_local_ports.into();
        rodata.filter_rports = params.filter_remote_ports.into();
        let skel = open.load().context("loading the BPF object (verifier)")?;

        // The callback is fixed when the ring buffer is built; it hands each record to the sink
        // of the poll under way, in place (released after it, see `PollSink`).
        let sink = PollSink::default();
        let forward = sink.clone();
        let mut builder = RingBufferBuilder::new();
        builder.add(&skel.maps.events, move |raw: &[u8]| {
            forward.forward(raw);
            0
        })?;
        let events = builder.build()?;
        Ok(Self { link: None, events, sink, skel })
    }
}

/// Per-CPU u64 counter summed over all possible CPUs.
fn percpu_sum(map: &dyn MapCore, index: u32) -> Result<u64> {
    let values = map.lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)?.unwrap_or_default();
    Ok(values.iter().map(|v| u64::from_ne_bytes(v[..8].try_into().expect("u64 values"))).sum())
}

impl Backend for LibbpfTracer {
    fn allow_port(&mut self, list: PortList, port: u16) -> Result<()> {
        let map = match list {
            PortList::Local => &self.skel.maps.lports,
            PortList::Remote => &self.skel.maps.rports,
        };
        Ok(map.update(&port.to_ne_bytes(), &[1], MapFlags::ANY)?)
    }

    fn attach(&mut self) -> Result<()> {
        let link = self.skel.progs.comtrace.attach_tracepoint(TracepointCategory::Sock, "inet_sock_set_state")?;
        self.link = Some(link);
        Ok(())
    }

    fn counters(&self) -> Result<Vec<u64>> {
        (0..COUNTER_COUNT).map(|i| percpu_sum(&self.skel.maps.counters, i)).collect()
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        match self.sink.during(sink, || self.events.poll(timeout)) {
            // A signal (SIGINT, SIGTERM) interrupts epoll_wait; the caller handles it next.
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => r?,
        }
        Ok(())
    }
}

fn main() {
    bpfeval_shared::comtrace::run("libbpf-rs", LibbpfTracer::load)
}
