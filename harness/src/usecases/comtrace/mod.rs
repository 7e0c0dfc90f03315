//! comtrace in the harness: the ground-truth check as the conformance stage, and a bench over a
//! namespace's loopback: load time, verifier statistics and memory; connections per second with
//! the tracer attached and without it (the overhead); records lost and connections missing as
//! the offered connection rate rises; time from a connection's close to its record; the
//! loader's CPU use; and the program's cost per invocation from kernel BPF statistics. The
//! reference point is the same workload with no tracer at all.

pub mod bed;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use metrics::record::Row;

use super::{latency_rows, UseCase};
use crate::bpf::{self, Prog};
use bed::{self as ct, Driven, Load, Tracer};
use crate::kernels::{self, Features};
use crate::measure::{load, Ctx};
use crate::netns::NetNs;
use crate::process::Implementation;

pub struct ComTrace;

const USECASE: &str = ct::USECASE;
const NO_TRACER: &str = "ref:no tracer";
/// Connections in flight in the closed-loop runs.
const CONCURRENCY: usize = 32;
/// Arguments of every measured tracer: stats only at exit, so the loader's CPU use is the
/// records' cost.
const ARGS: &[&str] = &["--stats-interval-ms", "0"];

/// The bench: a namespace whose loopback carries the workload (the tracer sees every namespace).
struct Bed {
    ns: NetNs,
    server: SocketAddr,
}

impl Bed {
    fn new() -> Result<Bed> {
        let ns = NetNs::new("ct-bench")?;
        Ok(Bed { ns, server: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), ct::port_block(10)) })
    }

    /// As many connections as the workload manages in `secs` (closed loop).
    fn closed_loop(&self, ctx: &Ctx) -> Result<Driven> {
        let duration = ctx.window();
        let driven = ct::drive(&self.ns, self.server, Load { rate: None, concurrency: CONCURRENCY, duration })?;
        ensure!(driven.failed == 0, "{} of {} connections failed", driven.failed, driven.completed + driven.failed);
        Ok(driven)
    }

    fn conn_rows(&self, ctx: &Ctx, lib: &str, rep: u32) -> Result<Row> {
        ctx.check_interrupted()?;
        let driven = self.closed_loop(ctx)?;
        Ok(Row::new(USECASE, lib, "conn_per_s", "conn/s", rep, driven.per_second()).with_class("closed loop"))
    }
}

/// Offered connection rates of the loss sweep: 1000/s (the record latency's rate), then a
/// closed-loop step ("max", ~20k/s). No library lost a record at 500, 2000, 4000 or 8000/s (nor
/// at any other) in the full runs of 2026-12-04/05: those steps went for `make run`'s time.
const RATES: [Option<f64>; 2] = [Some(1000.0), None];

fn rate_class(rate: Option<f64>) -> String {
    rate.map_or("max".into(), |r| format!("{r:.0}/s"))
}

const READER_RUNNING: &str = "reader running";
const READER_STOPPED: &str = "reader stopped";

/// The program's own cost per run, without the ring buffer reader's wake-ups: a submit wakes
/// the reader (an irq_work, inside the program's run time) when the reader had caught up, which
/// depends on how the loader is scheduled, not on the program, and costs several µs in a VM,
/// most of `prog_run_ns` under load. With the reader stopped (SIGSTOP) there is nobody to wake.
/// 500 connections (1 s at 500/s) make 1,000 records, which the 256 KiB ring holds: no record
/// is lost, so every run takes the path it takes with a reader.
fn prog_run_ns_reader_stopped(bed: &Bed, tracer: &mut Tracer, prog: &Prog, counters: &bpf::Map, lib: &str, rep: u32) -> Result<Row> {
    let lost_before = counters.lookup_percpu_u64_sum(&0u32.to_ne_bytes())?;
    tracer.running.signal(libc::SIGSTOP)?;
    let measured = (|| -> Result<(u64, u64)> {
        let before = prog.info()?;
        let load = Load { rate: Some(500.0), concurrency: CONCURRENCY, duration: Duration::from_secs(1) };
        ct::drive(&bed.ns, bed.server, load)?;
        let after = prog.info()?;
        Ok((after.run_cnt - before.run_cnt, after.run_time_ns - before.run_time_ns))
    })();
    tracer.running.signal(libc::SIGCONT)?;
    let (runs, ns) = measured?;
    let lost = counters.lookup_percpu_u64_sum(&0u32.to_ne_bytes())? - lost_before;
    ensure!(runs > 0 && lost == 0, "{lib}: reader stopped: {runs} runs, {lost} records lost (the ring was full)");
    Ok(Row::new(USECASE, lib, "prog_run_ns", "ns", rep, ns as f64 / runs as f64).with_class(READER_STOPPED))
}

/// Takes the tracer's records until those of `server`'s connections reach `want` or stop
/// growing.
fn settle(tracer: &mut Tracer, server: SocketAddr, want: usize) -> Vec<ct::Record> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = (0, Instant::now());
    let mut records = Vec::new();
    loop {
        records.extend(tracer.take_records());
        let n = ct::rate_records(&records, server).count();
        if n >= want || Instant::now() >= deadline || (n == last.0 && last.1.elapsed() > Duration::from_millis(500)) {
            return records;
        }
        if n != last.0 {
            last = (n, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl load::Started for Tracer {
    fn loader_pid(&self) -> Result<u32> {
        Ok(self.pid)
    }

    fn finish(mut self) -> Result<()> {
        let (code, _, exit) = self.stop(Duration::from_secs(10))?;
        ensure!(code == 0 && exit, "exited with {code} on SIGINT (exit line {exit})");
        Ok(())
    }
}

impl UseCase for ComTrace {
    fn name(&self) -> &'static str {
        USECASE
    }

    fn conformance(&self, _ctx: &Ctx, imp: &Implementation) -> Result<Vec<String>> {
        ct::conformance(imp)
    }

    fn measure(&self, ctx: &Ctx, imp: &Implementation) -> Result<Vec<Row>> {
        let lib = imp.lib.as_str();
        let bed = Bed::new()?;
        let mut rows = Vec::new();

        // Load and attach: time to ready, verifier and JIT statistics, memory. In the host
        // namespace: `ip netns exec` mounts a fresh sysfs, which hides tracefs.
        for rep in ctx.rep_range() {
            ctx.check_interrupted()?;
            rows.extend(load::load_rows(imp, rep, || Tracer::start(imp, ARGS, load::READY_TIMEOUT))?);
        }

        // Connections per second without and with the tracer, alternating, and the overhead.
        for rep in ctx.rep_range() {
            let without = bed.conn_rows(ctx, NO_TRACER, rep)?;
            let mut tracer = Tracer::start(imp, ARGS, load::READY_TIMEOUT)?;
            let with = bed.conn_rows(ctx, lib, rep)?;
            tracer.stop(Duration::from_secs(10))?;
            let overhead = 100.0 * (without.value - with.value) / without.value;
            rows.push(Row::new(USECASE, lib, "conn_overhead_pct", "%", rep, overhead));
            rows.extend([without, with]);
        }

        // The loss sweep, on one tracer: records lost and sockets without a record per offered
        // rate; at 1000/s the close-to-record latency, at full speed CPU and program cost.
        let mut tracer = Tracer::start(imp, ARGS, load::READY_TIMEOUT)?;
        let counters = bpf::find_map(tracer.pid, "counters")?;
        let prog = Prog::from_id(tracer.prog_id)?;
        let _stats = bpf::enable_stats()?;
        for rep in ctx.rep_range() {
            for rate in RATES {
                ctx.check_interrupted()?;
                let class = rate_class(rate);
                let lost_before = counters.lookup_percpu_u64_sum(&0u32.to_ne_bytes())?;
                // Only this step's records are kept.
                drop(tracer.take_records());
                let (info_before, usage) = (prog.info()?, load::LoaderUse::start(tracer.pid)?);
                let duration = ctx.window();
                let driven = ct::drive(&bed.ns, bed.server, Load { rate, concurrency: 4 * CONCURRENCY, duration })?;
                let (info, usage) = (prog.info()?, usage.rows(USECASE, lib, rep, driven.elapsed)?);
                // Two sockets per connection; failed ones were real connections too, as far as
                // they got, but are not counted on either side.
                let want = 2 * driven.completed as usize;
                let records = settle(&mut tracer, bed.server, want);
                let ours: Vec<&ct::Record> = ct::rate_records(&records, bed.server).collect();
                let lost = counters.lookup_percpu_u64_sum(&0u32.to_ne_bytes())? - lost_before;
                let row = |metric: &str, unit: &str, value: f64| Row::new(USECASE, lib, metric, unit, rep, value).with_class(&class);
                rows.push(row("events_lost", "records", lost as f64));
                rows.push(row("conns_missing", "records", want.saturating_sub(ours.len()) as f64));
                if rate == Some(1000.0) {
                    let latencies: Vec<f64> = ours.iter().map(|r| r.read_ns.saturating_sub(r.conn.end_ns) as f64 / 1e3).collect();
                    rows.extend(latency_rows(ctx, USECASE, lib, "record_latency", rep, latencies));
                }
                if rate.is_none() {
                    let runs = info.run_cnt - info_before.run_cnt;
                    ensure!(runs > 0, "{lib}: the program did not run under load");
                    let ns = (info.run_time_ns - info_before.run_time_ns) as f64 / runs as f64;
                    // Mostly the reader's wake-ups (see `prog_run_ns_reader_stopped`).
                    rows.push(Row::new(USECASE, lib, "prog_run_ns", "ns", rep, ns).with_class(READER_RUNNING));
                    rows.extend(usage);
                    rows.push(Row::new(USECASE, lib, "rss_kib", "KiB", rep, load::rss_kib(tracer.pid)? as f64).with_class("under load"));
                }
            }
        }
        for rep in ctx.rep_range() {
            ctx.check_interrupted()?;
            rows.push(prog_run_ns_reader_stopped(&bed, &mut tracer, &prog, &counters, lib, rep)?);
        }
        drop(prog);
        let (code, _, exit) = tracer.stop(Duration::from_secs(10))?;
        ensure!(code == 0 && exit, "{lib} exited with {code} on SIGINT (exit line {exit})");
        Ok(rows)
    }

    fn references(&self, _ctx: &Ctx) -> Result<Vec<Row>> {
        // The untraced connection rate is measured next to every library's traced one (rows of
        // `ref:no tracer` from `measure`), under the same conditions.
        Ok(Vec::new())
    }

    /// Byte-exact records of the standard workload's real connections.
    fn on_kernel(&self, imp: &Implementation, _f: &Features) -> (String, String) {
        use kernels::{first_relevant, FAILS_TO_LOAD, PASS, WRONG_RESULTS};
        let run = || -> Result<(String, String)> {
            let bed = ct::Bed::new(&format!("kct-{}", imp.lib))?;
            let mut tracer = match ct::Tracer::start(imp, &["--stats-interval-ms", "0"], Duration::from_secs(60)) {
                Ok(t) => t,
                Err(e) => return Ok((FAILS_TO_LOAD.into(), first_relevant(&format!("{e:#}")))),
            };
            let ct::Traced { truth, problems } = bed.trace(&mut tracer, Duration::from_secs(20))?;
            let _ = tracer.stop(Duration::from_secs(10));
            Ok(if problems.is_empty() {
                (PASS.into(), format!("{} sockets byte-exact", truth.expected.len()))
            } else {
                let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
                (WRONG_RESULTS.into(), format!("{} of {} sockets wrong: {}", problems.len(), truth.expected.len(), shown.join("; ")))
            })
        };
        run().unwrap_or_else(|e| (WRONG_RESULTS.into(), format!("the check did not run: {}", first_relevant(&format!("{e:#}")))))
    }
}
