//! An interrupted harness leaves nothing behind: `harness run packetfilter --quick` killed at a
//! random moment (SIGINT and SIGKILL alternating, moments from a seeded generator printed for
//! reproduction), each followed by `harness clean`. After each: no namespace of the killed run,
//! no implementation of this tree still running, no qdisc record of a dead owner, and a second
//! `harness clean` finds nothing. `BPFEVAL_INTERRUPT_RUNS` sets the count (default 5 here;
//! `make soak-interrupt` runs 100). Needs root and `make build`.
//!
//! And an interrupted run's report says it is partial: run 0 is interrupted at a known moment
//! (SIGINT once aya's first counted repetition is done): its report must hold that repetition's
//! rows and say partial, naming the interruption, in results.json, meta.csv, the HTML header
//! and summary, and report.md. Every other run's report must be partial exactly when the run
//! did not succeed.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bpfeval_shared::jittergen::qdisc::{Change, RECORDS};
use bpfeval_shared::state;
use harness::netns;
use harness::process::impls_dir;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

fn clean() -> String {
    let out = harness().arg("clean").output().unwrap();
    assert!(out.status.success(), "harness clean: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Processes running one of this tree's implementation binaries.
fn our_implementations() -> Vec<String> {
    let dir = impls_dir().display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| state::cmdline(p).filter(|c| c.contains(&dir)).map(|c| format!("{p}: {c}")))
        .collect()
}

fn leftovers(pid: u32) -> Vec<String> {
    let mut left = Vec::new();
    let tag = format!("-{pid}-");
    left.extend(netns::list_ours().unwrap().into_iter().filter(|n| n.contains(&tag)).map(|n| format!("namespace {n}")));
    left.extend(our_implementations().into_iter().map(|p| format!("process {p}")));
    // xdp-filter (the reference) killed in its namespace by the clean: its lock would fail every
    // later xdp-filter.
    for p in [harness::reference::XDP_FILTER_LOCK, harness::reference::XDP_FILTER_PINS] {
        if Path::new(p).exists() {
            left.push(format!("xdp-filter's {p}"));
        }
    }
    let dir = std::path::Path::new(state::STATE_DIR).join(RECORDS);
    for (path, c) in state::read_all::<Change>(&dir) {
        if c.map_or(true, |c| !c.owner.alive()) {
            left.push(format!("record {}", path.display()));
        }
    }
    left
}

/// What is wrong with the report a run left in `dir`, which ended with `status`.
fn report_problems(dir: &Path, status: ExitStatus, interrupted_at_rep1: bool) -> Vec<String> {
    let mut bad = Vec::new();
    let json = dir.join("results.json");
    if status.signal().is_some() {
        // Killed (SIGKILL, or SIGINT before the handler was installed): nothing could be written.
        return bad;
    }
    let Ok(run) = metrics::record::Run::load(dir) else {
        return vec![format!("{status} but no readable {}", json.display())];
    };
    let meta = run.meta.clone().unwrap_or_default();
    if status.success() == meta.is_partial() {
        bad.push(format!("{status}, but meta.partial is {:?}", meta.partial));
    }
    if !meta.is_partial() {
        return bad;
    }
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    if !read("meta.csv").lines().any(|l| l == "partial,true") {
        bad.push("meta.csv does not say partial,true".into());
    }
    let html = read("index.html");
    let header = html.find("<header>").and_then(|a| html[a..].find("</header>").map(|b| &html[a..a + b])).unwrap_or("");
    let escaped = |r: &str| r.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    if !header.contains("bpf-eval report (partial)") || !meta.partial.iter().all(|r| header.contains(&escaped(r))) {
        bad.push(format!("index.html's header does not say partial with the reasons: {header:.300}"));
    }
    if !html.contains("<section id=\"summary\">\n<h2>Summary: which library leads where</h2>\n<p class=\"partial\">") {
        bad.push("index.html's summary does not open with the partial note".into());
    }
    if !read("report.md").starts_with("# bpf-eval report (partial)") {
        bad.push("report.md does not say partial".into());
    }
    if interrupted_at_rep1 {
        if !meta.partial[0].starts_with("interrupted by SIGINT during `") {
            bad.push(format!("first reason is not the interruption: {:?}", meta.partial));
        }
        // Repetition 1 of aya was done before the signal: its rows are in the partial report.
        if !run.rows.iter().any(|r| r.lib == "aya" && r.rep == 1 && r.metric == "load_attach_ms") {
            bad.push("no load_attach_ms row of aya's repetition 1".into());
        }
    }
    bad
}

#[test]
fn interrupted_runs_leave_nothing() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run the tests as root");
    let runs: u32 = std::env::var("BPFEVAL_INTERRUPT_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let seed = std::process::id() as u64;
    eprintln!("{runs} runs, seed {seed}");
    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let out = std::env::temp_dir().join(format!("bpfeval-interrupted-{}", std::process::id()));
    let mut failures = Vec::new();
    for i in 0..runs {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Anywhere from the start to well into the measurement (a quick run lasts ~30-60 s).
        let after = Duration::from_millis((rng >> 33) % 15_000);
        let sig = if i % 2 == 0 { libc::SIGINT } else { libc::SIGKILL };
        // Run 0: at a known moment, after aya's first counted repetition (its progress lines).
        let at_rep1 = i == 0;
        let mut child = harness()
            .args(["run", "packetfilter", "--quick", "--quiet", "--libs", "aya", "--out"])
            .arg(out.join(i.to_string()))
            .stdout(Stdio::null())
            .stderr(if at_rep1 { Stdio::piped() } else { Stdio::null() })
            .spawn()
            .unwrap();
        let pid = child.id();
        if at_rep1 {
            let (tx, rx) = mpsc::channel();
            let stderr = BufReader::new(child.stderr.take().unwrap());
            let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let seen = tail.clone();
            // Drains stderr to the end, so the run never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in stderr.lines().map_while(Result::ok) {
                    if line.contains("packetfilter/references: repetition 1/") {
                        let _ = tx.send(());
                    }
                    let mut t = seen.lock().unwrap();
                    t.push(line);
                    if t.len() > 20 {
                        t.remove(0);
                    }
                }
            });
            // Includes a cold build of packetfilter-aya when no earlier run left one to reuse.
            if let Err(e) = rx.recv_timeout(Duration::from_secs(1200)) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "run 0 did not reach repetition 1 of the references ({e}); its last lines:\n{}",
                    tail.lock().unwrap().join("\n")
                );
            }
        } else {
            let deadline = Instant::now() + after;
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid as i32, sig) };
        // SIGINT: the run winds down by itself (bounded); then it is killed.
        let stop = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > stop {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait().unwrap();
        // Implementations stop on SIGTERM from the kernel when their harness thread ends.
        let settle = Instant::now() + Duration::from_secs(15);
        while !our_implementations().is_empty() && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(100));
        }
        let cleaned = clean();
        let left = leftovers(pid);
        let again = clean();
        let when = if at_rep1 { "after repetition 1".to_string() } else { format!("after {after:?}") };
        eprintln!(
            "run {i}: {} {when} -> {status}; clean: {}",
            if sig == libc::SIGINT { "SIGINT" } else { "SIGKILL" },
            cleaned.trim().replace('\n', "; ")
        );
        if !left.is_empty() || again.trim() != "nothing to clean" {
            failures.push(format!("run {i} ({when}, signal {sig}): left {left:?}; second clean: {again}"));
        }
        if at_rep1 && status.success() {
            failures.push("run 0 was interrupted after repetition 1 but exited successfully".into());
        }
        let bad = report_problems(&out.join(i.to_string()), status, at_rep1);
        if !bad.is_empty() {
            failures.push(format!("run {i} ({when}, signal {sig}) report: {}", bad.join("; ")));
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
