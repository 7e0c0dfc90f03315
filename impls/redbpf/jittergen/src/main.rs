//! jittergen with RedBPF: the library-specific part (load, map access, attach). CLI, config,
//! qdiscs and output are `bpfeval_shared::jittergen::run`, reached through
//! `bpfeval_shared_redbpf` (RedBPF builds with Rust 1.59 only; see that crate).
//!
//! What RedBPF 2.3.0 lacks here, and how it is filled (README.md has the full account):
//! - its loader skipped the `tc_action/` sections `#[tc_action]` compiles to: a patch loads
//!   them as SCHED_CLS programs;
//! - it has no TC attach at all: the netlink (cls_bpf under clsact) and TCX attachments are
//!   libbpf's, called through bpf-sys, RedBPF's own libbpf binding (libbpf-rs' loader does the
//!   same for TCX, which libbpf-rs lacks too).

use std::io;
use std::mem::{size_of, zeroed};
use std::os::unix::io::RawFd;

use anyhow::{anyhow, Context as _, Result};
use bpfeval_shared_redbpf::jittergen::abi::{self, COUNTER_COUNT};
use bpfeval_shared_redbpf::jittergen::{Backend, Iface, TcMode};
use jittergen_redbpf_types as types;
use redbpf::{Array, Map, Module, PerCpuArray};
use tracing_subscriber::filter::LevelFilter;

// The kernel program restates the ABI in `types`; keep the two in step.
const _: () = assert!(types::MAX_RULES == abi::MAX_RULES && types::COUNTER_COUNT == abi::COUNTER_COUNT);
const _: () = assert!(types::ACTION_REORDER == abi::ACTION_REORDER && types::FLAG_KEEP_ORDER == abi::FLAG_KEEP_ORDER);
const _: () = assert!(size_of::<types::Rule>() == abi::RULE_SIZE);

const PROGRAM: &str = "jittergen";
/// `BPF_TCX_EGRESS` (Linux 6.6): newer than bpf-sys' headers, so only its number.
const BPF_TCX_EGRESS: bpf_sys::bpf_attach_type = 47;

/// The object `cargo bpf build` made of `kernel/` (see build.rs).
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jittergen.elf"));

/// How the program is attached; dropping it detaches.
enum Attachment {
    /// A TCX bpf_link; the kernel detaches when its last fd closes, even if we crash. A raw
    /// fd closed on drop: `OwnedFd` is Rust 1.63.
    Tcx(RawFd),
    /// A netlink cls_bpf filter, identified by its hook and the handle and priority the
    /// kernel gave it.
    Netlink(bpf_sys::bpf_tc_hook, bpf_sys::bpf_tc_opts),
}

impl Drop for Attachment {
    fn drop(&mut self) {
        match self {
            // SAFETY: the link fd is ours and closed once.
            Attachment::Tcx(fd) => unsafe {
                libc::close(*fd);
            },
            Attachment::Netlink(hook, opts) => {
                // libbpf's detach takes the filter's handle and priority only.
                let mut filter = tc_opts();
                filter.handle = opts.handle;
                filter.priority = opts.priority;
                // SAFETY: valid options structs of the sizes they declare.
                let ret = unsafe { bpf_sys::bpf_tc_detach(hook, &filter) };
                if ret < 0 {
                    eprintln!("warning: detaching the TC filter: {}", io::Error::from_raw_os_error(-ret));
                }
            }
        }
    }
}

/// Field order is drop order: detach first, then the module (programs and maps).
struct RedbpfJitter {
    attachment: Option<Attachment>,
    module: Module,
}

/// RedBPF's errors are bare enum values; the details went to `tracing` (stderr).
fn rb<T>(r: redbpf::Result<T>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow!("{}: {:?} (RedBPF's log above has the details)", what, e))
}

impl RedbpfJitter {
    fn load() -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK) here: RedBPF raises it only after the kernel said EPERM,
        // which kernels with memcg accounting of BPF memory (>= 5.11) do not.
        let mut module = rb(Module::parse(OBJECT), "parsing the BPF object")?;
        let (version, license) = (module.version, module.license.clone());
        for program in module.programs.iter_mut() {
            rb(program.load(version, license.clone()), "loading the BPF program (verifier)")?;
        }
        Ok(Self { attachment: None, module })
    }

    fn map(&self, name: &str) -> Result<&Map> {
        self.module.map(name).with_context(|| format!("no map `{}` in the object", name))
    }
}

/// Per-CPU u64 counter summed over all possible CPUs.
fn percpu_sum(map: &Map, index: u32) -> Result<u64> {
    let values = rb(PerCpuArray::<u64>::new(map), &map.name)?.get(index);
    let values = values.with_context(|| format!("{}[{}]: lookup failed", map.name, index))?;
    Ok(values.iter().sum())
}

/// The egress hook of `ifindex`, as libbpf's TC calls take it.
fn tc_hook(ifindex: u32) -> bpf_sys::bpf_tc_hook {
    // SAFETY: a plain C struct, valid all zero (bindgen derives no Default here).
    let mut hook: bpf_sys::bpf_tc_hook = unsafe { zeroed() };
    hook.sz = size_of::<bpf_sys::bpf_tc_hook>() as _;
    hook.ifindex = ifindex as i32;
    hook.attach_point = bpf_sys::bpf_tc_attach_point_BPF_TC_EGRESS;
    hook
}

/// Empty options of libbpf's TC calls: no program, kernel-chosen handle and priority.
fn tc_opts() -> bpf_sys::bpf_tc_opts {
    // SAFETY: as in `tc_hook`.
    let mut opts: bpf_sys::bpf_tc_opts = unsafe { zeroed() };
    opts.sz = size_of::<bpf_sys::bpf_tc_opts>() as _;
    opts
}

impl Backend for RedbpfJitter {
    fn set_rule(&mut self, index: u32, r: &abi::Rule) -> Result<()> {
        let value = types::Rule {
            chance: r.chance,
            base_ns: r.base_ns,
            min_ns: r.min_ns,
            span_ns: r.span_ns,
            action: r.action,
            flags: r.flags,
            port: r.port,
            protocol: r.protocol,
            _pad: [0; 5],
        };
        let rules = rb(Array::<types::Rule>::new(self.map("rules")?), "rules")?;
        rb(rules.set(index, value), "rules: update")
    }

    fn set_settings(&mut self, s: &abi::Settings) -> Result<()> {
        let settings = rb(Array::<types::Settings>::new(self.map("settings")?), "settings")?;
        rb(settings.set(0, types::Settings { rule_count: s.rule_count, _reserved: 0 }), "settings: update")
    }

    fn counters(&self) -> Result<Vec<u64>> {
        let map = self.map("counters")?;
        (0..COUNTER_COUNT).map(|i| percpu_sum(map, i)).collect()
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        percpu_sum(self.map("rule_hits")?, rule)
    }

    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()> {
        let program = self.module.tc_action(PROGRAM).context("no program `jittergen`")?;
        let prog_fd = program.fd().context("program not loaded")?;
        self.attachment = Some(match mode {
            TcMode::Tcx => {
                // SAFETY: a plain C struct, valid all zero; libbpf checks `sz`.
                let mut opts: bpf_sys::bpf_link_create_opts = unsafe { zeroed() };
                opts.sz = size_of::<bpf_sys::bpf_link_create_opts>() as _;
                // SAFETY: a loaded program's fd and a valid options struct of the size it declares.
                let fd = unsafe { bpf_sys::bpf_link_create(prog_fd, iface.index as i32, BPF_TCX_EGRESS, &opts) };
                if fd < 0 {
                    return Err(io::Error::from_raw_os_error(-fd)).context("bpf_link_create(BPF_TCX_EGRESS)");
                }
                Attachment::Tcx(fd)
            }
            TcMode::Netlink => {
                let mut hook = tc_hook(iface.index);
                // Adds the clsact qdisc; one that is there already is fine.
                // SAFETY (both calls): valid options structs of the sizes they declare.
                let ret = unsafe { bpf_sys::bpf_tc_hook_create(&mut hook) };
                if ret < 0 && ret != -libc::EEXIST {
                    return Err(io::Error::from_raw_os_error(-ret)).context("adding the clsact qdisc");
                }
                let mut opts = tc_opts();
                opts.prog_fd = prog_fd;
                let ret = unsafe { bpf_sys::bpf_tc_attach(&hook, &mut opts) };
                if ret < 0 {
                    return Err(io::Error::from_raw_os_error(-ret)).context("attaching the cls_bpf filter");
                }
                Attachment::Netlink(hook, opts)
            }
        });
        Ok(())
    }
}

fn main() {
    // RedBPF's errors carry no detail; it logs the detail (verifier log, errno) through tracing.
    tracing_subscriber::fmt().with_writer(io::stderr).with_max_level(LevelFilter::ERROR).init();
    bpfeval_shared_redbpf::jittergen::run("redbpf", RedbpfJitter::load)
}
