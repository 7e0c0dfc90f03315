//! jittergen end to end on the host (kernel 6.18: TCX, no fq), per library, with real traffic
//! through sender -> router -> receiver namespaces, jittergen on the router's egress:
//!
//! 1. drop 10% of UDP port 7001: over 10,000 IPv4 and 10,000 IPv6 datagrams the loss is within
//!    ±1 percentage point of 10% each, the program's `dropped` counter equals the loss, and
//!    unmatched UDP and TCP traffic through the same interface arrives complete and undelayed;
//!    after SIGINT: exit 0, nothing attached, the program gone, the qdiscs as before.
//! 2. netlink (clsact) attach, forced: drops as configured; the clsact it added is gone after
//!    exit, one that was there before stays.
//! 3. a delaying rule needs fq, which the host lacks: exit 1 saying so, nothing attached, the
//!    qdiscs as before (the error path after load).
//! 4. bad input: exit 2 naming file and field, nothing attached.
//!
//! Jitter and reorder on the wire need fq: `jittergen_guest.rs` runs them in the VM guest.
//! Needs root and the implementation binaries; without them the tests fail and say so.

use std::time::Duration;

use harness::usecases::jittergen::bed::{self as jg, Bed, Loader, StreamSpec};
use harness::process::{Implementation, TempDir};

const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const PORT: u16 = 7001;

fn preflight(lib: &str) -> Implementation {
    harness::bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    Implementation::require(jg::USECASE, lib)
}

fn spec(v6: bool, port: u16, count: u32) -> StreamSpec {
    StreamSpec { v6, port, count, interval: Duration::from_micros(25), linger: Duration::from_millis(300) }
}

/// Stops the loader and checks the clean exit: code 0, `exit` line, nothing attached, the
/// program unloaded, the qdiscs of the egress as `before`.
fn stop_clean(lib: &str, loader: &mut Loader, bed: &Bed, before: &[String]) {
    let prog_id = loader.prog_id;
    let stopped = loader.stop(EXIT_TIMEOUT).unwrap();
    assert_eq!(stopped.exit_code, 0, "{lib}: exit code; stderr: {}", stopped.stderr);
    assert!(stopped.exit_line.is_some(), "{lib}: no exit line");
    assert!(!jg::anything_attached(&bed.mid, Bed::EGRESS).unwrap(), "{lib}: something still attached");
    assert!(jg::wait_prog_gone(prog_id, Duration::from_secs(5)), "{lib}: program {prog_id} still loaded");
    assert_eq!(jg::qdiscs(&bed.mid, Bed::EGRESS).unwrap(), before, "{lib}: qdiscs changed");
}

fn drop_share(lib: &str) {
    let imp = preflight(lib);
    let bed = Bed::new(&format!("jgdrop-{lib}")).unwrap();
    let tmp = TempDir::new(&format!("jgdrop-{lib}")).unwrap();
    let before = jg::qdiscs(&bed.mid, Bed::EGRESS).unwrap();
    let config = Bed::config(&tmp, "drop.yml", &format!("action: drop\nmatch: {{percent: 10, protocol: udp, port: {PORT}}}\n")).unwrap();
    let mut loader = Loader::start(&imp, &bed.mid, &config, &[]).unwrap();
    assert_eq!(loader.attach_mode(), "tcx", "{lib}: the host kernel has TCX: {}", loader.ready);
    assert_eq!(loader.ready["qdisc"], "unchanged", "{lib}: a drop-only config needs no fq");
    assert!(jg::attached(&bed.mid, Bed::EGRESS, loader.prog_id).unwrap(), "{lib}: not attached after ready");
    let c0 = loader.counters().unwrap();

    let mut lost = 0;
    for v6 in [false, true] {
        let s = jg::udp_stream(&bed, &spec(v6, PORT, 10_000)).unwrap();
        let share = s.loss_share() * 100.0;
        eprintln!("{lib}: matched UDP, v6={v6}: {}", s.summary());
        assert!((9.0..=11.0).contains(&share), "{lib}: v6={v6}: dropped {share:.2}%, configured 10% ±1: {}", s.summary());
        lost += s.sent - s.received;
    }
    let other = jg::udp_stream(&bed, &spec(false, PORT + 1, 2000)).unwrap();
    let tcp = jg::tcp_stream(&bed, &StreamSpec { count: 500, ..spec(false, PORT, 0) }).unwrap();
    for (what, s) in [("UDP to another port", &other), ("TCP to the same port", &tcp)] {
        eprintln!("{lib}: unmatched {what}: {}", s.summary());
        assert_eq!(s.received, s.sent, "{lib}: unmatched {what} lost packets: {}", s.summary());
        assert_eq!(s.reordered, 0, "{lib}: unmatched {what} reordered: {}", s.summary());
        assert!(s.delay_pct(99.0) < 20.0, "{lib}: unmatched {what} delayed: {}", s.summary());
    }

    let d = loader.counters().unwrap().since(&c0);
    assert_eq!(d.get("dropped"), lost, "{lib}: the program's drops vs the receiver's loss: {d}");
    assert_eq!(d.get("delayed") + d.get("passed"), 20_000 - lost, "{lib}: {d}");
    // TCP may carry several records in one segment (autocorking), so only the UDP count is exact.
    assert!(d.get("unmatched") >= other.sent, "{lib}: unmatched traffic not counted as such: {d}");
    stop_clean(lib, &mut loader, &bed, &before);
}

fn netlink_attach(lib: &str) {
    let imp = preflight(lib);
    let bed = Bed::new(&format!("jgnl-{lib}")).unwrap();
    let tmp = TempDir::new(&format!("jgnl-{lib}")).unwrap();
    let config = Bed::config(
        &tmp,
        "netlink.yml",
        &format!("action: drop\nmatch: {{percent: 100, protocol: udp, port: {PORT}}}\ntcAttach: netlink\n"),
    )
    .unwrap();
    for preexisting in [false, true] {
        if preexisting {
            bed.mid.exec("tc", &["qdisc", "add", "dev", Bed::EGRESS, "clsact"]).unwrap();
        }
        let before = jg::qdiscs(&bed.mid, Bed::EGRESS).unwrap();
        let mut loader = Loader::start(&imp, &bed.mid, &config, &[]).unwrap();
        assert_eq!(loader.attach_mode(), "netlink", "{lib}: {}", loader.ready);
        assert!(jg::attached(&bed.mid, Bed::EGRESS, loader.prog_id).unwrap(), "{lib}: no cls_bpf filter");
        let s = jg::udp_stream(&bed, &spec(false, PORT, 200)).unwrap();
        assert_eq!(s.received, 0, "{lib}: 100% drop let packets through: {}", s.summary());
        let other = jg::udp_stream(&bed, &spec(true, PORT + 1, 200)).unwrap();
        assert_eq!(other.received, 200, "{lib}: unmatched traffic lost: {}", other.summary());
        stop_clean(lib, &mut loader, &bed, &before);
        let clsact = before.iter().any(|q| q.starts_with("qdisc clsact"));
        assert_eq!(clsact, preexisting, "{lib}: clsact before the run: {before:?}");
    }
}

fn needs_fq(lib: &str) {
    let imp = preflight(lib);
    let bed = Bed::new(&format!("jgfq-{lib}")).unwrap();
    let tmp = TempDir::new(&format!("jgfq-{lib}")).unwrap();
    let before = jg::qdiscs(&bed.mid, Bed::EGRESS).unwrap();
    let config = Bed::config(&tmp, "jitter.yml", "action: jitter\nmatch: {protocol: udp}\njitter: {minDelayMs: 1, maxDelayMs: 2}\n").unwrap();
    let path = config.to_str().unwrap();
    let mut running = imp.spawn(&["--config", path], Some(&bed.mid)).unwrap();
    let code = running.exit_code(EXIT_TIMEOUT).unwrap();
    let stderr = running.stderr();
    assert_eq!(code, 1, "{lib}: no fq on the host is a failure (exit 1), not bad input; stderr: {stderr}");
    assert!(stderr.contains("fq"), "{lib}: the error names fq: {stderr}");
    assert!(!jg::anything_attached(&bed.mid, Bed::EGRESS).unwrap(), "{lib}: attached after failing");
    assert_eq!(jg::qdiscs(&bed.mid, Bed::EGRESS).unwrap(), before, "{lib}: qdiscs changed");
}

fn bad_input(lib: &str) {
    let imp = preflight(lib);
    let bed = Bed::new(&format!("jgbad-{lib}")).unwrap();
    let tmp = TempDir::new(&format!("jgbad-{lib}")).unwrap();
    let cases = [
        ("percent.yml", "action: drop\nmatch: {percent: 150, protocol: udp}\n".to_string(), "match.percent"),
        ("order.yml", "action: jitter\njitter: {minDelayMs: 9, maxDelayMs: 3}\n".into(), "jitter.maxDelayMs"),
        ("iface.yml", "action: drop\n".into(), "outIf"),
    ];
    for (name, body, field) in cases {
        let path = if name == "iface.yml" {
            tmp.write(name, format!("outIf: nosuchif0\n{body}")).unwrap()
        } else {
            Bed::config(&tmp, name, &body).unwrap()
        };
        let mut running = imp.spawn(&["--config", path.to_str().unwrap()], Some(&bed.mid)).unwrap();
        let code = running.exit_code(EXIT_TIMEOUT).unwrap();
        let stderr = running.stderr();
        assert_eq!(code, 2, "{lib}: {name}: exit code; stderr: {stderr}");
        assert!(stderr.contains(name) && stderr.contains(field), "{lib}: {name}: names file and `{field}`: {stderr}");
        assert!(!jg::anything_attached(&bed.mid, Bed::EGRESS).unwrap(), "{lib}: {name}: attached");
    }
}

#[test]
fn aya_drop_share() {
    drop_share("aya");
}

#[test]
fn libbpf_rs_drop_share() {
    drop_share("libbpf-rs");
}

#[test]
fn libbpf_drop_share() {
    drop_share("libbpf");
}

#[test]
fn aya_netlink_attach() {
    netlink_attach("aya");
}

#[test]
fn libbpf_rs_netlink_attach() {
    netlink_attach("libbpf-rs");
}

#[test]
fn libbpf_netlink_attach() {
    netlink_attach("libbpf");
}

#[test]
fn aya_needs_fq() {
    needs_fq("aya");
}

#[test]
fn libbpf_rs_needs_fq() {
    needs_fq("libbpf-rs");
}

#[test]
fn libbpf_needs_fq() {
    needs_fq("libbpf");
}

#[test]
fn aya_bad_input() {
    bad_input("aya");
}

#[test]
fn libbpf_rs_bad_input() {
    bad_input("libbpf-rs");
}

#[test]
fn libbpf_bad_input() {
    bad_input("libbpf");
}

#[test]
fn drop_share_redbpf() {
    drop_share("redbpf");
}

#[test]
fn netlink_attach_redbpf() {
    netlink_attach("redbpf");
}

#[test]
fn needs_fq_redbpf() {
    needs_fq("redbpf");
}

#[test]
fn bad_input_redbpf() {
    bad_input("redbpf");
}

#[test]
fn drop_share_cilium_ebpf() {
    drop_share("cilium-ebpf");
}

#[test]
fn netlink_attach_cilium_ebpf() {
    netlink_attach("cilium-ebpf");
}

#[test]
fn needs_fq_cilium_ebpf() {
    needs_fq("cilium-ebpf");
}

#[test]
fn bad_input_cilium_ebpf() {
    bad_input("cilium-ebpf");
}

/// The harness' host measurement of jittergen (the warm-up round: no guest) for every library
/// that has it and for the references: the drop rule's throughput through the router is the
/// receiving CPU's, not a trickle (it was ~1,400 frames a second), every library's program ran
/// on every forwarded frame (live_ns_per_pkt), and `ref:no TC program` has no program cost.
#[test]
fn host_throughput_every_library_and_reference() {
    harness::bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    let workspace = harness::process::workspace_dir();
    let out = TempDir::new("jg-throughput").unwrap();
    let ctx = harness::measure::Ctx::new(&workspace, out.path(), 1, true, true).unwrap();
    ctx.set_rep(0);
    let usecase = harness::usecases::by_name(jg::USECASE).unwrap();
    let mut rows = usecase.references(&ctx).unwrap();
    for lib in harness::libs::LIBS.iter().filter(|l| l.capability(&workspace, jg::USECASE).status.is_implemented()) {
        rows.extend(usecase.measure(&ctx, &Implementation::require(jg::USECASE, lib.name)).unwrap());
    }
    let value = |lib: &str, metric: &str| rows.iter().find(|r| r.lib == lib && r.metric == metric).map(|r| r.value);
    let mut subjects: Vec<&str> = rows.iter().filter(|r| r.metric == "veth_pps").map(|r| r.lib.as_str()).collect();
    subjects.dedup();
    for lib in &subjects {
        let (pps, ns) = (value(lib, "veth_pps").unwrap(), value(lib, "live_ns_per_pkt"));
        eprintln!(
            "{lib}: veth_pps {pps:.0}, live_ns_per_pkt {ns:?}, rx_cpu_busy_pct {:?}, generator_bound {:?}",
            value(lib, "rx_cpu_busy_pct"),
            value(lib, "generator_bound")
        );
        assert!(pps > 100_000.0, "{lib}: veth_pps {pps}");
        assert_eq!(ns.is_none(), *lib == "ref:no TC program", "{lib}: live_ns_per_pkt {ns:?}");
    }
    assert!(subjects.len() >= 4, "{subjects:?}");
}
