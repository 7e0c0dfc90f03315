//! jittergen conformance on the host: every library's TC program gives every frame of
//! `scenarios/jittergen/vectors.yaml` the expected verdict, counters and departure time
//! (`skb->tstamp` through `BPF_PROG_TEST_RUN`'s `ctx_out`), on the program of a running,
//! attached implementation. The departure times are checked in the skb: the host has no fq to
//! honour them (the guest tests check the wire).
//!
//! Needs root and the implementation binaries (`make build`, or `BPFEVAL_IMPLS_DIR`); without
//! them the tests fail and say so.

use std::fmt::Write as _;

use harness::usecases::jittergen::bed as jg;
use harness::process::Implementation;

fn conformance(lib: &str) {
    harness::bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    let imp = Implementation::require(jg::USECASE, lib);
    let report = jg::conformance_report(&imp).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
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
        .filter(|n| n.starts_with(&format!("bpfeval-jgconf-{lib}-{}-", std::process::id())))
        .collect();
    assert!(leftovers.is_empty(), "{lib}: namespaces left behind: {leftovers:?}");
    if !report.mismatches.is_empty() {
        let mut msg = format!("{lib}: {} mismatches over {} vectors:\n", report.mismatches.len(), report.packets);
        for m in &report.mismatches {
            let _ = writeln!(msg, "  {m}");
        }
        panic!("{msg}");
    }
}

#[test]
fn aya_conformance() {
    conformance("aya");
}

#[test]
fn libbpf_rs_conformance() {
    conformance("libbpf-rs");
}

#[test]
fn libbpf_conformance() {
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
