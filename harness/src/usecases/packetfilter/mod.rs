//! packetfilter in the harness: the conformance vectors, and a bench that measures load time,
//! verifier statistics, per-packet cost by packet class, packets per second and request latency
//! through the filter — for each library and for two references measured the same way: an
//! empty XDP program (the floor) and xdp-filter from xdp-tools.

pub mod bed;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use metrics::record::Row;

use super::UseCase;
use crate::bpf::{self, Prog};
use crate::frames::FrameSpec;
use crate::kernels::{self, Features};
use crate::measure::{load, Ctx};
use crate::netns::{NetNs, VethConfig, VethPair};
use bed::Filter;
use crate::process::Implementation;
use crate::reference::XdpFilter;
use crate::throughput::{Counted, Receiver};
use crate::traffic;
use super::latency_rows;

pub struct PacketFilter;

const USECASE: &str = "packetfilter";
const SENDER_IF: &str = "veth-s";
pub const FILTER_IF: &str = "veth-f";
const SENDER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const FILTER_HOST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const ECHO_PORT: u16 = 7777;
/// Rules besides the ones the classes hit, so that the tries are not trivially small.
const FILLER_RULES: u32 = 1000;

/// The packet classes of `test_run_ns`: (class, source address, what the bench config does).
pub fn classes() -> Vec<(&'static str, IpAddr)> {
    vec![
        ("ipv4_block", Ipv4Addr::new(10, 77, 1, 1).into()),
        ("ipv4_allow", SENDER.into()),
        ("ipv4_default", Ipv4Addr::new(10, 77, 2, 1).into()),
        ("ipv6_block", Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, 1).into()),
        ("non_ip", Ipv4Addr::UNSPECIFIED.into()),
    ]
}

fn bench_config() -> String {
    let mut yaml = String::from("rules:\n  ipv4:\n    default: allow\n    allow: [10.77.0.1]\n    block:\n      - 10.77.1.0/24\n");
    for i in 0..FILLER_RULES {
        yaml.push_str(&format!("      - 10.200.{}.{}\n", i / 250, i % 250 + 1));
    }
    yaml.push_str("  ipv6:\n    default: allow\n    block: [\"2001:db8:bad::/48\"]\n");
    yaml
}

/// Sender and filter host, one veth between them. The filter host answers UDP echo; its veth
/// end runs threaded NAPI for the throughput measurement.
pub struct Bed {
    pub sender: NetNs,
    pub filter: NetNs,
    pub veth: VethPair,
    rx: Receiver,
}

impl Bed {
    pub fn new() -> Result<Bed> {
        let sender = NetNs::new("pf-send")?;
        let filter = NetNs::new("pf-filter")?;
        let cfg = VethConfig {
            a_name: SENDER_IF.into(),
            b_name: FILTER_IF.into(),
            a_addrs: vec![format!("{SENDER}/24")],
            b_addrs: vec![format!("{FILTER_HOST}/24")],
            ..Default::default()
        };
        let veth = VethPair::new(&sender, &filter, &cfg)?;
        let rx = Receiver::prepare(&filter, FILTER_IF)?;
        Ok(Bed { sender, filter, veth, rx })
    }

    /// The frame of a class, addressed across the bed's veth.
    pub fn frame(&self, src: IpAddr) -> Result<Vec<u8>> {
        let spec = if src.is_unspecified() {
            FrameSpec { arp: Some(Default::default()), ..Default::default() }
        } else {
            FrameSpec::ip(src)
        };
        spec.with_macs(self.veth.a.mac, self.veth.b.mac).build()
    }

    /// Per-packet cost of `prog` for every class, `ctx.reps` times.
    /// Starts `imp` on the filter host with the bench configuration, written into `dir`.
    pub fn start(&self, imp: &Implementation, dir: &std::path::Path) -> Result<Filter> {
        let config = write_config(dir)?;
        Filter::start(imp, &self.filter, FILTER_IF, &config, &[], load::READY_TIMEOUT)
    }

    fn test_run_rows(&self, ctx: &Ctx, lib: &str, prog: &Prog) -> Result<Vec<Row>> {
        let repeat = ctx.scaled(100_000, 10_000) as u32;
        let mut rows = Vec::new();
        for (class, src) in classes() {
            let frame = self.frame(src)?;
            for rep in ctx.rep_range() {
                let ns = load::test_run_ns(prog, &frame, repeat)?;
                rows.push(Row::new(USECASE, lib, "test_run_ns", "ns", rep, ns).with_class(class));
            }
        }
        Ok(rows)
    }

    /// Throughput of blocked traffic under a generator that outruns the program
    /// ([`crate::throughput`]), and the loader's CPU use meanwhile.
    fn pps_rows(&self, ctx: &Ctx, lib: &str, prog: &Prog, loader: Option<u32>) -> Result<Vec<Row>> {
        let frame = self.frame(classes()[0].1)?;
        let duration = ctx.window();
        let mut rows = Vec::new();
        for rep in ctx.rep_range() {
            ctx.check_interrupted()?;
            let (started, usage) = (Instant::now(), loader.map(load::LoaderUse::start).transpose()?);
            let sample = self.rx.measure(&self.sender, self.veth.a.ifindex, &frame, Counted::Prog(prog), duration)?;
            rows.extend(sample.rows(USECASE, lib, rep));
            if let Some(usage) = usage {
                rows.extend(usage.rows(USECASE, lib, rep, started.elapsed())?);
            }
        }
        Ok(rows)
    }

    /// Round trips of allowed UDP requests through the filter.
    fn latency_rows(&self, ctx: &Ctx, lib: &str) -> Result<Vec<Row>> {
        let count = ctx.scaled(2000, 300) as u32;
        let server = SocketAddr::new(FILTER_HOST.into(), ECHO_PORT);
        let mut rows = Vec::new();
        for rep in ctx.rep_range() {
            ctx.check_interrupted()?;
            let (rtts, lost) = traffic::udp_echo_rtt_us(&self.sender, &self.filter, server, count)?;
            ensure!(lost == 0, "{lib}: {lost} of {count} allowed UDP requests got no answer");
            rows.extend(latency_rows(ctx, USECASE, lib, "latency", rep, rtts));
        }
        Ok(rows)
    }
}

/// Writes the bench configuration into `dir/inputs`.
pub fn write_config(dir: &std::path::Path) -> Result<PathBuf> {
    let path = dir.join("inputs").join("packetfilter-bench.yml");
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    std::fs::write(&path, bench_config()).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

impl UseCase for PacketFilter {
    fn name(&self) -> &'static str {
        USECASE
    }

    fn conformance(&self, _ctx: &Ctx, imp: &Implementation) -> Result<Vec<String>> {
        bed::conformance(imp)
    }

    fn measure(&self, ctx: &Ctx, imp: &Implementation) -> Result<Vec<Row>> {
        let lib = imp.lib.as_str();
        let bed = Bed::new()?;
        let config = write_config(&ctx.out)?;
        let args = ["--config", config.to_str().context("UTF-8 path")?, "--iface", FILTER_IF];
        let mut rows = Vec::new();

        // Load and attach: time to ready (the median of load::STARTS_PER_REP starts), verifier
        // and JIT statistics, memory.
        for rep in ctx.rep_range() {
            ctx.check_interrupted()?;
            rows.extend(load::load_rows(imp, rep, || load::start(imp, &args, &bed.filter))?);
        }

        // One instance for the per-packet and traffic measurements.
        let mut filter = bed.start(imp, &ctx.out)?;
        let prog = Prog::from_id(filter.prog_id)?;
        rows.extend(bed.test_run_rows(ctx, lib, &prog)?);
        rows.extend(bed.pps_rows(ctx, lib, &prog, Some(filter.pid))?);
        rows.extend(bed.latency_rows(ctx, lib)?);
        drop(prog);
        let stopped = filter.stop(Duration::from_secs(10))?;
        ensure!(stopped.exit_code == 0, "{lib} exited with {} on SIGINT: {}", stopped.exit_code, stopped.stderr);
        ensure!(bed.filter.xdp(FILTER_IF)?.is_none(), "{lib} left an XDP program attached after exit");
        Ok(rows)
    }

    fn references(&self, ctx: &Ctx) -> Result<Vec<Row>> {
        let bed = Bed::new()?;
        let mut rows = Vec::new();

        // The floor: programs that only return a verdict, attached by the harness itself.
        const EMPTY: &str = "ref:empty XDP program";
        let pass = bpf::load_constant_xdp("empty_pass", bpf::XDP_PASS)?;
        let drop = bpf::load_constant_xdp("empty_drop", bpf::XDP_DROP)?;
        rows.extend(bed.test_run_rows(ctx, EMPTY, &pass)?);
        {
            let _link = bed.filter.run_in(|| bpf::attach_xdp(&drop, bed.veth.b.ifindex))??;
            rows.extend(bed.pps_rows(ctx, EMPTY, &drop, None)?);
        }
        {
            let _link = bed.filter.run_in(|| bpf::attach_xdp(&pass, bed.veth.b.ifindex))??;
            rows.extend(bed.latency_rows(ctx, EMPTY)?);
        }

        // xdp-filter from xdp-tools, with the addresses of the blocked classes on its deny list
        // (it matches exact addresses, no prefixes).
        const XDP_FILTER: &str = "ref:xdp-filter";
        let blocked: Vec<IpAddr> = classes().into_iter().filter(|(c, _)| c.ends_with("_block")).map(|(_, a)| a).collect();
        let xf = XdpFilter::load(&bed.filter, FILTER_IF, &blocked)?;
        let prog = xf.prog()?;
        rows.extend(bed.test_run_rows(ctx, XDP_FILTER, &prog)?);
        rows.extend(bed.pps_rows(ctx, XDP_FILTER, &prog, None)?);
        rows.extend(bed.latency_rows(ctx, XDP_FILTER)?);
        Ok(rows)
    }

    fn on_kernel(&self, imp: &Implementation, _f: &Features) -> (String, String) {
        kernels::wire(kernels::from_conformance(bed::conformance_report(imp)), "veth traffic", || bed::wire_check(imp))
    }
}
