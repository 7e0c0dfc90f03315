//! The lsmbpf loader lifecycle, shared by every library:
//! parse and validate -> read the loader's namespaces -> load (settings fixed) -> attach ->
//! `ready` -> serve (stats, events) -> final stats -> detach (by dropping the backend).

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use super::abi::{self, Settings};
use super::cli::Args;
use super::config::Config;
use crate::output;
use crate::signals::{Request, Signals};

/// What a library provides: its own way to load (with [`Settings`] as read-only data), attach,
/// and read `counters` and `events`. Dropping the backend must detach the program.
pub trait Backend {
    fn attach(&mut self) -> Result<()>;
    /// The `counters`, summed over CPUs, in `abi` index order.
    fn counters(&self) -> Result<Vec<u64>>;
    /// Waits at most `timeout` for ring buffer records and hands each one to `sink`.
    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()>;
}

/// Runs the lsmbpf contract with one library's backend and exits the process.
pub fn run<B: Backend>(lib: &str, load: impl FnOnce(&Settings) -> Result<B>) -> ! {
    let args = Args::parse();
    match serve(lib, &args, load) {
        Ok(()) => std::process::exit(0),
        Err(e) => crate::error::exit_with(e),
    }
}

fn serve<B: Backend>(lib: &str, args: &Args, load: impl FnOnce(&Settings) -> Result<B>) -> Result<()> {
    let started = Instant::now();
    // Before anything is attached, so that no signal can kill us with a program attached.
    let signals = Signals::install().context("installing signal handlers")?;

    // All input is validated before anything is loaded: bad input leaves nothing behind.
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let mode = args.mode.unwrap_or(config.mode);
    let criterion = args.containerized.unwrap_or(config.containerized);

    // "Containerized" is relative to the loader's own namespaces.
    let pidns = std::fs::metadata("/proc/self/ns/pid").context("stat /proc/self/ns/pid")?;
    let mntns = std::fs::metadata("/proc/self/ns/mnt").context("stat /proc/self/ns/mnt")?;
    let settings = Settings {
        pidns_dev: pidns.dev(),
        pidns_ino: pidns.ino(),
        mntns_ino: mntns.ino() as u32,
        criterion: criterion.abi(),
        mode: mode.abi(),
        _reserved: 0,
    };

    let mut backend = load(&settings).context("loading the BPF LSM program")?;
    let attach_started = Instant::now();
    backend.attach().context("attaching to the LSM hook path_chroot")?;
    let attach_ms = attach_started.elapsed().as_secs_f64() * 1e3;
    output::ready(
        "lsmbpf",
        lib,
        "",
        json!({
            "hook": "path_chroot",
            "mode": mode.as_str(),
            "containerized": criterion.as_str(),
            "pidns": pidns.ino(),
            "mntns": mntns.ino(),
            "load_ms": started.elapsed().as_secs_f64() * 1e3,
            "attach_ms": attach_ms,
        }),
    );

    let mut next_stats = args.stats_interval().map(|i| Instant::now() + i);
    loop {
        // lsmbpf has no configuration to reload: SIGHUP is accepted and ignored.
        if signals.take() == Some(Request::Stop) {
            break;
        }
        backend.poll_events(Duration::from_millis(100), &mut emit_event)?;
        if let (Some(due), Some(interval)) = (next_stats, args.stats_interval()) {
            if Instant::now() >= due {
                emit_stats(&backend)?;
                next_stats = Some(due + interval);
            }
        }
    }
    // Records still in the ring buffer are reported before the final counters.
    backend.poll_events(Duration::ZERO, &mut emit_event)?;
    emit_stats(&backend)?;
    drop(backend);
    output::emit("exit", json!({ "detached": true }));
    Ok(())
}

fn emit_stats(backend: &impl Backend) -> Result<()> {
    let counters = backend.counters()?;
    let fields: serde_json::Map<String, Value> =
        abi::COUNTER_NAMES.iter().zip(&counters).map(|(n, v)| (n.to_string(), json!(v))).collect();
    output::emit("stats", json!({ "counters": fields }));
    Ok(())
}

/// A decoded `events` record (layout in `abi::EVENT_SIZE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub pidns: u32,
    pub mntns: u32,
    pub verdict: u8,
    pub comm: String,
    pub path: String,
}

impl Event {
    pub fn parse(raw: &[u8]) -> Option<Event> {
        if raw.len() < abi::EVENT_SIZE {
            return None;
        }
        let u32_at = |o: usize| u32::from_ne_bytes(raw[o..o + 4].try_into().unwrap());
        let text = |b: &[u8]| String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(&[])).into_owned();
        Some(Event {
            ts_ns: u64::from_ne_bytes(raw[0..8].try_into().unwrap()),
            pid: u32_at(8),
            tid: u32_at(12),
            pidns: u32_at(16),
            mntns: u32_at(20),
            verdict: raw[24],
            comm: text(&raw[32..32 + abi::COMM_LEN]),
            path: text(&raw[48..48 + abi::PATH_LEN]),
        })
    }
}

fn emit_event(raw: &[u8]) {
    let Some(ev) = Event::parse(raw) else {
        output::emit("bad_event", json!({ "len": raw.len() }));
        return;
    };
    let verdict = abi::VERDICT_NAMES.get(ev.verdict as usize).copied().unwrap_or("unknown");
    output::emit(
        "chroot",
        json!({
            "ts_ns": ev.ts_ns, "pid": ev.pid, "tid": ev.tid, "comm": ev.comm, "pidns": ev.pidns,
            "mntns": ev.mntns, "path": ev.path, "verdict": verdict,
        }),
    );
}
