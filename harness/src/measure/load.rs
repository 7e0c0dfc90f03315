//! Load-time metrics of a running implementation, taken without its cooperation: time to the
//! `ready` line, verifier and JIT statistics of every program it holds, and its memory.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use metrics::record::Row;

use crate::bpf::{self, Prog};
use crate::netns::NetNs;
use crate::process::{Implementation, Running};

/// Generous: a loader filling a million rules takes seconds.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts per repetition of `load_attach_ms`, whose value is their median: one start delayed by
/// another process on a shared machine must not decide a ranking.
pub const STARTS_PER_REP: usize = 5;

/// Quiet time before each timed start, after the kernel dropped the previous start's maps: it
/// frees them (every use case's counters are per-CPU; packetfilter's rule counters 1 MiB per CPU)
/// in deferred work, and a start racing that work took 70–180 ms where one 50 ms later took
/// 97–105 (libbpf's own load_ms, packetfilter, 12 starts each; a 131072-entry per-CPU array
/// created alone: 140–170 ms right after the previous one's removal, 87–93 ms from 20 ms on).
/// Without it a start measured the harness's previous start as much as the library.
const SETTLE: Duration = Duration::from_millis(50);

/// How long a stopped loader's maps may take to go (an RCU grace period after its programs).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// An implementation started until `ready`, for [`load_rows`].
pub trait Started {
    /// The loader's pid (from its `ready` line).
    fn loader_pid(&self) -> Result<u32>;
    /// Stops it (SIGINT) and checks that it exited cleanly.
    fn finish(self) -> Result<()>;
}

impl Started for Running {
    fn loader_pid(&self) -> Result<u32> {
        self.ready_pid().context("no pid in ready")
    }

    fn finish(mut self) -> Result<()> {
        let status = self.stop(Duration::from_secs(30))?;
        ensure!(status.success(), "exited with {status} on SIGINT; stderr: {}", self.stderr().trim());
        Ok(())
    }
}

/// Starts `imp` in `ns` and waits for `ready`.
pub fn start(imp: &Implementation, args: &[&str], ns: &NetNs) -> Result<Running> {
    let mut running = imp.spawn(args, Some(ns))?;
    running.wait_ready(READY_TIMEOUT).with_context(|| format!("{}-{} did not get ready", imp.usecase, imp.lib))?;
    Ok(running)
}

/// One repetition of the load metrics: `load_attach_ms`, the median of [`STARTS_PER_REP`]
/// timed calls of `start` (spawn to `ready`), and the verifier, JIT and memory rows
/// ([`program_rows`]) of the last. Each start runs at real-time priority, which the loader
/// and its threads inherit, so that the builds and tests of others on a shared machine do not
/// decide its time (they did: rankings of two runs disagreed). Each start begins [`SETTLE`]
/// after the kernel released the previous one's maps. The warm-up (rep 0), whose rows are
/// dropped, starts once.
pub fn load_rows<S: Started>(imp: &Implementation, rep: u32, mut start: impl FnMut() -> Result<S>) -> Result<Vec<Row>> {
    let starts = if rep == 0 { 1 } else { STARTS_PER_REP };
    let mut times = Vec::with_capacity(starts);
    let mut rows = Vec::new();
    for i in 0..starts {
        std::thread::sleep(SETTLE);
        let (started, ms) = crate::throughput::realtime_while(|| {
            let t = Instant::now();
            let started = start()?;
            Ok((started, t.elapsed().as_secs_f64() * 1e3))
        })?;
        let pid = started.loader_pid()?;
        if i + 1 == starts {
            rows.extend(program_rows(imp, pid, rep)?);
        }
        let maps = bpf::map_ids_of_pid(pid)?;
        started.finish().with_context(|| format!("{}-{}", imp.usecase, imp.lib))?;
        released(&maps);
        times.push(ms);
    }
    rows.push(Row::new(&imp.usecase, &imp.lib, "load_attach_ms", "ms", rep, metrics::stats::median(&times)));
    Ok(rows)
}

/// Waits (at most [`RELEASE_TIMEOUT`]) until the kernel dropped every map of `maps`.
fn released(maps: &[u32]) {
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    while Instant::now() < deadline && maps.iter().any(|id| bpf::Map::from_id(*id).is_ok()) {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `verified_insns`, `xlated_bytes`, `jited_bytes` per program (class = program name), and
/// `rss_kib` of the loader.
pub fn program_rows(imp: &Implementation, pid: u32, rep: u32) -> Result<Vec<Row>> {
    let (u, l) = (imp.usecase.as_str(), imp.lib.as_str());
    let mut rows = Vec::new();
    for id in bpf::prog_ids_of_pid(pid)? {
        let info = Prog::from_id(id)?.info()?;
        let verified = info.verified_insns.map(|n| ("verified_insns", "insns", n as f64));
        for (metric, unit, value) in verified.into_iter().chain([
            ("xlated_bytes", "bytes", info.xlated_prog_len as f64),
            ("jited_bytes", "bytes", info.jited_prog_len as f64),
        ]) {
            rows.push(Row::new(u, l, metric, unit, rep, value).with_class(&info.name));
        }
    }
    // Our RedBPF bridge (bpfeval-shared as a shared object from a memfd) is plumbing, not the
    // library: its mapped pages are reported on their own and left out of rss_kib. Its heap
    // cannot be told apart and stays in.
    let bridge = mapped_kib(pid, BRIDGE_MAPPING)?;
    rows.push(Row::new(u, l, "rss_kib", "KiB", rep, rss_kib(pid)?.saturating_sub(bridge) as f64));
    if bridge > 0 {
        rows.push(Row::new(u, l, "bridge_rss_kib", "KiB", rep, bridge as f64));
    }
    Ok(rows)
}

/// The name of the memfd the RedBPF loaders map the shared lifecycle from
/// (impls/redbpf/shared/src/lifecycle.rs).
const BRIDGE_MAPPING: &str = "/memfd:bpfeval-shared-lifecycle";

pub fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Resident KiB of the mappings of `pid` whose name starts with `name` (`/proc/<pid>/smaps`).
fn mapped_kib(pid: u32, name: &str) -> Result<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut inside = false;
    let mut kib = 0;
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            if inside {
                kib += rss.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        } else if line.split_whitespace().next().is_some_and(|f| f.contains('-') && !f.ends_with(':')) {
            // A mapping's header line: range perms offset dev inode [name].
            inside = line.split_whitespace().nth(5).is_some_and(|n| n.starts_with(name));
        }
    }
    Ok(kib)
}

/// CPU time (user + system) all threads of a process have used so far, with nanosecond
/// precision: the scheduler's run time from `/proc/<pid>/task/*/schedstat` (`/proc/<pid>/stat`
/// counts 10 ms ticks, too coarse for a loader that mostly sleeps).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).with_context(|| format!("reading /proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread that ended between the listing and the read has no file any more.
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        ns += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("malformed {}", path.display()))?;
    }
    Ok(Duration::from_nanos(ns))
}

/// The loader's use of the CPU over a window of a measurement: `loader_cpu_pct`, and beside it
/// `loader_reads_per_s`, the read(2)-type calls it made (`/proc/<pid>/io` `syscr`, the whole
/// thread group), which shows where CPU beyond the BPF calls and the ring buffer's epoll went
/// (RedBPF reads `/sys/devices/system/cpu/possible` at every per-CPU map lookup).
pub struct LoaderUse {
    pid: u32,
    cpu: Duration,
    reads: u64,
}

impl LoaderUse {
    pub fn start(pid: u32) -> Result<LoaderUse> {
        Ok(LoaderUse { pid, cpu: cpu_time(pid)?, reads: read_calls(pid)? })
    }

    /// The rows of the window from [`LoaderUse::start`] until now, which lasted `elapsed`.
    pub fn rows(&self, usecase: &str, lib: &str, rep: u32, elapsed: Duration) -> Result<Vec<Row>> {
        let (cpu, reads) = (cpu_time(self.pid)? - self.cpu, read_calls(self.pid)? - self.reads);
        let s = elapsed.as_secs_f64();
        Ok(vec![
            Row::new(usecase, lib, "loader_cpu_pct", "%", rep, 100.0 * cpu.as_secs_f64() / s),
            Row::new(usecase, lib, "loader_reads_per_s", "calls/s", rep, reads as f64 / s),
        ])
    }
}

/// read(2)-type system calls the process has made so far (`syscr` of `/proc/<pid>/io`).
fn read_calls(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/io");
    let io = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    io.lines()
        .find_map(|l| l.strip_prefix("syscr:")?.trim().parse().ok())
        .with_context(|| format!("no syscr in {path}"))
}

/// Runs `repeat` iterations of `prog` on `frame` `reps` times; the kernel's mean ns per run.
pub fn test_run_ns(prog: &Prog, frame: &[u8], repeat: u32) -> Result<f64> {
    let r = prog.test_run(&bpf::TestRun { data_in: frame, repeat, ..Default::default() })?;
    Ok(r.duration.as_nanos() as f64)
}
