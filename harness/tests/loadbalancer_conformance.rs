//! loadbalancer conformance: every library's program gives every frame of
//! `scenarios/loadbalancer/vectors.yaml` the expected XDP action and verdict counter, sends
//! balanced flows to the backend the shared Maglev table and flow hash predict (with exactly the
//! predicted MAC rewrite), pins repeated flows, and counts each backend's packets — through
//! `BPF_PROG_TEST_RUN` on the program of a running, attached implementation.
//!
//! Needs root and the implementation binaries (`make build`, or `BPFEVAL_IMPLS_DIR`); without
//! them the tests fail and say so. Run one library with `cargo test -p harness -- aya`.

use std::fmt::Write as _;

use harness::bpf;
use harness::usecases::loadbalancer::bed::{self as lb, Vectors};
use harness::process::Implementation;

fn preflight(lib: &str) -> Implementation {
    if let Err(e) = bpf::check_privileges() {
        panic!("{e:#}");
    }
    Implementation::require(lb::USECASE, lib)
}

/// Every vector and sweep flow, every check of
/// `harness::usecases::loadbalancer::bed::conformance_report`; all mismatches are reported
/// together.
fn conformance(lib: &str) {
    let imp = preflight(lib);
    let report = lb::conformance_report(&imp).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    eprintln!(
        "{lib}: {} cases, {} packets in {:.1} s, {} mismatches",
        report.cases,
        report.packets,
        report.elapsed.as_secs_f64(),
        report.mismatches.len()
    );
    let leftovers: Vec<String> = harness::netns::list_ours()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&format!("bpfeval-lbconf-{lib}-{}-", std::process::id())))
        .collect();
    assert!(leftovers.is_empty(), "{lib}: namespaces left behind: {leftovers:?}");
    if !report.mismatches.is_empty() {
        let mut msg = format!("{lib}: {} mismatches over {} packets:\n", report.mismatches.len(), report.packets);
        for m in report.mismatches.iter().take(40) {
            let _ = writeln!(msg, "  {m}");
        }
        panic!("{msg}");
    }
}

/// Negative control: the suite must notice a program that passes everything.
#[test]
fn suite_catches_a_wrong_program() {
    bpf::check_privileges().unwrap();
    let prog = bpf::load_constant_xdp("hb_lb_pass", bpf::XDP_PASS).unwrap();
    let vectors = Vectors::workspace().unwrap();
    // Frames the kernel refuses run nothing: neither program can be wrong there.
    let limits = harness::conformance::KernelLimits::new(bpf::BPF_PROG_TYPE_XDP).unwrap();
    let packets: Vec<_> = vectors
        .cases
        .iter()
        .flat_map(|c| &c.packets)
        .filter(|p| limits.refusal(&p.frame.build().unwrap()).unwrap().is_none())
        .collect();
    let wrong = packets
        .iter()
        .filter(|p| prog.test_run_xdp(&p.frame.build().unwrap()).unwrap().retval != p.expect.xdp_retval())
        .count();
    let not_pass = packets.iter().filter(|p| p.expect != lb::Expect::Pass).count();
    assert_eq!(wrong, not_pass);
    assert!(not_pass > 20, "only {not_pass} vectors that are not `pass`");
}

#[test]
fn conformance_aya() {
    conformance("aya");
}

#[test]
fn conformance_libbpf_rs() {
    conformance("libbpf-rs");
}

#[test]
fn conformance_libbpf() {
    conformance("libbpf");
}

#[test]
fn conformance_redbpf() {
    conformance("redbpf");
}

#[test]
fn conformance_cilium_ebpf() {
    conformance("cilium-ebpf");
}
