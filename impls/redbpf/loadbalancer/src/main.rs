//! loadbalancer with RedBPF: the library-specific part (load, map access, attach, ring buffer).
//! CLI, config, Maglev table, reload and output are `bpfeval_shared::loadbalancer::run`, reached
//! through `bpfeval_shared_redbpf` (RedBPF builds with Rust 1.59 only; see that crate).
//!
//! What RedBPF 2.3.0 lacks here, and how it is filled (README.md has the full account):
//! - no user-space API for ring buffers: the map is created by RedBPF from the object like any
//!   other, then read through bpf-sys, RedBPF's own libbpf binding, on the map's fd (which a
//!   patch exposes);
//! - `HashMap::set` takes no flags and drops the error: VIPs and ports are inserted through
//!   bpf-sys as well;
//! - `PerCpuArray::set` and XDP detach in skb mode were broken: patched.

use std::ffi::c_void;
use std::io;
use std::mem::size_of;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use bpfeval_shared_redbpf::cli::XdpMode;
use bpfeval_shared_redbpf::loadbalancer::abi::{self, Settings, BACKEND_SIZE, VERDICT_COUNT};
use bpfeval_shared_redbpf::loadbalancer::Backend;
use loadbalancer_redbpf_types as types;
use redbpf::{xdp, Array, Map, Module, ModuleBuilder, PerCpuArray, PerCpuValues};
use redbpf_ext::{interface_name, RingBuffer};
use tracing_subscriber::filter::LevelFilter;

// The kernel program restates the ABI in `types` (the Aya program's file); keep the two in step.
const _: () =
    assert!(types::VERDICT_COUNT == abi::VERDICT_COUNT && types::COUNTER_EVENTS_LOST == abi::COUNTER_EVENTS_LOST);
const _: () = assert!(types::TABLE_SIZE == abi::TABLE_SIZE && types::MAX_BACKENDS == abi::MAX_BACKENDS);
const _: () = assert!(types::NO_BACKEND == abi::NO_BACKEND && types::FLOW_HASH_SEED == abi::FLOW_HASH_SEED);
const _: () = assert!(size_of::<types::Flow>() == abi::FLOW_SIZE && size_of::<types::Event>() == abi::EVENT_SIZE);
const _: () = assert!(size_of::<types::Backend>() == abi::BACKEND_SIZE);

const PROGRAM: &str = "loadbalancer";

/// The object `cargo bpf build` made of `kernel/` (see build.rs).
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/loadbalancer.elf"));

/// Field order is drop order: the ring buffer consumer, then the module, whose XDP program
/// detaches itself when dropped (by netlink: RedBPF has no bpf_link, so unlike the Aya and
/// libbpf-rs loaders a SIGKILL leaves this program attached).
struct RedbpfBalancer {
    events: RingBuffer,
    module: Module,
}

/// RedBPF's errors are bare enum values; the details went to `tracing` (stderr).
fn rb<T>(r: redbpf::Result<T>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow!("{}: {:?} (RedBPF's log above has the details)", what, e))
}

impl RedbpfBalancer {
    fn load() -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK) here: RedBPF raises it only after the kernel said EPERM,
        // which kernels with memcg accounting of BPF memory (>= 5.11) do not.
        let builder = rb(ModuleBuilder::parse(OBJECT), "parsing the BPF object")?;
        let mut module = rb(builder.to_module(), "creating the maps")?;
        let (version, license) = (module.version, module.license.clone());
        for program in module.programs.iter_mut() {
            rb(program.load(version, license.clone()), "loading the BPF program (verifier)")?;
        }
        let events = RingBuffer::new(map(&module, "events")?)?;
        Ok(Self { events, module })
    }

    fn map(&self, name: &str) -> Result<&Map> {
        map(&self.module, name)
    }
}

fn map<'m>(module: &'m Module, name: &str) -> Result<&'m Map> {
    module.map(name).with_context(|| format!("no map `{}` in the object", name))
}

/// Per-CPU u64 counter summed over all possible CPUs.
fn percpu_sum(map: &Map, index: u32) -> Result<u64> {
    let values = rb(PerCpuArray::<u64>::new(map), &map.name)?.get(index);
    let values = values.with_context(|| format!("{}[{}]: lookup failed", map.name, index))?;
    Ok(values.iter().sum())
}

/// Adds `key` once (`BPF_NOEXIST`, as the other loaders do). RedBPF's `HashMap::set` has no
/// flags and discards the kernel's error, so this is bpf-sys on the map's fd.
fn insert_new<const N: usize>(map: &Map, key: [u8; N], index: u32) -> Result<()> {
    // SAFETY: key and value have the map's key and value sizes.
    let ret = unsafe {
        bpf_sys::bpf_map_update_elem(
            map.as_raw_fd(),
            &key as *const [u8; N] as *const c_void,
            &index as *const u32 as *const c_void,
            bpf_sys::BPF_NOEXIST.into(),
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("{}: insert", map.name));
    }
    Ok(())
}

impl Backend for RedbpfBalancer {
    fn set_settings(&mut self, s: &Settings) -> Result<()> {
        let value = types::Settings { any_vip: s.any_vip, log_every: s.log_every };
        let settings = rb(Array::<types::Settings>::new(self.map("settings")?), "settings")?;
        rb(settings.set(0, value), "settings: update")
    }

    fn add_vip_v4(&mut self, addr: [u8; 4], index: u32) -> Result<()> {
        insert_new(self.map("vips_v4")?, addr, index)
    }

    fn add_vip_v6(&mut self, addr: [u8; 16], index: u32) -> Result<()> {
        insert_new(self.map("vips_v6")?, addr, index)
    }

    fn add_port(&mut self, port: [u8; 2], index: u32) -> Result<()> {
        insert_new(self.map("ports")?, port, index)
    }

    fn set_backend(&mut self, slot: u32, value: [u8; BACKEND_SIZE]) -> Result<()> {
        let mac = [value[0], value[1], value[2], value[3], value[4], value[5]];
        let value = types::Backend { mac, flags: u16::from_ne_bytes([value[6], value[7]]) };
        let backends = rb(Array::<types::Backend>::new(self.map("backends")?), "backends")?;
        rb(backends.set(slot, value), "backends: update")
    }

    fn set_table_entry(&mut self, index: u32, slot: u32) -> Result<()> {
        let maglev = rb(Array::<u32>::new(self.map("maglev")?), "maglev")?;
        rb(maglev.set(index, slot), "maglev: update")
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        let map = self.map("verdicts")?;
        (0..VERDICT_COUNT).map(|i| percpu_sum(map, i)).collect()
    }

    fn backend_hits(&self, slot: u32) -> Result<u64> {
        percpu_sum(self.map("backend_hits")?, slot)
    }

    fn clear_backend_hits(&mut self, slot: u32) -> Result<()> {
        let backend_hits = rb(PerCpuArray::<u64>::new(self.map("backend_hits")?), "backend_hits")?;
        rb(backend_hits.set(slot, &PerCpuValues::new(0)), "backend_hits: update")
    }

    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        let flags = match mode {
            XdpMode::Native => xdp::Flags::DrvMode,
            XdpMode::Skb => xdp::Flags::SkbMode,
        };
        // RedBPF attaches by interface name.
        let name = interface_name(ifindex)?;
        let program = self.module.xdps_mut().find(|p| p.name() == PROGRAM).context("no program `loadbalancer`")?;
        rb(program.attach_xdp(&name, flags), "attaching XDP")
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.events.poll(timeout, sink)
    }
}

fn main() {
    // RedBPF's errors carry no detail; it logs the detail (verifier log, errno) through tracing.
    tracing_subscriber::fmt().with_writer(io::stderr).with_max_level(LevelFilter::ERROR).init();
    bpfeval_shared_redbpf::loadbalancer::run("redbpf", RedbpfBalancer::load)
}
