//! Load-time metrics of a running implementation, taken without its cooperation: time to the
//! `ready` line, verifier and JIT statistics of every program it holds, and its memory.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use metrics::record::Row;

use crate::bpf::{self, Prog};
use crate::netns::NetNs;
use crate::process::{Implementation, Running};

/// Generous: a loader filling a million rules takes seconds.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts `imp` in `ns` and waits for `ready`; returns it with the time from spawn to ready.
pub fn start(imp: &Implementation, args: &[&str], ns: &NetNs) -> Result<(Running, f64)> {
    let started = Instant::now();
    let mut running = imp.spawn(args, Some(ns))?;
    running.wait_ready(READY_TIMEOUT).with_context(|| format!("{}-{} did not get ready", imp.usecase, imp.lib))?;
    Ok((running, started.elapsed().as_secs_f64() * 1e3))
}

/// `verified_insns`, `xlated_bytes`, `jited_bytes` per program (class = program name), and
/// `rss_kib` of the loader.
pub fn program_rows(imp: &Implementation, pid: u32, rep: u32) -> Result<Vec<Row>> {
    let (u, l) = (imp.usecase.as_str(), imp.lib.as_str());
    let mut rows = Vec::new();
    for id in bpf::prog_ids_of_pid(pid)? {
        let info = Prog::from_id(id)?.info()?;
        for (metric, unit, value) in [
            ("verified_insns", "insns", info.verified_insns as f64),
            ("xlated_bytes", "bytes", info.xlated_prog_len as f64),
            ("jited_bytes", "bytes", info.jited_prog_len as f64),
        ] {
            rows.push(Row::new(u, l, metric, unit, rep, value).with_class(&info.name));
        }
    }
    rows.push(Row::new(u, l, "rss_kib", "KiB", rep, rss_kib(pid)? as f64));
    Ok(rows)
}

pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').context("malformed /proc/<pid>/stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Runs `repeat` iterations of `prog` on `frame` `reps` times; the kernel's mean ns per run.
pub fn test_run_ns(prog: &Prog, frame: &[u8], repeat: u32) -> Result<f64> {
    let r = prog.test_run(&bpf::TestRun { data_in: frame, repeat, ..Default::default() })?;
    Ok(r.duration.as_nanos() as f64)
}
