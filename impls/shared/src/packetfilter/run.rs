//! The packetfilter loader lifecycle, shared by every library:
//! parse and validate -> load -> fill maps -> attach -> `ready` -> serve (stats, events,
//! SIGHUP reload) -> final stats -> detach (by dropping the backend).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use ipnet::IpNet;
use serde_json::{json, Value};

use super::abi::{self, Settings};
use super::config::{Config, Family, Ruleset};
use crate::cli::{self, Cli, InputErrorSource, XdpMode};
use crate::output;
use crate::signals::{Request, Signals};
use crate::InputError;

/// What a library provides: its own way to load, attach, and reach the maps in `abi`.
/// Dropping the backend must detach the program.
pub trait Backend {
    /// Inserts (`Some(rule id)`) or deletes (`None`) one `rules_v4` entry.
    fn set_rule_v4(&mut self, prefixlen: u32, data: [u8; 8], rule: Option<u32>) -> Result<()>;
    /// Inserts (`Some(rule id)`) or deletes (`None`) one `rules_v6` entry.
    fn set_rule_v6(&mut self, prefixlen: u32, data: [u8; 20], rule: Option<u32>) -> Result<()>;
    fn set_settings(&mut self, generation: u32, settings: &Settings) -> Result<()>;
    fn set_generation(&mut self, generation: u32) -> Result<()>;
    /// The `verdicts` counters, summed over CPUs, in `abi` index order.
    fn verdicts(&self) -> Result<Vec<u64>>;
    /// One `rule_hits` counter, summed over CPUs.
    fn rule_hits(&self, rule: u32) -> Result<u64>;
    /// Zeroes one `rule_hits` counter on every CPU.
    fn clear_rule_hits(&mut self, rule: u32) -> Result<()>;
    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()>;
    /// Waits at most `timeout` for ring buffer records and hands each one to `sink`.
    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()>;
}

/// What the loader needs to know before loading.
#[derive(Debug, Clone, Copy)]
pub struct LoadParams {
    /// Rules per generation; `rule_hits` needs `2 * capacity` entries and each LPM trie
    /// `2 * capacity` max entries.
    pub capacity: u32,
}

/// Per-rule counters are read every stats interval only up to this many rules; above it they
/// are read once, at exit, since reading means one map lookup per rule.
const PERIODIC_RULE_HITS_MAX: usize = 4096;

/// Capacity without `rules.capacity`: room for reloads that grow the rule set a little. Small on
/// purpose: `rule_hits` is a per-CPU array, and the kernel allocates each of its entries apart
/// when the map is created — at 2 * 65536 entries that took 100 of a loader's 120 ms, the same in
/// every library, and hid their differences in `load_attach_ms`.
const MIN_CAPACITY: usize = 1 << 10;

/// Runs the packetfilter contract with one library's backend and exits the process.
pub fn run<B: Backend>(lib: &str, load: impl FnOnce(&LoadParams) -> Result<B>) -> ! {
    let cli = Cli::parse();
    match serve(lib, &cli, load) {
        Ok(()) => std::process::exit(0),
        Err(e) => crate::error::exit_with(e),
    }
}

fn serve<B: Backend>(lib: &str, cli: &Cli, load: impl FnOnce(&LoadParams) -> Result<B>) -> Result<()> {
    let started = Instant::now();
    // Before anything is attached, so that no signal can kill us with a program attached.
    let signals = Signals::install().context("installing signal handlers")?;

    // All input is validated before anything is loaded: bad input leaves nothing behind.
    let path = cli.config.clone().ok_or_else(|| InputError::cli("--config", "packetfilter needs a config file"))?;
    let config = Config::load(&path)?;
    let log_every = cli.log_every()?;
    let (iface, ifindex) = match (&cli.iface, &config.interface) {
        (Some(name), _) => (name.clone(), cli::ifindex(name, InputErrorSource::Cli)?),
        (None, Some(name)) => (name.clone(), cli::ifindex(name, InputErrorSource::File(&path, "rules.interface"))?),
        (None, None) => {
            return Err(InputError::in_file(&path, "rules.interface", "no interface given here or with --iface").into())
        }
    };
    let (wanted, field) = match config.capacity {
        Some(c) => (c as usize, "rules.capacity"),
        None => (config.rules.rules.len().max(MIN_CAPACITY), "rules"),
    };
    let capacity = u32::try_from(wanted.next_power_of_two())
        .ok()
        .filter(|c| c.checked_mul(2).is_some())
        .ok_or_else(|| InputError::in_file(&path, field, "too many rules for the maps (2 * capacity entries)"))?;

    let mut backend = load(&LoadParams { capacity }).context("loading the BPF program")?;
    let mut filter = Filter { capacity, log_every, generation: 0, rules: config.rules };
    filter.install(&mut backend, 0, true)?;
    backend.set_generation(0)?;
    backend.attach(ifindex, cli.xdp_mode).with_context(|| format!("attaching XDP to {iface}"))?;
    output::ready(
        "packetfilter",
        lib,
        &iface,
        json!({
            "xdp_mode": cli.xdp_mode.as_str(),
            "rules": filter.rules.rules.len(),
            "capacity": capacity,
            "load_ms": started.elapsed().as_secs_f64() * 1e3,
        }),
    );

    let mut next_stats = cli.stats_interval().map(|i| Instant::now() + i);
    loop {
        match signals.take() {
            Some(Request::Stop) => break,
            Some(Request::Reload) => filter.reload(&mut backend, &path)?,
            None => {}
        }
        let rules = &filter.rules;
        let capacity = filter.capacity;
        backend.poll_events(Duration::from_millis(100), &mut |raw| emit_event(raw, rules, capacity))?;
        if let (Some(due), Some(interval)) = (next_stats, cli.stats_interval()) {
            if Instant::now() >= due {
                filter.emit_stats(&backend, filter.rules.rules.len() <= PERIODIC_RULE_HITS_MAX)?;
                next_stats = Some(due + interval);
            }
        }
    }
    filter.emit_stats(&backend, true)?;
    drop(backend);
    output::emit("exit", json!({ "detached": true }));
    Ok(())
}

struct Filter {
    capacity: u32,
    log_every: u32,
    generation: u32,
    rules: Ruleset,
}

impl Filter {
    fn rule_id(&self, generation: u32, index: usize) -> u32 {
        generation * self.capacity + index as u32
    }

    /// Writes `self.rules` into `generation` (not yet active) and its settings. Rule ids of a
    /// generation are reused every other reload, so their counters start again from zero.
    fn install(&self, backend: &mut impl Backend, generation: u32, fresh_maps: bool) -> Result<()> {
        for (i, rule) in self.rules.rules.iter().enumerate() {
            if !fresh_maps {
                backend.clear_rule_hits(self.rule_id(generation, i))?;
            }
            write_rule(backend, generation, rule.list.abi(), &rule.net, Some(self.rule_id(generation, i)))
                .with_context(|| format!("inserting {} ({})", rule.field, rule.net))?;
        }
        let settings = Settings {
            default_drop_v4: self.rules.default_drop(Family::V4) as u32,
            default_drop_v6: self.rules.default_drop(Family::V6) as u32,
            log_every: self.log_every,
            _reserved: 0,
        };
        backend.set_settings(generation, &settings)
    }

    fn remove(rules: &Ruleset, backend: &mut impl Backend, generation: u32) -> Result<()> {
        for rule in &rules.rules {
            write_rule(backend, generation, rule.list.abi(), &rule.net, None)
                .with_context(|| format!("removing {} ({})", rule.field, rule.net))?;
        }
        Ok(())
    }

    /// Fill the inactive generation, flip, then clear the old one: at every instant one
    /// complete rule set is active.
    fn reload(&mut self, backend: &mut impl Backend, path: &std::path::Path) -> Result<()> {
        let config = match Config::load(path) {
            Ok(c) if c.rules.rules.len() <= self.capacity as usize => c,
            Ok(c) => {
                let reason = format!("{} rules exceed the capacity {} set at start", c.rules.rules.len(), self.capacity);
                output::emit("reload_failed", json!({ "error": reason }));
                return Ok(());
            }
            Err(e) => {
                output::emit("reload_failed", json!({ "error": e.to_string() }));
                return Ok(());
            }
        };
        let next = 1 - self.generation;
        let old = std::mem::replace(&mut self.rules, config.rules);
        if let Err(e) = self.install(backend, next, false) {
            // Keep filtering with the old set; clear what was written of the new one.
            let new = std::mem::replace(&mut self.rules, old);
            let _ = Self::remove(&new, backend, next);
            output::emit("reload_failed", json!({ "error": format!("{e:#}") }));
            return Ok(());
        }
        backend.set_generation(next)?;
        Self::remove(&old, backend, self.generation)?;
        self.generation = next;
        output::emit("reloaded", json!({ "rules": self.rules.rules.len(), "generation": next }));
        Ok(())
    }

    fn emit_stats(&self, backend: &impl Backend, with_rules: bool) -> Result<()> {
        let counters = backend.verdicts()?;
        let verdicts: serde_json::Map<String, Value> =
            abi::VERDICT_NAMES.iter().zip(&counters).map(|(n, v)| (n.to_string(), json!(v))).collect();
        let mut line = json!({ "generation": self.generation, "verdicts": verdicts });
        if with_rules {
            let mut hits = Vec::new();
            for (i, rule) in self.rules.rules.iter().enumerate() {
                let n = backend.rule_hits(self.rule_id(self.generation, i))?;
                if n > 0 {
                    hits.push(json!({ "rule": rule.field, "net": rule.net.to_string(), "packets": n }));
                }
            }
            line["rule_hits"] = Value::Array(hits);
        }
        output::emit("stats", line);
        Ok(())
    }
}

fn write_rule(backend: &mut impl Backend, generation: u32, list: u8, net: &IpNet, rule: Option<u32>) -> Result<()> {
    let prefixlen = abi::KEY_HEADER_BITS + u32::from(net.prefix_len());
    match net {
        IpNet::V4(n) => backend.set_rule_v4(prefixlen, abi::key_v4(generation as u8, list, n.addr().octets()), rule),
        IpNet::V6(n) => backend.set_rule_v6(prefixlen, abi::key_v6(generation as u8, list, n.addr().octets()), rule),
    }
}

/// A decoded ring buffer record (layout in `abi::EVENT_SIZE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    pub rule: u32,
    pub ifindex: u32,
    pub verdict: u8,
    pub saddr: IpAddr,
}

impl Event {
    pub fn parse(raw: &[u8]) -> Option<Self> {
        if raw.len() < abi::EVENT_SIZE {
            return None;
        }
        let u32_at = |o: usize| u32::from_ne_bytes(raw[o..o + 4].try_into().unwrap());
        let addr: [u8; 16] = raw[24..40].try_into().unwrap();
        let saddr = match raw[17] {
            4 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
            6 => IpAddr::V6(Ipv6Addr::from(addr)),
            _ => return None,
        };
        Some(Event {
            ts_ns: u64::from_ne_bytes(raw[0..8].try_into().unwrap()),
            rule: u32_at(8),
            ifindex: u32_at(12),
            verdict: raw[16],
            saddr,
        })
    }
}

fn emit_event(raw: &[u8], rules: &Ruleset, capacity: u32) {
    let Some(ev) = Event::parse(raw) else {
        output::emit("bad_event", json!({ "len": raw.len() }));
        return;
    };
    let verdict = abi::VERDICT_NAMES.get(ev.verdict as usize).copied().unwrap_or("unknown");
    // An event may name a rule of the previous generation right after a reload; only rules of
    // the current one are resolved to their config path.
    let rule = (ev.rule != abi::NO_RULE)
        .then(|| rules.rules.get((ev.rule % capacity) as usize).map(|r| r.field.clone()))
        .flatten();
    output::emit(
        "packet",
        json!({ "ts_ns": ev.ts_ns, "verdict": verdict, "saddr": ev.saddr.to_string(), "rule": rule, "ifindex": ev.ifindex }),
    );
}
