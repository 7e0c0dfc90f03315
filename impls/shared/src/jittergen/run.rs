//! The jittergen loader lifecycle, shared by every library:
//! parse and validate -> load -> fill maps -> install fq (if a rule delays) -> attach (TCX or
//! netlink clsact) -> `ready` -> serve (stats) -> final stats -> detach (drop the backend) ->
//! remove a clsact we created -> restore the root qdisc -> `exit`.
//!
//! Every step that changes the interface is a guard, so an error on the way (a failed attach
//! after fq went in) or a panic undoes what was done, in reverse order.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use super::abi;
use super::config::{Config, TcAttach};
use super::qdisc::{ClsactGuard, RootFq};
use crate::cli::{self, Cli, InputErrorSource};
use crate::output;
use crate::signals::{Request, Signals};
use crate::InputError;

/// How the TC program is attached to the interface's egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcMode {
    /// A TCX bpf_link (kernel >= 6.6): detached when the process dies, however it dies.
    Tcx,
    /// A cls_bpf filter in direct-action mode under a `clsact` qdisc, through netlink. Not a
    /// link: a SIGKILLed loader leaves it attached.
    Netlink,
}

impl TcMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TcMode::Tcx => "tcx",
            TcMode::Netlink => "netlink",
        }
    }
}

/// The interface to attach to.
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    pub index: u32,
}

/// What a library provides: its own way to load, attach, and reach the maps in `abi`.
/// Dropping the backend must detach the program.
pub trait Backend {
    fn set_rule(&mut self, index: u32, rule: &abi::Rule) -> Result<()>;
    fn set_settings(&mut self, settings: &abi::Settings) -> Result<()>;
    /// The `counters`, summed over CPUs, in `abi` index order.
    fn counters(&self) -> Result<Vec<u64>>;
    /// One `rule_hits` counter, summed over CPUs.
    fn rule_hits(&self, rule: u32) -> Result<u64>;
    /// Attaches the program to the egress of `iface` the way `mode` says (for `Netlink`, after
    /// adding the `clsact` qdisc if it is missing).
    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()>;
}

/// Runs the jittergen contract with one library's backend and exits the process.
pub fn run<B: Backend>(lib: &str, load: impl FnOnce() -> Result<B>) -> ! {
    let cli = Cli::parse();
    match serve(lib, &cli, load) {
        Ok(()) => std::process::exit(0),
        Err(e) => crate::error::exit_with(e),
    }
}

/// Whether the kernel has TCX: `BPF_PROG_QUERY` for `BPF_TCX_EGRESS` on the interface succeeds
/// where it does (>= 6.6) and fails with EINVAL (unknown attach type) where it does not.
pub fn kernel_has_tcx(ifindex: u32) -> bool {
    tcx_egress_progs(ifindex).is_some()
}

/// The programs on the TCX egress of `ifindex` (calling thread's network namespace), or `None`
/// where the kernel has no TCX.
pub fn tcx_egress_progs(ifindex: u32) -> Option<Vec<u32>> {
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_TCX_EGRESS: u32 = 47;
    #[repr(C)]
    #[derive(Default)]
    struct QueryAttr {
        target_ifindex: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        count: u32,
        _pad: u32,
        prog_attach_flags: u64,
        link_ids: u64,
        link_attach_flags: u64,
        revision: u64,
    }
    let mut ids = [0u32; 64];
    let mut attr = QueryAttr {
        target_ifindex: ifindex,
        attach_type: BPF_TCX_EGRESS,
        prog_ids: ids.as_mut_ptr() as u64,
        count: ids.len() as u32,
        ..Default::default()
    };
    // SAFETY: a properly sized bpf_attr prefix for BPF_PROG_QUERY; `prog_ids` has room for
    // `count` ids.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_QUERY, &mut attr as *mut QueryAttr, size_of::<QueryAttr>() as u32)
    };
    (r == 0).then(|| ids[..(attr.count as usize).min(ids.len())].to_vec())
}

fn serve<B: Backend>(lib: &str, cli: &Cli, load: impl FnOnce() -> Result<B>) -> Result<()> {
    let started = Instant::now();
    // Before anything is attached, so that no signal can kill us with a program attached.
    let signals = Signals::install().context("installing signal handlers")?;

    // All input is validated before anything is loaded: bad input leaves nothing behind.
    let path = cli.config.clone().ok_or_else(|| InputError::cli("--config", "jittergen needs a config file"))?;
    let config = Config::load(&path)?;
    if cli.log_packets.is_some() {
        return Err(InputError::cli("--log-packets", "jittergen has no per-packet log").into());
    }
    let iface = match (&cli.iface, &config.interface) {
        (Some(name), _) => Iface { name: name.clone(), index: cli::ifindex(name, InputErrorSource::Cli)? },
        (None, Some(name)) => {
            Iface { name: name.clone(), index: cli::ifindex(name, InputErrorSource::File(&path, "outIf"))? }
        }
        (None, None) => return Err(InputError::in_file(&path, "outIf", "no interface given here or with --iface").into()),
    };
    let mode = match config.tc_attach {
        TcAttach::Tcx => TcMode::Tcx,
        TcAttach::Netlink => TcMode::Netlink,
        TcAttach::Auto if kernel_has_tcx(iface.index) => TcMode::Tcx,
        TcAttach::Auto => TcMode::Netlink,
    };

    let mut backend = load().context("loading the BPF program")?;
    for (i, rule) in config.rules.iter().enumerate() {
        backend.set_rule(i as u32, &rule.abi()).with_context(|| format!("writing rule {}", rule.name()))?;
    }
    backend.set_settings(&abi::Settings { rule_count: config.rules.len() as u32 })?;

    // Guards in the order of their undoing: the program goes first (dropping the backend),
    // then a clsact we created, then the root qdisc.
    let fq = if config.needs_fq() && config.fq.install {
        Some(RootFq::install(iface.index, &config.fq).with_context(|| format!("on {}", iface.name))?)
    } else {
        None
    };
    let clsact = ClsactGuard::new(iface.index, mode == TcMode::Netlink)?;
    backend
        .attach(&iface, mode)
        .with_context(|| format!("attaching to the egress of {} ({})", iface.name, mode.as_str()))?;
    output::ready(
        "jittergen",
        lib,
        &iface.name,
        json!({
            "attach": mode.as_str(),
            "qdisc": if fq.is_some() { "fq" } else { "unchanged" },
            "previous_qdisc": fq.as_ref().map(RootFq::previous),
            "horizon_ms": fq.as_ref().map(|_| config.fq.horizon_ms),
            "rules": config.rules.len(),
            "load_ms": started.elapsed().as_secs_f64() * 1e3,
        }),
    );

    let mut next_stats = cli.stats_interval().map(|i| Instant::now() + i);
    loop {
        match signals.take() {
            Some(Request::Stop) => break,
            Some(Request::Reload) => output::emit(
                "reload_failed",
                json!({ "error": "jittergen does not reload its configuration (fq and the attach depend on it); restart it" }),
            ),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(50));
        if let (Some(due), Some(interval)) = (next_stats, cli.stats_interval()) {
            if Instant::now() >= due {
                emit_stats(&backend, &config)?;
                next_stats = Some(due + interval);
            }
        }
    }
    emit_stats(&backend, &config)?;
    drop(backend);
    clsact.finish()?;
    let restored = match fq {
        Some(fq) => {
            fq.restore().with_context(|| format!("on {}", iface.name))?;
            true
        }
        None => false,
    };
    output::emit("exit", json!({ "detached": true, "qdisc_restored": restored }));
    Ok(())
}

fn emit_stats(backend: &impl Backend, config: &Config) -> Result<()> {
    let counters = backend.counters()?;
    let named: serde_json::Map<String, Value> =
        abi::COUNTER_NAMES.iter().zip(&counters).map(|(n, v)| (n.to_string(), json!(v))).collect();
    let mut hits = Vec::new();
    for (i, rule) in config.rules.iter().enumerate() {
        hits.push(json!({ "rule": rule.name(), "packets": backend.rule_hits(i as u32)? }));
    }
    output::emit("stats", json!({ "counters": named, "rule_hits": hits }));
    Ok(())
}
