//! jittergen in the harness: the conformance vectors (host, `BPF_PROG_TEST_RUN`), load/attach
//! time, verifier statistics and per-packet cost on the host, and configured vs measured
//! behaviour on the wire in the VM guest (drop share, delay p50/p99, reorder share) — for each
//! library, for netem configured the same way in the same guest, for no qdisc at all, and the
//! configured values themselves (`ref:configured`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use metrics::record::Row;

use super::UseCase;
use crate::jittergen::{self as jg, Bed, Loader, Outcome};
use crate::measure::{load, Ctx};
use crate::process::{Implementation, TempDir};

pub struct JitterGen;

const USECASE: &str = jg::USECASE;

/// The configuration load time and per-packet cost are measured with: three rules, so that a
/// packet of the last class walks all of them. `fq.install: false`: the host has no fq.
const BENCH_CONFIG: &str = "rules:
  - action: drop
    match: {percent: 100, protocol: udp, port: 9}
  - action: jitter
    match: {protocol: udp, port: 5000}
    jitter: {minDelayMs: 10, maxDelayMs: 30}
  - action: reorder
    match: {percent: 100, protocol: tcp, port: 80}
    reorder: {delayMs: 20}
fq:
  install: false
";

/// Packet classes of `test_run_ns`.
fn classes() -> Vec<(&'static str, jg::FrameSpec)> {
    let udp = |dport| jg::FrameSpec { dport: Some(dport), ..Default::default() };
    vec![
        ("drop", udp(9)),
        ("jitter_ordered", udp(5000)),
        ("reorder_tcp", jg::FrameSpec { proto: Some("tcp".into()), dport: Some(80), ..Default::default() }),
        ("unmatched", udp(7)),
        ("non_ip", jg::FrameSpec { arp: true, ..Default::default() }),
    ]
}

/// `jittergen-guest`, built next to the harness binary (`cargo build -p harness` builds both).
fn guest_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the harness binary")?;
    let bin = exe.with_file_name("jittergen-guest");
    ensure!(bin.is_file(), "{} missing: `cargo build --release -p harness` builds it", bin.display());
    Ok(bin)
}

/// Wire metrics of one outcome (class = scenario), for `lib` (a library or `ref:...`).
fn wire_rows(o: &Outcome, lib: &str) -> Vec<Row> {
    let Some(m) = &o.measured else { return Vec::new() };
    let row = |metric: &str, unit: &str, v: f64| Row::new(USECASE, lib, metric, unit, 1, v).with_class(&o.scenario);
    let mut rows = vec![row("wire_drop_pct", "%", m.loss_pct), row("wire_reorder_pct", "%", m.reorder_pct)];
    if m.p50.is_finite() {
        rows.push(row("wire_delay_p50_ms", "ms", m.p50));
        rows.push(row("wire_delay_p99_ms", "ms", m.p99));
    }
    rows
}

impl UseCase for JitterGen {
    fn name(&self) -> &'static str {
        USECASE
    }

    fn conformance(&self, _ctx: &Ctx, imp: &Implementation) -> Result<Vec<String>> {
        jg::conformance(imp)
    }

    fn measure(&self, ctx: &Ctx, imp: &Implementation) -> Result<Vec<Row>> {
        let lib = imp.lib.as_str();
        let bed = Bed::new(&format!("jgm-{lib}"))?;
        let tmp = TempDir::new("jg-measure")?;
        let config = Bed::config(&tmp, "bench.yml", BENCH_CONFIG)?;
        let args = ["--config", config.to_str().context("UTF-8 path")?];
        let mut rows = Vec::new();

        // Load and attach (TCX on the host), ctx.reps times.
        for rep in 1..=ctx.reps {
            ctx.check_interrupted()?;
            let (mut running, ms) = load::start(imp, &args, &bed.mid)?;
            rows.push(Row::new(USECASE, lib, "load_attach_ms", "ms", rep, ms));
            rows.extend(load::program_rows(imp, running.ready_pid().context("no pid in ready")?, rep)?);
            let status = running.stop(Duration::from_secs(10))?;
            ensure!(status.success(), "{lib} exited with {status} on SIGINT");
        }

        // Per-packet cost by class.
        let mut loader = Loader::start(imp, &bed.mid, &config, &["--stats-interval-ms", "0"])?;
        let repeat = ctx.scaled(100_000, 10_000) as u32;
        for (class, spec) in classes() {
            let frame = jg::frame(&spec)?;
            for rep in 1..=ctx.reps {
                let r = jg::test_run_skb(loader.prog(), &frame, repeat)?;
                rows.push(Row::new(USECASE, lib, "test_run_ns", "ns", rep, r.duration_ns as f64).with_class(class));
            }
        }
        let stopped = loader.stop(Duration::from_secs(10))?;
        ensure!(stopped.exit_code == 0, "{lib} exited with {}: {}", stopped.exit_code, stopped.stderr);
        drop(bed);

        // On the wire, in the guest (one boot runs every scenario).
        ctx.step(&format!("{USECASE}/{lib}: scenarios in the VM guest"));
        let outcomes = jg::run_in_guest(&guest_binary()?, std::slice::from_ref(imp), false)?;
        for o in &outcomes {
            rows.extend(wire_rows(o, lib));
            // The test suite is the gate for behaviour; a measurement run reports what it saw
            // (emulated timing stretches with the host's load).
            for p in &o.problems {
                eprintln!("harness: warning: {USECASE}/{lib} in the guest: {}: {p}", o.scenario);
            }
        }
        Ok(rows)
    }

    fn references(&self, ctx: &Ctx) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for sc in jg::scenarios() {
            let c = sc.configured;
            let row = |metric: &str, unit: &str, v: f64| {
                Row::new(USECASE, "ref:configured", metric, unit, 1, v).with_class(sc.name)
            };
            rows.push(row("wire_drop_pct", "%", c.drop_pct));
            rows.push(row("wire_reorder_pct", "%", c.reorder_pct));
            rows.push(row("wire_delay_p50_ms", "ms", c.delay_p50_ms));
            rows.push(row("wire_delay_p99_ms", "ms", c.delay_p99_ms));
        }
        ctx.step(&format!("{USECASE}: netem and no-qdisc references in the VM guest"));
        for o in jg::run_in_guest(&guest_binary()?, &[], true)? {
            ensure!(o.measured.is_some(), "{} {}: {}", o.subject, o.scenario, o.problems.join("; "));
            rows.extend(wire_rows(&o, &o.subject));
        }
        Ok(rows)
    }
}
