//! comtrace's command line, per library, against the standard ground-truth workload:
//!
//! 1. filters: four tracers at once — `-p` with the PID of the loopback server agent (whose
//!    sockets are all passive: the owner is the process that closed them), `-L` and `-D` port
//!    lists, and `--format table -o FILE` — each reports exactly the workload sockets its filter
//!    admits, correct in every field, and nothing its filter excludes; the table on stdout
//!    equals the file and agrees with the ground truth column by column;
//! 2. `-d 1` ends the run by itself after a second (exit 0, final stats, `exit`);
//! 3. bad input: exit code 2, the flag or file named, nothing loaded.
//!
//! Needs root and the implementation binaries; without them the tests fail and say so.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bpfeval_shared::comtrace::table;
use harness::bpf;
use harness::usecases::comtrace::bed::{self as ct, Bed, Expected, Tracer, Truth};
use harness::process::{Implementation, TempDir};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

fn preflight(lib: &str) -> Implementation {
    bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    Implementation::require(ct::USECASE, lib)
}

/// The expected sockets a filter admits, as a truth of their own.
fn subset(truth: &Truth, admit: &dyn Fn(&Expected) -> bool) -> Truth {
    Truth { expected: truth.expected.iter().filter(|e| admit(e)).cloned().collect(), pids: truth.pids.clone() }
}

fn filters(lib: &str) {
    let imp = preflight(lib);
    let bed = Bed::new(&format!("ctcli-{lib}")).unwrap();
    if let Err(e) = run_filters(&imp, &bed) {
        panic!("{lib}: {e:#}");
    }
}

fn run_filters(imp: &Implementation, bed: &Bed) -> Result<()> {
    let workload = bed.workload()?;
    let started = workload.start()?;
    let server_lo = started.pids()[1];
    // Local ports: the IPv4 loopback server and the last (veth) client; remote ports: the veth
    // servers.
    let conns = &workload.conns;
    let veth_server = |ip: std::net::IpAddr| conns.iter().find(|c| c.server.ip() == ip).map(|c| c.server.port()).context("no veth server");
    let lports = [conns[0].server.port(), conns[conns.len() - 1].client.port()];
    let rports = [veth_server(ct::VETH_B4.into())?, veth_server(ct::VETH_B6.into())?];
    let list = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let (lports_arg, rports_arg, pid_arg) = (list(&lports), list(&rports), server_lo.to_string());

    let tmp = TempDir::new(&format!("ctcli-{}", imp.lib))?;
    let file = tmp.path().join("table.txt");
    let file_arg = file.to_str().context("UTF-8 path")?;
    let mut by_pid = Tracer::start(imp, &["-p", &pid_arg], READY_TIMEOUT)?;
    let mut by_lport = Tracer::start(imp, &["--localport", &lports_arg], READY_TIMEOUT)?;
    let mut by_rport = Tracer::start(imp, &["-D", &rports_arg], READY_TIMEOUT)?;
    let mut table_run = imp.spawn(&["--format", "table", "-o", file_arg], None)?;
    table_run.wait_for_line("the table header", READY_TIMEOUT, |v| v["text"] == table::HEADER)?;

    let truth = started.finish()?;
    type Admit = Box<dyn Fn(&Expected) -> bool>;
    let cases: [(&str, &mut Tracer, Admit); 3] = [
        ("-p", &mut by_pid, Box::new(move |e: &Expected| e.pid == server_lo)),
        ("-L", &mut by_lport, Box::new(move |e: &Expected| lports.contains(&e.local.port()))),
        ("-D", &mut by_rport, Box::new(move |e: &Expected| rports.contains(&e.remote.port()))),
    ];
    for (flag, tracer, admit) in cases {
        let want = subset(&truth, &admit);
        ensure!(!want.expected.is_empty(), "{flag}: the filter admits no workload socket");
        let records = ct::wait_for(tracer, &want.expected, Duration::from_secs(10));
        let problems = ct::check(&want, &records);
        if !problems.is_empty() {
            // Whether the kernel side counted the missing record (lost, untracked) or never saw it.
            let stats = tracer.stop(EXIT_TIMEOUT).map(|(_, stats, _)| stats.to_string()).unwrap_or_else(|e| format!("{e:#}"));
            bail!("{flag}: {} problems ({} records read; exit stats {stats}):\n{}", problems.len(), records.len(), problems.join("\n"));
        }
        for r in &records {
            let c = &r.conn;
            let admitted = match flag {
                "-p" => c.pid == server_lo,
                "-L" => lports.contains(&c.lport),
                _ => rports.contains(&c.rport),
            };
            ensure!(admitted, "{flag}: record outside the filter: {c:?}");
        }
        let (code, _, exit) = tracer.stop(EXIT_TIMEOUT)?;
        ensure!(code == 0 && exit, "{flag}: exit code {code}, exit line {exit}");
        eprintln!("{}: {flag}: {} of {} workload sockets, all right", imp.lib, want.expected.len(), truth.expected.len());
    }

    // The table on stdout: every workload socket, column by column.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = table_run.poll_event("\0");
        let seen = table_run.history().iter().filter(|l| l.event() == "_text").count();
        if seen > truth.expected.len() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    table_run.signal(libc::SIGINT)?;
    let code = table_run.exit_code(EXIT_TIMEOUT)?;
    ensure!(code == 0, "--format table: exit code {code}; stderr: {}", table_run.stderr());
    let stdout: Vec<String> =
        table_run.history().iter().map(|l| l.value()["text"].as_str().map(String::from).unwrap_or_else(|| l.value().to_string())).collect();
    let in_file: Vec<String> = std::fs::read_to_string(&file)?.lines().map(String::from).collect();
    ensure!(stdout == in_file, "--format table: stdout and the -o file differ");
    for e in &truth.expected {
        let cols = [
            e.pid.to_string(),
            e.comm.clone(),
            e.local.ip().to_string(),
            e.local.port().to_string(),
            e.remote.ip().to_string(),
            e.remote.port().to_string(),
            e.rx_bytes.to_string(),
            e.tx_bytes.to_string(),
        ];
        let rows: Vec<&String> =
            stdout.iter().filter(|row| row.split_whitespace().take(8).zip(&cols).all(|(a, b)| a == b)).collect();
        if rows.len() != 1 {
            // Rows of the same four-tuple, whatever their owner and bytes: says whether the socket
            // was missed or reported differently.
            let tuple: Vec<&String> =
                stdout.iter().filter(|row| row.split_whitespace().skip(2).take(4).eq(cols[2..6].iter().map(String::as_str))).collect();
            bail!("--format table: {} rows for {cols:?}; rows of its addresses and ports: {tuple:?}", rows.len());
        }
        let ms: f64 = rows[0].split_whitespace().nth(8).context("no MS column")?.parse()?;
        let (lo, hi) = ((e.end.0.saturating_sub(e.start.1)) as f64 / 1e6, (e.end.1 - e.start.0) as f64 / 1e6);
        let slack = 2.0 * ct::SLACK_NS as f64 / 1e6;
        ensure!(ms >= lo - slack && ms <= hi + slack, "--format table: MS {ms} for {cols:?}, expected {lo:.2}..{hi:.2}");
    }
    Ok(())
}

fn duration_flag(lib: &str) {
    let imp = preflight(lib);
    let started = Instant::now();
    let mut tracer = Tracer::start(&imp, &["-d", "1", "--stats-interval-ms", "0"], READY_TIMEOUT).unwrap();
    let code = tracer.running.exit_code(EXIT_TIMEOUT).unwrap();
    let took = started.elapsed();
    let events: Vec<String> = tracer.running.history().iter().map(|l| l.event().to_string()).collect();
    assert_eq!(code, 0, "{lib}: -d 1: exit code; stderr: {}", tracer.running.stderr());
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(6), "{lib}: -d 1 took {took:?}");
    assert!(events.ends_with(&["stats".into(), "exit".into()]), "{lib}: -d 1: lines {events:?}");
    assert!(harness::usecases::packetfilter::bed::wait_prog_gone(tracer.prog_id, Duration::from_secs(5)), "{lib}: program still loaded");
}

fn bad_input(lib: &str) {
    let imp = preflight(lib);
    let missing_dir = "/nonexistent-bpfeval-dir/table.txt";
    let cases: [(&[&str], &str); 6] = [
        (&["-p", "0"], "--pid"),
        (&["-p", "nope"], "--pid"),
        (&["-L", "80,70000"], "--localport"),
        (&["-D", "0"], "--remoteport"),
        (&["-o", missing_dir], missing_dir),
        (&["--iface", "lo"], "--iface"),
    ];
    for (args, named) in cases {
        let result = (|| -> Result<()> {
            let mut running = imp.spawn(args, None)?;
            let code = running.exit_code(EXIT_TIMEOUT)?;
            let stderr = running.stderr();
            ensure!(code == 2, "exit code {code}, expected 2; stderr: {stderr}");
            ensure!(stderr.contains(named), "stderr does not name {named}: {stderr}");
            if running.history().iter().any(|l| l.event() == "ready") {
                bail!("it said ready");
            }
            Ok(())
        })();
        if let Err(e) = result {
            panic!("{lib} {args:?}: {e:#}");
        }
    }
}

#[test]
fn filters_and_table_aya() {
    filters("aya");
}

#[test]
fn filters_and_table_libbpf_rs() {
    filters("libbpf-rs");
}

#[test]
fn filters_and_table_libbpf() {
    filters("libbpf");
}

#[test]
fn filters_and_table_redbpf() {
    filters("redbpf");
}

#[test]
fn duration_aya() {
    duration_flag("aya");
}

#[test]
fn duration_libbpf_rs() {
    duration_flag("libbpf-rs");
}

#[test]
fn duration_libbpf() {
    duration_flag("libbpf");
}

#[test]
fn duration_redbpf() {
    duration_flag("redbpf");
}

#[test]
fn bad_input_aya() {
    bad_input("aya");
}

#[test]
fn bad_input_libbpf_rs() {
    bad_input("libbpf-rs");
}

#[test]
fn bad_input_libbpf() {
    bad_input("libbpf");
}

#[test]
fn bad_input_redbpf() {
    bad_input("redbpf");
}

#[test]
fn filters_and_table_cilium_ebpf() {
    filters("cilium-ebpf");
}

#[test]
fn duration_cilium_ebpf() {
    duration_flag("cilium-ebpf");
}

#[test]
fn bad_input_cilium_ebpf() {
    bad_input("cilium-ebpf");
}
