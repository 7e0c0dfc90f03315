//! packetfilter end to end, per library, with real frames on a veth:
//!
//! sender namespace --(veth snd0 | rcv0)--> receiver namespace, the filter on rcv0 (native XDP).
//! The sender writes crafted, marked UDP frames from several IPv4 and IPv6 sources with a raw
//! socket; a raw socket on rcv0 (which sees only what XDP passed) records what arrived.
//!
//! 1. exactly the expected frames arrive, and the `stats` counters and `rule_hits` match what
//!    was sent;
//! 2. SIGHUP with a changed config switches verdicts while frames stream, and a source blocked
//!    in both configs is never seen; afterwards the new verdicts hold exactly;
//! 3. SIGINT: exit 0, final stats count every frame, nothing left on rcv0;
//! 4. generic (skb) mode works the same on a short burst;
//! 5. bad input: an invalid address (exit 2, stderr names file and field) and an unknown
//!    interface (exit 2), nothing attached either time.
//!
//! Needs root and the implementation binaries; without them the tests fail and say so.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bpfeval_shared::packetfilter::Config;
use harness::bpf;
use harness::frames::{self, FrameSpec};
use harness::netns::{NetNs, VethConfig, VethPair, XdpAttachment};
use harness::usecases::packetfilter::bed::{self as pf, Counters, Filter};
use harness::process::{Implementation, TempDir};
use harness::scenario::{self, Verdict};
use harness::traffic::{Capture, Sender};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const STATS_TIMEOUT: Duration = Duration::from_secs(10);
const SND: &str = "snd0";
const RCV: &str = "rcv0";
/// Frames per source in a burst.
const BURST: usize = 50;
/// Pause after each frame: keeps the veth's 256-frame ring from overflowing.
const PACE: Duration = Duration::from_micros(200);
const MARKER: &str = "bpfeval-e2e:";

/// Before the reload: IPv4 default allow, IPv6 default block. Sized for the reloads' filler.
const CONFIG_A: &str = r#"rules:
  capacity: 32768
  ipv4:
    default: allow
    block: [10.0.1.1, 10.0.2.0/24]
    allow: [10.0.3.0/24]
  ipv6:
    default: block
    allow: ["2001:db8:1::/48"]
    block: ["2001:db8:1::66"]
"#;

/// After the reload: 10.0.1.1 and 2001:db8:1::66 stay blocked, the rest changes.
const CONFIG_B: &str = r#"rules:
  ipv4:
    default: allow
    block: [10.0.1.1, 10.0.3.0/24]
  ipv6:
    default: allow
    block: ["2001:db8:1::66"]
"#;

/// Rules appended to the IPv4 block list of the reload configs (addresses no frame comes
/// from), so that the reload (fill the new generation, flip, clear the old one) takes long
/// enough for many frames to stream through it.
const FILLER: u32 = 20_000;

/// `config` with `FILLER` /32s from `first` on appended to `rules.ipv4.block`.
fn with_filler(config: &str, first: std::net::Ipv4Addr) -> String {
    let mut v: yaml_serde::Value = yaml_serde::from_str(config).unwrap();
    let block = v["rules"]["ipv4"]["block"].as_sequence_mut().unwrap();
    for i in 0..FILLER {
        block.push(std::net::Ipv4Addr::from(u32::from(first) + i).to_string().into());
    }
    yaml_serde::to_string(&v).unwrap()
}

/// A source, and what each config does with it (verdict, rule counted).
struct Source {
    name: &'static str,
    /// `None`: a non-IP frame (ethertype 0x88b5).
    addr: Option<&'static str>,
    a: (Verdict, Option<&'static str>),
    b: (Verdict, Option<&'static str>),
}

const SOURCES: &[Source] = &[
    Source {
        name: "v4-blocked-both",
        addr: Some("10.0.1.1"),
        a: (Verdict::DropBlock, Some("rules.ipv4.block[0]")),
        b: (Verdict::DropBlock, Some("rules.ipv4.block[0]")),
    },
    Source {
        name: "v4-blocked-24",
        addr: Some("10.0.2.9"),
        a: (Verdict::DropBlock, Some("rules.ipv4.block[1]")),
        b: (Verdict::PassDefault, None),
    },
    Source {
        name: "v4-allowed-then-blocked",
        addr: Some("10.0.3.3"),
        a: (Verdict::PassAllow, Some("rules.ipv4.allow[0]")),
        b: (Verdict::DropBlock, Some("rules.ipv4.block[1]")),
    },
    Source {
        name: "v4-other",
        addr: Some("10.0.4.4"),
        a: (Verdict::PassDefault, None),
        b: (Verdict::PassDefault, None),
    },
    Source {
        name: "v6-allowed",
        addr: Some("2001:db8:1::5"),
        a: (Verdict::PassAllow, Some("rules.ipv6.allow[0]")),
        b: (Verdict::PassDefault, None),
    },
    Source {
        name: "v6-blocked-both",
        addr: Some("2001:db8:1::66"),
        a: (Verdict::DropBlock, Some("rules.ipv6.block[0]")),
        b: (Verdict::DropBlock, Some("rules.ipv6.block[0]")),
    },
    Source {
        name: "v6-dropped-then-passed",
        addr: Some("2001:db8:2::5"),
        a: (Verdict::DropDefault, None),
        b: (Verdict::PassDefault, None),
    },
    Source { name: "non-ip", addr: None, a: (Verdict::PassNonIp, None), b: (Verdict::PassNonIp, None) },
];

/// The test network: sender and receiver namespaces joined by a silent veth.
struct Net {
    sender: NetNs,
    receiver: NetNs,
    veth: VethPair,
}

impl Net {
    fn new(lib: &str) -> Result<Net> {
        let sender = NetNs::new(&format!("e2e-{lib}-snd"))?;
        let receiver = NetNs::new(&format!("e2e-{lib}-rcv"))?;
        let cfg = VethConfig { a_name: SND.into(), b_name: RCV.into(), ..Default::default() };
        let veth = VethPair::new(&sender, &receiver, &cfg)?;
        Ok(Net { sender, receiver, veth })
    }

    /// The marked frame `<phase>:<source>:<seq>` from `src`.
    fn frame(&self, src: &Source, phase: &str, seq: usize) -> Result<Vec<u8>> {
        let spec = match src.addr {
            Some(a) => FrameSpec::ip(a.parse::<IpAddr>()?),
            None => FrameSpec::raw(frames::ETHERTYPE_EXPERIMENTAL),
        };
        spec.with_macs(self.veth.a.mac, self.veth.b.mac).with_payload(id(phase, src, seq)).build()
    }
}

fn id(phase: &str, src: &Source, seq: usize) -> String {
    format!("{MARKER}{phase}:{}:{seq}", src.name)
}

fn preflight(lib: &str) -> Implementation {
    if let Err(e) = bpf::check_privileges() {
        panic!("{e:#}");
    }
    Implementation::require(pf::USECASE, lib)
}

/// The ids captured (marker stripped back on, for readable messages).
fn ids(seen: &[String]) -> BTreeSet<String> {
    seen.iter().map(|s| format!("{MARKER}{s}")).collect()
}

/// Sends `BURST` frames from every source (interleaved), returns the ids that must arrive and
/// the counters and rule hits the filter must add, given which config applies.
fn burst(
    net: &Net,
    sender: &mut Sender,
    phase: &str,
    config_b: bool,
) -> Result<(BTreeSet<String>, Counters, BTreeMap<String, u64>)> {
    let mut expect_ids = BTreeSet::new();
    let mut counters = Counters::default();
    let mut hits = BTreeMap::new();
    for seq in 0..BURST {
        for src in SOURCES {
            let frame = net.frame(src, phase, seq)?;
            sender.send(&frame)?;
            std::thread::sleep(PACE);
            let (verdict, rule) = if config_b { &src.b } else { &src.a };
            counters.add(*verdict, 1);
            if verdict.expect() == scenario::Expect::Pass {
                expect_ids.insert(id(phase, src, seq));
            }
            if let Some(rule) = rule {
                *hits.entry(rule.to_string()).or_insert(0u64) += 1;
            }
        }
    }
    Ok((expect_ids, counters, hits))
}

/// The expectations above agree with the reference model of the policy.
fn check_sources_against_model() -> Result<()> {
    let (a, b) = (with_filler(CONFIG_A, "100.64.0.0".parse()?), with_filler(CONFIG_B, "100.96.0.0".parse()?));
    for (text, b) in [(CONFIG_A, false), (CONFIG_B, true), (a.as_str(), false), (b.as_str(), true)] {
        let config = Config::parse(text, Path::new("e2e.yml"))?;
        for src in SOURCES {
            let spec = match src.addr {
                Some(a) => FrameSpec::ip(a.parse()?),
                None => FrameSpec::raw(frames::ETHERTYPE_EXPERIMENTAL),
            };
            let (verdict, rule) = scenario::model(&config.rules, &spec.build()?);
            let want = if b { &src.b } else { &src.a };
            ensure!(
                (verdict, rule.as_deref()) == (want.0, want.1),
                "{}: test table says {:?}, model says {verdict:?} {rule:?}",
                src.name,
                want
            );
        }
    }
    Ok(())
}

fn diff(expected: &BTreeSet<String>, got: &BTreeSet<String>) -> String {
    let missing: Vec<_> = expected.difference(got).take(10).collect();
    let extra: Vec<_> = got.difference(expected).take(10).collect();
    format!(
        "{} expected, {} arrived; missing (first 10): {missing:?}; unexpected (first 10): {extra:?}",
        expected.len(),
        got.len()
    )
}

fn hits_since(now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    now.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, v)| *v > 0).collect()
}

fn e2e(lib: &str) {
    let imp = preflight(lib);
    check_sources_against_model().unwrap();
    let started = Instant::now();
    let net = Net::new(lib).unwrap();
    let names = [net.sender.name().to_string(), net.receiver.name().to_string()];
    let result = run_e2e(&imp, &net);
    drop(net);
    for n in &names {
        assert!(!Path::new("/var/run/netns").join(n).exists(), "{n} left behind");
    }
    if let Err(e) = result {
        panic!("{lib}: {e:#}");
    }
    eprintln!("{lib}: end to end passed in {:.1} s", started.elapsed().as_secs_f64());
}

fn run_e2e(imp: &Implementation, net: &Net) -> Result<()> {
    let lib = &imp.lib;
    let tmp = TempDir::new(&format!("e2e-{lib}"))?;
    let config = tmp.write("config.yml", CONFIG_A)?;
    let mut filter = Filter::start(imp, &net.receiver, RCV, &config, &["--stats-interval-ms", "100"], READY_TIMEOUT)?;
    match net.receiver.xdp(RCV)? {
        Some(XdpAttachment { mode: XdpAttachment::MODE_NATIVE, prog_ids }) if prog_ids.contains(&filter.prog_id) => {}
        other => bail!("expected program {} attached natively to {RCV}, found {other:?}", filter.prog_id),
    }
    let capture = Capture::start(&net.receiver, RCV, MARKER)?;
    let mut sender = Sender::open(&net.sender, SND)?;

    // 1. A burst under config A.
    let (expect_ids, expect_counters, expect_hits) = burst(net, &mut sender, "a", false)?;
    let got = ids(&capture.settle(Duration::from_millis(300), Duration::from_secs(10)));
    ensure!(got == expect_ids, "phase A arrivals: {}", diff(&expect_ids, &got));
    let stats_a = filter.wait_stats(sender.sent, STATS_TIMEOUT)?;
    let counters_a = Counters::from_stats(&stats_a)?;
    ensure!(counters_a == expect_counters, "phase A counters: expected {expect_counters}, stats say {counters_a}");
    let hits_a = pf::rule_hits(&stats_a);
    ensure!(hits_a == expect_hits, "phase A rule_hits: expected {expect_hits:?}, stats say {hits_a:?}");

    // 2. Reload while frames stream. Streamed sources: blocked in both configs, and switching.
    let streamed: Vec<&Source> = SOURCES
        .iter()
        .filter(|s| {
            ["v4-blocked-both", "v6-blocked-both", "v4-allowed-then-blocked", "v6-dropped-then-passed"]
                .contains(&s.name)
        })
        .collect();
    const SETTLED_ROUNDS: usize = 100; // sent, then fully counted before SIGHUP: config A for sure
    const SIGHUP_AT: usize = SETTLED_ROUNDS + 20;
    const ROUNDS_AFTER: usize = 200; // sent after `reloaded` was seen: config B for sure
    const MAX_ROUNDS: usize = 20_000;
    // Both generations large: the reload writes and clears many entries while frames stream.
    tmp.write("config.yml", with_filler(CONFIG_A, "100.64.0.0".parse()?))?;
    filter.running.signal(libc::SIGHUP)?;
    filter.running.wait_for("reloaded", READY_TIMEOUT).context("reloading config A with filler")?;
    tmp.write("config.yml", with_filler(CONFIG_B, "100.96.0.0".parse()?))?;
    let mut first_after: Option<usize> = None;
    let mut rounds = 0;
    let mut reloaded = None;
    for round in 0..MAX_ROUNDS {
        for src in &streamed {
            sender.send(&net.frame(src, "r", round)?)?;
        }
        std::thread::sleep(PACE);
        rounds = round + 1;
        if rounds == SETTLED_ROUNDS {
            filter.wait_stats(sender.sent, STATS_TIMEOUT).context("before the reload")?;
        }
        if rounds == SIGHUP_AT {
            filter.running.signal(libc::SIGHUP)?;
        }
        if rounds > SIGHUP_AT && first_after.is_none() {
            if let Some(line) = filter.running.poll_event("reloaded") {
                reloaded = Some(line);
                first_after = Some(rounds);
            }
            if let Some(failed) = filter.running.poll_event("reload_failed") {
                bail!("reload failed: {failed}");
            }
        }
        if first_after.is_some_and(|f| rounds >= f + ROUNDS_AFTER) {
            break;
        }
    }
    let first_after = first_after.with_context(|| format!("no `reloaded` line within {rounds} rounds of streaming"))?;
    let reloaded = reloaded.unwrap();
    let got = ids(&capture.settle(Duration::from_millis(300), Duration::from_secs(10)));
    let mut problems = Vec::new();
    for src in &streamed {
        for seq in 0..rounds {
            let arrived = got.contains(&id("r", src, seq));
            let (verdict, _) = if seq < SETTLED_ROUNDS {
                src.a
            } else if seq >= first_after {
                src.b
            } else if src.a.0.expect() == src.b.0.expect() {
                src.a // same outcome in both configs: must hold throughout the reload
            } else {
                continue; // sent around the switch: either is right
            };
            if arrived != (verdict.expect() == scenario::Expect::Pass) {
                problems.push(format!(
                    "{}#{seq}: expected {}, {}",
                    src.name,
                    verdict.name(),
                    if arrived { "arrived" } else { "did not arrive" }
                ));
            }
        }
    }
    ensure!(
        problems.is_empty(),
        "reload while streaming ({rounds} rounds, SIGHUP after {SIGHUP_AT}, `reloaded` seen after {first_after}; {reloaded}): {} wrong, first: {:?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
    eprintln!(
        "{lib}: reload while streaming: {rounds} rounds of {} frames, SIGHUP after round {SIGHUP_AT}, `reloaded` seen after round {first_after}",
        streamed.len()
    );
    let stats_r = filter.wait_stats(sender.sent, STATS_TIMEOUT).context("after streaming")?;
    let counters_r = Counters::from_stats(&stats_r)?;
    ensure!(
        counters_r.packets() == sender.sent,
        "after streaming: counted {counters_r} for {} frames sent",
        sender.sent
    );
    let blocked_both = (2 * rounds) as u64;
    ensure!(
        counters_r.since(&counters_a).get(Verdict::DropBlock) >= blocked_both,
        "after streaming: drop_block rose by {}, at least {blocked_both} frames were from sources blocked in both",
        counters_r.since(&counters_a).get(Verdict::DropBlock)
    );
    ensure!(
        stats_r["generation"] == reloaded["generation"],
        "stats generation {} after {reloaded}",
        stats_r["generation"]
    );

    // Back to config B without the filler: periodic stats lines list rule_hits only for
    // configs of at most 4096 rules.
    tmp.write("config.yml", CONFIG_B)?;
    filter.running.signal(libc::SIGHUP)?;
    filter.running.wait_for("reloaded", READY_TIMEOUT).context("reloading config B without filler")?;
    let stats_r = filter.wait_stats(sender.sent, STATS_TIMEOUT).context("after the last reload")?;
    let counters_r = Counters::from_stats(&stats_r)?;

    // The new verdicts hold exactly.
    let (expect_ids, expect_counters, expect_hits) = burst(net, &mut sender, "b", true)?;
    let got_all = ids(&capture.settle(Duration::from_millis(300), Duration::from_secs(10)));
    let got: BTreeSet<String> = got_all.into_iter().filter(|i| i.starts_with(&format!("{MARKER}b:"))).collect();
    ensure!(got == expect_ids, "phase B arrivals: {}", diff(&expect_ids, &got));
    let stats_b = filter.wait_stats(sender.sent, STATS_TIMEOUT)?;
    let counters_b = Counters::from_stats(&stats_b)?.since(&counters_r);
    ensure!(counters_b == expect_counters, "phase B counters: expected {expect_counters}, stats say {counters_b}");
    let hits_b = hits_since(&pf::rule_hits(&stats_b), &pf::rule_hits(&stats_r));
    ensure!(hits_b == expect_hits, "phase B rule_hits: expected {expect_hits:?}, stats say {hits_b:?}");

    // 3. SIGINT.
    let prog_id = filter.prog_id;
    let stopped = filter.stop(EXIT_TIMEOUT)?;
    ensure!(
        stopped.exit_code == 0 && stopped.exit_line,
        "after SIGINT: exit code {}, exit line {}; stderr: {}",
        stopped.exit_code,
        stopped.exit_line,
        stopped.stderr
    );
    let last = stopped.final_stats.context("no final stats line")?;
    let total = Counters::from_stats(&last)?;
    ensure!(total.packets() == sender.sent, "final stats count {total} for {} frames sent", sender.sent);
    ensure!(total.events_lost() == 0, "events_lost {} without --log-packets", total.events_lost());
    if let Some(x) = net.receiver.xdp(RCV)? {
        bail!("after exit: XDP still on {RCV}: {x:?}");
    }
    ensure!(pf::wait_prog_gone(prog_id, Duration::from_secs(5)), "after exit: program {prog_id} still loaded");
    drop(capture);
    eprintln!("{lib}: {} frames sent, final counters {total}", sender.sent);

    // 4. Generic (skb) mode.
    skb_mode(imp, net, &tmp, &mut sender).context("skb mode")?;

    // 5. Bad input.
    bad_input(imp, net, &tmp)?;
    Ok(())
}

fn skb_mode(imp: &Implementation, net: &Net, tmp: &TempDir, sender: &mut Sender) -> Result<()> {
    let config = tmp.write("skb.yml", CONFIG_A)?;
    let mut filter = Filter::start(
        imp,
        &net.receiver,
        RCV,
        &config,
        &["--stats-interval-ms", "0", "--xdp-mode", "skb"],
        READY_TIMEOUT,
    )?;
    match net.receiver.xdp(RCV)? {
        Some(XdpAttachment { mode: XdpAttachment::MODE_SKB, prog_ids }) if prog_ids.contains(&filter.prog_id) => {}
        other => bail!("expected program {} attached in skb mode to {RCV}, found {other:?}", filter.prog_id),
    }
    let capture = Capture::start(&net.receiver, RCV, MARKER)?;
    let sent_before = sender.sent;
    let (expect_ids, expect_counters, _) = burst(net, sender, "s", false)?;
    let got = ids(&capture.settle(Duration::from_millis(300), Duration::from_secs(10)));
    ensure!(got == expect_ids, "arrivals: {}", diff(&expect_ids, &got));
    let stopped = filter.stop(EXIT_TIMEOUT)?;
    ensure!(stopped.exit_code == 0, "exit code {}; stderr: {}", stopped.exit_code, stopped.stderr);
    let total = Counters::from_stats(stopped.final_stats.as_ref().context("no final stats")?)?;
    ensure!(
        total == expect_counters,
        "counters: expected {expect_counters}, stats say {total} ({} frames)",
        sender.sent - sent_before
    );
    if let Some(x) = net.receiver.xdp(RCV)? {
        bail!("after exit: XDP still on {RCV}: {x:?}");
    }
    Ok(())
}

fn bad_input(imp: &Implementation, net: &Net, tmp: &TempDir) -> Result<()> {
    // An invalid address: exit 2, stderr names the file and the field, nothing attached.
    let bad = tmp.write("bad.yml", "rules:\n  ipv4:\n    block: [10.0.0.1, 10.0.0.300]\n")?;
    let mut running = imp.spawn(&["--config", bad.to_str().unwrap(), "--iface", RCV], Some(&net.receiver))?;
    let code = running.exit_code(EXIT_TIMEOUT)?;
    let stderr = running.stderr();
    ensure!(code == 2, "invalid address: exit code {code}, expected 2; stderr: {stderr}");
    ensure!(
        stderr.contains(bad.to_str().unwrap()) && stderr.contains("rules.ipv4.block[1]"),
        "invalid address: stderr must name {} and rules.ipv4.block[1]: {stderr}",
        bad.display()
    );
    ensure!(!running.history().iter().any(|l| l.event() == "ready"), "invalid address: it said ready");
    ensure!(net.receiver.xdp(RCV)?.is_none(), "invalid address: XDP attached to {RCV}");

    // An unknown interface: exit 2, nothing attached.
    let good = tmp.write("good.yml", CONFIG_A)?;
    let mut running = imp.spawn(&["--config", good.to_str().unwrap(), "--iface", "nosuchif0"], Some(&net.receiver))?;
    let code = running.exit_code(EXIT_TIMEOUT)?;
    let stderr = running.stderr();
    ensure!(code == 2, "unknown interface: exit code {code}, expected 2; stderr: {stderr}");
    ensure!(stderr.contains("nosuchif0"), "unknown interface: stderr must name it: {stderr}");
    ensure!(net.receiver.xdp(RCV)?.is_none(), "unknown interface: XDP attached to {RCV}");
    Ok(())
}

#[test]
fn e2e_aya() {
    e2e("aya");
}

#[test]
fn e2e_libbpf_rs() {
    e2e("libbpf-rs");
}

#[test]
fn e2e_libbpf() {
    e2e("libbpf");
}

#[test]
fn e2e_redbpf() {
    e2e("redbpf");
}

#[test]
fn e2e_cilium_ebpf() {
    e2e("cilium-ebpf");
}
