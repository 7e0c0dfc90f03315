//! jittergen on the wire, in the VM guest (Debian 6.1 under qemu TCG: fq and netem as modules, no
//! TCX, so the programs attach through netlink clsact): per library, every scenario of
//! `harness::usecases::jittergen::bed::scenarios` — jitter with and without order, reorder, drop,
//! IPv6, TCP — checked against its configuration (delay bounds and spread, reordering exactly when
//! configured, unmatched traffic untouched), and the qdiscs restored after every exit, also
//! a classless root with its options and the error path of a failed attach.
//!
//! Aya and libbpf-rs run in one guest, one after the other; libbpf and RedBPF each in a guest of
//! its own, never at the same time (the tests take turns): two emulated guests side by side on a
//! 2-core machine stretch each other's delay tails past the checks' slack.
//!
//! Needs root, qemu and Debian's kernel package (`make setup`) and the implementation binaries;
//! without them the test fails and says so.

use std::sync::Mutex;

use harness::usecases::jittergen::bed as jg;
use harness::process::Implementation;

/// One guest at a time.
static GUEST: Mutex<()> = Mutex::new(());

fn in_guest(libs: &[&str]) {
    harness::bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    let imps: Vec<Implementation> = libs.iter().map(|lib| Implementation::require(jg::USECASE, lib)).collect();
    let guest_bin = std::path::Path::new(env!("CARGO_BIN_EXE_jittergen-guest"));
    // A panicking turn (a failed check) must not fail the other test too.
    let _turn = GUEST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let outcomes = jg::run_in_guest(guest_bin, &imps, false, true).unwrap_or_else(|e| panic!("{e:#}"));
    let mut problems = Vec::new();
    for &lib in libs {
        let mine: Vec<&jg::Outcome> = outcomes.iter().filter(|o| o.subject == lib).collect();
        for o in &mine {
            let m = o.measured.as_ref().map(|m| m.summary()).unwrap_or_default();
            eprintln!("{lib}: {}: {m}", o.scenario);
            problems.extend(o.problems.iter().map(|p| format!("[{lib}] {}: {p}", o.scenario)));
        }
        if mine.len() != jg::scenarios().len() + 1 {
            problems.push(format!("[{lib}] one outcome per scenario and the restore checks, got {}", mine.len()));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn aya_and_libbpf_rs_in_guest() {
    in_guest(&["aya", "libbpf-rs"]);
}

#[test]
fn in_guest_libbpf() {
    in_guest(&["libbpf"]);
}

#[test]
fn in_guest_redbpf() {
    in_guest(&["redbpf"]);
}

#[test]
fn in_guest_cilium_ebpf() {
    in_guest(&["cilium-ebpf"]);
}
