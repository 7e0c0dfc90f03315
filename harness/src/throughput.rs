//! Throughput that measures the program, not the generator.
//!
//! A frame is sent from a sender namespace into a veth whose peer carries the program under
//! test, by `BPF_PROG_TEST_RUN` with live frames (the mechanism of xdp-trafficgen): a
//! two-instruction XDP program that returns `XDP_TX` runs `repeat` times per call in batches,
//! and every run transmits the frame through veth's `ndo_xdp_xmit` — some 10–20 ns a frame
//! against ~2 µs for one `sendto` of an `AF_PACKET` socket. The generator thread is pinned to
//! [`GEN_CPU`]. The receiving veth runs threaded NAPI, its kthread pinned to [`RX_CPU`], so the
//! receive side's work (the program under test, and for TC the forwarding to the egress that
//! carries it) has one CPU whose busy share is measurable: the kthread's run time
//! (`/proc/<pid>/schedstat`, ns) over the wall time.
//!
//! The generator writes the frame anew on every run ([`bpf::load_frame_writer_xdp`]): live
//! frames live in recycled pages, which a router forwarding them rewrites in place. A TC
//! egress program sits behind such a router ([`Receiver::prepare_router`]): its receiving veth
//! gets GRO off, so that every frame is forwarded on its own, and an `XDP_PASS` program, which
//! gives the veth its NAPI without GRO.
//!
//! From one [`Receiver::measure`]: `veth_pps` (the program's own Δ`run_cnt`/Δt, kernel BPF
//! statistics on), `live_ns_per_pkt` (Δ`run_time_ns`/Δ`run_cnt` under that load) and
//! `rx_cpu_busy_pct`. A figure whose receiver was not saturated — it processed nearly every
//! generated frame ([`KEPT_UP_PCT`], `generator_pps`) — measured the generator, not the
//! program: it carries a `generator_bound` row with value 1 (0 otherwise), shown next to
//! `veth_pps`. Both threads run at real-time priority, so that other processes on a shared machine do not
//! decide the figure.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use metrics::record::Row;

use crate::bpf::{self, Prog};
use crate::netns::{NetNs, VethConfig, VethPair};

/// CPU of the generator thread.
pub const GEN_CPU: usize = 0;
/// CPU of the receiving veth's NAPI kthread.
pub const RX_CPU: usize = 1;
/// A receiver that processed at least this share of the generated frames kept up with the
/// generator: the figure is generator-bound. (Its CPU's busy share cannot tell: the kernel's
/// real-time throttling idles the generator 5% of each second, and the receiver with it.)
pub const KEPT_UP_PCT: f64 = 95.0;
/// Frames per `BPF_PROG_TEST_RUN` call (~10–50 ms each); the loop checks the clock between calls.
const REPEAT_PER_CALL: u32 = 1 << 20;
/// Frames per batch of the live mode (the kernel's maximum, `TEST_XDP_MAX_BATCH`).
const BATCH: u32 = 256;

/// The receiving end of a veth in threaded-NAPI mode, its kthread pinned to [`RX_CPU`].
pub struct Receiver {
    /// The NAPI kthread.
    pub napi_pid: u32,
    /// The `XDP_PASS` program of a router's receiving veth ([`Receiver::prepare_router`]).
    _pass: Option<(Prog, bpf::Link)>,
}

/// What the measurement counts on the receiving side.
#[derive(Clone, Copy)]
pub enum Counted<'a> {
    /// The program under test: its runs (`run_cnt`) and their cost (`run_time_ns`).
    Prog(&'a Prog),
    /// A path without a program (a reference): a cumulative count of the packets that reached
    /// the point where the program would run.
    Packets(&'a (dyn Fn() -> Result<u64> + Sync)),
}

impl Counted<'_> {
    /// (packets so far, their run time in ns if a program ran them).
    fn read(&self) -> Result<(u64, Option<u64>)> {
        match self {
            Counted::Prog(p) => {
                let info = p.info()?;
                Ok((info.run_cnt, Some(info.run_time_ns)))
            }
            Counted::Packets(count) => Ok((count()?, None)),
        }
    }
}

impl Receiver {
    /// Switches `ifname` in `ns` to threaded NAPI (GRO on first: veth only has NAPI with GRO or
    /// an XDP program) and pins its kthread. Call on a fresh veth, before traffic.
    pub fn prepare(ns: &NetNs, ifname: &str) -> Result<Receiver> {
        ns.exec("ethtool", &["-K", ifname, "gro", "on"])?;
        Receiver::threaded(ns, ifname, None)
    }

    /// The receiving veth of a router (whose forwarding leads to the TC program under test):
    /// GRO off and an `XDP_PASS` program, which gives the veth its NAPI (see the module
    /// documentation), then threaded NAPI as in [`Receiver::prepare`].
    pub fn prepare_router(ns: &NetNs, ifname: &str) -> Result<Receiver> {
        ns.exec("ethtool", &["-K", ifname, "gro", "off"])?;
        let pass = bpf::load_constant_xdp("bpfeval_pass", bpf::XDP_PASS)?;
        let ifindex = ns.ifindex(ifname)?;
        let link = ns.run_in(|| bpf::attach_xdp(&pass, ifindex))??;
        Receiver::threaded(ns, ifname, Some((pass, link)))
    }

    fn threaded(ns: &NetNs, ifname: &str, pass: Option<(Prog, bpf::Link)>) -> Result<Receiver> {
        ensure!(online_cpus()? > RX_CPU, "throughput needs two CPUs (generator on {GEN_CPU}, receiver on {RX_CPU})");
        let comm = format!("napi/{ifname}-");
        let before = napi_threads(&comm)?;
        // sysfs under `ip netns exec` shows the namespace's devices.
        ns.exec("sh", &["-c", &format!("echo 1 > /sys/class/net/{ifname}/threaded")])
            .with_context(|| format!("threaded NAPI on {ifname}"))?;
        let new: Vec<u32> = napi_threads(&comm)?.into_iter().filter(|p| !before.contains(p)).collect();
        let napi_pid = match new[..] {
            [pid] => pid,
            _ => bail!("expected one new NAPI kthread `{comm}*` for {ifname} in {}, found {new:?}", ns.name()),
        };
        pin(napi_pid, RX_CPU).with_context(|| format!("pinning NAPI kthread {napi_pid} to CPU {RX_CPU}"))?;
        realtime(napi_pid).with_context(|| format!("SCHED_FIFO for NAPI kthread {napi_pid}"))?;
        Ok(Receiver { napi_pid, _pass: pass })
    }

    /// Saturates `target` (attached on the receiving veth or behind it) with `frame` sent from
    /// `sender` out of its interface `sender_ifindex` for `duration`, after a warm-up of a
    /// tenth of it; returns what the kernel counted meanwhile.
    pub fn measure(
        &self,
        sender: &NetNs,
        sender_ifindex: u32,
        frame: &[u8],
        target: Counted<'_>,
        duration: Duration,
    ) -> Result<Sample> {
        let _stats = bpf::enable_stats()?;
        let generator = bpf::load_frame_writer_xdp("bpfeval_gen", frame, bpf::XDP_TX)?;
        let frame = frame.to_vec();
        let napi_pid = self.napi_pid;
        sender.run_in(move || -> Result<Sample> {
            pin(0, GEN_CPU).context("pinning the generator thread")?;
            realtime(0).context("SCHED_FIFO for the generator thread")?;
            let until = |d: Duration| -> Result<u64> {
                let end = Instant::now() + d;
                let mut sent = 0u64;
                while Instant::now() < end {
                    generator.test_run_live(&frame, sender_ifindex, REPEAT_PER_CALL, BATCH)?;
                    sent += REPEAT_PER_CALL as u64;
                }
                Ok(sent)
            };
            until(duration / 10)?;
            let (count0, sched0, t0) = (target.read()?, sched_ns(napi_pid)?, Instant::now());
            let sent = until(duration)?;
            let (count1, sched1, dt) = (target.read()?, sched_ns(napi_pid)?, t0.elapsed().as_secs_f64());
            let share = |ns: u64| 100.0 * ns as f64 / 1e9 / dt;
            let runs = count1.0 - count0.0;
            ensure!(runs > 0, "nothing reached the point under test ({sent} frames generated)");
            Ok(Sample {
                pps: runs as f64 / dt,
                ns_per_pkt: count1.1.zip(count0.1).map(|(t1, t0)| (t1 - t0) as f64 / runs as f64),
                rx_busy_pct: share(sched1 - sched0),
                generated_pps: sent as f64 / dt,
            })
        })?
    }
}

/// A sender namespace and a receiver namespace, one veth between them (the receiving end
/// named `rx_ifname`, in threaded-NAPI mode): for a program that needs no other host, such as
/// the load balancer, whose `XDP_TX` answers the sender veth drops (it has no NAPI).
pub struct Pair {
    pub sender: NetNs,
    pub receiver: NetNs,
    pub veth: VethPair,
    pub rx: Receiver,
}

impl Pair {
    pub fn new(prefix: &str, rx_ifname: &str) -> Result<Pair> {
        let sender = NetNs::new(&format!("{prefix}-gen"))?;
        let receiver = NetNs::new(&format!("{prefix}-rx"))?;
        let cfg = VethConfig { a_name: "gen0".into(), b_name: rx_ifname.into(), ..Default::default() };
        let veth = VethPair::new(&sender, &receiver, &cfg)?;
        let rx = Receiver::prepare(&receiver, rx_ifname)?;
        Ok(Pair { sender, receiver, veth, rx })
    }

    /// [`Receiver::measure`] from the sender's end.
    pub fn measure(&self, frame: &[u8], target: &Prog, duration: Duration) -> Result<Sample> {
        self.rx.measure(&self.sender, self.veth.a.ifindex, frame, Counted::Prog(target), duration)
    }
}

/// One throughput measurement.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Runs of the program under test (or packets counted) per second.
    pub pps: f64,
    /// The program's mean run time per packet meanwhile (kernel BPF statistics); none without
    /// a program.
    pub ns_per_pkt: Option<f64>,
    /// Share of the time the receiving NAPI kthread ran.
    pub rx_busy_pct: f64,
    /// Frames the generator sent per second (most are dropped at a full veth ring).
    pub generated_pps: f64,
}

impl Sample {
    /// The receiver kept up: it processed nearly every frame the generator sent (at least
    /// [`KEPT_UP_PCT`]), so the rate is the generator's. A saturated receiver falls behind and
    /// veth drops what its ring cannot take.
    pub fn generator_bound(&self) -> bool {
        self.pps >= self.generated_pps * KEPT_UP_PCT / 100.0
    }

    /// `veth_pps`, `live_ns_per_pkt` (with a program), `rx_cpu_busy_pct`, `generator_pps` and
    /// `generator_bound` (0/1).
    pub fn rows(&self, usecase: &str, lib: &str, rep: u32) -> Vec<Row> {
        let mut rows = vec![
            Row::new(usecase, lib, "veth_pps", "packets/s", rep, self.pps),
            Row::new(usecase, lib, "generator_pps", "packets/s", rep, self.generated_pps),
            Row::new(usecase, lib, "rx_cpu_busy_pct", "%", rep, self.rx_busy_pct),
            Row::new(usecase, lib, "generator_bound", "bool", rep, self.generator_bound() as u8 as f64),
        ];
        if let Some(ns) = self.ns_per_pkt {
            rows.push(Row::new(usecase, lib, "live_ns_per_pkt", "ns", rep, ns));
        }
        rows
    }
}

/// The IPv4 datagrams a namespace has forwarded (`ForwDatagrams` of its `/proc/net/snmp`): what
/// reached a router's egress where no program counts it.
pub struct Forwarded(std::sync::Mutex<std::fs::File>);

impl Forwarded {
    pub fn open(ns: &NetNs) -> Result<Forwarded> {
        // thread-self: the namespace of the opening thread, which the open file keeps.
        let file = ns.run_in(|| std::fs::File::open("/proc/thread-self/net/snmp"))?
            .with_context(|| format!("opening /proc/net/snmp in {}", ns.name()))?;
        Ok(Forwarded(std::sync::Mutex::new(file)))
    }

    pub fn count(&self) -> Result<u64> {
        use std::io::{Read, Seek};
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::new();
        file.rewind()?;
        file.read_to_string(&mut text).context("reading /proc/net/snmp")?;
        // "Ip: Forwarding DefaultTTL ... ForwDatagrams ..." and then "Ip: 1 64 ... <n> ...".
        let mut ip = text.lines().filter_map(|l| l.strip_prefix("Ip:"));
        let (names, values) = (ip.next().unwrap_or_default(), ip.next().unwrap_or_default());
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(name, _)| *name == "ForwDatagrams")
            .and_then(|(_, v)| v.parse().ok())
            .with_context(|| format!("no ForwDatagrams in /proc/net/snmp: {text}"))
    }
}

/// Kernel threads whose name starts with `prefix` (NAPI kthreads are `napi/<dev>-<napi id>`).
fn napi_threads(prefix: &str) -> Result<Vec<u32>> {
    // comm holds at most 15 bytes.
    let prefix = &prefix[..prefix.len().min(15)];
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").context("reading /proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.starts_with(prefix)) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Time one thread spent on a CPU (ns), from `/proc/<pid>/schedstat`.
fn sched_ns(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/schedstat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.split_whitespace().next().and_then(|v| v.parse().ok()).with_context(|| format!("malformed {path}: {text}"))
}

/// Pins thread `pid` (0: the calling thread) to one CPU.
fn pin(pid: u32, cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only
    // read and write that set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(pid as libc::pid_t, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    Ok(())
}

/// Real-time priority 1 (`SCHED_FIFO`) for thread `pid` (0: the calling thread), so that other
/// processes on a shared machine do not decide when the generator sends or the receiver
/// polls. The kernel's real-time throttling (95% of each second by default) still leaves them
/// some time. The receiver's kthread goes with its veth; the generator's thread ends after the
/// measurement.
fn realtime(pid: u32) -> Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sched_setscheduler only reads `param`.
    if unsafe { libc::sched_setscheduler(pid as libc::pid_t, libc::SCHED_FIFO, &param) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// Runs `f` on the calling thread at real-time priority ([`realtime`]), then restores its
/// policy. Processes and threads `f` starts inherit the priority (a loader whose start is
/// timed: other processes on a shared machine then do not decide its time).
pub fn realtime_while<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    // SAFETY: sched_getscheduler and sched_getparam only write `old`.
    let mut old = libc::sched_param { sched_priority: 0 };
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy < 0 || unsafe { libc::sched_getparam(0, &mut old) } != 0 {
        return Err(std::io::Error::last_os_error()).context("reading the thread's scheduling policy");
    }
    realtime(0).context("SCHED_FIFO for the calling thread")?;
    let result = f();
    // SAFETY: sched_setscheduler only reads `old`.
    if unsafe { libc::sched_setscheduler(0, policy, &old) } != 0 {
        return Err(std::io::Error::last_os_error()).context("restoring the thread's scheduling policy");
    }
    result
}

fn online_cpus() -> Result<usize> {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    ensure!(n > 0, "sysconf(_SC_NPROCESSORS_ONLN) failed");
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor: an XDP_DROP program on the receiving veth is saturated by the generator, and
    /// the kernel's statistics give it a per-packet cost.
    #[test]
    fn live_frames_saturate_an_empty_program() {
        bpf::check_privileges().unwrap();
        let pair = Pair::new("tp", "tp-rx").unwrap();
        let drop = bpf::load_constant_xdp("tp_drop", bpf::XDP_DROP).unwrap();
        let _link = pair.receiver.run_in(|| bpf::attach_xdp(&drop, pair.veth.b.ifindex)).unwrap().unwrap();
        let frame = crate::frames::FrameSpec::ip("10.0.0.1".parse().unwrap())
            .with_macs(pair.veth.a.mac, pair.veth.b.mac)
            .build()
            .unwrap();
        let s = pair.measure(&frame, &drop, Duration::from_secs(1)).unwrap();
        eprintln!("{s:?}");
        assert!(s.pps > 100_000.0, "{s:?}");
        assert!(s.ns_per_pkt.is_some_and(|ns| ns > 0.0 && ns < 10_000.0), "{s:?}");
        assert!(s.rx_busy_pct > 0.0 && s.rx_busy_pct <= 105.0, "{s:?}");
        assert!(s.generated_pps >= s.pps, "{s:?}");
    }

    /// A TC egress program behind a router (jittergen's host bed) runs once per forwarded frame,
    /// at a rate that measures the receiving CPU: with a generator that did not write its frame
    /// anew, the router took only frames of fresh pages, ~1,400 a second.
    #[test]
    fn tc_egress_behind_a_router_runs_once_per_forwarded_frame() {
        use crate::usecases::jittergen::bed::Bed;
        bpf::check_privileges().unwrap();
        let bed = Bed::new("tpr").unwrap();
        let rx = Receiver::prepare_router(&bed.mid, "mid0").unwrap();
        let shot = bpf::load_constant(bpf::BPF_PROG_TYPE_SCHED_CLS, "tp_shot", bpf::TC_ACT_SHOT).unwrap();
        let egress = bed.mid.ifindex(Bed::EGRESS).unwrap();
        let _link = bed.mid.run_in(|| bpf::attach_tcx_egress(&shot, egress)).unwrap().unwrap();
        let frame = crate::frames::FrameSpec {
            ipv4: Some(crate::frames::Ipv4Spec { dst: Bed::RCV_V4, ..crate::frames::Ipv4Spec::from_src(Bed::SND_V4) }),
            ..Default::default()
        }
        .with_macs([0x02, 0x71, 0, 0, 1, 1], [0x02, 0x71, 0, 0, 1, 2])
        .build()
        .unwrap();
        let forwarded = Forwarded::open(&bed.mid).unwrap();
        let (fwd0, runs0) = (forwarded.count().unwrap(), shot.info().unwrap().run_cnt);
        let snd = bed.snd.ifindex("snd0").unwrap();
        let s = rx.measure(&bed.snd, snd, &frame, Counted::Prog(&shot), Duration::from_secs(1)).unwrap();
        let (fwd, runs) = (forwarded.count().unwrap() - fwd0, shot.info().unwrap().run_cnt - runs0);
        eprintln!("{s:?}; {fwd} forwarded, {runs} runs");
        let diag = || {
            ["mid0", "mid1"].map(|i| bed.mid.exec("ip", &["-s", "link", "show", i]).unwrap_or_default()).join("")
                + &bed.mid.exec("ethtool", &["-S", "mid0"]).unwrap_or_default()
                + &bed.snd.exec("ethtool", &["-S", "snd0"]).unwrap_or_default()
                + &bed.mid.exec("cat", &["/proc/net/snmp"]).unwrap_or_default()
        };
        assert!(s.pps > 100_000.0, "{s:?}\n{}", diag());
        // IPv6 chatter runs the program too, a few packets.
        assert!(runs >= fwd && runs - fwd < fwd / 100 + 100, "{fwd} forwarded, {runs} runs\n{}", diag());
        assert!(s.ns_per_pkt.is_some_and(|ns| ns > 0.0 && ns < 10_000.0), "{s:?}");
    }
}
