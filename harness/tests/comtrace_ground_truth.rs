//! comtrace against ground truth, per library. A tracer runs (with `-o FILE`) while the standard
//! workload (`harness::usecases::comtrace::bed::Bed::workload`) makes 40 TCP connections — IPv4 and
//! IPv6, on a namespace's loopback and over a veth between two namespaces, empty to 1 MB in either
//! direction, either end closing first, held 0 to 150 ms — from four forked agents with their own
//! PIDs and command names. Then:
//!
//! 1. each of the 80 sockets is reported exactly once, with its owner's PID and command, its
//!    addresses and ports, the exact payload bytes each way, and birth and close times inside
//!    the windows the agents measured (so the lifetime in ms is right within the slack);
//! 2. other records (the host's own connections) are well-formed;
//! 3. SIGINT: exit 0, the `exit` line, final stats with nothing lost, the program unloaded;
//! 4. the table file holds the header and, in order, one row per `conn` line.
//!
//! Needs root and the implementation binaries; without them the tests fail and say so.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bpfeval_shared::comtrace::table;
use harness::bpf;
use harness::usecases::comtrace::bed::{self as ct, Bed, Tracer};
use harness::process::{Implementation, TempDir};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const RECORDS_TIMEOUT: Duration = Duration::from_secs(10);

fn ground_truth(lib: &str) {
    bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    let imp = Implementation::require(ct::USECASE, lib);
    let started = Instant::now();
    let bed = Bed::new(&format!("ctgt-{lib}")).unwrap();
    let names = [bed.a.name().to_string(), bed.b.name().to_string()];
    let result = run(&imp, &bed);
    drop(bed);
    for n in &names {
        assert!(!std::path::Path::new("/var/run/netns").join(n).exists(), "{n} left behind");
    }
    if let Err(e) = result {
        panic!("{lib}: {e:#}");
    }
    eprintln!("{lib}: ground truth passed in {:.1} s", started.elapsed().as_secs_f64());
}

fn run(imp: &Implementation, bed: &Bed) -> Result<()> {
    let tmp = TempDir::new(&format!("ctgt-{}", imp.lib))?;
    let table_path = tmp.path().join("table.txt");
    let mut tracer = Tracer::start(
        imp,
        &["--stats-interval-ms", "0", "-o", table_path.to_str().context("UTF-8 path")?],
        READY_TIMEOUT,
    )?;
    let ct::Traced { truth, problems } = bed.trace(&mut tracer, RECORDS_TIMEOUT)?;
    if !problems.is_empty() {
        // Whether the tracer knows it missed something (lost or untracked events) tells a lost
        // event from one never seen.
        let stats = tracer.stop(Duration::from_secs(10)).map(|(_, stats, _)| stats.to_string());
        anyhow::bail!(
            "{} of {} sockets wrong (tracer's final stats: {}):\n{}",
            problems.len(),
            truth.expected.len(),
            stats.unwrap_or_else(|e| format!("none: {e:#}")),
            problems.join("\n")
        );
    }

    // How precisely the agents pinned each lifetime down (the record's ms lies inside).
    let widest_ms = truth.expected.iter().map(|e| ((e.end.1 - e.end.0) + (e.start.1 - e.start.0)) as f64 / 1e6).fold(0.0, f64::max);
    eprintln!("{}: {} sockets right; lifetimes inside windows at most {widest_ms:.2} ms wide", imp.lib, truth.expected.len());

    let prog_id = tracer.prog_id;
    let (code, stats, exit) = tracer.stop(Duration::from_secs(10))?;
    ensure!(code == 0 && exit, "after SIGINT: exit code {code}, exit line {exit}; stderr: {}", tracer.running.stderr());
    ensure!(stats["events_lost"] == 0 && stats["untracked"] == 0, "final stats: {stats}");
    let all = tracer.records();
    ensure!(stats["connections"] == all.len(), "final stats count {} connections, {} conn lines", stats["connections"], all.len());
    ensure!(harness::usecases::packetfilter::bed::wait_prog_gone(prog_id, Duration::from_secs(5)), "program {prog_id} still loaded after exit");

    let text = std::fs::read_to_string(&table_path)?;
    let rows: Vec<&str> = text.lines().collect();
    ensure!(rows.first() == Some(&table::HEADER), "table file starts with {:?}", rows.first());
    let want: Vec<String> = all.iter().map(|r| table::row(&r.conn)).collect();
    ensure!(rows[1..] == want[..], "table file rows differ from the conn lines:\n{}\nvs\n{}", rows[1..].join("\n"), want.join("\n"));
    Ok(())
}

#[test]
fn ground_truth_aya() {
    ground_truth("aya");
}

#[test]
fn ground_truth_libbpf_rs() {
    ground_truth("libbpf-rs");
}

#[test]
fn ground_truth_libbpf() {
    ground_truth("libbpf");
}

#[test]
fn ground_truth_redbpf() {
    ground_truth("redbpf");
}

#[test]
fn ground_truth_cilium_ebpf() {
    ground_truth("cilium-ebpf");
}
