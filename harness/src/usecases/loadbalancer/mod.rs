//! loadbalancer in the harness: the conformance vectors, and a bench on the bridge test bed
//! ([`bed::Bed`], native XDP) that measures load time, verifier statistics,
//! per-packet cost by packet class, connections per second with the spread over the backends,
//! connection and request latency, the loader's CPU use, and how many open connections move
//! when the backend set changes or the balancer restarts — for each library and for two
//! references: the same clients talking to one backend directly, and an empty XDP program
//! (the floor of `test_run_ns`).

pub mod bed;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use metrics::record::Row;

use super::{latency_rows, UseCase};
use crate::bpf::{self, Prog};
use crate::frames::{FrameSpec, Ipv4Spec};
use crate::kernels::{self, Features};
use bed::{self as lb, Balancer, Bed, Held, TcpFrame, VIP4, VIP6};
use crate::measure::{load, Ctx};
use crate::process::Implementation;
use crate::throughput;

pub struct LoadBalancer;

const USECASE: &str = lb::USECASE;
const CONCURRENCY: usize = 64;
const RUN_MAX: Duration = Duration::from_secs(300);
const HELD: usize = 200;
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const DIRECT: &str = "ref:direct to one backend";
const EMPTY: &str = "ref:empty XDP program";

/// The packet classes of `test_run_ns`: (class, frame). `*_syn` opens a connection (Maglev
/// lookup and connection-table update every time), `*_conn` continues one (a table hit).
fn classes() -> Result<Vec<(&'static str, Vec<u8>)>> {
    let macs = |mut f: TcpFrame| {
        f.src_mac = Some(crate::netns::format_mac(&[0x02, 0x1b, 0, 0, 0, 1]));
        f.dst_mac = Some(crate::netns::format_mac(&[0x02, 0x1b, 0, 0, 0, 2]));
        f
    };
    let client4: IpAddr = lb::CLIENT4.into();
    let client6: IpAddr = lb::v6_of(lb::CLIENT4).into();
    let syn4 = macs(TcpFrame::syn(client4, 40000, VIP4.into(), lb::PORTS[0]));
    let conn4 = TcpFrame { flags: 0x10, ..syn4.clone() };
    let syn6 = macs(TcpFrame::syn(client6, 40000, VIP6.into(), lb::PORTS[0]));
    let conn6 = TcpFrame { flags: 0x10, ..syn6.clone() };
    let udp4 = Ipv4Spec { dst: VIP4, ..Ipv4Spec::from_src(lb::CLIENT4) };
    Ok(vec![
        ("tcp_v4_syn", syn4.build()?),
        ("tcp_v4_conn", conn4.build()?),
        ("tcp_v6_syn", syn6.build()?),
        ("tcp_v6_conn", conn6.build()?),
        ("udp_v4_vip", FrameSpec { ipv4: Some(udp4), ..Default::default() }.build()?),
        ("non_ip", FrameSpec { arp: Some(Default::default()), ..Default::default() }.build()?),
    ])
}

/// Per-packet cost of `prog` for every class, `ctx.reps` times. The `*_conn` classes run after
/// their `*_syn` class, so their flows are in the connection table.
fn test_run_rows(ctx: &Ctx, lib: &str, prog: &Prog) -> Result<Vec<Row>> {
    let repeat = ctx.scaled(100_000, 10_000) as u32;
    let mut rows = Vec::new();
    for (class, frame) in classes()? {
        for rep in ctx.rep_range() {
            let ns = load::test_run_ns(prog, &frame, repeat)?;
            rows.push(Row::new(USECASE, lib, "test_run_ns", "ns", rep, ns).with_class(class));
        }
    }
    Ok(rows)
}

/// Connections per second (many clients at once), the spread over the backends, and the
/// loader's CPU use meanwhile; then connect-to-answer latency (one connection at a time) and
/// request round trips on one open connection.
fn traffic_rows(
    ctx: &Ctx,
    bed: &Bed,
    lib: &str,
    target: SocketAddr,
    weights: Option<&BTreeMap<String, u32>>,
    loader: Option<u32>,
) -> Result<Vec<Row>> {
    let count = ctx.scaled(10_000, 2_000) as usize;
    let mut rows = Vec::new();
    for rep in ctx.rep_range() {
        ctx.check_interrupted()?;
        let usage = loader.map(load::LoaderUse::start).transpose()?;
        let run = lb::connections(&bed.client, target, count, CONCURRENCY, 2, RUN_MAX)?;
        ensure!(run.failures().is_empty(), "{lib}: connections failed: {:?}", run.failures());
        rows.push(Row::new(USECASE, lib, "conn_per_s", "conn/s", rep, run.conn_per_s()));
        if let Some(weights) = weights {
            let dev = lb::spread_max_dev_pct(&run.per_backend(), weights);
            rows.push(Row::new(USECASE, lib, "spread_max_dev_pct", "%", rep, dev));
        }
        if let Some(usage) = usage {
            rows.extend(usage.rows(USECASE, lib, rep, run.elapsed)?);
        }
        let conn = lb::conn_latencies_us(&bed.client, target, ctx.scaled(1000, 200) as usize)?;
        rows.extend(latency_rows(ctx, USECASE, lib, "conn_latency", rep, conn));
        let (rtt, _) = lb::request_rtts_us(&bed.client, target, ctx.scaled(5000, 1000) as usize)?;
        rows.extend(latency_rows(ctx, USECASE, lib, "latency", rep, rtt));
    }
    Ok(rows)
}

/// Throughput of packets of an open connection (the table hit every later packet of a flow
/// takes), on a bed of its own ([`throughput::Pair`]): the balancer's `XDP_TX` goes back to a
/// sender that drops it, so no backend's stack competes for the CPUs. `prog` is attached on
/// the pair's receiving end.
fn throughput_rows(ctx: &Ctx, pair: &throughput::Pair, lib: &str, prog: &Prog) -> Result<Vec<Row>> {
    let classes = classes()?;
    let frame = |name: &str| classes.iter().find(|(c, _)| *c == name).map(|(_, f)| f.clone()).expect("a class");
    // The SYN puts the flow in the connection table; the generator sends its later packets.
    prog.test_run_xdp(&frame("tcp_v4_syn"))?;
    let duration = ctx.window();
    let mut rows = Vec::new();
    for rep in ctx.rep_range() {
        ctx.check_interrupted()?;
        rows.extend(pair.measure(&frame("tcp_v4_conn"), prog, duration)?.rows(USECASE, lib, rep));
    }
    Ok(rows)
}

/// The throughput bed's config: two backends by MAC (no neighbours needed).
fn throughput_config(ctx: &Ctx, lib: &str) -> Result<PathBuf> {
    let backends = [lb::host_mac(1, 0), lb::host_mac(1, 1)].map(|m| format!("\"{}\"", crate::netns::format_mac(&m)));
    let text = format!(
        "listenInterface: {}\ntcp_port: {}\nvips: [{VIP4}, \"{VIP6}\"]\nbackends: [{}]\n",
        lb::IFACE,
        lb::PORTS[0],
        backends.join(", ")
    );
    write(ctx, &format!("loadbalancer-throughput-{lib}.yml"), &text)
}

fn write(ctx: &Ctx, name: &str, text: &str) -> Result<PathBuf> {
    let path = ctx.out.join("inputs").join(name);
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The bench's configs: b0 (by MAC) and b1 (by IP); and with b2 (by MAC) added.
fn configs(bed: &Bed) -> (String, String) {
    let [b0, b1, b2] = [&bed.backends[0], &bed.backends[1], &bed.backends[2]];
    (bed.config(&[b0.by_mac(), b1.by_ip()]), bed.config(&[b0.by_mac(), b1.by_ip(), b2.by_mac()]))
}

/// Open connections that move across each kind of change, in percent: a SIGHUP that adds a
/// backend and one that removes it again (the connection table keeps connections: 0 expected),
/// a restart with the same backends (Maglev alone: 0 expected), and a restart with a backend
/// more (Maglev alone: about the new backend's share).
fn moved_rows(ctx: &Ctx, bed: &Bed, imp: &Implementation, path: &Path, two: &str, three: &str) -> Result<Vec<Row>> {
    let lib = imp.lib.as_str();
    let target = SocketAddr::new(VIP4.into(), lb::PORTS[0]);
    let start =
        || Balancer::start(imp, &bed.balancer, lb::IFACE, path, &["--stats-interval-ms", "0"], load::READY_TIMEOUT);
    let mut rows = Vec::new();
    let mut balancer = start()?;
    let row =
        |class: &str, rep: u32, pct: f64| Row::new(USECASE, lib, "conns_moved_pct", "%", rep, pct).with_class(class);
    for rep in ctx.rep_range() {
        ctx.check_interrupted()?;
        for (class, text) in [("reload_add_backend", three), ("reload_remove_backend", two)] {
            let held = Held::open(&bed.client, target, HELD)?;
            std::fs::write(path, text)?;
            balancer.reload(load::READY_TIMEOUT)?;
            rows.push(row(class, rep, Held::moved_pct(&held.finish())));
        }
        for (class, text) in [("restart", two), ("restart_add_backend", three)] {
            let held = Held::open(&bed.client, target, HELD)?;
            let stopped = balancer.stop(STOP_TIMEOUT)?;
            ensure!(stopped.exit_code == 0, "{lib} exited with {}: {}", stopped.exit_code, stopped.stderr);
            std::fs::write(path, text)?;
            balancer = start()?;
            rows.push(row(class, rep, Held::moved_pct(&held.finish())));
        }
        std::fs::write(path, two)?;
        balancer.reload(load::READY_TIMEOUT)?;
    }
    let stopped = balancer.stop(STOP_TIMEOUT)?;
    ensure!(stopped.exit_code == 0, "{lib} exited with {}: {}", stopped.exit_code, stopped.stderr);
    Ok(rows)
}

impl UseCase for LoadBalancer {
    fn name(&self) -> &'static str {
        USECASE
    }

    fn conformance(&self, _ctx: &Ctx, imp: &Implementation) -> Result<Vec<String>> {
        lb::conformance(imp)
    }

    fn measure(&self, ctx: &Ctx, imp: &Implementation) -> Result<Vec<Row>> {
        let lib = imp.lib.as_str();
        let bed = Bed::new(&format!("lbm-{lib}"), 3)?;
        bed.warm_neighbours()?;
        let (two, three) = configs(&bed);
        let path = write(ctx, &format!("loadbalancer-{lib}.yml"), &two)?;
        let args = ["--config", path.to_str().context("UTF-8 path")?, "--stats-interval-ms", "0"];
        let mut rows = Vec::new();

        // Load and attach: time to ready (the median of load::STARTS_PER_REP starts), verifier
        // and JIT statistics, memory.
        for rep in ctx.rep_range() {
            ctx.check_interrupted()?;
            rows.extend(load::load_rows(imp, rep, || load::start(imp, &args, &bed.balancer))?);
        }

        // One instance for the per-packet and traffic measurements.
        let mut balancer =
            Balancer::start(imp, &bed.balancer, lb::IFACE, &path, &["--stats-interval-ms", "0"], load::READY_TIMEOUT)?;
        let prog = Prog::from_id(balancer.prog_id)?;
        rows.extend(test_run_rows(ctx, lib, &prog)?);
        drop(prog);
        let weights: BTreeMap<String, u32> = [("b0".to_string(), 1), ("b1".to_string(), 1)].into();
        let target = SocketAddr::new(VIP4.into(), lb::PORTS[0]);
        rows.extend(traffic_rows(ctx, &bed, lib, target, Some(&weights), Some(balancer.pid))?);
        let stopped = balancer.stop(STOP_TIMEOUT)?;
        ensure!(stopped.exit_code == 0, "{lib} exited with {}: {}", stopped.exit_code, stopped.stderr);

        // Throughput on a bed of its own.
        let pair = throughput::Pair::new(&format!("lbt-{lib}"), lb::IFACE)?;
        let config = throughput_config(ctx, lib)?;
        let mut balancer = Balancer::start(imp, &pair.receiver, lb::IFACE, &config, &["--stats-interval-ms", "0"], load::READY_TIMEOUT)?;
        let prog = Prog::from_id(balancer.prog_id)?;
        let measured = throughput_rows(ctx, &pair, lib, &prog);
        drop(prog);
        let stopped = balancer.stop(STOP_TIMEOUT)?;
        rows.extend(measured?);
        ensure!(stopped.exit_code == 0, "{lib} exited with {}: {}", stopped.exit_code, stopped.stderr);

        rows.extend(moved_rows(ctx, &bed, imp, &path, &two, &three)?);
        ensure!(bed.balancer.xdp(lb::IFACE)?.is_none(), "{lib} left an XDP program attached after exit");
        Ok(rows)
    }

    fn references(&self, ctx: &Ctx) -> Result<Vec<Row>> {
        let bed = Bed::new("lbm-ref", 3)?;
        let mut rows = Vec::new();
        // The same clients, straight to one backend: what the balancer's path costs on top.
        let b0 = SocketAddr::new(bed.backends[0].ip4.into(), lb::PORTS[0]);
        rows.extend(traffic_rows(ctx, &bed, DIRECT, b0, None, None)?);
        // The floor of the per-packet cost: a program that only returns XDP_PASS.
        let pass = bpf::load_constant_xdp("empty_pass", bpf::XDP_PASS)?;
        rows.extend(test_run_rows(ctx, EMPTY, &pass)?);
        // And of the throughput: a program that sends every packet back (XDP_TX), as the
        // balancer does.
        let pair = throughput::Pair::new("lbt-ref", lb::IFACE)?;
        let tx = bpf::load_constant_xdp("empty_tx", bpf::XDP_TX)?;
        let _link = pair.receiver.run_in(|| bpf::attach_xdp(&tx, pair.veth.b.ifindex))??;
        rows.extend(throughput_rows(ctx, &pair, EMPTY, &tx)?);
        Ok(rows)
    }

    fn on_kernel(&self, imp: &Implementation, _f: &Features) -> (String, String) {
        kernels::wire(kernels::from_conformance(lb::conformance_report(imp)), "veth TCP", || lb::wire_check(imp))
    }
}
