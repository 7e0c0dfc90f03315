//! packetfilter loader on libbpf-rs: the library-specific part only (open, size, load, attach,
//! map access, ring buffer). CLI, config, output and signals live in `bpfeval_shared`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use bpfeval_shared::cli::XdpMode;
use bpfeval_shared::packetfilter::abi::{Settings, VERDICT_COUNT};
use bpfeval_shared::packetfilter::{Backend, LoadParams};
use bpfeval_shared::wait::PollSink;
use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{ErrorKind, MapCore, MapFlags, RingBuffer, RingBufferBuilder};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/packetfilter.skel.rs"));
}
use skel::{PacketfilterSkel, PacketfilterSkelBuilder};

/// Field order is drop order: detach first, then the ring buffer, then the BPF object.
struct LibbpfFilter {
    /// The XDP bpf_link; the kernel detaches when its last fd closes, even if we crash.
    link: Option<OwnedFd>,
    events: RingBuffer<'static>,
    /// The sink of the poll under way, which the ring buffer's callback hands records to.
    sink: PollSink,
    skel: PacketfilterSkel<'static>,
}

impl LibbpfFilter {
    fn load(params: &LoadParams) -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK) here: libbpf 1.x raises it only on kernels without memcg
        // accounting of BPF memory (< 5.11) and does not fail when it cannot.
        //
        // libbpf-rs skeletons borrow caller-provided storage for the object; leaking it gives a
        // 'static skeleton for this one-object, process-lifetime loader. Dropping the skeleton
        // still closes the object (maps, program).
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = PacketfilterSkelBuilder::default().open(storage).context("opening the BPF object")?;
        let entries = 2 * params.capacity;
        for map in [&mut open.maps.rules_v4, &mut open.maps.rules_v6, &mut open.maps.rule_hits] {
            map.set_max_entries(entries)?;
        }
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

/// LPM key bytes: `u32 prefixlen` (native endian) followed by the key data.
fn set_rule(map: &dyn MapCore, prefixlen: u32, data: &[u8], rule: Option<u32>) -> Result<()> {
    let key = [&prefixlen.to_ne_bytes()[..], data].concat();
    match rule {
        Some(id) => map.update(&key, &id.to_ne_bytes(), MapFlags::ANY)?,
        None => match map.delete(&key) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            r => r?,
        },
    }
    Ok(())
}

impl Backend for LibbpfFilter {
    fn set_rule_v4(&mut self, prefixlen: u32, data: [u8; 8], rule: Option<u32>) -> Result<()> {
        set_rule(&self.skel.maps.rules_v4, prefixlen, &data, rule)
    }

    fn set_rule_v6(&mut self, prefixlen: u32, data: [u8; 20], rule: Option<u32>) -> Result<()> {
        set_rule(&self.skel.maps.rules_v6, prefixlen, &data, rule)
    }

    fn set_settings(&mut self, generation: u32, settings: &Settings) -> Result<()> {
        Ok(self.skel.maps.settings.update(&generation.to_ne_bytes(), &settings.to_bytes(), MapFlags::ANY)?)
    }

    fn set_generation(&mut self, generation: u32) -> Result<()> {
        Ok(self.skel.maps.generation.update(&0u32.to_ne_bytes(), &generation.to_ne_bytes(), MapFlags::ANY)?)
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        (0..VERDICT_COUNT).map(|i| percpu_sum(&self.skel.maps.verdicts, i)).collect()
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        percpu_sum(&self.skel.maps.rule_hits, rule)
    }

    fn clear_rule_hits(&mut self, rule: u32) -> Result<()> {
        let zeros = vec![vec![0u8; 8]; libbpf_rs::num_possible_cpus()?];
        Ok(self.skel.maps.rule_hits.update_percpu(&rule.to_ne_bytes(), &zeros, MapFlags::ANY)?)
    }

    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        // `Program::attach_xdp` makes a bpf_link too, but passes no mode flags (the kernel then
        // silently falls back to generic XDP where the driver has no native support). To get
        // exactly the requested mode we create the link through libbpf's `bpf_link_create`.
        let flags = match mode {
            XdpMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Skb => libbpf_sys::XDP_FLAGS_SKB_MODE,
        };
        let opts = libbpf_sys::bpf_link_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
            flags,
            ..Default::default()
        };
        let prog_fd = self.skel.progs.packetfilter.as_fd().as_raw_fd();
        // SAFETY: `opts` is a valid, fully initialised options struct of the size it declares.
        let fd = unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &opts) };
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(-fd)).context("bpf_link_create(BPF_XDP)");
        }
        // SAFETY: a non-negative return is a new link fd that nothing else owns.
        self.link = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(())
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        match self.sink.during(sink, || self.events.poll(timeout)) {
            // A signal (SIGHUP, SIGINT) interrupts epoll_wait; the caller handles it next.
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => r?,
        }
        Ok(())
    }
}

fn main() {
    bpfeval_shared::packetfilter::run("libbpf-rs", LibbpfFilter::load)
}
