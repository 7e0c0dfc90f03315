//! packetfilter conformance: every library's program gives every frame of
//! `scenarios/packetfilter/vectors.yaml` the expected verdict, counted in exactly the expected
//! `verdicts` slot, through `BPF_PROG_TEST_RUN` on the program of a running, attached
//! implementation. Plus a 1,000,000-rule configuration.
//!
//! Needs root and the implementation binaries (`make build`, or `BPFEVAL_IMPLS_DIR`); without
//! them the tests fail and say so. Run one library with `cargo test -p harness -- aya`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::Result;
use harness::bpf;
use harness::frames::FrameSpec;
use harness::netns::{NetNs, VethPair};
use harness::usecases::packetfilter::bed::{self as pf, Counters, Filter};
use harness::process::{Implementation, TempDir};
use harness::scenario::{Vectors, Verdict};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const IFACE: &str = pf::TEST_IFACE;

fn preflight(lib: &str) -> Implementation {
    if let Err(e) = bpf::check_privileges() {
        panic!("{e:#}");
    }
    Implementation::require(pf::USECASE, lib)
}

fn test_network(prefix: &str) -> Result<(NetNs, VethPair)> {
    pf::test_network(prefix)
}

/// Every vector, every check of `harness::usecases::packetfilter::bed::conformance_report`; all
/// mismatches are reported together.
fn conformance(lib: &str) {
    let imp = preflight(lib);
    let report = pf::conformance_report(&imp).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
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
        .filter(|n| n.starts_with(&format!("bpfeval-conf-{lib}-{}-", std::process::id())))
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

/// 1,000,000 blocked IPv4 /32s (10.0.0.0 + i) and a few blocked /16s, default allow.
const MILLION: u32 = 1_000_000;
const MILLION_READY_TIMEOUT: Duration = Duration::from_secs(120);

fn million_rules(lib: &str) {
    let imp = preflight(lib);
    let tmp = TempDir::new(&format!("million-{lib}")).unwrap();
    let (ns, _veth) = test_network(&format!("million-{lib}")).unwrap();
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let mut yaml = String::with_capacity(MILLION as usize * 16);
    yaml.push_str(&format!("rules:\n  interface: {IFACE}\n  ipv4:\n    default: allow\n    block:\n"));
    for i in 0..MILLION {
        let _ = writeln!(yaml, "      - {}", Ipv4Addr::from(base + i));
    }
    let slash16 = ["172.16.0.0/16", "172.17.0.0/16", "192.168.0.0/16"];
    for n in slash16 {
        let _ = writeln!(yaml, "      - {n}");
    }
    let path = tmp.write("million.yml", yaml).unwrap();

    let started = Instant::now();
    let mut filter = Filter::start(&imp, &ns, IFACE, &path, &["--stats-interval-ms", "0"], MILLION_READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    let ready_after = started.elapsed();
    eprintln!("{lib}: ready with {} rules after {:.1} s", MILLION as usize + slash16.len(), ready_after.as_secs_f64());
    assert_eq!(filter.ready["rules"].as_u64(), Some(MILLION as u64 + slash16.len() as u64), "{}", filter.ready);

    let last = Ipv4Addr::from(base + MILLION - 1);
    let outside = Ipv4Addr::from(base + MILLION);
    let checks: [(&str, Ipv4Addr, Verdict, Option<String>); 4] = [
        ("last rule's address", last, Verdict::DropBlock, Some(format!("rules.ipv4.block[{}]", MILLION - 1))),
        ("first rule's address", Ipv4Addr::from(base), Verdict::DropBlock, Some("rules.ipv4.block[0]".into())),
        (
            "inside a /16",
            Ipv4Addr::new(172, 17, 5, 5),
            Verdict::DropBlock,
            Some(format!("rules.ipv4.block[{}]", MILLION + 1)),
        ),
        ("just past the last rule", outside, Verdict::PassDefault, None),
    ];
    let mut problems = Vec::new();
    let mut expected_hits = BTreeMap::new();
    for (what, src, verdict, rule) in &checks {
        let frame = FrameSpec::ipv4(*src).build().unwrap();
        let before = filter.counters().unwrap();
        let r = filter.handles().prog.test_run_xdp(&frame).unwrap();
        let delta = filter.counters().unwrap().since(&before);
        let mut want = Counters::default();
        want.add(*verdict, 1);
        if r.retval != verdict.expect().xdp_retval() || delta != want {
            problems.push(format!("{what} ({src}): expected {}, got retval {} and {delta}", verdict.name(), r.retval));
        }
        if let Some(rule) = rule {
            expected_hits.insert(rule.clone(), 1u64);
        }
    }
    let stopped = filter.stop(Duration::from_secs(120)).unwrap();
    assert_eq!(stopped.exit_code, 0, "{lib}: stderr: {}", stopped.stderr);
    let hits = stopped.final_stats.as_ref().map(pf::rule_hits).unwrap_or_default();
    if hits != expected_hits {
        problems.push(format!("rule_hits: expected {expected_hits:?}, got {hits:?}"));
    }
    assert!(ns.xdp(IFACE).unwrap().is_none(), "{lib}: XDP left on {IFACE} after exit");
    assert!(problems.is_empty(), "{lib} with {MILLION} rules:\n  {}", problems.join("\n  "));
}

/// Per-rule counters after reloads: a rule's `rule_hits` count the packets that matched *it*.
/// The generation slots alternate (0, 1, 0, ...), so the third config reuses the first one's
/// rule ids; hits of the first config must not show up under the third config's rules.
fn reload_rule_hits(lib: &str) {
    let imp = preflight(lib);
    let tmp = TempDir::new(&format!("hits-{lib}")).unwrap();
    let (ns, _veth) = test_network(&format!("hits-{lib}")).unwrap();
    let config = |net: &str| format!("rules:\n  ipv4:\n    block: [{net}]\n");
    let path = tmp.write("config.yml", config("192.0.2.1")).unwrap();
    let mut filter = Filter::start(&imp, &ns, IFACE, &path, &["--stats-interval-ms", "0"], READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    let run = |filter: &Filter, src: [u8; 4]| {
        let r = filter.handles().prog.test_run_xdp(&FrameSpec::ipv4(src.into()).build().unwrap()).unwrap();
        assert_eq!(r.retval, bpf::XDP_DROP, "{lib}: {src:?} should be blocked");
    };
    for _ in 0..3 {
        run(&filter, [192, 0, 2, 1]);
    }
    for (i, net) in ["198.51.100.1", "203.0.113.1"].iter().enumerate() {
        tmp.write("config.yml", config(net)).unwrap();
        filter.running.signal(libc::SIGHUP).unwrap();
        let line = filter.running.wait_for("reloaded", READY_TIMEOUT).unwrap();
        assert_eq!(line["generation"].as_u64(), Some(1 - (i as u64 % 2)), "{lib}: {line}");
    }
    run(&filter, [203, 0, 113, 1]);
    let stopped = filter.stop(EXIT_TIMEOUT).unwrap();
    assert_eq!(stopped.exit_code, 0, "{lib}: {}", stopped.stderr);
    let stats = stopped.final_stats.expect("final stats");
    let want: BTreeMap<String, u64> = [("rules.ipv4.block[0]".to_string(), 1)].into();
    assert_eq!(
        pf::rule_hits(&stats),
        want,
        "{lib}: after two reloads, 203.0.113.1 (rules.ipv4.block[0]) matched once, but the final stats say: {}",
        stats["rule_hits"]
    );
}

/// A reload with a bad config is refused (`reload_failed`, naming the field) and the old
/// rules keep filtering.
fn reload_bad_config(lib: &str) {
    let imp = preflight(lib);
    let tmp = TempDir::new(&format!("badreload-{lib}")).unwrap();
    let (ns, _veth) = test_network(&format!("badreload-{lib}")).unwrap();
    let path = tmp.write("config.yml", "rules:\n  ipv4:\n    block: [192.0.2.1]\n").unwrap();
    let mut filter = Filter::start(&imp, &ns, IFACE, &path, &["--stats-interval-ms", "0"], READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    tmp.write("config.yml", "rules:\n  ipv4:\n    block: [192.0.2.1, 192.0.2.999]\n").unwrap();
    filter.running.signal(libc::SIGHUP).unwrap();
    let line = filter
        .running
        .wait_for_line("`reload_failed` or `reloaded`", READY_TIMEOUT, |v| {
            v["event"] == "reload_failed" || v["event"] == "reloaded"
        })
        .unwrap();
    assert_eq!(line["event"], "reload_failed", "{lib}: {line}");
    assert!(line["error"].as_str().unwrap_or("").contains("rules.ipv4.block[1]"), "{lib}: {line}");
    let frame = FrameSpec::ipv4([192, 0, 2, 1].into()).build().unwrap();
    assert_eq!(filter.handles().prog.test_run_xdp(&frame).unwrap().retval, bpf::XDP_DROP, "{lib}: old rules gone");
    let stopped = filter.stop(EXIT_TIMEOUT).unwrap();
    assert_eq!(stopped.exit_code, 0, "{lib}: {}", stopped.stderr);
}

/// Negative control: the suite must notice a program that passes everything.
#[test]
fn suite_catches_a_wrong_program() {
    bpf::check_privileges().unwrap();
    let prog = bpf::load_constant_xdp("hb_always_pass", bpf::XDP_PASS).unwrap();
    let vectors = Vectors::packetfilter().unwrap();
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
    let drops = packets.iter().filter(|p| p.expect == harness::scenario::Expect::Drop).count();
    assert_eq!(wrong, drops);
    assert!(drops > 20);
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
fn reload_rule_hits_aya() {
    reload_rule_hits("aya");
}

#[test]
fn reload_rule_hits_libbpf_rs() {
    reload_rule_hits("libbpf-rs");
}

#[test]
fn reload_rule_hits_libbpf() {
    reload_rule_hits("libbpf");
}

#[test]
fn reload_bad_config_aya() {
    reload_bad_config("aya");
}

#[test]
fn reload_bad_config_libbpf_rs() {
    reload_bad_config("libbpf-rs");
}

#[test]
fn reload_bad_config_libbpf() {
    reload_bad_config("libbpf");
}

#[test]
fn million_rules_aya() {
    million_rules("aya");
}

#[test]
fn million_rules_libbpf_rs() {
    million_rules("libbpf-rs");
}

#[test]
fn million_rules_libbpf() {
    million_rules("libbpf");
}

#[test]
fn conformance_redbpf() {
    conformance("redbpf");
}

#[test]
fn reload_rule_hits_redbpf() {
    reload_rule_hits("redbpf");
}

#[test]
fn reload_bad_config_redbpf() {
    reload_bad_config("redbpf");
}

#[test]
fn million_rules_redbpf() {
    million_rules("redbpf");
}

#[test]
fn conformance_cilium_ebpf() {
    conformance("cilium-ebpf");
}

#[test]
fn reload_rule_hits_cilium_ebpf() {
    reload_rule_hits("cilium-ebpf");
}

#[test]
fn reload_bad_config_cilium_ebpf() {
    reload_bad_config("cilium-ebpf");
}

#[test]
fn million_rules_cilium_ebpf() {
    million_rules("cilium-ebpf");
}
