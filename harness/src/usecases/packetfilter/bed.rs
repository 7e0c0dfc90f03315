//! Test-bed pieces specific to the packetfilter use case, shared by its tests and the CLI:
//! verdict counters from the map or a `stats` line, a running filter with handles on its
//! program and `verdicts` map, and the conformance run over `scenarios/packetfilter/vectors.yaml`
//! ([`conformance`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bpfeval_shared::packetfilter::abi;
use serde_json::Value;

use crate::bpf::{self, Map, Prog};
pub use crate::conformance::{self, ConformanceReport, Mismatch};
use crate::frames;
use crate::netns::{NetNs, VethPair, XdpAttachment};
use crate::process::{Implementation, Running, TempDir};
use crate::scenario::{Case, Vectors, Verdict};

pub const USECASE: &str = "packetfilter";
/// Kernel name of the XDP program every library loads.
pub const PROG_NAME: &str = "packetfilter";
/// Kernel name of the per-CPU verdict counter array.
pub const VERDICTS_MAP: &str = "verdicts";

/// The `verdicts` counters in `abi` index order (six verdicts, then `events_lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters(pub [u64; abi::VERDICT_COUNT as usize]);

impl Counters {
    /// Reads the `verdicts` map (summed over CPUs).
    pub fn from_map(map: &Map) -> Result<Counters> {
        let mut c = Counters::default();
        for (i, slot) in c.0.iter_mut().enumerate() {
            *slot = map.lookup_percpu_u64_sum(&(i as u32).to_ne_bytes())?;
        }
        Ok(c)
    }

    /// Reads the `verdicts` object of a `stats` line.
    pub fn from_stats(line: &Value) -> Result<Counters> {
        let v = line.get("verdicts").ok_or_else(|| anyhow!("no `verdicts` in {line}"))?;
        let mut c = Counters::default();
        for (i, name) in abi::VERDICT_NAMES.iter().enumerate() {
            c.0[i] = v[name].as_u64().ok_or_else(|| anyhow!("no counter `{name}` in {line}"))?;
        }
        Ok(c)
    }

    pub fn get(&self, v: Verdict) -> u64 {
        self.0[v.index() as usize]
    }

    pub fn add(&mut self, v: Verdict, n: u64) {
        self.0[v.index() as usize] += n;
    }

    pub fn events_lost(&self) -> u64 {
        self.0[abi::COUNTER_EVENTS_LOST as usize]
    }

    /// Packets counted: the sum of the six verdicts.
    pub fn packets(&self) -> u64 {
        self.0[..abi::COUNTER_EVENTS_LOST as usize].iter().sum()
    }

    /// `self - earlier`, counter by counter (wrapping: a counter that went down shows as huge).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut d = Counters::default();
        for i in 0..d.0.len() {
            d.0[i] = self.0[i].wrapping_sub(earlier.0[i]);
        }
        d
    }
}

impl std::fmt::Display for Counters {
    /// The non-zero counters, `drop_block=1 pass_default=2`, or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = abi::VERDICT_NAMES
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n != 0)
            .map(|(name, n)| format!("{name}={}", n as i64))
            .collect();
        if parts.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", parts.join(" "))
        }
    }
}

/// `rule_hits` of a `stats` line: config path (`rules.ipv4.block[0]`) -> packets.
pub fn rule_hits(line: &Value) -> BTreeMap<String, u64> {
    line["rule_hits"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| Some((h["rule"].as_str()?.to_string(), h["packets"].as_u64()?))).collect())
        .unwrap_or_default()
}

/// Open handles on a running filter's program and `verdicts` map.
#[derive(Debug)]
pub struct Handles {
    pub prog: Prog,
    pub verdicts: Map,
}

/// A running packetfilter implementation, attached (its `ready` line was seen).
#[derive(Debug)]
pub struct Filter {
    pub running: Running,
    /// The implementation's pid (from `ready`).
    pub pid: u32,
    /// The `ready` line.
    pub ready: Value,
    /// Id of its `packetfilter` program.
    pub prog_id: u32,
    handles: Option<Handles>,
}

/// What [`Filter::stop`] saw.
#[derive(Debug)]
pub struct Stopped {
    pub exit_code: i32,
    /// The last `stats` line (printed at exit), if any.
    pub final_stats: Option<Value>,
    /// Whether the `exit` line came.
    pub exit_line: bool,
    pub stderr: String,
}

impl Filter {
    /// Starts `imp` in `ns` on `iface` with `config`, plus `extra` flags, waits for `ready`
    /// (at most `ready_timeout`), and opens its `packetfilter` program and `verdicts` map.
    pub fn start(
        imp: &Implementation,
        ns: &NetNs,
        iface: &str,
        config: &Path,
        extra: &[&str],
        ready_timeout: Duration,
    ) -> Result<Filter> {
        let config = config.to_str().context("config path is not UTF-8")?;
        let mut args = vec!["--config", config, "--iface", iface];
        args.extend_from_slice(extra);
        let mut running = imp.spawn(&args, Some(ns))?;
        let pid = running.wait_ready(ready_timeout)?;
        let ready = running.history().iter().find(|l| l.event() == "ready").map(|l| l.value()).unwrap();
        let prog = bpf::find_prog(pid, PROG_NAME).with_context(|| format!("{}: finding its program", imp.lib))?;
        let info = prog.info()?;
        if info.prog_type != bpf::BPF_PROG_TYPE_XDP {
            bail!("{}: program `{PROG_NAME}` has type {}, not XDP", imp.lib, info.prog_type);
        }
        let verdicts = bpf::find_map_of_prog(&prog, VERDICTS_MAP)
            .or_else(|_| bpf::find_map(pid, VERDICTS_MAP))
            .with_context(|| format!("{}: finding its `{VERDICTS_MAP}` map", imp.lib))?;
        let vi = verdicts.info();
        if !vi.is_percpu() || vi.value_size != 8 || vi.max_entries < abi::VERDICT_COUNT {
            bail!("{}: map `{VERDICTS_MAP}` is not a per-CPU array of {} u64: {vi:?}", imp.lib, abi::VERDICT_COUNT);
        }
        Ok(Filter { running, pid, ready, prog_id: info.id, handles: Some(Handles { prog, verdicts }) })
    }

    /// The program and map handles (until [`Filter::stop`] releases them).
    pub fn handles(&self) -> &Handles {
        self.handles.as_ref().expect("handles are released only by stop()")
    }

    /// The `verdicts` counters now.
    pub fn counters(&self) -> Result<Counters> {
        Counters::from_map(&self.handles().verdicts)
    }

    /// Waits for a `stats` line whose verdicts count at least `packets` packets.
    pub fn wait_stats(&mut self, packets: u64, timeout: Duration) -> Result<Value> {
        self.running.wait_for_line(&format!("a `stats` line counting {packets} packets"), timeout, |v| {
            v["event"] == "stats" && Counters::from_stats(v).map(|c| c.packets() >= packets).unwrap_or(false)
        })
    }

    /// Releases the handles (so the program can go away), sends SIGINT, and waits for the exit.
    pub fn stop(&mut self, timeout: Duration) -> Result<Stopped> {
        self.handles = None;
        let status = self.running.stop(timeout)?;
        let exit_code = status.code().ok_or_else(|| anyhow!("killed by a signal: {status}"))?;
        let history = self.running.history();
        let final_stats = history.iter().rev().find(|l| l.event() == "stats").map(|l| l.value());
        let exit_line = history.iter().any(|l| l.event() == "exit");
        Ok(Stopped { exit_code, final_stats, exit_line, stderr: self.running.stderr() })
    }
}

/// Waits (up to `timeout`) until the program with this id is gone; false if it stays.
pub fn wait_prog_gone(id: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while bpf::prog_exists(id) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// How long an implementation may take to attach in the conformance run.
pub const CONFORMANCE_READY_TIMEOUT: Duration = Duration::from_secs(30);
const CONFORMANCE_EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The interface the filter attaches to in [`test_network`].
pub const TEST_IFACE: &str = "pf0";

/// A namespace with a veth whose [`TEST_IFACE`] end a filter can attach to (the other end is
/// `pf1`). The veth is silent (IPv6 off, no addresses), so only `BPF_PROG_TEST_RUN` moves the
/// counters of a filter attached there.
pub fn test_network(prefix: &str) -> Result<(NetNs, VethPair)> {
    crate::conformance::silent_veth(prefix, TEST_IFACE, "pf1")
}

/// Runs the conformance vectors against `imp`; one line per mismatch (empty: conformant).
pub fn conformance(imp: &Implementation) -> Result<Vec<String>> {
    Ok(conformance_report(imp)?.lines())
}

/// Runs every case of `scenarios/packetfilter/vectors.yaml` against `imp`.
///
/// Per case: the config (interface filled in) goes to a file, the implementation starts on a
/// silent veth in its own namespace with `--stats-interval-ms 0`, and once `ready` its
/// `packetfilter` program must be attached natively. Per packet: read `verdicts`, run the
/// frame with `BPF_PROG_TEST_RUN`, then the XDP verdict must be the expected one, exactly the
/// expected counter must have gone up by one, and the frame must be unchanged
/// (frames the kernel refuses, see [`conformance::KernelLimits`]: refused alike, no counter
/// moves; a `kernel_refuses` vector the kernel runs (5.10) is checked like any). After SIGINT:
/// exit 0 with an `exit` line, the final stats' `rule_hits` equal the rules the vectors name,
/// nothing attached, the program unloaded. Errors are for the run itself (no namespace, a bad
/// vectors file); what an implementation does wrong is a [`Mismatch`].
/// Real frames on a veth (the kernel matrix runs this in each guest, next to the vectors): the
/// filter natively on [`TEST_IFACE`], 20 UDP frames from a blocked and 20 from an allowed IPv4
/// source sent on its peer with a raw socket. Exactly the allowed ones must arrive, and the
/// counters must say 20 blocked, 20 passed. Returns what was wrong (empty: pass).
pub fn wire_check(imp: &Implementation) -> Result<Vec<String>> {
    const MARKER: &str = "bpfeval-wire:";
    const N: usize = 20;
    let (ns, veth) = test_network(&format!("pfwire-{}", imp.lib))?;
    let tmp = TempDir::new(&format!("pfwire-{}", imp.lib))?;
    let config = tmp.write("config.yml", "rules:\n  ipv4:\n    default: allow\n    block: [10.0.1.1]\n")?;
    let mut filter =
        Filter::start(imp, &ns, TEST_IFACE, &config, &["--stats-interval-ms", "0"], CONFORMANCE_READY_TIMEOUT)?;
    let capture = crate::traffic::Capture::start(&ns, TEST_IFACE, MARKER)?;
    let mut sender = crate::traffic::Sender::open(&ns, &veth.b.ifname)?;
    let mut expected = std::collections::BTreeSet::new();
    for seq in 0..N {
        for (name, src) in [("blocked", "10.0.1.1"), ("allowed", "10.0.4.4")] {
            let id = format!("{name}:{seq}");
            let spec = frames::FrameSpec::ip(src.parse()?).with_macs(veth.b.mac, veth.a.mac);
            sender.send(&spec.with_payload(format!("{MARKER}{id}")).build()?)?;
            // The veth's ring is small; a slow guest must not overflow it.
            std::thread::sleep(Duration::from_micros(500));
            if name == "allowed" {
                expected.insert(id);
            }
        }
    }
    let got: std::collections::BTreeSet<String> =
        capture.settle(Duration::from_millis(500), Duration::from_secs(10)).into_iter().collect();
    let mut problems = Vec::new();
    if got != expected {
        let missing = expected.difference(&got).count();
        let extra: Vec<&String> = got.difference(&expected).take(3).collect();
        problems.push(format!("arrivals: {missing} allowed frames missing, unexpected {extra:?}"));
    }
    let c = filter.counters()?;
    let (blocked, passed) = (c.get(Verdict::DropBlock), c.get(Verdict::PassDefault));
    if (blocked, passed) != (N as u64, N as u64) || c.packets() != 2 * N as u64 {
        problems.push(format!("counters: expected drop_block {N} and pass_default {N} only, got {c}"));
    }
    let stopped = filter.stop(CONFORMANCE_EXIT_TIMEOUT)?;
    if stopped.exit_code != 0 {
        problems.push(format!("exit code {} after SIGINT", stopped.exit_code));
    }
    Ok(problems)
}

pub fn conformance_report(imp: &Implementation) -> Result<ConformanceReport> {
    bpf::check_privileges()?;
    let vectors = Vectors::packetfilter()?;
    let tmp = TempDir::new(&format!("conf-{}", imp.lib))?;
    let (ns, _veth) = test_network(&format!("conf-{}", imp.lib))?;
    let limits = conformance::KernelLimits::new(bpf::BPF_PROG_TYPE_XDP)?;
    Ok(conformance::run_cases(imp, &vectors.cases, vectors.packet_count(), |c| &c.name, |case, fail| {
        conformance_case(imp, &ns, &tmp, &limits, case, fail)
    }))
}

fn conformance_case(
    imp: &Implementation,
    ns: &NetNs,
    tmp: &TempDir,
    limits: &conformance::KernelLimits,
    case: &Case,
    report: &mut dyn FnMut(&str, String),
) -> Result<()> {
    let iface = TEST_IFACE;
    let path = tmp.write(&format!("{}.yml", case.name), case.config_yaml(Some(iface))?)?;
    let mut filter = Filter::start(imp, ns, iface, &path, &["--stats-interval-ms", "0"], CONFORMANCE_READY_TIMEOUT)?;
    let mut fail = |packet: &str, expected: String, got: String| report(packet, format!("expected {expected}, got {got}"));
    match ns.xdp(iface)? {
        Some(XdpAttachment { mode: XdpAttachment::MODE_NATIVE, prog_ids }) if prog_ids.contains(&filter.prog_id) => {}
        other => fail("-", format!("program {} attached natively to {iface}", filter.prog_id), format!("{other:?}")),
    }

    let mut expected_hits: BTreeMap<String, u64> = BTreeMap::new();
    for p in &case.packets {
        let frame = p.frame.build()?;
        let refused = limits.refusal(&frame)?;
        let before = filter.counters()?;
        let run = filter.handles().prog.test_run_xdp(&frame);
        let delta = filter.counters()?.since(&before);
        if let Some(errno) = refused {
            let moved = (delta != Counters::default()).then(|| delta.to_string());
            for (expected, got) in conformance::refusal_problems(&run, errno, frame.len(), moved) {
                fail(&p.name, expected, got);
            }
            continue;
        }
        let r = match run {
            Ok(r) => r,
            Err(e) => {
                fail(&p.name, format!("{:?}", p.expect), format!("BPF_PROG_TEST_RUN failed: {e:#}"));
                continue;
            }
        };
        if r.retval != p.expect.xdp_retval() {
            fail(
                &p.name,
                format!("{:?} (XDP retval {})", p.expect, p.expect.xdp_retval()),
                format!("XDP retval {} [frame:\n{}]", r.retval, frames::hex(&frame)),
            );
        }
        let mut want = Counters::default();
        want.add(p.verdict, 1);
        if delta != want {
            fail(&p.name, format!("counter {} +1 only", p.verdict.name()), format!("counters moved: {delta}"));
        }
        if r.data_out.as_deref() != Some(&frame[..]) {
            fail(&p.name, "the frame unchanged".into(), "the program modified the frame".into());
        }
        if let Some(rule) = &p.rule {
            *expected_hits.entry(rule.clone()).or_default() += 1;
        }
    }

    let prog_id = filter.prog_id;
    let stopped = filter.stop(CONFORMANCE_EXIT_TIMEOUT)?;
    if stopped.exit_code != 0 || !stopped.exit_line {
        fail(
            "(exit)",
            "exit code 0 and an `exit` line after SIGINT".into(),
            format!("code {}, exit line {}; stderr: {}", stopped.exit_code, stopped.exit_line, stopped.stderr.trim()),
        );
    }
    match &stopped.final_stats {
        Some(stats) => {
            let hits = rule_hits(stats);
            if hits != expected_hits {
                fail("(final stats)", format!("rule_hits {expected_hits:?}"), format!("{hits:?}"));
            }
        }
        None => fail("(final stats)", "a final stats line".into(), "none".into()),
    }
    if let Some(x) = ns.xdp(iface)? {
        fail("(exit)", format!("no XDP program on {iface}"), format!("{x:?}"));
    }
    if !wait_prog_gone(prog_id, Duration::from_secs(5)) {
        fail("(exit)", format!("program {prog_id} unloaded"), "still loaded".into());
    }
    Ok(())
}
