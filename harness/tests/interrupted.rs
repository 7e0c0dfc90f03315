//! An interrupted harness leaves nothing behind: `harness run packetfilter --quick` killed at a
//! random moment (SIGINT and SIGKILL alternating, moments from a seeded generator printed for
//! reproduction), each followed by `harness clean`. After each: no namespace of the killed run,
//! no implementation of this tree still running, no qdisc record of a dead owner, and a second
//! `harness clean` finds nothing. `BPFEVAL_INTERRUPT_RUNS` sets the count (default 5 here;
//! `make soak-interrupt` runs 100). Needs root and `make build`.

use std::process::{Command, Stdio};
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
    let dir = std::path::Path::new(state::STATE_DIR).join(RECORDS);
    for (path, c) in state::read_all::<Change>(&dir) {
        if c.map_or(true, |c| !c.owner.alive()) {
            left.push(format!("record {}", path.display()));
        }
    }
    left
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
        let mut child = harness()
            .args(["run", "packetfilter", "--quick", "--quiet", "--libs", "aya", "--out"])
            .arg(out.join(i.to_string()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = Instant::now() + after;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
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
        eprintln!(
            "run {i}: {} after {after:?} -> {status}; clean: {}",
            if sig == libc::SIGINT { "SIGINT" } else { "SIGKILL" },
            cleaned.trim().replace('\n', "; ")
        );
        if !left.is_empty() || again.trim() != "nothing to clean" {
            failures.push(format!("run {i} ({after:?}, signal {sig}): left {left:?}; second clean: {again}"));
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
