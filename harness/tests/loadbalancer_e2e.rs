//! loadbalancer end to end, per library, with real TCP (tokio) through the balancer:
//!
//! client, balancer and three backends in their own namespaces on one bridge (in a `switch`
//! namespace); the VIPs on each backend's `lo` (arp_ignore=1, arp_announce=2); native XDP on the
//! balancer, with what native `XDP_TX` on veth needs (see `harness::usecases::loadbalancer::bed`).
//! Every backend answers each request with its name, so the client sees which backend served it.
//!
//! 1. 10,000 IPv4 connections (two requests each) to the VIP: every one completes on one backend,
//!    none is reset, and the spread over the two configured backends (one by MAC, one by IP
//!    through the neighbour table) is within ±5 % of even; IPv6 to the second port works too;
//! 2. SIGHUP with b1 removed and b2 added (weight 3): connections open across the reload stay
//!    with their backend (b1 drains), b1 gets no new connection, and 20,000 new connections split
//!    1:3 over b0 and b2 within ±5 %;
//! 3. a restart of the balancer with the same backends moves no open connection (Maglev);
//! 4. the final stats count every forwarded packet per backend; after SIGINT nothing is attached;
//! 5. generic (skb) mode forwards as well, and `--log-packets` streams the forwarded packets;
//! 6. a reload with a bad file or changed VIPs is refused and the old set keeps forwarding;
//! 7. bad input: exit 2 naming file and field, nothing attached.
//!
//! Needs root and the implementation binaries; without them the tests fail and say so.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::bpf;
use harness::usecases::loadbalancer::bed::{self as lb, Balancer, Bed, Held, VIP4, VIP6};
use harness::netns::XdpAttachment;
use harness::process::{Implementation, TempDir};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECTIONS: usize = 10_000;
const CONCURRENCY: usize = 64;
/// Far more than 10,000 connections need here (a few seconds), but bounded.
const RUN_MAX: Duration = Duration::from_secs(120);
const HELD: usize = 200;

fn preflight(lib: &str) -> Implementation {
    if let Err(e) = bpf::check_privileges() {
        panic!("{e:#}");
    }
    Implementation::require(lb::USECASE, lib)
}

fn weights(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(n, w)| (n.to_string(), *w)).collect()
}

/// Connections to `target`: all must complete; returns the count per backend.
fn run(bed: &Bed, lib: &str, target: SocketAddr, count: usize) -> BTreeMap<String, usize> {
    let r =
        lb::connections(&bed.client, target, count, CONCURRENCY, 2, RUN_MAX).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    eprintln!(
        "{lib}: {count} connections to {target} in {:.2} s ({:.0}/s): {:?}",
        r.elapsed.as_secs_f64(),
        r.conn_per_s(),
        r.per_backend()
    );
    assert_eq!(r.outcomes.len(), count, "{lib}: not every connection ran");
    assert!(
        r.failures().is_empty(),
        "{lib}: {} of {count} connections failed: {:?}",
        count - r.completed(),
        r.failures()
    );
    r.per_backend()
}

fn main_flow(lib: &str) {
    let imp = preflight(lib);
    let started = Instant::now();
    let bed = Bed::new(&format!("lbe2e-{lib}"), 3).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    bed.warm_neighbours().unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    let tmp = TempDir::new(&format!("lbe2e-{lib}")).unwrap();
    let [b0, b1, b2] = [&bed.backends[0], &bed.backends[1], &bed.backends[2]];
    let path = tmp.write("config.yml", bed.config(&[b0.by_mac(), b1.by_ip()])).unwrap();
    let mut balancer =
        Balancer::start(&imp, &bed.balancer, lb::IFACE, &path, &["--stats-interval-ms", "0"], READY_TIMEOUT)
            .unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    match bed.balancer.xdp(lb::IFACE).unwrap() {
        Some(XdpAttachment { mode: XdpAttachment::MODE_NATIVE, prog_ids }) if prog_ids.contains(&balancer.prog_id) => {}
        other => panic!("{lib}: expected the program attached natively, found {other:?}"),
    }

    // 1. Even spread over b0 (by MAC) and b1 (by IP), IPv4 and IPv6.
    let v4 = SocketAddr::new(VIP4.into(), lb::PORTS[0]);
    let v6 = SocketAddr::new(VIP6.into(), lb::PORTS[1]);
    let counts = run(&bed, lib, v4, CONNECTIONS);
    let dev = lb::spread_max_dev_pct(&counts, &weights(&[("b0", 1), ("b1", 1)]));
    assert!(counts.len() == 2 && dev <= 5.0, "{lib}: spread {counts:?} deviates {dev:.1} % from even (limit 5 %)");
    let counts6 = run(&bed, lib, v6, 1000);
    assert_eq!(counts6.keys().collect::<Vec<_>>(), ["b0", "b1"], "{lib}: IPv6 spread {counts6:?}");

    // 2. Reload: b1 out (draining), b2 in with weight 3, while connections are open.
    let held = Held::open(&bed.client, v4, HELD).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    let held_on = held.per_backend();
    assert!(held_on.contains_key("b1"), "{lib}: no held connection on b1: {held_on:?}");
    tmp.write("config.yml", bed.config(&[b0.by_mac(), format!("{{mac: {}, weight: 3}}", b2.by_mac())])).unwrap();
    let line = balancer.reload(READY_TIMEOUT).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    assert_eq!(line["backends"], 2, "{lib}: {line}");
    // Twice as many: b0's quarter is what the ±5 % bound is tightest on.
    let counts = run(&bed, lib, v4, 2 * CONNECTIONS);
    assert!(!counts.contains_key("b1"), "{lib}: b1 was removed but got new connections: {counts:?}");
    let dev = lb::spread_max_dev_pct(&counts, &weights(&[("b0", 1), ("b2", 3)]));
    assert!(dev <= 5.0, "{lib}: spread {counts:?} deviates {dev:.1} % from 1:3 (limit 5 %)");
    let finished = held.finish();
    let moved: Vec<_> = finished.iter().filter(|(a, b)| b.as_ref() != Ok(a)).collect();
    assert!(
        moved.is_empty(),
        "{lib}: {} of {HELD} connections open across the reload moved: {:?}",
        moved.len(),
        &moved[..moved.len().min(5)]
    );

    // 3. A restart with the same backends: the connection table is gone, Maglev is not.
    let held = Held::open(&bed.client, v4, HELD).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    let stopped = balancer.stop(EXIT_TIMEOUT).unwrap();
    assert_eq!(stopped.exit_code, 0, "{lib}: {}", stopped.stderr);
    let first_stats = stopped.final_stats.expect("final stats");
    let mut balancer =
        Balancer::start(&imp, &bed.balancer, lb::IFACE, &path, &["--stats-interval-ms", "0"], READY_TIMEOUT)
            .unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    let finished = held.finish();
    let moved = Held::moved_pct(&finished);
    assert_eq!(moved, 0.0, "{lib}: a restart moved {moved:.1} % of open connections: {:?}", &finished[..5]);

    // 4. Counters: every forwarded packet is counted for one backend; nothing malformed.
    let c = lb::Counters::from_stats(&first_stats).unwrap();
    let per_backend = lb::backend_packets(&first_stats);
    let forwarded = c.get(lb::Verdict::TxNew) + c.get(lb::Verdict::TxConn);
    assert_eq!(per_backend.values().sum::<u64>(), forwarded, "{lib}: {first_stats}");
    assert!(c.get(lb::Verdict::TxNew) >= (2 * CONNECTIONS) as u64, "{lib}: {c}");
    for v in [lb::Verdict::DropMalformed, lb::Verdict::DropFragment, lb::Verdict::DropNoBackend] {
        assert_eq!(c.get(v), 0, "{lib}: {c}");
    }
    let b1_entry = first_stats["backends"].as_array().unwrap().iter().find(|b| b["id"] == b1.by_ip()).cloned();
    assert_eq!(b1_entry.as_ref().map(|b| b["active"].clone()), Some(false.into()), "{lib}: b1 draining: {first_stats}");
    let prog_id = balancer.prog_id;
    let stopped = balancer.stop(EXIT_TIMEOUT).unwrap();
    assert!(stopped.exit_code == 0 && stopped.exit_line, "{lib}: {}", stopped.stderr);
    assert!(bed.balancer.xdp(lb::IFACE).unwrap().is_none(), "{lib}: XDP left attached after exit");
    assert!(lb::wait_prog_gone(prog_id, Duration::from_secs(5)), "{lib}: program {prog_id} still loaded");
    eprintln!("{lib}: end to end in {:.1} s", started.elapsed().as_secs_f64());
}

fn skb_mode(lib: &str) {
    let imp = preflight(lib);
    let bed = Bed::new(&format!("lbskb-{lib}"), 2).unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    let tmp = TempDir::new(&format!("lbskb-{lib}")).unwrap();
    let path = tmp.write("config.yml", bed.config(&[bed.backends[0].by_mac(), bed.backends[1].by_mac()])).unwrap();
    let extra = ["--stats-interval-ms", "0", "--xdp-mode", "skb", "--log-packets"];
    let mut balancer = Balancer::start(&imp, &bed.balancer, lb::IFACE, &path, &extra, READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    assert_eq!(balancer.ready["xdp_mode"], "skb", "{lib}: {}", balancer.ready);
    let mode = bed.balancer.xdp(lb::IFACE).unwrap().map(|x| x.mode);
    assert_eq!(mode, Some(XdpAttachment::MODE_SKB), "{lib}");
    let counts = run(&bed, lib, SocketAddr::new(VIP4.into(), lb::PORTS[0]), 500);
    assert_eq!(counts.len(), 2, "{lib}: {counts:?}");
    let ids = [bed.backends[0].mac_id(), bed.backends[1].mac_id()];
    let event = balancer
        .running
        .wait_for_line("a `packet` line for a new connection", READY_TIMEOUT, |v| {
            v["event"] == "packet" && v["verdict"] == "tx_new"
        })
        .unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    assert_eq!(event["saddr"], lb::CLIENT4.to_string(), "{lib}: {event}");
    assert!(ids.iter().any(|id| event["backend"] == id.as_str()), "{lib}: {event}");
    let stopped = balancer.stop(EXIT_TIMEOUT).unwrap();
    assert_eq!(stopped.exit_code, 0, "{lib}: {}", stopped.stderr);
    assert!(bed.balancer.xdp(lb::IFACE).unwrap().is_none(), "{lib}: XDP left attached");
}

fn reload_refused(lib: &str) {
    let imp = preflight(lib);
    let (ns, _veth) = lb::test_network(&format!("lbrel-{lib}")).unwrap();
    let tmp = TempDir::new(&format!("lbrel-{lib}")).unwrap();
    let good = "tcp_port: 80\nvips: [10.0.0.100]\nbackends: [\"02:00:00:00:00:01\"]\n";
    let path = tmp.write("config.yml", good).unwrap();
    let mut balancer = Balancer::start(&imp, &ns, lb::TEST_IFACE, &path, &["--stats-interval-ms", "0"], READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{lib}: {e:#}"));
    let frame =
        lb::TcpFrame::syn("10.0.0.1".parse().unwrap(), 40000, "10.0.0.100".parse().unwrap(), 80).build().unwrap();
    for (bad, needle) in [
        ("tcp_port: 80\nvips: [10.0.0.101]\nbackends: [\"02:00:00:00:00:01\"]\n", "vips"),
        ("tcp_port: 80\nvips: [10.0.0.100]\nbackends: [\"02:00:00:00:00:01\", nonsense]\n", "backends[1]"),
    ] {
        tmp.write("config.yml", bad).unwrap();
        let e = balancer.reload(READY_TIMEOUT).expect_err("the reload must be refused");
        assert!(format!("{e:#}").contains(needle), "{lib}: {e:#}");
        let r = balancer.handles().prog.test_run_xdp(&frame).unwrap();
        assert_eq!(r.retval, bpf::XDP_TX, "{lib}: the old set must keep forwarding after a refused reload");
    }
    let stopped = balancer.stop(EXIT_TIMEOUT).unwrap();
    assert_eq!(stopped.exit_code, 0, "{lib}: {}", stopped.stderr);
}

fn bad_input(lib: &str) {
    let imp = preflight(lib);
    let (ns, _veth) = lb::test_network(&format!("lbbad-{lib}")).unwrap();
    let tmp = TempDir::new(&format!("lbbad-{lib}")).unwrap();
    let cases = [
        (
            "bad-mac.yml",
            "listenInterface: lb0\ntcp_port: 80\nbackends: [\"02:00:00:00:00:01\", \"02:00:00:00:00:0g\"]\n",
            "backends[1]",
        ),
        (
            "bad-weight.yml",
            "listenInterface: lb0\ntcp_port: 80\nbackends: [{mac: \"02:00:00:00:00:01\", weight: -1}]\n",
            "backends[0].weight",
        ),
        ("no-neighbour.yml", "listenInterface: lb0\ntcp_port: 80\nbackends: [10.9.9.9]\n", "neighbour table"),
        ("no-such-iface.yml", "listenInterface: nope0\ntcp_port: 80\nbackends: []\n", "listenInterface"),
        ("typo.yml", "listenInterface: lb0\ntcp_prot: 80\nbackends: []\n", "unknown field"),
    ];
    for (file, text, needle) in cases {
        let path = tmp.write(file, text).unwrap();
        let mut running = imp.spawn(&["--config", path.to_str().unwrap()], Some(&ns)).unwrap();
        let code = running.exit_code(EXIT_TIMEOUT).unwrap();
        let stderr = running.stderr();
        assert_eq!(code, 2, "{lib} {file}: exit code {code}, stderr: {stderr}");
        assert!(
            stderr.contains(file) && stderr.contains(needle),
            "{lib} {file}: stderr should name the file and `{needle}`: {stderr}"
        );
        assert!(ns.xdp(lb::TEST_IFACE).unwrap().is_none(), "{lib} {file}: something got attached");
    }
}

#[test]
fn e2e_aya() {
    main_flow("aya");
}

#[test]
fn e2e_libbpf_rs() {
    main_flow("libbpf-rs");
}

#[test]
fn e2e_libbpf() {
    main_flow("libbpf");
}

#[test]
fn e2e_redbpf() {
    main_flow("redbpf");
}

#[test]
fn skb_mode_aya() {
    skb_mode("aya");
}

#[test]
fn skb_mode_libbpf_rs() {
    skb_mode("libbpf-rs");
}

#[test]
fn skb_mode_libbpf() {
    skb_mode("libbpf");
}

#[test]
fn skb_mode_redbpf() {
    skb_mode("redbpf");
}

#[test]
fn reload_refused_aya() {
    reload_refused("aya");
}

#[test]
fn reload_refused_libbpf_rs() {
    reload_refused("libbpf-rs");
}

#[test]
fn reload_refused_libbpf() {
    reload_refused("libbpf");
}

#[test]
fn reload_refused_redbpf() {
    reload_refused("redbpf");
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
fn e2e_cilium_ebpf() {
    main_flow("cilium-ebpf");
}

#[test]
fn skb_mode_cilium_ebpf() {
    skb_mode("cilium-ebpf");
}

#[test]
fn reload_refused_cilium_ebpf() {
    reload_refused("cilium-ebpf");
}

#[test]
fn bad_input_cilium_ebpf() {
    bad_input("cilium-ebpf");
}
