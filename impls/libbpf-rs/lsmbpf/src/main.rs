//! lsmbpf loader on libbpf-rs: the library-specific part only (open, settings, load, attach,
//! counters, ring buffer). CLI, config, output and signals live in `bpfeval_shared`.

use std::mem::MaybeUninit;
use std::time::Duration;

use anyhow::{Context, Result};
use bpfeval_shared::lsmbpf::abi::{Settings, COUNTER_COUNT};
use bpfeval_shared::lsmbpf::Backend;
use bpfeval_shared::wait::PollSink;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{ErrorKind, Link, MapCore, MapFlags, RingBuffer, RingBufferBuilder};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/lsmbpf.skel.rs"));
}
use skel::{LsmbpfSkel, LsmbpfSkelBuilder};

/// Field order is drop order: detach first, then the ring buffer, then the BPF object.
struct LibbpfLsm {
    /// The LSM bpf_link; the kernel detaches when its last fd closes, even if we crash.
    link: Option<Link>,
    events: RingBuffer<'static>,
    /// The sink of the poll under way, which the ring buffer's callback hands records to.
    sink: PollSink,
    skel: LsmbpfSkel<'static>,
}

impl LibbpfLsm {
    fn load(settings: &Settings) -> Result<Self> {
        // libbpf-rs skeletons borrow caller-provided storage for the object; leaking it gives a
        // 'static skeleton for this one-object, process-lifetime loader.
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = LsmbpfSkelBuilder::default().open(storage).context("opening the BPF object")?;
        // `const volatile` globals live in .rodata: written here, frozen by the load.
        let rodata = open.maps.rodata_data.as_deref_mut().context("no .rodata in the object")?;
        rodata.settings.pidns_dev = settings.pidns_dev;
        rodata.settings.pidns_ino = settings.pidns_ino;
        rodata.settings.mntns_ino = settings.mntns_ino;
        rodata.settings.criterion = settings.criterion;
        rodata.settings.mode = settings.mode;
        // libbpf relocates the CO-RE field accesses against /sys/kernel/btf/vmlinux here.
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

impl Backend for LibbpfLsm {
    fn attach(&mut self) -> Result<()> {
        self.link = Some(self.skel.progs.lsmbpf.attach_lsm()?);
        Ok(())
    }

    fn counters(&self) -> Result<Vec<u64>> {
        (0..COUNTER_COUNT)
            .map(|i| {
                let values =
                    self.skel.maps.counters.lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY)?.unwrap_or_default();
                Ok(values.iter().map(|v| u64::from_ne_bytes(v[..8].try_into().expect("u64 values"))).sum())
            })
            .collect()
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
    bpfeval_shared::lsmbpf::run("libbpf-rs", LibbpfLsm::load)
}
