//! The loadbalancer loader lifecycle, shared by every library:
//! parse and validate (backends by IP resolved) -> load -> fill maps -> attach -> `ready` ->
//! serve (stats, events, SIGHUP reload of the backend set) -> final stats -> detach (by
//! dropping the backend).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use super::abi::{self, Settings, MAX_BACKENDS, NO_BACKEND};
use super::config::{format_mac, Config, Server};
use super::maglev;
use crate::cli::{self, Cli, InputErrorSource, XdpMode};
use crate::output;
use crate::signals::{Request, Signals};
use crate::InputError;

/// What a library provides: its own way to load, attach, and reach the maps in `abi`.
/// Dropping the backend must detach the program.
pub trait Backend {
    fn set_settings(&mut self, settings: &Settings) -> Result<()>;
    /// Adds one `vips_v4` entry.
    fn add_vip_v4(&mut self, addr: [u8; 4], index: u32) -> Result<()>;
    /// Adds one `vips_v6` entry.
    fn add_vip_v6(&mut self, addr: [u8; 16], index: u32) -> Result<()>;
    /// Adds one `ports` entry (the port in network byte order).
    fn add_port(&mut self, port: [u8; 2], index: u32) -> Result<()>;
    /// Writes `backends[slot]` (`abi::backend_bytes`).
    fn set_backend(&mut self, slot: u32, value: [u8; abi::BACKEND_SIZE]) -> Result<()>;
    /// Writes `maglev[index]`.
    fn set_table_entry(&mut self, index: u32, slot: u32) -> Result<()>;
    /// The `verdicts` counters, summed over CPUs, in `abi` index order.
    fn verdicts(&self) -> Result<Vec<u64>>;
    /// One `backend_hits` counter, summed over CPUs.
    fn backend_hits(&self, slot: u32) -> Result<u64>;
    /// Zeroes one `backend_hits` counter on every CPU.
    fn clear_backend_hits(&mut self, slot: u32) -> Result<()>;
    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()>;
    /// Waits at most `timeout` for ring buffer records and hands each one to `sink`.
    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()>;
}

/// Runs the loadbalancer contract with one library's backend and exits the process.
pub fn run<B: Backend>(lib: &str, load: impl FnOnce() -> Result<B>) -> ! {
    let cli = Cli::parse();
    match serve(lib, &cli, load) {
        Ok(()) => std::process::exit(0),
        Err(e) => crate::error::exit_with(e),
    }
}

fn serve<B: Backend>(lib: &str, cli: &Cli, load: impl FnOnce() -> Result<B>) -> Result<()> {
    let started = Instant::now();
    // Before anything is attached, so that no signal can kill us with a program attached.
    let signals = Signals::install().context("installing signal handlers")?;

    // All input is validated (and backends given by IP resolved) before anything is loaded.
    let path = cli.config.clone().ok_or_else(|| InputError::cli("--config", "loadbalancer needs a config file"))?;
    let config = Config::load(&path)?;
    let log_every = cli.log_every()?;
    let (iface, ifindex) = match (&cli.iface, &config.interface) {
        (Some(name), _) => (name.clone(), cli::ifindex(name, InputErrorSource::Cli)?),
        (None, Some(name)) => (name.clone(), cli::ifindex(name, InputErrorSource::File(&path, "listenInterface"))?),
        (None, None) => {
            return Err(InputError::in_file(&path, "listenInterface", "no interface given here or with --iface").into())
        }
    };
    let servers = config.resolve(ifindex, &path)?;

    let mut backend = load().context("loading the BPF program")?;
    backend.set_settings(&Settings { any_vip: config.vips.is_empty() as u32, log_every })?;
    let (mut v4, mut v6) = (0, 0);
    for vip in &config.vips {
        match vip {
            IpAddr::V4(a) => backend.add_vip_v4(a.octets(), post_inc(&mut v4))?,
            IpAddr::V6(a) => backend.add_vip_v6(a.octets(), post_inc(&mut v6))?,
        }
    }
    for (i, port) in config.ports.iter().enumerate() {
        backend.add_port(port.to_be_bytes(), i as u32)?;
    }
    let mut pool = Pool::new();
    pool.install(&mut backend, &servers, true)?;
    backend.attach(ifindex, cli.xdp_mode).with_context(|| format!("attaching XDP to {iface}"))?;
    output::ready(
        "loadbalancer",
        lib,
        &iface,
        json!({
            "xdp_mode": cli.xdp_mode.as_str(),
            "backends": servers.len(),
            "vips": config.vips.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "ports": config.ports,
            "table_size": abi::TABLE_SIZE,
            "load_ms": started.elapsed().as_secs_f64() * 1e3,
        }),
    );

    let mut next_stats = cli.stats_interval().map(|i| Instant::now() + i);
    loop {
        match signals.take() {
            Some(Request::Stop) => break,
            Some(Request::Reload) => reload(&mut backend, &mut pool, &config, &path, ifindex)?,
            None => {}
        }
        backend.poll_events(Duration::from_millis(100), &mut |raw| emit_event(raw, &pool))?;
        if let (Some(due), Some(interval)) = (next_stats, cli.stats_interval()) {
            if Instant::now() >= due {
                pool.emit_stats(&backend)?;
                next_stats = Some(due + interval);
            }
        }
    }
    pool.emit_stats(&backend)?;
    drop(backend);
    output::emit("exit", json!({ "detached": true }));
    Ok(())
}

fn post_inc(n: &mut u32) -> u32 {
    *n += 1;
    *n - 1
}

/// SIGHUP: a new backend set (and weights) from the same file. A file that is invalid or
/// changes what is fixed for the process' lifetime is refused (`reload_failed`) and nothing
/// changes.
fn reload(backend: &mut impl Backend, pool: &mut Pool, running: &Config, path: &Path, ifindex: u32) -> Result<()> {
    match reload_candidate(running, path, ifindex) {
        Ok(servers) => {
            let changed = pool.install(backend, &servers, false)?;
            output::emit("reloaded", json!({ "backends": servers.len(), "table_entries_changed": changed }));
        }
        Err(reason) => output::emit("reload_failed", json!({ "error": reason })),
    }
    Ok(())
}

/// The new backend set, if the file is valid and keeps the VIPs and ports.
fn reload_candidate(running: &Config, path: &Path, ifindex: u32) -> Result<Vec<Server>, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    if config.vips != running.vips {
        return Err(InputError::in_file(path, "vips", "changing the VIPs needs a restart").to_string());
    }
    if config.ports != running.ports {
        return Err(InputError::in_file(path, "tcp_ports", "changing the ports needs a restart").to_string());
    }
    config.resolve(ifindex, path).map_err(|e| e.to_string())
}

/// A `backends` slot. A backend removed from the config keeps its slot ("draining"): its
/// connections in `conns` stay with it, and it gets no new ones since the table no longer
/// names it. The slot is reused only when no never-used or longer-draining slot is left.
#[derive(Debug, Clone)]
struct Slot {
    server: Server,
    active: bool,
    /// Install round in which the slot stopped being active.
    drained_at: u64,
}

struct Pool {
    slots: Vec<Option<Slot>>,
    /// The table as written to `maglev`.
    table: Vec<u32>,
    round: u64,
}

impl Pool {
    fn new() -> Pool {
        Pool { slots: vec![None; MAX_BACKENDS as usize], table: vec![NO_BACKEND; abi::TABLE_SIZE as usize], round: 0 }
    }

    /// Makes `servers` the active set: slots first (so that every slot the new table names
    /// holds its backend before any packet can be sent there), then the table entries that
    /// differ. Returns how many table entries changed.
    fn install(&mut self, backend: &mut impl Backend, servers: &[Server], fresh_maps: bool) -> Result<usize> {
        self.round += 1;
        let mut assigned = Vec::with_capacity(servers.len());
        for slot in self.slots.iter_mut().flatten() {
            if slot.active && !servers.iter().any(|s| s.id == slot.server.id) {
                slot.active = false;
                slot.drained_at = self.round;
            }
        }
        for server in servers {
            let index = match self.slots.iter().position(|s| s.as_ref().is_some_and(|s| s.server.id == server.id)) {
                Some(i) => i,
                None => self.free_slot(servers).context("no backend slot left")?,
            };
            let previous = self.slots[index].take();
            let same_mac = previous.as_ref().is_some_and(|p| p.server.mac == server.mac);
            if previous.as_ref().is_some_and(|p| p.server.id != server.id) && !fresh_maps {
                // A draining slot reused: its old connections now reach the new backend.
                backend.clear_backend_hits(index as u32)?;
            }
            if !same_mac {
                backend
                    .set_backend(index as u32, abi::backend_bytes(server.mac, abi::BACKEND_IN_USE))
                    .with_context(|| format!("writing {} ({})", server.field, server.id))?;
            }
            self.slots[index] = Some(Slot { server: server.clone(), active: true, drained_at: 0 });
            assigned.push(index as u32);
        }
        let entries: Vec<maglev::Entry<'_>> = servers
            .iter()
            .zip(&assigned)
            .map(|(s, &slot)| maglev::Entry { id: &s.id, weight: s.weight, slot })
            .collect();
        let table = maglev::build(&entries);
        let mut changed = 0;
        for (i, (new, old)) in table.iter().zip(&self.table).enumerate() {
            if new != old || fresh_maps {
                backend.set_table_entry(i as u32, *new)?;
                changed += usize::from(new != old);
            }
        }
        self.table = table;
        Ok(changed)
    }

    /// A never-used slot, or else the one draining longest (not one of `keep`).
    fn free_slot(&self, keep: &[Server]) -> Option<usize> {
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            return Some(i);
        }
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
            .filter(|(_, s)| !s.active && !keep.iter().any(|k| k.id == s.server.id))
            .min_by_key(|(_, s)| s.drained_at)
            .map(|(i, _)| i)
    }

    fn emit_stats(&self, backend: &impl Backend) -> Result<()> {
        let counters = backend.verdicts()?;
        let verdicts: serde_json::Map<String, Value> =
            abi::VERDICT_NAMES.iter().zip(&counters).map(|(n, v)| (n.to_string(), json!(v))).collect();
        let mut backends = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(slot) = slot else { continue };
            backends.push(json!({
                "backend": slot.server.field,
                "id": slot.server.id,
                "mac": format_mac(&slot.server.mac),
                "weight": slot.server.weight,
                "active": slot.active,
                "packets": backend.backend_hits(i as u32)?,
            }));
        }
        output::emit("stats", json!({ "verdicts": verdicts, "backends": backends }));
        Ok(())
    }
}

/// A decoded ring buffer record (layout in `abi::EVENT_SIZE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    pub backend: u32,
    pub verdict: u8,
    /// `None` for frames that are not IP.
    pub saddr: Option<IpAddr>,
    pub sport: u16,
}

impl Event {
    pub fn parse(raw: &[u8]) -> Option<Self> {
        if raw.len() < abi::EVENT_SIZE {
            return None;
        }
        let addr: [u8; 16] = raw[16..32].try_into().unwrap();
        let saddr = match raw[13] {
            0 => None,
            4 => Some(IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))),
            6 => Some(IpAddr::V6(Ipv6Addr::from(addr))),
            _ => return None,
        };
        Some(Event {
            ts_ns: u64::from_ne_bytes(raw[0..8].try_into().unwrap()),
            backend: u32::from_ne_bytes(raw[8..12].try_into().unwrap()),
            verdict: raw[12],
            saddr,
            sport: u16::from_be_bytes([raw[14], raw[15]]),
        })
    }
}

fn emit_event(raw: &[u8], pool: &Pool) {
    let Some(ev) = Event::parse(raw) else {
        output::emit("bad_event", json!({ "len": raw.len() }));
        return;
    };
    let verdict = abi::VERDICT_NAMES.get(ev.verdict as usize).copied().unwrap_or("unknown");
    let backend = pool.slots.get(ev.backend as usize).and_then(Option::as_ref).map(|s| s.server.id.clone());
    output::emit(
        "packet",
        json!({
            "ts_ns": ev.ts_ns,
            "verdict": verdict,
            "saddr": ev.saddr.map(|a| a.to_string()),
            "sport": ev.sport,
            "backend": backend,
        }),
    );
}
