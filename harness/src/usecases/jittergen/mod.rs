//! jittergen in the harness: the conformance vectors (host, `BPF_PROG_TEST_RUN`), load/attach
//! time, verifier statistics, per-packet cost and the drop rule's throughput on the host
//! (against a TC program that drops everything and against no TC program), and configured vs measured
//! behaviour on the wire in the VM guest (drop share, delay p50/p99, reorder share) — for each
//! library, for netem configured the same way in the same guest, for no qdisc at all, and the
//! configured values themselves (`ref:configured`).

pub mod bed;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use metrics::hist::Histogram;
use metrics::record::Row;

use super::{UseCase, REFERENCES};
use crate::bpf;
use crate::frames::{FrameSpec, Ipv4Spec};
use crate::kernels::{self, Features};
use bed::{self as jg, Bed, Loader, Outcome};
use crate::throughput::{self, Counted};
use crate::measure::{load, Ctx};
use crate::process::{Implementation, TempDir};

pub struct JitterGen;

const USECASE: &str = jg::USECASE;
const CONFIGURED: &str = metrics::catalogue::TARGET_REFERENCE;
const EMPTY_TC: &str = "ref:empty TC program";
const NO_TC: &str = "ref:no TC program";

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

/// Wire metrics of one outcome (class = scenario), for `lib` (a library or `ref:...`), one
/// sample per repetition; the delays go to `histograms.csv` as `wire_delay_ms`.
fn wire_rows(ctx: &Ctx, o: &Outcome, lib: &str, rep: u32) -> Vec<Row> {
    let Some(m) = &o.measured else { return Vec::new() };
    let row = |metric: &str, unit: &str, v: f64| Row::new(USECASE, lib, metric, unit, rep, v).with_class(&o.scenario);
    let mut rows = vec![row("wire_drop_pct", "%", m.loss_pct), row("wire_reorder_pct", "%", m.reorder_pct)];
    if m.p50.is_finite() {
        rows.push(row("wire_delay_p50_ms", "ms", m.p50));
        rows.push(row("wire_delay_p99_ms", "ms", m.p99));
    }
    let mut h = Histogram::new(USECASE, lib, "wire_delay_ms", Some(&o.scenario), "ms");
    h.buckets = m.delay_hist.clone();
    ctx.record_histogram(h);
    rows
}

/// The configured delay distribution of a scenario as 1000 evenly spaced quantiles: uniform
/// between `minDelayMs` and `maxDelayMs` for jitter, `delayMs` for the matched share of a
/// reorder and 0 for the rest, 0 for a drop (it delays nothing).
fn configured_delays(sc: &jg::Scenario) -> Result<Vec<f64>> {
    let config: yaml_serde::Value = yaml_serde::from_str(sc.config).with_context(|| format!("scenario {}", sc.name))?;
    let ms = |section: &str, key: &str| config[section][key].as_f64().with_context(|| format!("scenario {}: no {section}.{key}", sc.name));
    const N: usize = 1000;
    let quantile = |i: usize| (i as f64 + 0.5) / N as f64;
    Ok(match config["action"].as_str() {
        Some("jitter") => {
            let (lo, hi) = (ms("jitter", "minDelayMs")?, ms("jitter", "maxDelayMs")?);
            (0..N).map(|i| lo + (hi - lo) * quantile(i)).collect()
        }
        Some("reorder") => {
            let share = config["match"]["percent"].as_f64().unwrap_or(100.0) / 100.0;
            let delay = ms("reorder", "delayMs")?;
            (0..N).map(|i| if quantile(i) > 1.0 - share { delay } else { 0.0 }).collect()
        }
        _ => vec![0.0; N],
    })
}

/// Throughput of the drop rule on the host (the drop action needs no fq): frames from the
/// sender are forwarded by the router namespace to its egress, where `counted` runs; its
/// receiving veth (`mid0`, [`throughput::Receiver::prepare_router`]) runs threaded NAPI, which
/// does the forwarding and the egress on one CPU.
fn throughput_rows(ctx: &Ctx, bed: &Bed, rx: &throughput::Receiver, lib: &str, counted: Counted<'_>) -> Result<Vec<Row>> {
    let snd = bed.snd.ifindex("snd0")?;
    let mid0 = bed.mid.link("mid0")?;
    let mac = |link: &serde_json::Value| crate::frames::parse_mac(link["address"].as_str().unwrap_or_default());
    let frame = FrameSpec {
        ipv4: Some(Ipv4Spec { dst: Bed::RCV_V4, ..Ipv4Spec::from_src(Bed::SND_V4) }),
        ..Default::default()
    }
    .with_macs(mac(&bed.snd.link("snd0")?)?, mac(&mid0)?)
    .build()?;
    let duration = ctx.window();
    let mut rows = Vec::new();
    for rep in ctx.rep_range() {
        ctx.check_interrupted()?;
        rows.extend(rx.measure(&bed.snd, snd, &frame, counted, duration)?.rows(USECASE, lib, rep));
    }
    Ok(rows)
}

/// The guest's outcomes as rows; a failed check fails the measurement (the guest's run is the
/// measurement: a library that did not behave as configured has no number to rank).
fn guest_rows(ctx: &Ctx, outcomes: &[Outcome], lib: Option<&str>) -> Result<Vec<Row>> {
    let problems: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.problems.iter().map(move |p| format!("{} {}: {p}", o.subject, o.scenario)))
        .collect();
    ensure!(problems.is_empty(), "checks failed in the VM guest:\n{}", problems.join("\n"));
    let mut rows = Vec::new();
    for rep in ctx.rep_range() {
        for o in outcomes {
            // The restore checks pass or fail (above); every scenario must have measured.
            ensure!(o.measured.is_some() || o.scenario == jg::RESTORE_CHECKS, "{} {}: nothing measured", o.subject, o.scenario);
            rows.extend(wire_rows(ctx, o, lib.unwrap_or(&o.subject), rep));
        }
    }
    Ok(rows)
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
        let rx = throughput::Receiver::prepare_router(&bed.mid, "mid0")?;
        let tmp = TempDir::new("jg-measure")?;
        let config = Bed::config(&tmp, "bench.yml", BENCH_CONFIG)?;
        let args = ["--config", config.to_str().context("UTF-8 path")?];
        let mut rows = Vec::new();

        // Load and attach (TCX on the host): the median of load::STARTS_PER_REP starts.
        for rep in ctx.rep_range() {
            ctx.check_interrupted()?;
            rows.extend(load::load_rows(imp, rep, || load::start(imp, &args, &bed.mid))?);
        }

        // Per-packet cost by class.
        let mut loader = Loader::start(imp, &bed.mid, &config, &["--stats-interval-ms", "0"])?;
        let repeat = ctx.scaled(100_000, 10_000) as u32;
        for (class, spec) in classes() {
            let frame = jg::frame(&spec)?;
            for rep in ctx.rep_range() {
                let r = jg::test_run_skb(loader.prog(), &frame, repeat)?;
                rows.push(Row::new(USECASE, lib, "test_run_ns", "ns", rep, r.duration_ns as f64).with_class(class));
            }
        }
        let measured = throughput_rows(ctx, &bed, &rx, lib, Counted::Prog(loader.prog()));
        let stopped = loader.stop(Duration::from_secs(10))?;
        rows.extend(measured?);
        ensure!(stopped.exit_code == 0, "{lib} exited with {}: {}", stopped.exit_code, stopped.stderr);
        // On the wire: `together`, in the guest.
        Ok(rows)
    }

    fn references(&self, ctx: &Ctx) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        // The floors of the host throughput: a TC program that drops everything; and no TC
        // program, the egress dropping everything in a pfifo of length 0, the frames counted
        // by the router's forwarded datagrams. netem, the other reference on the wire, is not
        // in the host kernel (and the guest's emulated time gives no throughput).
        {
            let bed = Bed::new("jgm-ref")?;
            let rx = throughput::Receiver::prepare_router(&bed.mid, "mid0")?;
            let shot = bpf::load_constant(bpf::BPF_PROG_TYPE_SCHED_CLS, "empty_shot", bpf::TC_ACT_SHOT)?;
            let egress = bed.mid.ifindex(Bed::EGRESS)?;
            {
                let _link = bed.mid.run_in(|| bpf::attach_tcx_egress(&shot, egress))??;
                rows.extend(throughput_rows(ctx, &bed, &rx, EMPTY_TC, Counted::Prog(&shot))?);
            }
            bed.mid.exec("tc", &["qdisc", "replace", "dev", Bed::EGRESS, "root", "pfifo", "limit", "0"])?;
            let forwarded = throughput::Forwarded::open(&bed.mid)?;
            rows.extend(throughput_rows(ctx, &bed, &rx, NO_TC, Counted::Packets(&|| forwarded.count()))?);
        }
        if ctx.warming_up() {
            return Ok(rows);
        }
        for sc in jg::scenarios() {
            let c = sc.configured;
            for rep in ctx.rep_range() {
                let row = |metric: &str, unit: &str, v: f64| {
                    Row::new(USECASE, CONFIGURED, metric, unit, rep, v).with_class(sc.name)
                };
                rows.push(row("wire_drop_pct", "%", c.drop_pct));
                rows.push(row("wire_reorder_pct", "%", c.reorder_pct));
                rows.push(row("wire_delay_p50_ms", "ms", c.delay_p50_ms));
                rows.push(row("wire_delay_p99_ms", "ms", c.delay_p99_ms));
                let key = Row::new(USECASE, CONFIGURED, "wire_delay_ms", "ms", rep, 0.0).with_class(sc.name);
                ctx.record_distribution(&key, &configured_delays(&sc)?);
            }
        }
        Ok(rows)
    }

    /// On the wire: one guest boot per repetition runs every scenario for each library and for
    /// netem and no qdisc, the subjects taking turns scenario by scenario (one boot per subject
    /// was 30 boots per run). The qdisc restore checks, which measure nothing, in the first.
    fn together(&self, ctx: &Ctx, imps: &[Implementation], references: bool) -> Result<Vec<(String, Result<Vec<Row>>)>> {
        ctx.step(&format!("{USECASE}: every library's and the references' scenarios in the VM guest"));
        let restore = ctx.rep_range().contains(&1);
        let outcomes = jg::run_in_guest(&guest_binary()?, imps, references, restore)?;
        let scenarios = jg::scenarios();
        let of = |want: usize, mine: Vec<Outcome>, lib: Option<&str>| {
            ensure!(mine.len() == want, "the guest reported {} of {want} runs", mine.len());
            guest_rows(ctx, &mine, lib)
        };
        let mut results = Vec::new();
        for imp in imps {
            let mine = outcomes.iter().filter(|o| o.subject == imp.lib).cloned().collect();
            results.push((imp.lib.clone(), of(scenarios.len() + restore as usize, mine, Some(&imp.lib))));
        }
        if references {
            let mine = outcomes.iter().filter(|o| o.subject.starts_with("ref:")).cloned().collect();
            let want = scenarios.len() + scenarios.iter().filter(|s| s.netem.is_some()).count();
            results.push((REFERENCES.to_string(), of(want, mine, None)));
        }
        Ok(results)
    }

    fn on_kernel(&self, imp: &Implementation, f: &Features) -> (String, String) {
        if !f.skb_set_tstamp {
            return (kernels::LACKS_FEATURE.into(), "bpf_skb_set_tstamp needs 5.18".into());
        }
        let vectors = kernels::from_conformance(jg::conformance_report(imp));
        if vectors.0 == kernels::PASS && !f.fq {
            // The tool refuses to start without fq (its delays are fq's departure times).
            return (kernels::LACKS_FEATURE.into(), format!("{}; wire scenario needs sch_fq, which this kernel lacks", vectors.1));
        }
        let (s, d) = kernels::wire(vectors, "wire scenario", || {
            let sc = jg::scenarios().into_iter().next().context("no jittergen scenario")?;
            Ok(jg::run_scenario(&mut Default::default(), imp, &sc).problems.into_iter().map(|p| format!("{}: {p}", sc.name)).collect())
        });
        // netlink clsact is the implementations' designed fallback where TCX is missing.
        if s == kernels::PASS && !f.tcx {
            (s, format!("{d}; no TCX (needs 6.6): attached through netlink clsact"))
        } else {
            (s, d)
        }
    }
}
