//! Test-bed pieces specific to jittergen, shared by its tests, the guest program
//! (`src/bin/jittergen-guest.rs`) and the CLI:
//!
//! * [`frame`]: Ethernet frames for `BPF_PROG_TEST_RUN` (UDP, TCP, other IP, later fragments,
//!   ARP), and [`test_run_skb`]: a run that also returns the `struct __sk_buff` the program
//!   left, whose `tstamp` is the departure time it set.
//! * [`Loader`]: a running implementation with its `jittergen` program and `counters` map.
//! * [`Bed`]: sender, router and receiver namespaces; jittergen runs in the router on the
//!   egress towards the receiver ([`Bed::EGRESS`]), so every packet it sees is forwarded (no
//!   socket attached: fq keys it by hash, and TCP small queues do not throttle the sender).
//! * [`udp_stream`] / [`tcp_stream`]: a numbered, time-stamped stream from sender to receiver;
//!   the receiver measures loss, one-way delay (both ends read the same CLOCK_MONOTONIC) and
//!   reordering ([`StreamStats`]).
//! * the conformance vectors of `scenarios/jittergen/vectors.yaml` ([`conformance_report`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bpfeval_shared::jittergen::abi;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bpf::{self, Map, Prog, TestRun};
use crate::netns::{NetNs, VethConfig, VethPair};
use crate::conformance::{refusal_problems, KernelLimits};
pub use crate::conformance::{ConformanceReport, Mismatch};
use crate::process::{Implementation, Running, TempDir};

pub const USECASE: &str = "jittergen";
/// Kernel name of the TC program every library loads.
pub const PROG_NAME: &str = "jittergen";
pub const COUNTERS_MAP: &str = "counters";
/// `enum bpf_prog_type`: BPF_PROG_TYPE_SCHED_CLS.
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns` and of the departure times.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---------------------------------------------------------------------------------------------
// Frames and BPF_PROG_TEST_RUN

/// A frame for the conformance vectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameSpec {
    /// 4 (default) or 6.
    #[serde(default)]
    pub family: Option<u8>,
    /// `udp` (default), `tcp`, or an IP protocol number as text (`1` for ICMP).
    #[serde(default)]
    pub proto: Option<String>,
    #[serde(default)]
    pub sport: Option<u16>,
    #[serde(default)]
    pub dport: Option<u16>,
    /// An IPv4 fragment after the first (no L4 header).
    #[serde(default)]
    pub later_fragment: bool,
    /// An ARP frame instead of IP.
    #[serde(default)]
    pub arp: bool,
    /// Distinct source addresses make distinct flows (skb hashes).
    #[serde(default)]
    pub flow: u8,
}

/// Builds the frame (checksums are left zero: nothing on the TC path checks them).
pub fn frame(spec: &FrameSpec) -> Result<Vec<u8>> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    if spec.arp {
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&[0u8; 20]);
        return Ok(f);
    }
    let proto: u8 = match spec.proto.as_deref().unwrap_or("udp") {
        "udp" => 17,
        "tcp" => 6,
        n => n.parse().with_context(|| format!("frame proto `{n}` is not udp, tcp or a number"))?,
    };
    let mut l4 = Vec::new();
    if !spec.later_fragment && (proto == 6 || proto == 17) {
        l4.extend_from_slice(&spec.sport.unwrap_or(40000).to_be_bytes());
        l4.extend_from_slice(&spec.dport.unwrap_or(9).to_be_bytes());
        if proto == 17 {
            l4.extend_from_slice(&[0, 0, 0, 0]); // length, checksum
        } else {
            l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        }
    }
    l4.extend_from_slice(b"bpf-eval jittergen test frame");
    if proto == 17 && l4.len() >= 8 && !spec.later_fragment {
        let len = l4.len() as u16;
        l4[4..6].copy_from_slice(&len.to_be_bytes());
    }
    match spec.family.unwrap_or(4) {
        4 => {
            f.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + l4.len()) as u16;
            let frag: u16 = if spec.later_fragment { 100 } else { 0 };
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&total.to_be_bytes());
            f.extend_from_slice(&[0x12, 0x34]);
            f.extend_from_slice(&frag.to_be_bytes());
            f.extend_from_slice(&[64, proto, 0, 0]);
            f.extend_from_slice(&[10, 99, spec.flow, 1]);
            f.extend_from_slice(&[10, 99, 200, 1]);
        }
        6 => {
            ensure!(!spec.later_fragment, "later_fragment is for IPv4 frames");
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, spec.flow as u16, 1).octets());
            f.extend_from_slice(&Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 200, 1).octets());
        }
        n => bail!("frame family {n} is not 4 or 6"),
    }
    f.extend_from_slice(&l4);
    Ok(f)
}

/// `sizeof(struct __sk_buff)` (6.x) and the offset of its `tstamp`.
const SKB_CTX_SIZE: usize = 192;
const SKB_TSTAMP_OFFSET: usize = 152;

/// What [`test_run_skb`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkbRun {
    pub retval: u32,
    /// `skb->tstamp` after the program (0: none set).
    pub tstamp: u64,
    /// CLOCK_MONOTONIC right before and after the syscall.
    pub before_ns: u64,
    pub after_ns: u64,
    /// The kernel's mean run time per repetition.
    pub duration_ns: u32,
}

/// `BPF_PROG_TEST_RUN` of a TC program on `frame`, with a zeroed `struct __sk_buff` in and the
/// one the program left out.
pub fn test_run_skb(prog: &Prog, frame: &[u8], repeat: u32) -> Result<SkbRun> {
    let ctx_in = [0u8; SKB_CTX_SIZE];
    let run = TestRun { data_in: frame, repeat, ctx_in: Some(&ctx_in), ctx_out_size: Some(SKB_CTX_SIZE), ..Default::default() };
    let before_ns = monotonic_ns();
    let r = prog.test_run(&run).context("BPF_PROG_TEST_RUN (sched_cls)");
    let after_ns = monotonic_ns();
    let r = r?;
    let ctx_out = r.ctx_out.unwrap_or_default();
    let tstamp = ctx_out
        .get(SKB_TSTAMP_OFFSET..SKB_TSTAMP_OFFSET + 8)
        .context("the kernel returned a short struct __sk_buff")?;
    let tstamp = u64::from_ne_bytes(tstamp.try_into().unwrap());
    Ok(SkbRun { retval: r.retval, tstamp, before_ns, after_ns, duration_ns: r.duration.as_nanos() as u32 })
}

// ---------------------------------------------------------------------------------------------
// A running implementation

/// The `counters` of a map or a `stats` line, by `abi::COUNTER_NAMES` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters(pub [u64; abi::COUNTER_COUNT as usize]);

impl Counters {
    pub fn from_map(map: &Map) -> Result<Counters> {
        let mut c = Counters::default();
        for (i, slot) in c.0.iter_mut().enumerate() {
            *slot = map.lookup_percpu_u64_sum(&(i as u32).to_ne_bytes())?;
        }
        Ok(c)
    }

    pub fn from_stats(line: &Value) -> Result<Counters> {
        let v = line.get("counters").ok_or_else(|| anyhow!("no `counters` in {line}"))?;
        let mut c = Counters::default();
        for (i, name) in abi::COUNTER_NAMES.iter().enumerate() {
            c.0[i] = v[name].as_u64().ok_or_else(|| anyhow!("no counter `{name}` in {line}"))?;
        }
        Ok(c)
    }

    pub fn get(&self, name: &str) -> u64 {
        abi::COUNTER_NAMES.iter().position(|n| *n == name).map_or(0, |i| self.0[i])
    }

    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut d = Counters::default();
        for i in 0..d.0.len() {
            d.0[i] = self.0[i].wrapping_sub(earlier.0[i]);
        }
        d
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> =
            abi::COUNTER_NAMES.iter().zip(self.0).filter(|(_, n)| *n != 0).map(|(k, n)| format!("{k}={n}")).collect();
        write!(f, "{}", if parts.is_empty() { "none".to_string() } else { parts.join(" ") })
    }
}

/// A running jittergen implementation (its `ready` line seen), with handles on its program
/// and `counters` map.
#[derive(Debug)]
pub struct Loader {
    pub running: Running,
    pub ready: Value,
    pub prog_id: u32,
    handles: Option<(Prog, Map)>,
}

/// What [`Loader::stop`] saw.
#[derive(Debug)]
pub struct Stopped {
    pub exit_code: i32,
    pub final_stats: Option<Value>,
    pub exit_line: Option<Value>,
    pub stderr: String,
}

impl Loader {
    pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

    /// Starts `imp` in `ns` with `config`, waits for `ready`, opens its program and counters.
    pub fn start(imp: &Implementation, ns: &NetNs, config: &Path, extra: &[&str]) -> Result<Loader> {
        let config = config.to_str().context("config path is not UTF-8")?;
        let mut args = vec!["--config", config];
        args.extend_from_slice(extra);
        let mut running = imp.spawn(&args, Some(ns))?;
        let pid = running.wait_ready(Self::READY_TIMEOUT)?;
        let ready = running.history().iter().find(|l| l.event() == "ready").map(|l| l.value()).unwrap();
        let prog = bpf::find_prog(pid, PROG_NAME).with_context(|| format!("{}: finding its program", imp.lib))?;
        let info = prog.info()?;
        ensure!(
            info.prog_type == BPF_PROG_TYPE_SCHED_CLS,
            "{}: program `{PROG_NAME}` has type {}, not sched_cls",
            imp.lib,
            info.prog_type
        );
        let counters = bpf::find_map_of_prog(&prog, COUNTERS_MAP)?;
        let ci = counters.info();
        ensure!(
            ci.is_percpu() && ci.value_size == 8 && ci.max_entries == abi::COUNTER_COUNT,
            "{}: map `{COUNTERS_MAP}` is not a per-CPU array of {} u64: {ci:?}",
            imp.lib,
            abi::COUNTER_COUNT
        );
        Ok(Loader { running, ready, prog_id: info.id, handles: Some((prog, counters)) })
    }

    pub fn prog(&self) -> &Prog {
        &self.handles.as_ref().expect("released only by stop()").0
    }

    pub fn counters(&self) -> Result<Counters> {
        Counters::from_map(&self.handles.as_ref().expect("released only by stop()").1)
    }

    /// `tcx` or `netlink`, as `ready` reported it.
    pub fn attach_mode(&self) -> &str {
        self.ready["attach"].as_str().unwrap_or("")
    }

    /// Releases the handles, sends SIGINT and waits for the exit.
    pub fn stop(&mut self, timeout: Duration) -> Result<Stopped> {
        self.handles = None;
        let status = self.running.stop(timeout)?;
        let exit_code = status.code().ok_or_else(|| anyhow!("killed by a signal: {status}"))?;
        let history = self.running.history();
        let last = |e: &str| history.iter().rev().find(|l| l.event() == e).map(|l| l.value());
        Ok(Stopped { exit_code, final_stats: last("stats"), exit_line: last("exit"), stderr: self.running.stderr() })
    }
}

/// Whether the kernel still has a program with this id, waiting up to `timeout` for it to go.
pub fn wait_prog_gone(id: u32, timeout: Duration) -> bool {
    crate::usecases::packetfilter::bed::wait_prog_gone(id, timeout)
}

/// `tc qdisc show dev <iface>` inside `ns`, one qdisc per line, stripped of counters.
pub fn qdiscs(ns: &NetNs, iface: &str) -> Result<Vec<String>> {
    let out = ns.exec("tc", &["qdisc", "show", "dev", iface])?;
    Ok(out.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// Whether program `prog_id` is attached to the egress of `iface` in `ns`, as a TCX link or
/// as a cls_bpf filter (`tc filter show` lists its id). Debian's bpftool 7.1 predates TCX.
pub fn attached(ns: &NetNs, iface: &str, prog_id: u32) -> Result<bool> {
    let ifindex = ns.ifindex(iface)?;
    if ns.run_in(move || bpfeval_shared::jittergen::tcx_egress_progs(ifindex))?.unwrap_or_default().contains(&prog_id) {
        return Ok(true);
    }
    let filters = ns.exec("tc", &["filter", "show", "dev", iface, "egress"])?;
    Ok(filters.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w[0] == "id" && w[1] == prog_id.to_string()))
}

/// Whether anything (any program) is attached to the egress of `iface` in `ns`.
pub fn anything_attached(ns: &NetNs, iface: &str) -> Result<bool> {
    let ifindex = ns.ifindex(iface)?;
    if !ns.run_in(move || bpfeval_shared::jittergen::tcx_egress_progs(ifindex))?.unwrap_or_default().is_empty() {
        return Ok(true);
    }
    Ok(!ns.exec("tc", &["filter", "show", "dev", iface, "egress"])?.trim().is_empty())
}

// ---------------------------------------------------------------------------------------------
// The three-namespace bed

/// sender `snd0` --- `mid0` router `mid1` --- `rcv0` receiver, IPv4 and IPv6.
pub struct Bed {
    pub snd: NetNs,
    pub mid: NetNs,
    pub rcv: NetNs,
    _links: (VethPair, VethPair),
}

impl Bed {
    /// The interface jittergen attaches to: the router's egress towards the receiver.
    pub const EGRESS: &'static str = "mid1";
    pub const SND_V4: Ipv4Addr = Ipv4Addr::new(10, 71, 1, 1);
    pub const RCV_V4: Ipv4Addr = Ipv4Addr::new(10, 71, 2, 1);
    pub const SND_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x71, 1, 0, 0, 0, 0, 1);
    pub const RCV_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x71, 2, 0, 0, 0, 0, 1);

    pub fn new(prefix: &str) -> Result<Bed> {
        let snd = NetNs::new(&format!("{prefix}-snd"))?;
        let mid = NetNs::new(&format!("{prefix}-mid"))?;
        let rcv = NetNs::new(&format!("{prefix}-rcv"))?;
        // IPv6 on (not `quiet`): the streams use it. The kernel's own IPv6 chatter (router
        // solicitations, MLD) goes through the program as traffic no rule matches.
        let a = VethPair::new(
            &snd,
            &mid,
            &VethConfig {
                a_name: "snd0".into(),
                b_name: "mid0".into(),
                a_mac: [0x02, 0x71, 0, 0, 1, 1],
                b_mac: [0x02, 0x71, 0, 0, 1, 2],
                a_addrs: vec!["10.71.1.1/24".into(), "fd00:71:1::1/64".into()],
                b_addrs: vec!["10.71.1.2/24".into(), "fd00:71:1::2/64".into()],
                quiet: false,
            },
        )?;
        let b = VethPair::new(
            &mid,
            &rcv,
            &VethConfig {
                a_name: "mid1".into(),
                b_name: "rcv0".into(),
                a_mac: [0x02, 0x71, 0, 0, 2, 2],
                b_mac: [0x02, 0x71, 0, 0, 2, 1],
                a_addrs: vec!["10.71.2.2/24".into(), "fd00:71:2::2/64".into()],
                b_addrs: vec!["10.71.2.1/24".into(), "fd00:71:2::1/64".into()],
                quiet: false,
            },
        )?;
        mid.sysctl("net.ipv4.ip_forward", "1")?;
        mid.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        snd.ip(&["route", "add", "default", "via", "10.71.1.2"])?;
        rcv.ip(&["route", "add", "default", "via", "10.71.2.2"])?;
        snd.ip(&["-6", "route", "add", "default", "via", "fd00:71:1::2"])?;
        rcv.ip(&["-6", "route", "add", "default", "via", "fd00:71:2::2"])?;
        // Neighbours resolved up front: the first packets of a stream must not wait for them.
        for (ns, addrs) in [(&snd, ["10.71.1.2", "fd00:71:1::2"]), (&rcv, ["10.71.2.2", "fd00:71:2::2"])] {
            for a in addrs {
                ns.exec("ping", &["-c", "1", "-W", "5", a]).with_context(|| format!("ping {a} in {}", ns.name()))?;
            }
        }
        let bed = Bed { snd, mid, rcv, _links: (a, b) };
        // Through the router both ways (also resolves the router's neighbours).
        bed.snd.exec("ping", &["-c", "1", "-W", "5", "10.71.2.1"])?;
        bed.snd.exec("ping", &["-c", "1", "-W", "5", "fd00:71:2::1"])?;
        Ok(bed)
    }

    /// The bed of `prefix` from `beds`, made on first use: the guest runs every scenario of a
    /// subject on one bed (under TCG a bed's ~40 `ip`, `ping` and sysctl calls take seconds).
    /// Each scenario still checks that the qdiscs are as before and nothing stays attached.
    pub fn reused<'b>(beds: &'b mut BTreeMap<String, Bed>, prefix: &str) -> Result<&'b Bed> {
        if !beds.contains_key(prefix) {
            beds.insert(prefix.to_string(), Bed::new(prefix)?);
        }
        Ok(&beds[prefix])
    }

    pub fn rcv_addr(v6: bool) -> IpAddr {
        if v6 {
            Bed::RCV_V6.into()
        } else {
            Bed::RCV_V4.into()
        }
    }

    /// Writes `config` (without `outIf`) for the router's egress into `dir`.
    pub fn config(dir: &TempDir, name: &str, config: &str) -> Result<PathBuf> {
        dir.write(name, format!("outIf: {}\n{config}", Bed::EGRESS))
    }
}

// ---------------------------------------------------------------------------------------------
// Streams

/// What the receiver of a stream measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamStats {
    pub sent: u64,
    pub received: u64,
    /// One-way delays in ms, in arrival order.
    pub delays_ms: Vec<f64>,
    /// Packets that arrived after a packet sent later than them.
    pub reordered: u64,
    /// TCP only: segments the receiver's TCP queued out of order (`TcpExt: TCPOFOQueue`).
    pub tcp_ofo: u64,
}

impl StreamStats {
    pub fn loss_share(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        1.0 - self.received as f64 / self.sent as f64
    }

    pub fn reorder_share(&self) -> f64 {
        if self.received == 0 {
            return 0.0;
        }
        self.reordered as f64 / self.received as f64
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s = self.delays_ms.clone();
        s.sort_by(f64::total_cmp);
        s
    }

    /// Delay percentile in ms (`p` in 0..=100); NaN without packets.
    pub fn delay_pct(&self, p: f64) -> f64 {
        let s = self.sorted();
        if s.is_empty() {
            return f64::NAN;
        }
        metrics::stats::percentile(&s, p)
    }

    /// The share of packets delayed by at least `ms`.
    pub fn share_at_least(&self, ms: f64) -> f64 {
        if self.delays_ms.is_empty() {
            return 0.0;
        }
        self.delays_ms.iter().filter(|d| **d >= ms).count() as f64 / self.delays_ms.len() as f64
    }

    pub fn summary(&self) -> String {
        format!(
            "sent {} received {} loss {:.2}% delay p1/p50/p99 {:.2}/{:.2}/{:.2} ms reordered {} tcp_ofo {}",
            self.sent,
            self.received,
            self.loss_share() * 100.0,
            self.delay_pct(1.0),
            self.delay_pct(50.0),
            self.delay_pct(99.0),
            self.reordered,
            self.tcp_ofo
        )
    }
}

/// How a stream is sent.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub v6: bool,
    pub port: u16,
    pub count: u32,
    /// Gap between packets (0: as fast as the sender can).
    pub interval: Duration,
    /// How long the receiver waits for stragglers after the last packet was sent, unless all
    /// arrived before.
    pub linger: Duration,
}

/// UDP record: `u32 seq, u64 send time (CLOCK_MONOTONIC ns)`, padded.
const RECORD: usize = 64;

fn record(seq: u32) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[..4].copy_from_slice(&seq.to_be_bytes());
    b[4..12].copy_from_slice(&monotonic_ns().to_be_bytes());
    b
}

fn parse_record(b: &[u8]) -> (u32, u64) {
    (u32::from_be_bytes(b[..4].try_into().unwrap()), u64::from_be_bytes(b[4..12].try_into().unwrap()))
}

/// Tracks arrivals: delays and how many arrived behind a later-sent one.
#[derive(Default)]
struct Arrivals {
    stats: StreamStats,
    highest: Option<u32>,
}

impl Arrivals {
    fn arrived(&mut self, seq: u32, sent_ns: u64) {
        let now = monotonic_ns();
        self.stats.received += 1;
        self.stats.delays_ms.push(now.saturating_sub(sent_ns) as f64 / 1e6);
        match self.highest {
            Some(h) if seq < h => self.stats.reordered += 1,
            _ => self.highest = Some(seq),
        }
    }
}

fn pace(start: Instant, i: u32, interval: Duration) {
    let due = start + interval * i;
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Sends `spec.count` numbered UDP datagrams from the sender to the receiver and returns what
/// the receiver measured.
pub fn udp_stream(bed: &Bed, spec: &StreamSpec) -> Result<StreamStats> {
    let addr = SocketAddr::new(Bed::rcv_addr(spec.v6), spec.port);
    let bind: SocketAddr = if spec.v6 { "[::]:0".parse()? } else { "0.0.0.0:0".parse()? };
    let sock = bed.rcv.run_in(move || -> Result<UdpSocket> {
        let s = UdpSocket::bind(SocketAddr::new(bind.ip(), addr.port())).context("binding the receiver")?;
        set_rcvbuf(&s, 8 << 20);
        s.set_read_timeout(Some(Duration::from_millis(20)))?;
        Ok(s)
    })??;
    let done = Arc::new(AtomicBool::new(false));
    let (done2, linger, count) = (done.clone(), spec.linger, spec.count);
    let receiver = std::thread::spawn(move || -> Result<Arrivals> {
        let mut arr = Arrivals::default();
        let mut buf = [0u8; 2048];
        let mut quiet_since: Option<Instant> = None;
        let hard_stop = Instant::now() + Duration::from_secs(300);
        while Instant::now() < hard_stop {
            match sock.recv(&mut buf) {
                Ok(n) if n >= 12 => {
                    let (seq, sent) = parse_record(&buf[..n]);
                    arr.arrived(seq, sent);
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("receiving"),
            }
            // Everything sent has arrived (no straggler left to wait for: lossless scenarios
            // end at once), or the sender is done and `linger` has passed.
            if arr.stats.received >= u64::from(count) {
                break;
            }
            if done2.load(Ordering::Relaxed) {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= linger {
                    break;
                }
            }
        }
        Ok(arr)
    });
    let (count, interval) = (spec.count, spec.interval);
    let sent = bed.snd.run_in(move || -> Result<u64> {
        let s = UdpSocket::bind(bind).context("binding the sender")?;
        let start = Instant::now();
        let mut sent = 0;
        for seq in 0..count {
            pace(start, seq, interval);
            // A full socket buffer (ENOBUFS) is retried: every datagram must leave.
            for _ in 0..1000 {
                match s.send_to(&record(seq), addr) {
                    Ok(_) => {
                        sent += 1;
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => std::thread::sleep(Duration::from_micros(200)),
                    Err(e) => return Err(e).with_context(|| format!("sending to {addr}")),
                }
            }
        }
        Ok(sent)
    })??;
    done.store(true, Ordering::Relaxed);
    let mut arr = receiver.join().map_err(|_| anyhow!("receiver panicked"))??;
    arr.stats.sent = sent;
    Ok(arr.stats)
}

fn set_rcvbuf(s: &impl std::os::fd::AsRawFd, bytes: i32) {
    // SAFETY: setsockopt with a valid int option. SO_RCVBUFFORCE needs CAP_NET_ADMIN (root).
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const i32).cast(),
            size_of::<i32>() as u32,
        );
    }
}

/// `TcpExt: TCPOFOQueue` of the calling thread's network namespace.
fn tcp_ofo_queue() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/netstat").context("reading netstat")?;
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    ensure!(lines.len() >= 2, "no TcpExt lines in netstat");
    let names = lines[0].split_whitespace();
    let values = lines[1].split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == "TCPOFOQueue")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| anyhow!("no TCPOFOQueue in netstat"))
}

/// Sends `spec.count` 64-byte records over one TCP connection (TCP_NODELAY: one segment per
/// record) and returns what the receiver measured: per-record delay, and the segments its TCP
/// had to queue out of order. TCP itself delivers in order, so `reordered` stays 0.
pub fn tcp_stream(bed: &Bed, spec: &StreamSpec) -> Result<StreamStats> {
    let addr = SocketAddr::new(Bed::rcv_addr(spec.v6), spec.port);
    let (listener, ofo_before) = bed.rcv.run_in(move || -> Result<(TcpListener, u64)> {
        let bind = if spec.v6 { "[::]" } else { "0.0.0.0" };
        Ok((TcpListener::bind(format!("{bind}:{}", addr.port()))?, tcp_ofo_queue()?))
    })??;
    let receiver = std::thread::spawn(move || -> Result<Arrivals> {
        let (mut conn, _) = listener.accept().context("accepting")?;
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut arr = Arrivals::default();
        let mut buf = [0u8; RECORD];
        loop {
            match conn.read_exact(&mut buf) {
                Ok(()) => {
                    let (seq, sent) = parse_record(&buf);
                    arr.arrived(seq, sent);
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e).context("reading the TCP stream"),
            }
        }
        Ok(arr)
    });
    let (count, interval) = (spec.count, spec.interval);
    let sent = bed.snd.run_in(move || -> Result<u64> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).context("connecting")?;
        s.set_nodelay(true)?;
        let start = Instant::now();
        for seq in 0..count {
            pace(start, seq, interval);
            s.write_all(&record(seq))?;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        Ok(count as u64)
    })??;
    let mut arr = receiver.join().map_err(|_| anyhow!("receiver panicked"))??;
    arr.stats.sent = sent;
    arr.stats.tcp_ofo = bed.rcv.run_in(tcp_ofo_queue)?? - ofo_before;
    Ok(arr.stats)
}

/// netem on the router's egress, as the reference: `tc qdisc replace dev mid1 root netem ...`;
/// removed on drop.
pub struct Netem<'a> {
    ns: &'a NetNs,
}

impl<'a> Netem<'a> {
    pub fn install(bed: &'a Bed, args: &str) -> Result<Netem<'a>> {
        let mut all = vec!["qdisc", "replace", "dev", Bed::EGRESS, "root", "netem", "limit", "100000"];
        all.extend(args.split_whitespace());
        bed.mid.exec("tc", &all)?;
        Ok(Netem { ns: &bed.mid })
    }
}

impl Drop for Netem<'_> {
    fn drop(&mut self) {
        let _ = self.ns.exec("tc", &["qdisc", "del", "dev", Bed::EGRESS, "root"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Conformance vectors (BPF_PROG_TEST_RUN)

/// `scenarios/jittergen/vectors.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vectors {
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// The config without `outIf`; the runner adds `fq: {install: false}` (the host has no fq;
    /// the departure time is checked in the skb, not on the wire).
    pub config: String,
    pub packets: Vec<Packet>,
}

/// A vector's frame: the short form above, or anything [`crate::frames::FrameSpec`] builds
/// (VLAN tags, IP options and bad headers, extension headers, truncated and oversized frames).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum VectorFrame {
    Short(FrameSpec),
    Spec(crate::frames::FrameSpec),
}

impl VectorFrame {
    pub fn build(&self) -> Result<Vec<u8>> {
        match self {
            VectorFrame::Short(spec) => frame(spec),
            VectorFrame::Spec(spec) => spec.build(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packet {
    pub name: String,
    pub frame: VectorFrame,
    /// `ok` or `shot`.
    pub verdict: String,
    /// The verdict counter that must go up by one per run (`dropped`, `delayed`, ...).
    pub counter: String,
    /// `[min, max]` of the delay in ms the departure time must show; absent: no tstamp set.
    #[serde(default)]
    pub delay_ms: Option<[f64; 2]>,
    /// Whether the packet must be moved to an fq flow of its own (`own_flow` counter).
    #[serde(default)]
    pub own_flow: Option<bool>,
    /// Whether the departure time must be no earlier than the previous packet's.
    #[serde(default)]
    pub not_before_previous: bool,
    /// Runs of this frame (default 1); with more, `share` is the expected share of runs that
    /// moved `counter`, within `tolerance`.
    #[serde(default)]
    pub runs: Option<u32>,
    #[serde(default)]
    pub share: Option<f64>,
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Rule (index) whose `rule_hits` must go up by one per run.
    #[serde(default)]
    pub rule: Option<u32>,
    /// Shorter than an Ethernet header: the kernel refuses to run a program on it (`verdict`
    /// and `counter` are what the program would do).
    #[serde(default)]
    pub kernel_refuses: bool,
}

impl Vectors {
    pub fn path() -> PathBuf {
        crate::process::workspace_dir().join("scenarios/jittergen/vectors.yaml")
    }

    /// Reads the vectors; every frame must build.
    pub fn load() -> Result<Vectors> {
        crate::scenario::load_with(&Self::path(), Vectors::parse)
    }

    /// Parses the vectors; every frame must build.
    pub fn parse(text: &str) -> Result<Vectors> {
        let v: Vectors = yaml_serde::from_str(text).context("parsing")?;
        for (case, p) in v.cases.iter().flat_map(|c| c.packets.iter().map(move |p| (c, p))) {
            let at = || format!("case `{}`, packet `{}`", case.name, p.name);
            let frame = p.frame.build().with_context(at)?;
            crate::conformance::check_kernel_refuses(p.kernel_refuses, &frame).with_context(at)?;
        }
        Ok(v)
    }

    pub fn packet_count(&self) -> usize {
        self.cases.iter().map(|c| c.packets.len()).sum()
    }
}

/// The interface the conformance runs attach to (a silent veth in its own namespace).
pub const TEST_IFACE: &str = "jg0";

/// Runs the conformance vectors against `imp`; one line per mismatch (empty: conformant).
pub fn conformance(imp: &Implementation) -> Result<Vec<String>> {
    Ok(conformance_report(imp)?.lines())
}

/// Every case of the vectors: the implementation starts on a silent veth with the case's config,
/// its program must be attached (TCX here), and each frame, run with `BPF_PROG_TEST_RUN`, must
/// get the expected verdict, move exactly the expected counters and carry the expected
/// departure time; a frame the kernel refuses (see [`KernelLimits`]) must be refused alike and
/// move nothing. After SIGINT: exit 0, an `exit` line, nothing attached, the program gone.
pub fn conformance_report(imp: &Implementation) -> Result<ConformanceReport> {
    bpf::check_privileges()?;
    let vectors = Vectors::load()?;
    let tmp = TempDir::new(&format!("jgconf-{}", imp.lib))?;
    let (ns, _veth) = crate::conformance::silent_veth(&format!("jgconf-{}", imp.lib), TEST_IFACE, "jg1")?;
    let limits = KernelLimits::new(BPF_PROG_TYPE_SCHED_CLS)?;
    Ok(crate::conformance::run_cases(imp, &vectors.cases, vectors.packet_count(), |c| &c.name, |case, fail| {
        conformance_case(imp, &ns, &tmp, &limits, case, fail)
    }))
}

fn conformance_case(
    imp: &Implementation,
    ns: &NetNs,
    tmp: &TempDir,
    limits: &KernelLimits,
    case: &Case,
    fail: &mut dyn FnMut(&str, String),
) -> Result<()> {
    let config = format!("outIf: {TEST_IFACE}\n{}\nfq:\n  install: false\n", case.config.trim_end());
    let path = tmp.write("case.yml", config)?;
    let mut loader = Loader::start(imp, ns, &path, &["--stats-interval-ms", "0"])?;
    if !attached(ns, TEST_IFACE, loader.prog_id)? {
        fail("-", format!("program {} attached to the egress after `ready`", loader.prog_id));
    }
    let hits_map = bpf::find_map_of_prog(loader.prog(), "rule_hits")?;
    let mut previous_tstamp = 0u64;
    for p in &case.packets {
        let frame = p.frame.build()?;
        let runs = p.runs.unwrap_or(1);
        let before = loader.counters()?;
        let hits_before = match p.rule {
            Some(r) => hits_map.lookup_percpu_u64_sum(&r.to_ne_bytes())?,
            None => 0,
        };
        if let Some(errno) = limits.refusal(&frame)? {
            let run = test_run_skb(loader.prog(), &frame, 1);
            let d = loader.counters()?.since(&before);
            let moved = (d != Counters::default()).then(|| d.to_string());
            for (expected, got) in refusal_problems(&run, errno, frame.len(), moved) {
                fail(&p.name, format!("expected {expected}, got {got}"));
            }
            continue;
        }
        let mut last = None;
        for _ in 0..runs {
            last = Some(test_run_skb(loader.prog(), &frame, 1)?);
        }
        let run = last.context("runs must be at least 1")?;
        let d = loader.counters()?.since(&before);
        let want = if p.verdict == "shot" { TC_ACT_SHOT } else { TC_ACT_OK };
        if d.get("packets") != runs as u64 {
            fail(&p.name, format!("packets +{runs}, got {d}"));
        }
        if let Some(r) = p.rule {
            let hits = hits_map.lookup_percpu_u64_sum(&r.to_ne_bytes())? - hits_before;
            if hits != runs as u64 {
                fail(&p.name, format!("rule_hits[{r}] +{runs}, got +{hits}"));
            }
        }
        match p.share {
            None => {
                if run.retval != want {
                    fail(&p.name, format!("verdict {} ({want}), got {}", p.verdict, run.retval));
                }
                if d.get(&p.counter) != runs as u64 {
                    fail(&p.name, format!("{} +{runs}, got {d}", p.counter));
                }
                let verdicts: u64 =
                    ["not_ip", "unmatched", "dropped", "delayed", "passed"].iter().map(|c| d.get(c)).sum();
                if verdicts != runs as u64 {
                    fail(&p.name, format!("exactly one verdict counter per run, got {d}"));
                }
            }
            Some(share) => {
                let got = d.get(&p.counter) as f64 / runs as f64;
                let tol = p.tolerance.unwrap_or(0.03);
                if (got - share).abs() > tol {
                    fail(&p.name, format!("{} in {share}±{tol} of {runs} runs, got {got:.4} ({d})", p.counter));
                }
            }
        }
        match p.delay_ms {
            Some([lo, hi]) if p.share.is_none() => {
                let (min_t, max_t) = (run.before_ns + (lo * 1e6) as u64, run.after_ns + (hi * 1e6) as u64);
                if run.tstamp < min_t || run.tstamp > max_t {
                    fail(
                        &p.name,
                        format!(
                            "departure {lo}..{hi} ms ahead, got {:.3} ms",
                            (run.tstamp as f64 - run.before_ns as f64) / 1e6
                        ),
                    );
                }
            }
            Some(_) => {}
            None => {
                if run.tstamp != 0 && p.share.is_none() {
                    fail(&p.name, format!("no departure time, got tstamp {}", run.tstamp));
                }
            }
        }
        if p.not_before_previous && run.tstamp < previous_tstamp {
            fail(&p.name, format!("departure {} not before the previous {previous_tstamp}", run.tstamp));
        }
        if let Some(own) = p.own_flow {
            let moved = d.get("own_flow") == runs as u64;
            if moved != own {
                fail(&p.name, format!("own_flow {own}, got {d}"));
            }
        }
        previous_tstamp = run.tstamp;
    }
    let prog_id = loader.prog_id;
    let stopped = loader.stop(Duration::from_secs(30))?;
    if stopped.exit_code != 0 || stopped.exit_line.is_none() {
        fail("(exit)", format!("exit code {} with an exit line; stderr: {}", stopped.exit_code, stopped.stderr.trim()));
    }
    if anything_attached(ns, TEST_IFACE)? {
        fail("(exit)", "nothing attached after exit".into());
    }
    if !wait_prog_gone(prog_id, Duration::from_secs(5)) {
        fail("(exit)", format!("program {prog_id} unloaded"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenarios on the wire (in the VM guest: they need fq and netem)

/// The stream a scenario measures.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    pub tcp: bool,
    pub spec: StreamSpec,
}

/// What a scenario configures, as numbers a report puts next to the measured ones.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Configured {
    pub drop_pct: f64,
    pub delay_p50_ms: f64,
    pub delay_p99_ms: f64,
    pub reorder_pct: f64,
}

/// One behaviour checked on the wire, for jittergen and for netem configured the same way.
pub struct Scenario {
    pub name: &'static str,
    /// jittergen's config (without `outIf`).
    pub config: &'static str,
    /// The same behaviour as `tc ... netem <args>`; `None`: no netem equivalent.
    pub netem: Option<&'static str>,
    pub traffic: Traffic,
    /// A second stream no rule matches (checked untouched), sent right after the first.
    pub untouched: Option<Traffic>,
    pub configured: Configured,
    /// jittergen's results against the configuration; one line per problem.
    pub check: fn(&Measured) -> Vec<String>,
}

/// A stream's results as numbers (what the guest reports to the host).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measured {
    pub sent: u64,
    pub received: u64,
    pub loss_pct: f64,
    pub reorder_pct: f64,
    pub tcp_ofo: u64,
    pub p1: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// Share of packets at least 20 ms late (reorder scenarios delay by 30 ms), in %.
    pub late_pct: f64,
    /// The 90th percentile of the packets that were not late.
    pub on_time_p90: f64,
    /// Every delay in buckets of the grid of `histograms.csv` (upper bound in ms, count), so
    /// that the host can draw the distribution without the samples.
    #[serde(default)]
    pub delay_hist: Vec<(f64, u64)>,
}

impl Measured {
    pub fn of(s: &StreamStats) -> Measured {
        let on_time = StreamStats {
            delays_ms: s.delays_ms.iter().copied().filter(|d| *d < 20.0).collect(),
            ..Default::default()
        };
        Measured {
            sent: s.sent,
            received: s.received,
            loss_pct: s.loss_share() * 100.0,
            reorder_pct: s.reorder_share() * 100.0,
            tcp_ofo: s.tcp_ofo,
            p1: s.delay_pct(1.0),
            p10: s.delay_pct(10.0),
            p50: s.delay_pct(50.0),
            p90: s.delay_pct(90.0),
            p99: s.delay_pct(99.0),
            late_pct: s.share_at_least(20.0) * 100.0,
            on_time_p90: on_time.delay_pct(90.0),
            delay_hist: metrics::hist::Histogram::from_samples("", "", "", None, "", &s.delays_ms).buckets,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "sent {} recv {} loss {:.2}% reorder {:.2}% ofo {} delay p1/p10/p50/p90/p99 {:.2}/{:.2}/{:.2}/{:.2}/{:.2} ms late {:.1}%",
            self.sent,
            self.received,
            self.loss_pct,
            self.reorder_pct,
            self.tcp_ofo,
            self.p1,
            self.p10,
            self.p50,
            self.p90,
            self.p99,
            self.late_pct
        )
    }
}

/// Checks a condition, recording `what` with the measurement when it fails.
fn expect(problems: &mut Vec<String>, ok: bool, what: &str, m: &Measured) {
    if !ok {
        problems.push(format!("{what}: {}", m.summary()));
    }
}

/// Under TCG the clocks are real but everything is slow: the emulated path adds ~0.2 ms at the
/// median and a tail that grows with the host's load (p99 3.9 ms over the configured delay on
/// an idle host, 30+ ms with a compiler running next to it). Lateness only ever adds, so the
/// lower bounds are exact; the upper bounds are checked at p90 with this slack. The exact
/// departure times the programs set are checked on the host (the conformance vectors).
const SLACK_MS: f64 = 5.0;
/// Below the configured minimum: clock reads on both ends may differ by this.
const EARLY_MS: f64 = 0.5;

/// A UDP stream of `count` datagrams, one per `interval_ms`. Counts decide the statistics, the
/// interval only the time: 1 ms (1.5 ms for TCP, 0.5 ms for the drop share) keeps a one-vCPU
/// TCG guest far from busy, and halved the scenarios' time against 2 and 3 ms.
fn udp(port: u16, count: u32, interval_ms: f64) -> Traffic {
    Traffic {
        tcp: false,
        spec: StreamSpec {
            v6: false,
            port,
            count,
            interval: Duration::from_secs_f64(interval_ms / 1e3),
            // The longest configured delay is 30 ms; with TCG's tail on a loaded host (30+ ms,
            // see SLACK_MS) stragglers arrive within ~70 ms: 200 ms is about 3× that.
            linger: Duration::from_millis(200),
        },
    }
}

/// The guest scenarios, in run order.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "jitter 10-30 ms, unordered",
            config: "action: jitter\nmatch: {percent: 100, protocol: udp, port: 7001}\njitter: {minDelayMs: 10, maxDelayMs: 30, keepOrder: false}\n",
            netem: Some("delay 20ms 10ms"),
            traffic: udp(7001, 600, 1.0),
            untouched: Some(udp(7002, 200, 1.0)),
            configured: Configured { delay_p50_ms: 20.0, delay_p99_ms: 29.8, ..Default::default() },
            check: |m| {
                let mut p = Vec::new();
                expect(&mut p, m.loss_pct == 0.0, "no loss", m);
                expect(&mut p, m.p1 >= 10.0 - EARLY_MS && m.p90 <= 30.0 + SLACK_MS, "delays within 10-30 ms", m);
                expect(&mut p, (16.0..=24.0 + SLACK_MS).contains(&m.p50), "median near 20 ms", m);
                expect(&mut p, m.p10 <= 15.0 && m.p90 >= 25.0, "uniform spread (p10 <= 15, p90 >= 25 ms)", m);
                expect(&mut p, m.reorder_pct > 5.0, "jitter without order reorders", m);
                p
            },
        },
        Scenario {
            name: "jitter 10-30 ms, ordered",
            config: "action: jitter\nmatch: {percent: 100, protocol: udp, port: 7001}\njitter: {minDelayMs: 10, maxDelayMs: 30}\n",
            netem: None,
            traffic: udp(7001, 600, 1.0),
            untouched: None,
            configured: Configured { delay_p50_ms: 20.0, delay_p99_ms: 29.8, ..Default::default() },
            check: |m| {
                let mut p = Vec::new();
                expect(&mut p, m.loss_pct == 0.0, "no loss", m);
                expect(&mut p, m.p1 >= 10.0 - EARLY_MS && m.p90 <= 30.0 + SLACK_MS, "delays within 10-30 ms", m);
                expect(&mut p, m.reorder_pct == 0.0, "order kept", m);
                expect(&mut p, m.p90 - m.p10 >= 1.0, "the delay varies", m);
                p
            },
        },
        Scenario {
            name: "reorder 20% by 30 ms",
            config: "action: reorder\nmatch: {percent: 20, protocol: udp, port: 7001}\nreorder: {delayMs: 30}\n",
            netem: Some("delay 30ms reorder 80%"),
            traffic: udp(7001, 800, 1.0),
            untouched: None,
            configured: Configured { delay_p99_ms: 30.0, reorder_pct: 20.0, ..Default::default() },
            check: |m| {
                let mut p = Vec::new();
                expect(&mut p, m.loss_pct == 0.0, "no loss", m);
                expect(&mut p, (14.0..=26.0).contains(&m.late_pct), "20% ±6 delayed", m);
                expect(&mut p, m.p99 >= 30.0 - EARLY_MS && m.p90 <= 30.0 + SLACK_MS, "the delayed ones by 30 ms", m);
                expect(&mut p, m.on_time_p90 <= SLACK_MS, "the others not held back behind them (fq flow of their own)", m);
                expect(&mut p, m.reorder_pct >= 10.0, "later packets overtake", m);
                p
            },
        },
        Scenario {
            name: "drop 10%",
            config: "action: drop\nmatch: {percent: 10, protocol: udp, port: 7001}\n",
            netem: Some("loss 10%"),
            traffic: udp(7001, 2000, 0.5),
            untouched: Some(udp(7002, 300, 0.5)),
            configured: Configured { drop_pct: 10.0, ..Default::default() },
            check: |m| {
                let mut p = Vec::new();
                expect(&mut p, (7.5..=12.5).contains(&m.loss_pct), "10% ±2.5 dropped", m);
                expect(&mut p, m.reorder_pct == 0.0, "no reordering", m);
                p
            },
        },
        Scenario {
            name: "IPv6 fixed 15 ms",
            config: "action: jitter\nmatch: {protocol: udp, port: 7001}\njitter: {minDelayMs: 15, maxDelayMs: 15}\n",
            netem: Some("delay 15ms"),
            traffic: Traffic { spec: StreamSpec { v6: true, ..udp(7001, 400, 1.0).spec }, tcp: false },
            untouched: Some(Traffic { spec: StreamSpec { v6: true, ..udp(7002, 200, 1.0).spec }, tcp: false }),
            configured: Configured { delay_p50_ms: 15.0, delay_p99_ms: 15.0, ..Default::default() },
            check: |m| {
                let mut p = Vec::new();
                expect(&mut p, m.loss_pct == 0.0, "no loss", m);
                expect(&mut p, m.p1 >= 15.0 - EARLY_MS && m.p90 <= 15.0 + SLACK_MS, "15 ms", m);
                expect(&mut p, m.reorder_pct == 0.0, "no reordering", m);
                p
            },
        },
        Scenario {
            name: "TCP jitter 5-15 ms, ordered",
            config: "action: jitter\nmatch: {protocol: tcp, port: 7003}\njitter: {minDelayMs: 5, maxDelayMs: 15}\n",
            netem: None,
            traffic: Traffic { tcp: true, spec: udp(7003, 300, 1.5).spec },
            untouched: None,
            configured: Configured { delay_p50_ms: 10.0, delay_p99_ms: 14.9, ..Default::default() },
            check: |m| {
                let mut p = Vec::new();
                expect(&mut p, m.received == m.sent, "every record", m);
                expect(&mut p, m.p1 >= 5.0 - EARLY_MS, "at least 5 ms", m);
                expect(&mut p, m.tcp_ofo == 0, "no segment out of order", m);
                p
            },
        },
        Scenario {
            name: "TCP reorder 20% by 20 ms",
            config: "action: reorder\nmatch: {percent: 20, protocol: tcp, port: 7003}\nreorder: {delayMs: 20}\n",
            netem: Some("delay 20ms reorder 80%"),
            traffic: Traffic { tcp: true, spec: udp(7003, 300, 1.5).spec },
            untouched: None,
            // TCP hands the application its bytes in order: the reordering shows as segments the
            // receiver queued out of order (`tcp_ofo`), not in the record order.
            configured: Configured { delay_p99_ms: 20.0, ..Default::default() },
            check: |m| {
                let mut p = Vec::new();
                expect(&mut p, m.received == m.sent, "every record", m);
                expect(&mut p, m.tcp_ofo > 0, "segments arrive out of order", m);
                p
            },
        },
    ]
}

/// One subject's run of one scenario, as the guest program prints it (a JSON line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub scenario: String,
    /// `aya`, `libbpf-rs`, `ref:netem`, `ref:none`.
    pub subject: String,
    pub configured: Configured,
    pub measured: Option<Measured>,
    pub untouched: Option<Measured>,
    /// Checks that failed (for references only the run itself).
    pub problems: Vec<String>,
}

fn stream(bed: &Bed, t: &Traffic) -> Result<StreamStats> {
    if t.tcp {
        tcp_stream(bed, &t.spec)
    } else {
        udp_stream(bed, &t.spec)
    }
}

/// Runs `scenario` with jittergen `imp` on its bed in `beds` ([`Bed::reused`]): start (TCX or
/// netlink as the kernel offers; `fq` installed), the streams, SIGINT, then a clean exit:
/// nothing attached, the program gone, the qdiscs of the egress as before.
pub fn run_scenario(beds: &mut BTreeMap<String, Bed>, imp: &Implementation, sc: &Scenario) -> Outcome {
    let mut out = Outcome {
        scenario: sc.name.into(),
        subject: imp.lib.clone(),
        configured: sc.configured,
        measured: None,
        untouched: None,
        problems: Vec::new(),
    };
    if let Err(e) = Bed::reused(beds, &format!("jg-{}", imp.lib)).and_then(|bed| run_scenario_inner(bed, imp, sc, &mut out)) {
        out.problems.push(format!("{e:#}"));
    }
    out
}

fn run_scenario_inner(bed: &Bed, imp: &Implementation, sc: &Scenario, out: &mut Outcome) -> Result<()> {
    let tmp = TempDir::new("jg-guest")?;
    let before = qdiscs(&bed.mid, Bed::EGRESS)?;
    let config = Bed::config(&tmp, "scenario.yml", sc.config)?;
    let mut loader = Loader::start(imp, &bed.mid, &config, &["--stats-interval-ms", "0"])?;
    let expected_mode = if tcx_supported(&bed)? { "tcx" } else { "netlink" };
    if loader.attach_mode() != expected_mode {
        out.problems.push(format!("attached by {}, expected {expected_mode}", loader.attach_mode()));
    }
    let needs_fq = bpfeval_shared::jittergen::Config::parse(&std::fs::read_to_string(&config)?, &config)?.needs_fq();
    let during = qdiscs(&bed.mid, Bed::EGRESS)?;
    let fq = during.iter().any(|q| q.starts_with("qdisc fq ") && q.contains("flow_limit 10000p"));
    if fq != needs_fq {
        out.problems.push(format!("an fq root qdisc (flow_limit 10000) while running: {needs_fq}; got {during:?}"));
    }
    let main = stream(&bed, &sc.traffic)?;
    let m = Measured::of(&main);
    out.problems.extend((sc.check)(&m));
    out.measured = Some(m);
    if let Some(t) = &sc.untouched {
        let u = Measured::of(&stream(&bed, t)?);
        if u.loss_pct != 0.0 || u.reorder_pct != 0.0 || u.p90 > SLACK_MS {
            out.problems.push(format!("unmatched traffic untouched: {}", u.summary()));
        }
        out.untouched = Some(u);
    }
    let c = loader.counters()?;
    if c.get("tstamp_failed") != 0 {
        out.problems.push(format!("bpf_skb_set_tstamp failed: {c}"));
    }
    let prog_id = loader.prog_id;
    let stopped = loader.stop(Duration::from_secs(30))?;
    if stopped.exit_code != 0 || stopped.exit_line.as_ref().is_none_or(|l| l["qdisc_restored"] != needs_fq) {
        out.problems.push(format!(
            "exit 0 with qdisc_restored: got {} {:?}; stderr: {}",
            stopped.exit_code,
            stopped.exit_line,
            stopped.stderr.trim()
        ));
    }
    if anything_attached(&bed.mid, Bed::EGRESS)? {
        out.problems.push("something attached after exit".into());
    }
    if !wait_prog_gone(prog_id, Duration::from_secs(5)) {
        out.problems.push(format!("program {prog_id} still loaded after exit"));
    }
    let after = qdiscs(&bed.mid, Bed::EGRESS)?;
    if after != before {
        out.problems.push(format!("qdiscs restored: before {before:?}, after {after:?}"));
    }
    Ok(())
}

fn tcx_supported(bed: &Bed) -> Result<bool> {
    let ifindex = bed.mid.ifindex(Bed::EGRESS)?;
    bed.mid.run_in(move || bpfeval_shared::jittergen::kernel_has_tcx(ifindex))
}

/// The same scenario through netem (`subject` = `ref:netem`), or through nothing (`ref:none`).
pub fn run_reference(beds: &mut BTreeMap<String, Bed>, sc: &Scenario, netem: Option<&str>) -> Outcome {
    let subject = if netem.is_some() { "ref:netem" } else { "ref:none" };
    let mut out = Outcome {
        scenario: sc.name.into(),
        subject: subject.into(),
        configured: sc.configured,
        measured: None,
        untouched: None,
        problems: Vec::new(),
    };
    let r = (|| -> Result<Measured> {
        let bed = Bed::reused(beds, "jg-ref")?;
        let _netem = netem.map(|args| Netem::install(bed, args)).transpose()?;
        Ok(Measured::of(&stream(bed, &sc.traffic)?))
    })();
    match r {
        Ok(m) => out.measured = Some(m),
        Err(e) => out.problems.push(format!("{e:#}")),
    }
    out
}

/// The scenario name of [`restore_checks`]' outcome: checks only, it measures nothing.
pub const RESTORE_CHECKS: &str = "qdisc restore";

/// jittergen keeps what was there: a classless root qdisc (pfifo, handle 1:, limit 77) is
/// replaced by fq while it runs and comes back with its handle and options; and when attaching
/// fails after fq went in (TCX forced on a kernel without it), the error path puts it back too.
pub fn restore_checks(imp: &Implementation) -> Outcome {
    let mut out = Outcome {
        scenario: RESTORE_CHECKS.into(),
        subject: imp.lib.clone(),
        configured: Configured::default(),
        measured: None,
        untouched: None,
        problems: Vec::new(),
    };
    let r = (|| -> Result<()> {
        let bed = Bed::new(&format!("jgrs-{}", imp.lib))?;
        let tmp = TempDir::new("jg-restore")?;
        bed.mid.exec("tc", &["qdisc", "replace", "dev", Bed::EGRESS, "root", "handle", "1:", "pfifo", "limit", "77"])?;
        let before = qdiscs(&bed.mid, Bed::EGRESS)?;
        ensure!(before.iter().any(|q| q.starts_with("qdisc pfifo 1: root") && q.contains("limit 77p")), "set-up: {before:?}");
        let body = "action: jitter\nmatch: {protocol: udp, port: 7001}\njitter: {minDelayMs: 5, maxDelayMs: 5}\n";
        let config = Bed::config(&tmp, "restore.yml", body)?;
        let mut loader = Loader::start(imp, &bed.mid, &config, &["--stats-interval-ms", "0"])?;
        if loader.ready["previous_qdisc"] != "pfifo 1:" {
            out.problems.push(format!("ready names the previous qdisc `pfifo 1:`: {}", loader.ready));
        }
        let stopped = loader.stop(Duration::from_secs(30))?;
        ensure!(stopped.exit_code == 0, "exit code {}: {}", stopped.exit_code, stopped.stderr);
        let after = qdiscs(&bed.mid, Bed::EGRESS)?;
        if after != before {
            out.problems.push(format!("pfifo restored: before {before:?}, after {after:?}"));
        }
        if !tcx_supported(&bed)? {
            let forced = Bed::config(&tmp, "tcx.yml", &format!("{body}tcAttach: tcx\n"))?;
            let mut running = imp.spawn(&["--config", forced.to_str().context("UTF-8")?], Some(&bed.mid))?;
            let code = running.exit_code(Duration::from_secs(30))?;
            if code != 1 {
                out.problems.push(format!("forced TCX without TCX: exit 1, got {code}: {}", running.stderr()));
            }
            let after = qdiscs(&bed.mid, Bed::EGRESS)?;
            if after != before || anything_attached(&bed.mid, Bed::EGRESS)? {
                out.problems.push(format!("after the failed attach: qdiscs {after:?} (before {before:?})"));
            }
        }
        Ok(())
    })();
    if let Err(e) = r {
        out.problems.push(format!("{e:#}"));
    }
    out
}

/// Boots the VM guest with the guest program, the implementations of `libs` and the tools and
/// modules the bed needs, runs `jittergen-guest` there and returns its outcomes. `guest_bin`
/// is the host build of `jittergen-guest`; `netem` adds the netem and no-program references,
/// `restore` each implementation's [`restore_checks`].
pub fn run_in_guest(guest_bin: &Path, imps: &[Implementation], netem: bool, restore: bool) -> Result<Vec<Outcome>> {
    let mut guest = crate::vm::Guest::new()
        .carry(guest_bin)?
        .carry(which("ip")?)?
        .carry(which("tc")?)?
        // ~8 s per subject under TCG (53 s for five libraries and the references, measured): a
        // minute each is the margin of a slower machine.
        .timeout(Duration::from_secs(60 * (2 + imps.len() as u64 + 2 * netem as u64)));
    for m in ["veth", "sch_fq", "sch_netem", "sch_ingress", "cls_bpf"] {
        guest = guest.module(m)?;
    }
    let mut args = String::new();
    for imp in imps {
        args.push_str(&format!(" --impl {}={}", imp.lib, crate::vm::carried_path(&imp.binary)?));
        guest = guest.carry(&imp.binary)?;
    }
    if netem {
        args.push_str(" --references");
    }
    if !restore {
        args.push_str(" --no-restore-checks");
    }
    let script = format!("/usr/local/bin/jittergen-guest{args}");
    let out = guest.run(&script)?;
    let outcomes: Vec<Outcome> = out.json_lines()?;
    out.success().context("jittergen-guest in the VM")?;
    ensure!(!outcomes.is_empty(), "the guest reported nothing; stderr: {}", out.stderr);
    Ok(outcomes)
}

/// The host path of a tool, resolved like a shell would (the guest carries it from there).
fn which(tool: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("`{tool}` not found on the host (iproute2)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_vectors_build() {
        let v = Vectors::load().unwrap_or_else(|e| panic!("{e:#}"));
        let frames: Vec<&VectorFrame> = v.cases.iter().flat_map(|c| &c.packets).map(|p| &p.frame).collect();
        assert!(frames.iter().any(|f| matches!(f, VectorFrame::Short(_))));
        assert!(frames.iter().any(|f| matches!(f, VectorFrame::Spec(_))));
        // The short form stays short: `arp: true` is it, `arp: {}` a frames spec.
        let short: VectorFrame = yaml_serde::from_str("{arp: true}").unwrap();
        let spec: VectorFrame = yaml_serde::from_str("{arp: {}}").unwrap();
        assert!(matches!((short, spec), (VectorFrame::Short(_), VectorFrame::Spec(_))));
    }
}
