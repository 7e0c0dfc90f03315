//! packetfilter with RedBPF: the library-specific part (load, map access, attach, ring buffer).
//! CLI, config, reload protocol and output are `bpfeval_shared::packetfilter::run`, reached
//! through `bpfeval_shared_redbpf` (RedBPF builds with Rust 1.59 only; see that crate).
//!
//! What RedBPF 2.3.0 lacks here, and how it is filled (README.md has the full account):
//! - no user-space API for LPM tries or ring buffers: their maps are created by RedBPF from the
//!   object like any other, then used through bpf-sys, RedBPF's own libbpf binding, on the map's
//!   fd (which a patch exposes);
//! - no way to size a map at load time: a patch adds `ModuleBuilder::set_max_entries`;
//! - `PerCpuArray::set` and XDP detach in skb mode were broken: patched.

use std::ffi::c_void;
use std::io;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use bpfeval_shared_redbpf::cli::XdpMode;
use bpfeval_shared_redbpf::packetfilter::abi::{self, Settings, VERDICT_COUNT};
use bpfeval_shared_redbpf::packetfilter::{Backend, LoadParams};
use packetfilter_redbpf_types as types;
use redbpf::{xdp, Array, Map, Module, ModuleBuilder, PerCpuArray, PerCpuValues};
use redbpf_ext::{interface_name, RingBuffer};
use tracing_subscriber::filter::LevelFilter;

// The kernel program restates the ABI in `types`; keep the two in step.
const _: () =
    assert!(types::VERDICT_COUNT == abi::VERDICT_COUNT && types::COUNTER_EVENTS_LOST == abi::COUNTER_EVENTS_LOST);
const _: () = assert!(types::LIST_BLOCK == abi::LIST_BLOCK && types::LIST_ALLOW == abi::LIST_ALLOW);
const _: () = assert!(types::NO_RULE == abi::NO_RULE && std::mem::size_of::<types::Event>() == abi::EVENT_SIZE);

const PROGRAM: &str = "packetfilter";

/// The object `cargo bpf build` made of `kernel/` (see build.rs).
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/packetfilter.elf"));

/// Field order is drop order: the ring buffer consumer, then the module, whose XDP program
/// detaches itself when dropped (by netlink: RedBPF has no bpf_link, so unlike the Aya and
/// libbpf-rs loaders a SIGKILL leaves this program attached).
struct RedbpfFilter {
    events: RingBuffer,
    module: Module,
}

/// RedBPF's errors are bare enum values; the details went to `tracing` (stderr).
fn rb<T>(r: redbpf::Result<T>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow!("{}: {:?} (RedBPF's log above has the details)", what, e))
}

impl RedbpfFilter {
    fn load(params: &LoadParams) -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK) here: RedBPF raises it only after the kernel said EPERM,
        // which kernels with memcg accounting of BPF memory (>= 5.11) do not.
        let entries = 2 * params.capacity;
        let mut builder = rb(ModuleBuilder::parse(OBJECT), "parsing the BPF object")?;
        for map in ["rules_v4", "rules_v6", "rule_hits"] {
            rb(builder.set_max_entries(map, entries), map)?;
        }
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

/// LPM key bytes: `u32 prefixlen` (native endian) followed by the key data.
fn set_rule<const N: usize>(map: &Map, prefixlen: u32, data: [u8; N], rule: Option<u32>) -> Result<()> {
    let key = types::LpmKey { prefixlen, data };
    let key = &key as *const _ as *const c_void;
    // SAFETY: key and value have the map's key and value sizes.
    let ret = unsafe {
        match rule {
            Some(id) => bpf_sys::bpf_map_update_elem(map.as_raw_fd(), key, &id as *const u32 as *const c_void, 0),
            None => bpf_sys::bpf_map_delete_elem(map.as_raw_fd(), key),
        }
    };
    let err = io::Error::last_os_error();
    match ret {
        0 => Ok(()),
        _ if rule.is_none() && err.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        _ => Err(err).with_context(|| format!("{}: update", map.name)),
    }
}

impl Backend for RedbpfFilter {
    fn set_rule_v4(&mut self, prefixlen: u32, data: [u8; 8], rule: Option<u32>) -> Result<()> {
        set_rule(self.map("rules_v4")?, prefixlen, data, rule)
    }

    fn set_rule_v6(&mut self, prefixlen: u32, data: [u8; 20], rule: Option<u32>) -> Result<()> {
        set_rule(self.map("rules_v6")?, prefixlen, data, rule)
    }

    fn set_settings(&mut self, generation: u32, s: &Settings) -> Result<()> {
        let value = types::Settings {
            default_drop_v4: s.default_drop_v4,
            default_drop_v6: s.default_drop_v6,
            log_every: s.log_every,
            _reserved: 0,
        };
        let settings = rb(Array::<types::Settings>::new(self.map("settings")?), "settings")?;
        rb(settings.set(generation, value), "settings: update")
    }

    fn set_generation(&mut self, generation: u32) -> Result<()> {
        let array = rb(Array::<u32>::new(self.map("generation")?), "generation")?;
        rb(array.set(0, generation), "generation: update")
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        let map = self.map("verdicts")?;
        (0..VERDICT_COUNT).map(|i| percpu_sum(map, i)).collect()
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        percpu_sum(self.map("rule_hits")?, rule)
    }

    fn clear_rule_hits(&mut self, rule: u32) -> Result<()> {
        let rule_hits = rb(PerCpuArray::<u64>::new(self.map("rule_hits")?), "rule_hits")?;
        rb(rule_hits.set(rule, &PerCpuValues::new(0)), "rule_hits: update")
    }

    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        let flags = match mode {
            XdpMode::Native => xdp::Flags::DrvMode,
            XdpMode::Skb => xdp::Flags::SkbMode,
        };
        // RedBPF attaches by interface name.
        let name = interface_name(ifindex)?;
        let program = self.module.xdps_mut().find(|p| p.name() == PROGRAM).context("no program `packetfilter`")?;
        rb(program.attach_xdp(&name, flags), "attaching XDP")
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.events.poll(timeout, sink)
    }
}

fn main() {
    // RedBPF's errors carry no detail; it logs the detail (verifier log, errno) through tracing.
    tracing_subscriber::fmt().with_writer(io::stderr).with_max_level(LevelFilter::ERROR).init();
    bpfeval_shared_redbpf::packetfilter::run("redbpf", RedbpfFilter::load)
}
