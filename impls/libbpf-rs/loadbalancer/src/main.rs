//! loadbalancer loader on libbpf-rs: the library-specific part only (open, load, attach, map
//! access, ring buffer). CLI, config, Maglev table, reload and output live in `bpfeval_shared`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use bpfeval_shared::cli::XdpMode;
use bpfeval_shared::loadbalancer::abi::{Settings, BACKEND_SIZE, VERDICT_COUNT};
use bpfeval_shared::loadbalancer::Backend;
use bpfeval_shared::wait::PollSink;
use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{ErrorKind, MapCore, MapFlags, RingBuffer, RingBufferBuilder};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/loadbalancer.skel.rs"));
}
use skel::{LoadbalancerSkel, LoadbalancerSkelBuilder};

/// Field order is drop order: detach first, then the ring buffer, then the BPF object.
struct LibbpfBalancer {
    /// The XDP bpf_link; the kernel detaches when its last fd closes, even if we crash.
    link: Option<OwnedFd>,
    events: RingBuffer<'static>,
    /// The sink of the poll under way, which the ring buffer's callback hands records to.
    sink: PollSink,
    skel: LoadbalancerSkel<'static>,
}

impl LibbpfBalancer {
    fn load() -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK) here: libbpf 1.x raises it only on kernels without memcg
        // accounting of BPF memory (< 5.11) and does not fail when it cannot.
        //
        // libbpf-rs skeletons borrow caller-provided storage for the object; leaking it gives a
        // 'static skeleton for this one-object, process-lifetime loader. Dropping the skeleton
        // still closes the object (maps, program).
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let open = LoadbalancerSkelBuilder::default().open(storage).context("opening the BPF object")?;
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

impl Backend for LibbpfBalancer {
    fn set_settings(&mut self, settings: &Settings) -> Result<()> {
        Ok(self.skel.maps.settings.update(&0u32.to_ne_bytes(), &settings.to_bytes(), MapFlags::ANY)?)
    }

    fn add_vip_v4(&mut self, addr: [u8; 4], index: u32) -> Result<()> {
        Ok(self.skel.maps.vips_v4.update(&addr, &index.to_ne_bytes(), MapFlags::NO_EXIST)?)
    }

    fn add_vip_v6(&mut self, addr: [u8; 16], index: u32) -> Result<()> {
        Ok(self.skel.maps.vips_v6.update(&addr, &index.to_ne_bytes(), MapFlags::NO_EXIST)?)
    }

    fn add_port(&mut self, port: [u8; 2], index: u32) -> Result<()> {
        Ok(self.skel.maps.ports.update(&port, &index.to_ne_bytes(), MapFlags::NO_EXIST)?)
    }

    fn set_backend(&mut self, slot: u32, value: [u8; BACKEND_SIZE]) -> Result<()> {
        Ok(self.skel.maps.backends.update(&slot.to_ne_bytes(), &value, MapFlags::ANY)?)
    }

    fn set_table_entry(&mut self, index: u32, slot: u32) -> Result<()> {
        Ok(self.skel.maps.maglev.update(&index.to_ne_bytes(), &slot.to_ne_bytes(), MapFlags::ANY)?)
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        (0..VERDICT_COUNT).map(|i| percpu_sum(&self.skel.maps.verdicts, i)).collect()
    }

    fn backend_hits(&self, slot: u32) -> Result<u64> {
        percpu_sum(&self.skel.maps.backend_hits, slot)
    }

    fn clear_backend_hits(&mut self, slot: u32) -> Result<()> {
        let zeros = vec![vec![0u8; 8]; libbpf_rs::num_possible_cpus()?];
        Ok(self.skel.maps.backend_hits.update_percpu(&slot.to_ne_bytes(), &zeros, MapFlags::ANY)?)
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
        let prog_fd = self.skel.progs.loadbalancer.as_fd().as_raw_fd();
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
    bpfeval_shared::loadbalancer::run("libbpf-rs", LibbpfBalancer::load)
}
