//! `harness soak <usecase> --minutes N`: one implementation under sustained load for N minutes,
//! with its loader's resident set sampled every few seconds, the events it emitted and lost, and
//! every error on the way. A leak that a minute-long measurement cannot see (a per-connection
//! or per-event allocation that is never freed) shows here as growth.
//!
//! * loadbalancer: client connections through the balancer to three backends (the bench of
//!   [`crate::usecases::loadbalancer::bed::Bed`]), with `--log-packets=LB_LOG_EVERY` so that the ring buffer and
//!   its reader run too. Events: `packet` lines; lost: the `events_lost` counter; errors: failed
//!   connections, undecodable events.
//! * comtrace: [`crate::usecases::comtrace::bed::drive`]'s loopback connections in a namespace at a fixed rate.
//!   Events: the `conn` records of those connections; lost: the sockets that got no record,
//!   split by cause (the `events_lost` and `untracked` counters, and what neither explains);
//!   errors: failed connections, undecodable events.
//!
//! Growth is the last sample minus the first one taken after the first round of load: start-up
//! allocations (the ring buffer's pages, the first connections' bookkeeping) are not a leak.
//! The command fails if growth reaches [`MAX_GROWTH_KIB`] or there was any error.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::Serialize;

use bpfeval_shared::comtrace::abi;

use crate::bpf::{self, Map};
use crate::usecases::comtrace::bed::{self as ct, Load, Tracer};
use crate::usecases::loadbalancer::bed::{self as lb, Balancer, Bed};
use crate::measure::load::{rss_kib, READY_TIMEOUT};
use crate::netns::NetNs;
use crate::process::{Implementation, TempDir};

/// The use cases `harness soak` drives.
pub const USECASES: &[&str] = &["loadbalancer", "comtrace"];
/// Growth of the loader's resident set (KiB) from which a soak fails: 1 MiB.
pub const MAX_GROWTH_KIB: i64 = 1024;
/// About one packet in this many becomes a `packet` event of the balancer.
const LB_LOG_EVERY: &str = "16";
/// comtrace's offered connection rate: well below the bench's loss knee (no event should be
/// lost), high enough for ~300,000 connections in ten minutes.
const CT_RATE: f64 = 500.0;

/// One RSS sample, and the totals up to it.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub rss_kib: u64,
    /// Units of work done (connections).
    pub work: u64,
    pub events: u64,
    pub lost: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub usecase: String,
    pub lib: String,
    pub minutes: f64,
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    pub rss_max_kib: u64,
    pub growth_kib: i64,
    pub work: u64,
    pub events: u64,
    pub lost: u64,
    /// Why events were lost, where the counters tell (comtrace: ring buffer full, socket not
    /// tracked, and what neither explains).
    pub lost_kinds: BTreeMap<String, u64>,
    pub errors: u64,
    /// What the errors were, with how often each happened.
    pub error_kinds: BTreeMap<String, u64>,
    pub passed: bool,
}

/// Totals a round of load adds to.
#[derive(Debug, Default)]
struct Tally {
    work: u64,
    events: u64,
    lost: u64,
    lost_kinds: BTreeMap<String, u64>,
    error_kinds: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, what: impl Into<String>, n: u64) {
        if n > 0 {
            *self.error_kinds.entry(what.into()).or_default() += n;
        }
    }

    fn errors(&self) -> u64 {
        self.error_kinds.values().sum()
    }
}

/// A loader under load: what differs between the use cases.
trait Soaked {
    fn pid(&self) -> u32;
    /// Drives load for about `length` and adds what happened to `tally`.
    fn round(&mut self, length: Duration, tally: &mut Tally) -> Result<()>;
    /// Stops the loader (SIGINT) and adds what only the end tells to `tally`.
    fn finish(&mut self, tally: &mut Tally) -> Result<()>;
}

/// Soaks `imp` for `minutes`, sampling every `sample`; writes `<usecase>-<lib>.csv` and `.json`
/// into `out` and returns the summary. `stop` ends it early (SIGINT), with what was sampled.
pub fn run(imp: &Implementation, minutes: f64, sample: Duration, out: &Path, stop: &AtomicBool) -> Result<Summary> {
    ensure!(minutes > 0.0, "--minutes must be positive");
    let what = format!("{}-{}", imp.usecase, imp.lib);
    let tmp = TempDir::new(&format!("soak-{what}"))?;
    let mut soaked: Box<dyn Soaked> = match imp.usecase.as_str() {
        "loadbalancer" => Box::new(LbSoak::start(imp, &tmp)?),
        "comtrace" => Box::new(CtSoak::start(imp)?),
        other => bail!("no soak for `{other}`: soaks exist for {}", USECASES.join(", ")),
    };
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(minutes * 60.0);
    let mut tally = Tally::default();
    let mut samples: Vec<Sample> = Vec::new();
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        let length = sample.min(end.saturating_duration_since(Instant::now())).max(Duration::from_millis(500));
        soaked.round(length, &mut tally).with_context(|| format!("{what}: driving load"))?;
        let rss = rss_kib(soaked.pid()).with_context(|| format!("{what}: the loader is gone"))?;
        samples.push(Sample {
            t_s: started.elapsed().as_secs_f64(),
            rss_kib: rss,
            work: tally.work,
            events: tally.events,
            lost: tally.lost,
            errors: tally.errors(),
        });
    }
    soaked.finish(&mut tally).with_context(|| format!("{what}: stopping"))?;
    ensure!(!samples.is_empty(), "{what}: stopped before the first sample");
    let first = &samples[0];
    let last = samples.last().unwrap();
    let mut summary = Summary {
        usecase: imp.usecase.clone(),
        lib: imp.lib.clone(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
        rss_start_kib: first.rss_kib,
        rss_end_kib: last.rss_kib,
        rss_max_kib: samples.iter().map(|s| s.rss_kib).max().unwrap(),
        growth_kib: last.rss_kib as i64 - first.rss_kib as i64,
        work: tally.work,
        events: tally.events,
        lost: tally.lost,
        errors: tally.errors(),
        lost_kinds: tally.lost_kinds,
        error_kinds: tally.error_kinds,
        passed: false,
    };
    summary.passed = summary.growth_kib < MAX_GROWTH_KIB && summary.errors == 0;
    write(out, &what, &samples, &summary)?;
    Ok(summary)
}

fn write(out: &Path, what: &str, samples: &[Sample], summary: &Summary) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut csv = String::from("t_s,rss_kib,work,events,lost,errors\n");
    for s in samples {
        writeln!(csv, "{:.1},{},{},{},{},{}", s.t_s, s.rss_kib, s.work, s.events, s.lost, s.errors)?;
    }
    let path = out.join(format!("{what}.csv"));
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    let json = serde_json::json!({ "summary": summary, "samples": samples });
    let path = out.join(format!("{what}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&json)?).with_context(|| format!("writing {}", path.display()))
}

/// One line for the terminal.
pub fn describe(s: &Summary) -> String {
    let kinds: Vec<String> = s.error_kinds.iter().map(|(k, n)| format!("{n}x {k}")).collect();
    let lost: Vec<String> = s.lost_kinds.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    format!(
        "{}-{}: {:.1} min, RSS {} -> {} KiB (max {}, growth {:+} KiB), {} connections, {} events, {} lost{}, {} errors{} — {}",
        s.usecase,
        s.lib,
        s.minutes,
        s.rss_start_kib,
        s.rss_end_kib,
        s.rss_max_kib,
        s.growth_kib,
        s.work,
        s.events,
        s.lost,
        if lost.is_empty() { String::new() } else { format!(" ({})", lost.join(", ")) },
        s.errors,
        if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) },
        if s.passed { "ok" } else { "FAILED" }
    )
}

/// Counts (and removes from the loader's history) the lines of `event`, and `bad_event` lines
/// as errors.
fn count_lines(running: &mut crate::process::Running, event: &str, tally: &mut Tally) -> u64 {
    tally.error("undecodable ring buffer record (bad_event)", running.take_events("bad_event").len() as u64);
    running.take_events(event).len() as u64
}

// --- loadbalancer ------------------------------------------------------------------------------

struct LbSoak {
    // Drop order: the balancer (detaches) before the bed's namespaces.
    balancer: Balancer,
    bed: Bed,
    events_lost: usize,
}

impl LbSoak {
    fn start(imp: &Implementation, tmp: &TempDir) -> Result<LbSoak> {
        let bed = Bed::new(&format!("soak-{}", imp.lib), 3)?;
        let backends: Vec<String> = bed.backends.iter().map(|b| b.by_mac()).collect();
        let config = tmp.write("config.yml", bed.config(&backends))?;
        let log = format!("--log-packets={LB_LOG_EVERY}");
        let balancer = Balancer::start(imp, &bed.balancer, lb::IFACE, &config, &[&log, "--stats-interval-ms", "0"], READY_TIMEOUT)?;
        let events_lost = bpfeval_shared::loadbalancer::abi::VERDICT_NAMES
            .iter()
            .position(|n| *n == "events_lost")
            .expect("events_lost is a verdict counter");
        Ok(LbSoak { balancer, bed, events_lost })
    }
}

impl Soaked for LbSoak {
    fn pid(&self) -> u32 {
        self.balancer.pid
    }

    fn round(&mut self, length: Duration, tally: &mut Tally) -> Result<()> {
        let target = SocketAddr::new(lb::VIP4.into(), lb::PORTS[0]);
        let until = Instant::now() + length;
        while Instant::now() < until {
            let run = lb::connections(&self.bed.client, target, 200, 8, 2, Duration::from_secs(60))?;
            tally.work += run.completed() as u64;
            for (what, n) in run.failures() {
                tally.error(format!("connection: {what}"), n as u64);
            }
            let n = count_lines(&mut self.balancer.running, "packet", tally);
            tally.events += n;
        }
        tally.lost = self.balancer.counters()?.0[self.events_lost];
        Ok(())
    }

    fn finish(&mut self, tally: &mut Tally) -> Result<()> {
        tally.lost = self.balancer.counters()?.0[self.events_lost];
        let n = count_lines(&mut self.balancer.running, "packet", tally);
        tally.events += n;
        let stopped = self.balancer.stop(Duration::from_secs(30))?;
        if stopped.exit_code != 0 || !stopped.exit_line {
            tally.error(format!("exit code {} on SIGINT (exit line: {}): {}", stopped.exit_code, stopped.exit_line, stopped.stderr.trim()), 1);
        }
        Ok(())
    }
}

// --- comtrace ----------------------------------------------------------------------------------

struct CtSoak {
    // Drop order: the tracer, the counters' fd, then the namespace.
    tracer: Tracer,
    counters: Map,
    ns: NetNs,
    server: SocketAddr,
    /// Sockets of completed connections (two per connection): each must get a record.
    sockets: u64,
}

impl CtSoak {
    fn start(imp: &Implementation) -> Result<CtSoak> {
        let ns = NetNs::new("soak-ct")?;
        let server = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), ct::port_block(10));
        let tracer = Tracer::start(imp, &["--stats-interval-ms", "0"], READY_TIMEOUT)?;
        let counters = bpf::find_map(tracer.pid, "counters")?;
        Ok(CtSoak { tracer, counters, ns, server, sockets: 0 })
    }

    /// Records of our connections read since the last call (the tracer sees every namespace).
    fn take_ours(&mut self, tally: &mut Tally) -> u64 {
        tally.error("undecodable ring buffer record (bad_event)", self.tracer.running.take_events("bad_event").len() as u64);
        let records = self.tracer.take_records();
        ct::rate_records(&records, self.server).count() as u64
    }

    /// A counter of the program's (`abi::COUNTER_*`), summed over the CPUs.
    fn counter(&self, index: u32) -> Result<u64> {
        self.counters.lookup_percpu_u64_sum(&index.to_ne_bytes())
    }
}

impl Soaked for CtSoak {
    fn pid(&self) -> u32 {
        self.tracer.pid
    }

    fn round(&mut self, length: Duration, tally: &mut Tally) -> Result<()> {
        let driven = ct::drive(&self.ns, self.server, Load { rate: Some(CT_RATE), concurrency: 64, duration: length })?;
        tally.work += driven.completed;
        self.sockets += 2 * driven.completed;
        tally.error("connection failed", driven.failed);
        let n = self.take_ours(tally);
        tally.events += n;
        tally.lost = self.counter(abi::COUNTER_EVENTS_LOST)?;
        Ok(())
    }

    fn finish(&mut self, tally: &mut Tally) -> Result<()> {
        // The last connections' records are on their way: give them a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while tally.events < self.sockets && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let n = self.take_ours(tally);
            tally.events += n;
        }
        // A socket without a record: its record found the ring buffer full (events_lost), or
        // the program could not store its birth (untracked: the map full, or busy — a hash map
        // update from a tracepoint that interrupted another update of the same map on this CPU
        // fails with EBUSY). Both counters count every socket the tracer saw, ours or not.
        let missing = self.sockets.saturating_sub(tally.events);
        let (ring, untracked) = (self.counter(abi::COUNTER_EVENTS_LOST)?, self.counter(abi::COUNTER_UNTRACKED)?);
        tally.lost = missing.max(ring);
        tally.lost_kinds.insert("ring buffer full (events_lost)".into(), ring);
        tally.lost_kinds.insert("birth not stored (untracked)".into(), untracked);
        tally.lost_kinds.insert("without a record, unexplained".into(), missing.saturating_sub(ring + untracked));
        let (code, _, exit) = self.tracer.stop(Duration::from_secs(30))?;
        if code != 0 || !exit {
            tally.error(format!("exit code {code} on SIGINT (exit line: {exit}): {}", self.tracer.running.stderr().trim()), 1);
        }
        Ok(())
    }
}

/// SIGINT / SIGTERM set the returned flag (checked between rounds), so that an interrupted soak
/// still stops its loader, removes its namespaces and writes what it sampled.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone()).map_err(|e| anyhow!("installing a signal handler: {e}"))?;
    }
    Ok(flag)
}
