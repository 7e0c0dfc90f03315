//! The run lock (`harness/src/lock.rs`): while one `harness lock -- CMD` (what `make test` and
//! `make run` go through) runs, a second one and a `harness run` refuse at once, naming the
//! holder's pid and command; a lock left by a SIGKILLed holder, or a record whose pid now runs
//! another command, is taken over. This binary never takes the lock itself (no
//! `check_privileges`), so it can watch others contend for it. Needs root.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bpfeval_shared::state::Owner;

/// A private lock file: this test runs under `make test`'s hold of the real one.
const LOCK_PATH: &str = "/run/bpf-eval/run-lock-test.lock";

fn harness() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
    c.env("BPF_EVAL_LOCK", LOCK_PATH);
    c
}

fn root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the lock lives in /run: run the tests as root");
}

/// Kills the holder on drop, also when an assertion fails.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `harness lock -- sleep 30`, once its record names it.
fn holder() -> Holder {
    let h = Holder(harness().args(["lock", "--", "sleep", "30"]).stderr(Stdio::null()).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rec: Option<Owner> = std::fs::read(LOCK_PATH).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if rec.is_some_and(|o| o.pid == h.0.id()) {
            return h;
        }
        assert!(Instant::now() < deadline, "the holder never wrote its record to {LOCK_PATH}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn timed(cmd: &mut Command) -> (Output, Duration) {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    (out, t.elapsed())
}

#[test]
fn lock_cases() {
    // One test: the cases share the machine-wide lock, so they must not run in parallel.
    root();
    second_run_refuses_naming_the_holder();
    killed_holder_is_taken_over();
    reused_pid_is_taken_over();
}

fn second_run_refuses_naming_the_holder() {
    let h = holder();
    let pid = h.0.id().to_string();
    let out_dir = std::env::temp_dir().join(format!("bpfeval-lock-{}", std::process::id()));
    for args in [
        vec!["lock", "--", "true"],
        vec!["run", "packetfilter", "--quick", "--libs", "aya", "--out", out_dir.to_str().unwrap()],
    ] {
        let (out, took) = timed(harness().args(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran beside the holder: {stderr}");
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?} to refuse");
        assert!(
            stderr.contains(&pid) && stderr.contains("harness lock -- sleep 30"),
            "{args:?}: the refusal must name pid {pid} and its command: {stderr}"
        );
    }
    assert!(!out_dir.exists(), "the refused run wrote {}", out_dir.display());
    drop(h);
    // Released with the holder: the next one runs.
    let (out, _) = timed(harness().args(["lock", "--", "true"]));
    assert!(out.status.success(), "after the holder ended: {}", String::from_utf8_lossy(&out.stderr));
}

fn killed_holder_is_taken_over() {
    let mut h = holder();
    let pid = h.0.id();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    h.0.wait().unwrap();
    let (out, took) = timed(harness().args(["lock", "--", "true"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "after SIGKILL of the holder: {stderr}");
    assert!(took < Duration::from_secs(5));
    assert!(stderr.contains(&format!("took over the stale lock of pid {pid}")) && stderr.contains("gone"), "{stderr}");
}

fn reused_pid_is_taken_over() {
    // A record whose pid runs now, but is another process (start time and command differ).
    let me = Owner::current();
    let stale = Owner { start: me.start + 1, cmdline: "harness run all".into(), ..me };
    std::fs::write(LOCK_PATH, serde_json::to_vec(&stale).unwrap()).unwrap();
    let (out, _) = timed(harness().args(["lock", "--", "true"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a record of a reused pid blocked the lock: {stderr}");
    assert!(stderr.contains("took over the stale lock") && stderr.contains("pid now runs"), "{stderr}");
}
