//! Test-bed pieces of the loadbalancer use case, shared by its tests and the CLI:
//!
//! * frames: [`TcpFrame`] (a TCP segment over IPv4 or IPv6) and [`LbFrame`] (that, or any
//!   [`crate::frames::FrameSpec`]);
//! * [`Model`]: the forwarding policy as a plain function of config, connection state and frame,
//!   predicting the backend of a flow with the shared Maglev table and flow hash;
//! * [`Vectors`]: `scenarios/loadbalancer/vectors.yaml`, checked against the model, and the
//!   conformance run over them ([`conformance_report`]) through `BPF_PROG_TEST_RUN`;
//! * [`Balancer`]: a running implementation with handles on its program and counters;
//! * [`Bed`]: client, balancer and backend namespaces on one bridge (in a `switch` namespace),
//!   the VIPs on each backend's `lo`, and a tokio server per backend that answers with its
//!   name; [`Bed::connections`] (many concurrent clients) and [`Held`] (connections kept open
//!   across a change) drive real TCP through it.
//!
//! XDP mode: the bed supports native XDP on the balancer's veth, the contract's default and
//! what the harness measures. Native `XDP_TX` on veth needs two things the bed sets up
//! (see ENVIRONMENT.md, "Two veth pitfalls"): an XDP program on the bridge-side peer of the
//! balancer's veth (an `XDP_PASS` one, attached by the harness), and checksums computed by the
//! sender (`ethtool -K eth0 tx off` in the client), since native XDP drops veth's
//! CHECKSUM_PARTIAL metadata and the backend would discard the segments. Generic (`skb`) mode
//! works on the same bed.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bpfeval_shared::loadbalancer::{abi, maglev, Config};
use pnet::packet::ip::IpNextHeaderProtocol;
use pnet::packet::ipv4::MutableIpv4Packet;
use pnet::packet::ipv6::MutableIpv6Packet;
use pnet::packet::tcp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bpf::{self, Map, Prog};
use crate::conformance::{refusal_problems, KernelLimits};
use crate::frames::{self, FrameSpec, VlanTag};
use crate::netns::{format_mac, NetNs, VethConfig, VethPair, XdpAttachment};
// The run-level types of a conformance run and an implementation's exit are the same as
// packetfilter's.
pub use crate::conformance::{ConformanceReport, Mismatch};
pub use crate::usecases::packetfilter::bed::{wait_prog_gone, Stopped};
use crate::process::{Implementation, Running, TempDir};

pub const USECASE: &str = "loadbalancer";
/// Kernel name of the XDP program every library loads.
pub const PROG_NAME: &str = "loadbalancer";
pub const VERDICTS_MAP: &str = "verdicts";
pub const BACKEND_HITS_MAP: &str = "backend_hits";

// ---------------------------------------------------------------------------------------------
// Verdicts and counters

/// What the program does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// `XDP_TX` to a backend.
    Tx,
    Pass,
    Drop,
}

impl Expect {
    pub fn xdp_retval(self) -> u32 {
        match self {
            Expect::Tx => bpf::XDP_TX,
            Expect::Pass => bpf::XDP_PASS,
            Expect::Drop => bpf::XDP_DROP,
        }
    }
}

/// One of the seven verdict counters of `verdicts` (names as in stats lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    PassNonIp,
    PassOther,
    TxConn,
    TxNew,
    DropMalformed,
    DropFragment,
    DropNoBackend,
}

impl Verdict {
    pub fn index(self) -> u32 {
        match self {
            Verdict::PassNonIp => abi::VERDICT_PASS_NON_IP,
            Verdict::PassOther => abi::VERDICT_PASS_OTHER,
            Verdict::TxConn => abi::VERDICT_TX_CONN,
            Verdict::TxNew => abi::VERDICT_TX_NEW,
            Verdict::DropMalformed => abi::VERDICT_DROP_MALFORMED,
            Verdict::DropFragment => abi::VERDICT_DROP_FRAGMENT,
            Verdict::DropNoBackend => abi::VERDICT_DROP_NO_BACKEND,
        }
    }

    pub fn name(self) -> &'static str {
        abi::VERDICT_NAMES[self.index() as usize]
    }

    pub fn expect(self) -> Expect {
        match self {
            Verdict::PassNonIp | Verdict::PassOther => Expect::Pass,
            Verdict::TxConn | Verdict::TxNew => Expect::Tx,
            _ => Expect::Drop,
        }
    }
}

/// The `verdicts` counters in `abi` index order (seven verdicts, then `events_lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters(pub [u64; abi::VERDICT_COUNT as usize]);

impl Counters {
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

    /// `self - earlier`, counter by counter.
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut d = Counters::default();
        for i in 0..d.0.len() {
            d.0[i] = self.0[i].wrapping_sub(earlier.0[i]);
        }
        d
    }
}

impl std::fmt::Display for Counters {
    /// The non-zero counters, `tx_new=1 pass_other=2`, or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = abi::VERDICT_NAMES
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n != 0)
            .map(|(name, n)| format!("{name}={}", n as i64))
            .collect();
        write!(f, "{}", if parts.is_empty() { "none".into() } else { parts.join(" ") })
    }
}

/// The `backends` array of a `stats` line: backend id -> packets.
pub fn backend_packets(line: &Value) -> BTreeMap<String, u64> {
    line["backends"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| Some((b["id"].as_str()?.to_string(), b["packets"].as_u64()?))).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Frames

/// A TCP segment over IPv4 or IPv6 (the family of `src` and `dst`), with valid checksums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpFrame {
    pub src: IpAddr,
    pub dst: IpAddr,
    #[serde(default = "default_sport")]
    pub src_port: u16,
    #[serde(default = "default_dport")]
    pub dst_port: u16,
    /// TCP flags byte (default SYN).
    #[serde(default = "default_flags")]
    pub flags: u8,
    /// IPv4 options bytes (a multiple of 4, at most 40: NOPs).
    #[serde(default)]
    pub options_len: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vlan: Vec<VlanTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Cut the finished frame to this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_mac: Option<String>,
}

fn default_sport() -> u16 {
    40000
}
fn default_dport() -> u16 {
    80
}
fn default_flags() -> u8 {
    0x02
}

impl TcpFrame {
    /// A SYN from `src:sport` to `dst:dport`.
    pub fn syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> TcpFrame {
        TcpFrame {
            src,
            dst,
            src_port: sport,
            dst_port: dport,
            flags: default_flags(),
            options_len: 0,
            vlan: Vec::new(),
            payload: None,
            truncate: None,
            src_mac: None,
            dst_mac: None,
        }
    }

    pub fn build(&self) -> Result<Vec<u8>> {
        let payload = self.payload.as_deref().unwrap_or("").as_bytes();
        let spec = frames::TcpSpec { src_port: self.src_port, dst_port: self.dst_port, flags: self.flags };
        let (ethertype, l3) = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let seg = frames::tcp_segment(&spec, payload, |p| tcp::ipv4_checksum(p, &s, &d));
                ensure!(
                    self.options_len.is_multiple_of(4) && self.options_len <= 40,
                    "options_len: a multiple of 4 up to 40"
                );
                let hlen = 20 + self.options_len;
                let mut buf = vec![0u8; hlen + seg.len()];
                {
                    let mut p = MutableIpv4Packet::new(&mut buf).expect("room for IPv4");
                    p.set_version(4);
                    p.set_header_length((hlen / 4) as u8);
                    p.set_total_length(buf_len(hlen + seg.len())?);
                    p.set_identification(0x4242);
                    p.set_flags(0b010);
                    p.set_ttl(64);
                    p.set_next_level_protocol(IpNextHeaderProtocol::new(6));
                    p.set_source(s);
                    p.set_destination(d);
                }
                buf[20..hlen].fill(1); // NOP options
                let c = pnet::util::checksum(&buf[..hlen], 5);
                buf[10..12].copy_from_slice(&c.to_be_bytes());
                buf[hlen..].copy_from_slice(&seg);
                (frames::ETHERTYPE_IPV4, buf)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                ensure!(self.options_len == 0, "options_len is for IPv4");
                let seg = frames::tcp_segment(&spec, payload, |p| tcp::ipv6_checksum(p, &s, &d));
                let mut buf = vec![0u8; 40 + seg.len()];
                {
                    let mut p = MutableIpv6Packet::new(&mut buf).expect("room for IPv6");
                    p.set_version(6);
                    p.set_payload_length(buf_len(seg.len())?);
                    p.set_next_header(IpNextHeaderProtocol::new(6));
                    p.set_hop_limit(64);
                    p.set_source(s);
                    p.set_destination(d);
                }
                buf[40..].copy_from_slice(&seg);
                (frames::ETHERTYPE_IPV6, buf)
            }
            _ => bail!("src and dst must be of one family"),
        };
        let src_mac = frames::parse_mac(self.src_mac.as_deref().unwrap_or(frames::DEFAULT_SRC_MAC))?;
        let dst_mac = frames::parse_mac(self.dst_mac.as_deref().unwrap_or(frames::DEFAULT_DST_MAC))?;
        let mut frame = Vec::with_capacity(14 + 4 * self.vlan.len() + l3.len());
        frame.extend_from_slice(&dst_mac);
        frame.extend_from_slice(&src_mac);
        for tag in &self.vlan {
            ensure!(tag.vid < 4096 && tag.pcp < 8, "VLAN id is 12 bits, priority 3 bits");
            frame.extend_from_slice(&tag.tpid.to_be_bytes());
            frame.extend_from_slice(&((u16::from(tag.pcp) << 13) | tag.vid).to_be_bytes());
        }
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(&l3);
        if let Some(n) = self.truncate {
            ensure!(n <= frame.len(), "truncate: {n} is longer than the {}-byte frame", frame.len());
            frame.truncate(n);
        }
        Ok(frame)
    }
}

fn buf_len(n: usize) -> Result<u16> {
    u16::try_from(n).context("packet too long")
}

/// A vector's frame: a TCP segment, or anything [`FrameSpec`] builds (UDP, ARP, raw
/// ethertypes, malformed IP headers, fragments and extension headers with raw payloads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LbFrame {
    Tcp(TcpOnly),
    Other(FrameSpec),
}

/// `{tcp: {...}}` and nothing else beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpOnly {
    pub tcp: TcpFrame,
}

impl LbFrame {
    pub fn build(&self) -> Result<Vec<u8>> {
        match self {
            LbFrame::Tcp(TcpOnly { tcp }) => tcp.build(),
            LbFrame::Other(spec) => spec.build(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model

/// The forwarding policy as a plain function (see `bpfeval_shared::loadbalancer::abi`): the
/// verdict of each frame and, for `tx_*`, the backend (its index in the config, which is also
/// its slot in a freshly started balancer). Keeps the connection table of one balancer run.
#[derive(Debug, Clone)]
pub struct Model {
    vips: Vec<IpAddr>,
    ports: Vec<u16>,
    macs: Vec<[u8; 6]>,
    table: Vec<u32>,
    conns: HashMap<[u8; abi::FLOW_SIZE], u32>,
}

impl Model {
    /// From a config whose backends are all given by MAC.
    pub fn new(config: &Config) -> Result<Model> {
        let servers = config.resolve(0, Path::new("<model>"))?;
        let entries: Vec<maglev::Entry<'_>> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| maglev::Entry { id: &s.id, weight: s.weight, slot: i as u32 })
            .collect();
        Ok(Model {
            vips: config.vips.clone(),
            ports: config.ports.clone(),
            macs: servers.iter().map(|s| s.mac).collect(),
            table: maglev::build(&entries),
            conns: HashMap::new(),
        })
    }

    /// The backend's MAC.
    pub fn mac(&self, backend: usize) -> [u8; 6] {
        self.macs[backend]
    }

    /// What the program must do with `frame`; updates the connection table like it.
    pub fn classify(&mut self, frame: &[u8]) -> (Verdict, Option<usize>) {
        use Verdict::*;
        if frame.len() < 14 {
            return (DropMalformed, None);
        }
        let be16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
        let listed = |vips: &[IpAddr], a: IpAddr| vips.is_empty() || vips.contains(&a);
        let (saddr, daddr, l4) = match be16(12) {
            frames::ETHERTYPE_IPV4 => {
                let ip = &frame[14..];
                let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f);
                if ip.len() < 20 || ip[0] >> 4 != 4 || ihl < 5 || ip.len() < ihl * 4 {
                    return (DropMalformed, None);
                }
                let s = IpAddr::from(<[u8; 4]>::try_from(&ip[12..16]).unwrap());
                let d = IpAddr::from(<[u8; 4]>::try_from(&ip[16..20]).unwrap());
                if !listed(&self.vips, d) || ip[9] != 6 {
                    return (PassOther, None);
                }
                if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
                    return (DropFragment, None);
                }
                (s, d, 14 + ihl * 4)
            }
            frames::ETHERTYPE_IPV6 => {
                let ip = &frame[14..];
                if ip.len() < 40 || ip[0] >> 4 != 6 {
                    return (DropMalformed, None);
                }
                let s = IpAddr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
                let d = IpAddr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
                if !listed(&self.vips, d) {
                    return (PassOther, None);
                }
                match ip[6] {
                    44 => return (DropFragment, None),
                    6 => {}
                    _ => return (PassOther, None),
                }
                (s, d, 14 + 40)
            }
            _ => return (PassNonIp, None),
        };
        if frame.len() < l4 + 4 {
            return (DropMalformed, None);
        }
        if !self.ports.contains(&be16(l4 + 2)) {
            return (PassOther, None);
        }
        if frame.len() < l4 + 20 {
            return (DropMalformed, None);
        }
        let flow = abi::flow_bytes(saddr, daddr, be16(l4), be16(l4 + 2));
        let syn = frame[l4 + 13] & (abi::TCP_SYN | abi::TCP_ACK) == abi::TCP_SYN;
        match self.conns.get(&flow) {
            Some(&slot) if !syn => return (TxConn, Some(slot as usize)),
            _ => {}
        }
        match maglev::lookup(&self.table, &flow) {
            abi::NO_BACKEND => (DropNoBackend, None),
            slot => {
                self.conns.insert(flow, slot);
                (TxNew, Some(slot as usize))
            }
        }
    }

    /// The frame as the program leaves it for `XDP_TX` to `backend`.
    pub fn rewritten(&self, frame: &[u8], backend: usize) -> Vec<u8> {
        let mut out = frame.to_vec();
        out.copy_within(0..6, 6);
        out[..6].copy_from_slice(&self.macs[backend]);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Conformance vectors

/// `scenarios/loadbalancer/vectors.yaml` in the workspace.
pub fn vectors_path() -> PathBuf {
    crate::process::workspace_dir().join("scenarios").join(USECASE).join("vectors.yaml")
}

/// The vectors file:
///
/// ```yaml
/// cases:
///   - name: thesis-config
///     config: {tcp_port: 8080, backends: ["02:00:00:00:01:01", "02:00:00:00:01:02"]}
///     packets:
///       - name: syn
///         frame: {tcp: {src: 10.0.0.1, dst: 10.0.0.100, dst_port: 8080}}
///         expect: tx            # tx | pass | drop
///         verdict: tx_new       # the one `verdicts` counter that goes up
///     sweep: 300                # optional: that many more flows like the first tx packet
/// ```
/// The backend of every `tx` packet is the model's prediction (shared Maglev table and flow
/// hash), and the rewritten frame must be exactly the model's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vectors {
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A loadbalancer `config.yml` without `listenInterface`; backends given by MAC.
    pub config: yaml_serde::Value,
    pub packets: Vec<PacketVector>,
    /// Flows derived from the case's first `tx_new` packet (other source address and port),
    /// each sent twice: as a SYN (`tx_new` to the predicted backend), then as an ACK (`tx_conn`
    /// to the same one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketVector {
    pub name: String,
    pub frame: LbFrame,
    pub expect: Expect,
    pub verdict: Verdict,
    /// Shorter than an Ethernet header: the kernel refuses to run a program on it (the
    /// verdict is the one the program would give).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kernel_refuses: bool,
}

impl Vectors {
    pub fn load(path: &Path) -> Result<Vectors> {
        crate::scenario::load_with(path, Vectors::parse)
    }

    /// Parses and checks the text of a vectors file.
    pub fn parse(text: &str) -> Result<Vectors> {
        let v: Vectors = yaml_serde::from_str(text).context("parsing")?;
        v.check().context("checking")?;
        Ok(v)
    }

    /// The loadbalancer vectors of the workspace.
    pub fn workspace() -> Result<Vectors> {
        Vectors::load(&vectors_path())
    }

    pub fn packet_count(&self) -> usize {
        self.cases.iter().map(|c| c.packets.len() + 2 * c.sweep.unwrap_or(0) as usize).sum()
    }

    /// Unique names, configs the shared parser accepts (without an interface), frames that
    /// build (at least an Ethernet header), `expect` agreeing with `verdict`, and every
    /// verdict agreeing with the [`Model`] replaying the case.
    pub fn check(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for case in &self.cases {
            ensure!(names.insert(case.name.as_str()), "duplicate case name `{}`", case.name);
            let config = case.parsed_config().with_context(|| format!("case `{}`", case.name))?;
            ensure!(config.interface.is_none(), "case `{}`: leave `listenInterface` out", case.name);
            let mut model = Model::new(&config).with_context(|| format!("case `{}`", case.name))?;
            let mut pnames = std::collections::HashSet::new();
            for p in &case.packets {
                let at = || format!("case `{}`, packet `{}`", case.name, p.name);
                ensure!(pnames.insert(p.name.as_str()), "{}: duplicate packet name", at());
                ensure!(p.verdict.expect() == p.expect, "{}: `expect` contradicts verdict {}", at(), p.verdict.name());
                let frame = p.frame.build().with_context(at)?;
                crate::conformance::check_kernel_refuses(p.kernel_refuses, &frame).with_context(at)?;
                let (verdict, _) = model.classify(&frame);
                ensure!(
                    verdict == p.verdict,
                    "{}: the vector says {} but the reference model says {}\n{}",
                    at(),
                    p.verdict.name(),
                    verdict.name(),
                    frames::hex(&frame)
                );
            }
            if case.sweep.is_some() {
                case.sweep_template().with_context(|| format!("case `{}`", case.name))?;
            }
        }
        Ok(())
    }
}

impl Case {
    pub fn parsed_config(&self) -> Result<Config> {
        Ok(Config::parse(&self.config_yaml(None)?, Path::new("<vectors>"))?)
    }

    /// The config as YAML text, with `listenInterface` set to `iface` if given.
    pub fn config_yaml(&self, iface: Option<&str>) -> Result<String> {
        let mut config = self.config.clone();
        if let Some(iface) = iface {
            config
                .as_mapping_mut()
                .with_context(|| format!("case `{}`: config is not a mapping", self.name))?
                .insert("listenInterface".into(), iface.into());
        }
        Ok(yaml_serde::to_string(&config)?)
    }

    /// The first packet that opens a flow (a TCP frame with verdict `tx_new`).
    fn sweep_template(&self) -> Result<TcpFrame> {
        self.packets
            .iter()
            .find_map(|p| match (&p.frame, p.verdict) {
                (LbFrame::Tcp(TcpOnly { tcp }), Verdict::TxNew) => Some(tcp.clone()),
                _ => None,
            })
            .context("`sweep` needs a `tx_new` TCP packet to vary")
    }

    /// The sweep's frames: `n` flows from other source addresses and ports, a SYN and an ACK
    /// each.
    pub fn sweep_frames(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if self.sweep.is_none() {
            return Ok(Vec::new());
        }
        let template = self.sweep_template()?;
        (0..self.sweep.unwrap_or(0))
            .map(|i| {
                let mut f = template.clone();
                f.src = match template.src {
                    IpAddr::V4(_) => Ipv4Addr::new(10, 250, (i / 200) as u8, (i % 200) as u8 + 1).into(),
                    IpAddr::V6(_) => {
                        Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, (i / 200) as u16, (i % 200) as u16 + 1).into()
                    }
                };
                // Even ports only, as Linux hands them out for connect().
                f.src_port = 32768 + 2 * (i as u16 % 14000);
                f.flags = abi::TCP_SYN;
                let syn = f.build()?;
                f.flags = abi::TCP_ACK;
                Ok((syn, f.build()?))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// A running balancer

/// Open handles on a running balancer's program and counters.
#[derive(Debug)]
pub struct Handles {
    pub prog: Prog,
    pub verdicts: Map,
    pub backend_hits: Map,
}

/// A running loadbalancer implementation, attached (its `ready` line was seen).
#[derive(Debug)]
pub struct Balancer {
    pub running: Running,
    pub pid: u32,
    pub ready: Value,
    pub prog_id: u32,
    handles: Option<Handles>,
}

impl Balancer {
    /// Starts `imp` in `ns` on `iface` with `config` plus `extra` flags, waits for `ready`, and
    /// opens its `loadbalancer` program, `verdicts` and `backend_hits`.
    pub fn start(
        imp: &Implementation,
        ns: &NetNs,
        iface: &str,
        config: &Path,
        extra: &[&str],
        ready_timeout: Duration,
    ) -> Result<Balancer> {
        let config = config.to_str().context("config path is not UTF-8")?;
        let mut args = vec!["--config", config, "--iface", iface];
        args.extend_from_slice(extra);
        let mut running = imp.spawn(&args, Some(ns))?;
        let pid = running.wait_ready(ready_timeout)?;
        let ready = running.history().iter().find(|l| l.event() == "ready").map(|l| l.value()).unwrap();
        let prog = bpf::find_prog(pid, PROG_NAME).with_context(|| format!("{}: finding its program", imp.lib))?;
        let info = prog.info()?;
        ensure!(info.prog_type == bpf::BPF_PROG_TYPE_XDP, "{}: `{PROG_NAME}` is not an XDP program", imp.lib);
        let map = |name: &str, entries: u32| -> Result<Map> {
            let m =
                bpf::find_map_of_prog(&prog, name).with_context(|| format!("{}: finding its `{name}` map", imp.lib))?;
            let mi = m.info();
            ensure!(
                mi.is_percpu() && mi.value_size == 8 && mi.max_entries >= entries,
                "{}: map `{name}` is not a per-CPU array of {entries} u64: {mi:?}",
                imp.lib
            );
            Ok(m)
        };
        let verdicts = map(VERDICTS_MAP, abi::VERDICT_COUNT)?;
        let backend_hits = map(BACKEND_HITS_MAP, abi::MAX_BACKENDS)?;
        Ok(Balancer { running, pid, ready, prog_id: info.id, handles: Some(Handles { prog, verdicts, backend_hits }) })
    }

    pub fn handles(&self) -> &Handles {
        self.handles.as_ref().expect("handles are released only by stop()")
    }

    pub fn counters(&self) -> Result<Counters> {
        Counters::from_map(&self.handles().verdicts)
    }

    /// `backend_hits[slot]`, summed over CPUs.
    pub fn hits(&self, slot: u32) -> Result<u64> {
        self.handles().backend_hits.lookup_percpu_u64_sum(&slot.to_ne_bytes())
    }

    /// Sends SIGHUP and waits for `reloaded` (or fails with the `reload_failed` line).
    pub fn reload(&mut self, timeout: Duration) -> Result<Value> {
        self.running.signal(libc::SIGHUP)?;
        let line = self.running.wait_for_line("`reloaded` or `reload_failed`", timeout, |v| {
            v["event"] == "reloaded" || v["event"] == "reload_failed"
        })?;
        ensure!(line["event"] == "reloaded", "reload refused: {line}");
        Ok(line)
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

// ---------------------------------------------------------------------------------------------
// The conformance run

pub const CONFORMANCE_READY_TIMEOUT: Duration = Duration::from_secs(30);
const CONFORMANCE_EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The interface the balancer attaches to in [`test_network`].
pub const TEST_IFACE: &str = "lb0";

/// A namespace with a silent veth whose [`TEST_IFACE`] end a balancer can attach to: only
/// `BPF_PROG_TEST_RUN` moves its counters.
pub fn test_network(prefix: &str) -> Result<(NetNs, VethPair)> {
    crate::conformance::silent_veth(prefix, TEST_IFACE, "lb1")
}

/// Runs the conformance vectors against `imp`; one line per mismatch (empty: conformant).
pub fn conformance(imp: &Implementation) -> Result<Vec<String>> {
    Ok(conformance_report(imp)?.lines())
}

/// Runs every case of `scenarios/loadbalancer/vectors.yaml` against `imp`.
///
/// Per case: the implementation starts on a silent veth with `--stats-interval-ms 0`, attached
/// natively. Per packet (vectors, then the sweep): `BPF_PROG_TEST_RUN` once; the XDP action
/// must be the expected one, exactly the expected `verdicts` counter must go up by one, for
/// `tx_*` the predicted backend's `backend_hits` counter by one and the frame must come out
/// rewritten exactly as the model says (others: unchanged). After SIGINT: exit 0 with an `exit`
/// line, the final stats' per-backend packets equal the model's, nothing attached, the program
/// unloaded.
pub fn conformance_report(imp: &Implementation) -> Result<ConformanceReport> {
    bpf::check_privileges()?;
    let vectors = Vectors::workspace()?;
    let tmp = TempDir::new(&format!("lbconf-{}", imp.lib))?;
    let (ns, _veth) = test_network(&format!("lbconf-{}", imp.lib))?;
    let limits = KernelLimits::new(bpf::BPF_PROG_TYPE_XDP)?;
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
    report: &mut dyn FnMut(&str, String),
) -> Result<()> {
    let config = case.parsed_config()?;
    let mut model = Model::new(&config)?;
    let path = tmp.write(&format!("{}.yml", case.name), case.config_yaml(Some(TEST_IFACE))?)?;
    let mut lb = Balancer::start(imp, ns, TEST_IFACE, &path, &["--stats-interval-ms", "0"], CONFORMANCE_READY_TIMEOUT)?;
    let mut fail = |packet: &str, expected: String, got: String| report(packet, format!("expected {expected}, got {got}"));
    match ns.xdp(TEST_IFACE)? {
        Some(XdpAttachment { mode: XdpAttachment::MODE_NATIVE, prog_ids }) if prog_ids.contains(&lb.prog_id) => {}
        other => fail("-", format!("program {} attached natively", lb.prog_id), format!("{other:?}")),
    }

    let mut packets: Vec<(String, Vec<u8>, Option<Verdict>)> = Vec::new();
    for p in &case.packets {
        packets.push((p.name.clone(), p.frame.build()?, Some(p.verdict)));
    }
    for (i, (syn, ack)) in case.sweep_frames()?.into_iter().enumerate() {
        packets.push((format!("sweep[{i}] syn"), syn, Some(Verdict::TxNew)));
        packets.push((format!("sweep[{i}] ack"), ack, Some(Verdict::TxConn)));
    }
    let mut expected_hits = vec![0u64; config.servers.len()];
    let mut backends_used = std::collections::BTreeSet::new();
    for (name, frame, stated) in &packets {
        let refused = limits.refusal(frame)?;
        // A frame the kernel refuses never reaches the program's connection table.
        let (verdict, backend) = match refused {
            Some(_) => model.clone().classify(frame),
            None => model.classify(frame),
        };
        if *stated != Some(verdict) {
            // The vectors were checked against the model; a sweep flow may collide with a
            // vector's flow only if the vectors reuse sweep addresses.
            bail!("{name}: the model says {} where the vectors say {stated:?}", verdict.name());
        }
        let before = lb.counters()?;
        let hits_before: Vec<u64> = (0..expected_hits.len() as u32).map(|s| lb.hits(s)).collect::<Result<_>>()?;
        let run = lb.handles().prog.test_run_xdp(frame);
        let delta = lb.counters()?.since(&before);
        let hits: Vec<u64> = (0..expected_hits.len() as u32).map(|s| lb.hits(s)).collect::<Result<_>>()?;
        if let Some(errno) = refused {
            let moved = (delta != Counters::default() || hits != hits_before).then(|| format!("{delta}, backends {hits:?}"));
            for (expected, got) in refusal_problems(&run, errno, frame.len(), moved) {
                fail(name, expected, got);
            }
            continue;
        }
        let r = match run {
            Ok(r) => r,
            Err(e) => {
                fail(name, verdict.name().into(), format!("BPF_PROG_TEST_RUN failed: {e:#}"));
                continue;
            }
        };
        let expect = verdict.expect();
        if r.retval != expect.xdp_retval() {
            fail(name, format!("{expect:?} (XDP action {})", expect.xdp_retval()), format!("XDP action {}", r.retval));
        }
        let mut want = Counters::default();
        want.add(verdict, 1);
        if delta != want {
            fail(name, format!("counter {} +1 only", verdict.name()), format!("counters moved: {delta}"));
        }
        let want_frame = match backend {
            Some(b) => {
                expected_hits[b] += 1;
                backends_used.insert(b);
                model.rewritten(frame, b)
            }
            None => frame.clone(),
        };
        let moved: Vec<String> = hits
            .iter()
            .zip(&hits_before)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("backends[{i}] +{}", a - b))
            .collect();
        let want_moved: Vec<String> = backend.iter().map(|b| format!("backends[{b}] +1")).collect();
        if moved != want_moved {
            fail(name, format!("backend_hits {want_moved:?}"), format!("{moved:?}"));
        }
        if r.data_out.as_deref() != Some(&want_frame[..]) {
            let what = match backend {
                Some(b) => format!("the frame rewritten to backends[{b}] ({})", format_mac(&model.mac(b))),
                None => "the frame unchanged".into(),
            };
            let got = r.data_out.as_deref().map(|d| frames::hex(&d[..d.len().min(14)])).unwrap_or_default();
            fail(name, what, format!("a frame starting {got}"));
        }
    }
    if case.sweep.is_some() {
        let weighted = config.servers.len();
        if backends_used.len() < weighted {
            fail("(sweep)", format!("all {weighted} backends used"), format!("{backends_used:?}"));
        }
    }

    let prog_id = lb.prog_id;
    let stopped = lb.stop(CONFORMANCE_EXIT_TIMEOUT)?;
    if stopped.exit_code != 0 || !stopped.exit_line {
        fail(
            "(exit)",
            "exit code 0 and an `exit` line after SIGINT".into(),
            format!("code {}, exit line {}; stderr: {}", stopped.exit_code, stopped.exit_line, stopped.stderr.trim()),
        );
    }
    match &stopped.final_stats {
        Some(stats) => {
            let servers = config.resolve(0, Path::new("<vectors>"))?;
            let want: BTreeMap<String, u64> =
                servers.iter().zip(&expected_hits).map(|(s, n)| (s.id.clone(), *n)).collect();
            let got = backend_packets(stats);
            if got != want {
                fail("(final stats)", format!("backends {want:?}"), format!("{got:?}"));
            }
        }
        None => fail("(final stats)", "a final stats line".into(), "none".into()),
    }
    if let Some(x) = ns.xdp(TEST_IFACE)? {
        fail("(exit)", format!("no XDP program on {TEST_IFACE}"), format!("{x:?}"));
    }
    if !wait_prog_gone(prog_id, Duration::from_secs(5)) {
        fail("(exit)", format!("program {prog_id} unloaded"), "still loaded".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The test bed: client, balancer and backends on a bridge

/// Interface of every host namespace (its veth end on the bridge).
pub const IFACE: &str = "eth0";
/// The ports the backends serve and the bed's configs balance.
pub const PORTS: [u16; 2] = [80, 8080];
pub const VIP4: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 100);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, 0x100);
pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
pub const BALANCER4: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
/// The bridge port of the balancer's veth: it carries the pass program native `XDP_TX` needs.
pub const BALANCER_PORT: &str = "p-lb";
/// How long a backend server runs at most, whatever happens to the test.
const SERVER_MAX_RUNTIME: Duration = Duration::from_secs(900);
/// Per step of a client connection (connect, each answer).
const CLIENT_STEP_TIMEOUT: Duration = Duration::from_secs(3);

/// The MAC of a bed host: `host` 0 for the client and the balancer, 1 for backends.
pub fn host_mac(host: u8, index: u8) -> [u8; 6] {
    [0x02, 0x1b, 0x00, 0x00, host, index]
}

/// A backend host: its namespace, addresses, and the server answering with its name.
pub struct BackendHost {
    pub name: String,
    pub ip4: Ipv4Addr,
    pub ip6: Ipv6Addr,
    pub mac: [u8; 6],
    // Declared before `ns`: the server stops before its namespace goes.
    _server: ServerHandle,
    pub ns: NetNs,
}

impl BackendHost {
    /// The backend as a `backends` entry by MAC (`"02:1b:..."`).
    pub fn by_mac(&self) -> String {
        format!("\"{}\"", format_mac(&self.mac))
    }

    /// The backend as a `backends` entry by IPv4 address (MAC from the neighbour table).
    pub fn by_ip(&self) -> String {
        self.ip4.to_string()
    }

    /// The id the balancer reports for an entry made by [`BackendHost::by_mac`].
    pub fn mac_id(&self) -> String {
        format_mac(&self.mac)
    }
}

/// A backend server: a tokio runtime on a thread inside the backend's namespace.
struct ServerHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves every port of [`PORTS`] on `[::]` (IPv4 too): each line a client sends is answered
/// with `name`; after a `bye` line the server closes the connection (so the TIME_WAIT state is
/// the server's and the client's ports are free again at once).
fn start_server(ns: &NetNs, name: &str) -> Result<ServerHandle> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let answer: Arc<str> = format!("{name}\n").into();
    let thread = ns.spawn_in(&format!("srv-{name}"), move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let mut listeners = Vec::new();
            for port in PORTS {
                match tokio::net::TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await {
                    Ok(l) => listeners.push(l),
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("binding port {port}: {e}")));
                        return Ok(());
                    }
                }
            }
            for listener in listeners {
                let answer = answer.clone();
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        tokio::spawn(serve_connection(stream, answer.clone()));
                    }
                });
            }
            let _ = ready_tx.send(Ok(()));
            let _ = tokio::time::timeout(SERVER_MAX_RUNTIME, stop_rx).await;
            Ok(())
        })
    })?;
    let handle = ServerHandle { stop: Some(stop_tx), thread: Some(thread) };
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => bail!("server {name}: {e}"),
        Err(_) => bail!("server {name} did not start"),
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, answer: Arc<str>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (rd, mut wr) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if wr.write_all(answer.as_bytes()).await.is_err() || line == "bye" {
            break;
        }
    }
}

/// Client, balancer and backends, each in its own namespace, on one bridge in a `switch`
/// namespace (see the module docs for what native XDP needs and what this sets up).
pub struct Bed {
    pub backends: Vec<BackendHost>,
    // Drop order: servers (above), the pass program's link, the veths, then the namespaces.
    pass_link: Option<bpf::Link>,
    _pass_prog: Prog,
    _veths: Vec<VethPair>,
    pub client: NetNs,
    pub balancer: NetNs,
    pub switch: NetNs,
}

impl Bed {
    /// `backends` backends named `b0`, `b1`, ...; every host's interface is [`IFACE`].
    pub fn new(prefix: &str, backends: usize) -> Result<Bed> {
        ensure!(backends <= 50, "at most 50 backends");
        let switch = NetNs::new(&format!("{prefix}-sw"))?;
        switch.ip(&["link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])?;
        switch.sysctl("net.ipv6.conf.br0.disable_ipv6", "1")?;
        switch.ip(&["link", "set", "br0", "up"])?;
        let client = NetNs::new(&format!("{prefix}-cl"))?;
        let balancer = NetNs::new(&format!("{prefix}-lb"))?;
        let mut veths = Vec::new();
        let mut plug = |host: &NetNs, port: &str, mac: [u8; 6], ip4: Ipv4Addr, ip6: Ipv6Addr| -> Result<()> {
            let cfg = VethConfig {
                a_name: port.into(),
                b_name: IFACE.into(),
                a_mac: [0x02, 0x1b, 0xff, 0x00, 0x00, veths.len() as u8],
                b_mac: mac,
                b_addrs: vec![format!("{ip4}/24")],
                ..Default::default()
            };
            veths.push(VethPair::new(&switch, host, &cfg)?);
            switch.ip(&["link", "set", port, "master", "br0"])?;
            // The bridge side stays silent (IPv6 off); the host side speaks IPv6 too.
            host.sysctl(&format!("net.ipv6.conf.{IFACE}.disable_ipv6"), "0")?;
            host.ip(&["addr", "add", &format!("{ip6}/64"), "dev", IFACE, "nodad"])?;
            Ok(())
        };
        plug(&client, "p-client", host_mac(0, 1), CLIENT4, v6_of(CLIENT4))?;
        plug(&balancer, BALANCER_PORT, host_mac(0, 2), BALANCER4, v6_of(BALANCER4))?;
        let mut hosts = Vec::new();
        for i in 0..backends {
            let name = format!("b{i}");
            let ns = NetNs::new(&format!("{prefix}-{name}"))?;
            let ip4 = Ipv4Addr::new(10, 201, 0, 11 + i as u8);
            let mac = host_mac(1, i as u8);
            plug(&ns, &format!("p-{name}"), mac, ip4, v6_of(ip4))?;
            // The VIPs on lo, never announced: the balancer is the only one answering for them.
            for key in ["all", IFACE] {
                ns.sysctl(&format!("net.ipv4.conf.{key}.arp_ignore"), "1")?;
                ns.sysctl(&format!("net.ipv4.conf.{key}.arp_announce"), "2")?;
            }
            ns.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"])?;
            // IPv6 answers neighbour solicitations only for addresses of the receiving
            // interface, so a VIP on lo stays silent by itself.
            ns.ip(&["addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad", "preferred_lft", "0"])?;
            let server = start_server(&ns, &name)?;
            hosts.push(BackendHost { name, ip4, ip6: v6_of(ip4), mac, _server: server, ns });
        }
        // The balancer owns the VIPs on the segment: it answers ARP / NDP for them.
        balancer.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", IFACE])?;
        // Deprecated (preferred_lft 0): still answered for, never picked as a source address,
        // which a /128 would otherwise win (longest matching prefix) for the balancer's own
        // connections on the segment.
        balancer.ip(&["addr", "add", &format!("{VIP6}/128"), "dev", IFACE, "nodad", "preferred_lft", "0"])?;
        // Native XDP_TX on veth: the sender computes its checksums (what a wire carries) ...
        client.exec("ethtool", &["-K", IFACE, "tx", "off"]).context("ethtool (apt package `ethtool`)")?;
        // ... and the peer of the balancer's veth runs an XDP program (a pass-through one).
        let pass = bpf::load_constant_xdp("lb_peer_pass", bpf::XDP_PASS)?;
        let port_index = switch.ifindex(BALANCER_PORT)?;
        let link = switch.run_in(|| bpf::attach_xdp(&pass, port_index))??;
        Ok(Bed { backends: hosts, pass_link: Some(link), _pass_prog: pass, _veths: veths, client, balancer, switch })
    }

    /// A config for this bed: `backends` are `backends` entries (see [`BackendHost::by_mac`]),
    /// `vips` and `ports` as YAML lists.
    pub fn config(&self, backends: &[String]) -> String {
        format!(
            "listenInterface: {IFACE}\ntcp_port: {}\ntcp_ports: [{}]\nvips: [{VIP4}, \"{VIP6}\"]\nbackends: [{}]\n",
            PORTS[0],
            PORTS[1..].iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            backends.join(", ")
        )
    }

    /// Fills the balancer's neighbour table with every backend (IPv4 and IPv6), as a config
    /// that names backends by IP needs: one request to each backend's own address.
    pub fn warm_neighbours(&self) -> Result<()> {
        let targets: Vec<SocketAddr> = self
            .backends
            .iter()
            .flat_map(|b| [SocketAddr::new(b.ip4.into(), PORTS[0]), SocketAddr::new(b.ip6.into(), PORTS[0])])
            .collect();
        self.balancer.run_in(move || -> Result<()> {
            for t in targets {
                one_request(t).with_context(|| format!("reaching backend {t} from the balancer"))?;
            }
            Ok(())
        })?
    }

    /// The backend's name for an id in a `stats` line (`b0` for `02:1b:00:00:01:00`).
    pub fn name_of_id(&self, id: &str) -> Option<&str> {
        self.backends.iter().find(|b| b.mac_id() == id || b.ip4.to_string() == id).map(|b| b.name.as_str())
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        drop(self.pass_link.take());
    }
}

/// Real TCP through the balancer on a [`Bed`] (the kernel matrix runs this in each guest, next to
/// the vectors): two backends by MAC, 20 IPv4 connections (two requests each) to the VIP. Every
/// one must complete on one backend and both backends must serve. Returns what was wrong.
pub fn wire_check(imp: &Implementation) -> Result<Vec<String>> {
    const N: usize = 20;
    let bed = Bed::new(&format!("lbwire-{}", imp.lib), 2)?;
    let tmp = TempDir::new(&format!("lbwire-{}", imp.lib))?;
    let path = tmp.write("config.yml", bed.config(&[bed.backends[0].by_mac(), bed.backends[1].by_mac()]))?;
    let mut balancer =
        Balancer::start(imp, &bed.balancer, IFACE, &path, &["--stats-interval-ms", "0"], CONFORMANCE_READY_TIMEOUT)?;
    let run = connections(&bed.client, SocketAddr::new(VIP4.into(), PORTS[0]), N, 2, 2, Duration::from_secs(120))?;
    let mut problems = Vec::new();
    if run.completed() != N {
        problems.push(format!("{} of {N} connections failed: {:?}", N - run.completed(), run.failures()));
    }
    // 2^-19 that a working hash sends all 20 to one backend.
    if run.per_backend().len() != 2 {
        problems.push(format!("connections per backend: {:?}, expected both b0 and b1", run.per_backend()));
    }
    let stopped = balancer.stop(CONFORMANCE_EXIT_TIMEOUT)?;
    if stopped.exit_code != 0 {
        problems.push(format!("exit code {} after SIGINT", stopped.exit_code));
    }
    Ok(problems)
}

/// The bed's IPv6 address for an IPv4 one: `10.201.0.x` -> `fd00:201::x`.
pub fn v6_of(ip4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, u16::from(ip4.octets()[3]))
}

/// Connect, `bye`, the server's name, and the server's close; on the calling thread.
fn one_request(target: SocketAddr) -> Result<String> {
    let stream = TcpStream::connect_timeout(&target, CLIENT_STEP_TIMEOUT)?;
    stream.set_read_timeout(Some(CLIENT_STEP_TIMEOUT))?;
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(b"bye\n")?;
    let name = read_name(&mut reader)?;
    expect_close(&mut reader)?;
    Ok(name)
}

fn read_name(reader: &mut BufReader<TcpStream>) -> Result<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => bail!("closed before answering"),
        Ok(_) => Ok(line.trim_end().to_string()),
        Err(e) => Err(e).context("waiting for the answer"),
    }
}

/// After `bye`: the server closes; a reset here means a segment reached a host without the
/// connection.
fn expect_close(reader: &mut BufReader<TcpStream>) -> Result<()> {
    let mut rest = String::new();
    match reader.read_line(&mut rest) {
        Ok(0) => Ok(()),
        Ok(_) => bail!("unexpected data after bye: {rest:?}"),
        Err(e) => Err(e).context("waiting for the close"),
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// One client connection of [`connections`].
#[derive(Debug, Clone)]
pub struct ConnOutcome {
    /// The backend that answered every request, or what went wrong.
    pub result: Result<String, String>,
    /// From the start of `connect` to the first answer.
    pub latency: Duration,
}

/// The outcome of many client connections.
#[derive(Debug, Clone)]
pub struct ConnRun {
    pub outcomes: Vec<ConnOutcome>,
    pub elapsed: Duration,
}

impl ConnRun {
    /// Completed connections per backend name.
    pub fn per_backend(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for o in &self.outcomes {
            if let Ok(b) = &o.result {
                *m.entry(b.clone()).or_default() += 1;
            }
        }
        m
    }

    /// The failures, with how often each happened.
    pub fn failures(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for o in &self.outcomes {
            if let Err(e) = &o.result {
                *m.entry(e.clone()).or_default() += 1;
            }
        }
        m
    }

    pub fn completed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_ok()).count()
    }

    pub fn conn_per_s(&self) -> f64 {
        self.completed() as f64 / self.elapsed.as_secs_f64()
    }

    /// Sorted latencies of the completed connections, in µs.
    pub fn latencies_us(&self) -> Vec<f64> {
        let mut v: Vec<f64> =
            self.outcomes.iter().filter(|o| o.result.is_ok()).map(|o| o.latency.as_secs_f64() * 1e6).collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

/// `count` TCP connections from the client namespace to `target`, `concurrency` at a time
/// (tokio, one thread in the namespace): each sends `exchanges` requests (the last one `bye`)
/// and must get the same backend's name for every one, then the server's close. Bounded by
/// `max` overall.
pub fn connections(
    client: &NetNs,
    target: SocketAddr,
    count: usize,
    concurrency: usize,
    exchanges: usize,
    max: Duration,
) -> Result<ConnRun> {
    ensure!(exchanges >= 1 && concurrency >= 1, "at least one exchange and one connection at a time");
    client.run_in(move || -> Result<ConnRun> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let outcomes = Arc::new(Mutex::new(Vec::with_capacity(count)));
            let started = Instant::now();
            let mut workers = Vec::new();
            for _ in 0..concurrency.min(count) {
                let (next, outcomes) = (next.clone(), outcomes.clone());
                workers.push(tokio::spawn(async move {
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                        let o = one_connection(target, exchanges).await;
                        outcomes.lock().unwrap().push(o);
                    }
                }));
            }
            let all = async {
                for w in workers {
                    let _ = w.await;
                }
            };
            tokio::time::timeout(max, all)
                .await
                .map_err(|_| anyhow!("{count} connections took longer than {max:?}"))?;
            let elapsed = started.elapsed();
            let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
            Ok(ConnRun { outcomes, elapsed })
        })
    })?
}

async fn one_connection(target: SocketAddr, exchanges: usize) -> ConnOutcome {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    use tokio::time::timeout;
    let started = Instant::now();
    let mut latency = Duration::ZERO;
    let result = async {
        let stream = timeout(CLIENT_STEP_TIMEOUT, tokio::net::TcpStream::connect(target))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {}", kind(&e)))?;
        let (rd, mut wr) = stream.into_split();
        let mut lines = tokio::io::BufReader::new(rd).lines();
        let mut backend: Option<String> = None;
        for i in 0..exchanges {
            let req: &[u8] = if i + 1 == exchanges { b"bye\n" } else { b"ping\n" };
            wr.write_all(req).await.map_err(|e| format!("send: {}", kind(&e)))?;
            let name = match timeout(CLIENT_STEP_TIMEOUT, lines.next_line()).await {
                Err(_) => return Err("answer timed out".to_string()),
                Ok(Err(e)) => return Err(format!("answer: {}", kind(&e))),
                Ok(Ok(None)) => return Err("closed before answering".to_string()),
                Ok(Ok(Some(name))) => name,
            };
            if i == 0 {
                latency = started.elapsed();
            }
            match &backend {
                Some(b) if *b != name => return Err(format!("switched backend: {b} then {name}")),
                _ => backend = Some(name),
            }
        }
        match timeout(CLIENT_STEP_TIMEOUT, lines.next_line()).await {
            Ok(Ok(None)) => backend.ok_or_else(|| "no answer".to_string()),
            Ok(Ok(Some(extra))) => Err(format!("unexpected data after bye: {extra:?}")),
            Ok(Err(e)) => Err(format!("close: {}", kind(&e))),
            Err(_) => Err("close timed out".to_string()),
        }
    }
    .await;
    ConnOutcome { result, latency }
}

/// A short, stable name for an I/O error (`connection reset`, ...), for counting failures.
fn kind(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        k => format!("{k:?}"),
    }
}

/// Connections kept open across a change (balancer restart, reload): opened with one request
/// each, then finished with a second one after the change. A connection "moved" if the second
/// answer came from another backend or the connection broke.
pub struct Held {
    conns: Vec<(BufReader<TcpStream>, String)>,
}

impl Held {
    /// Opens `n` connections from `client` to `target`, one request each.
    pub fn open(client: &NetNs, target: SocketAddr, n: usize) -> Result<Held> {
        client.run_in(move || -> Result<Held> {
            let mut conns = Vec::with_capacity(n);
            for i in 0..n {
                let stream = TcpStream::connect_timeout(&target, CLIENT_STEP_TIMEOUT)
                    .with_context(|| format!("held connection {i}"))?;
                stream.set_read_timeout(Some(CLIENT_STEP_TIMEOUT))?;
                let mut reader = BufReader::new(stream);
                reader.get_mut().write_all(b"ping\n")?;
                let name = read_name(&mut reader).with_context(|| format!("held connection {i}"))?;
                conns.push((reader, name));
            }
            Ok(Held { conns })
        })?
    }

    /// The backends that answered the first requests, per name.
    pub fn per_backend(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, b) in &self.conns {
            *m.entry(b.clone()).or_default() += 1;
        }
        m
    }

    /// Sends the second request (`bye`) on every connection: per connection the first backend
    /// and the outcome of the second request.
    pub fn finish(self) -> Vec<(String, Result<String, String>)> {
        self.conns
            .into_iter()
            .map(|(mut reader, first)| {
                let second = (|| -> Result<String> {
                    reader.get_mut().write_all(b"bye\n")?;
                    let name = read_name(&mut reader)?;
                    expect_close(&mut reader)?;
                    Ok(name)
                })();
                (first, second.map_err(|e| format!("{e:#}")))
            })
            .collect()
    }

    /// Of [`Held::finish`]'s result: how many moved (other backend or broken), in percent.
    pub fn moved_pct(results: &[(String, Result<String, String>)]) -> f64 {
        let moved = results.iter().filter(|(first, second)| second.as_ref() != Ok(first)).count();
        100.0 * moved as f64 / results.len().max(1) as f64
    }
}

/// Sequential connections (`bye` right away): connect-to-answer latency in µs, sorted.
pub fn conn_latencies_us(client: &NetNs, target: SocketAddr, n: usize) -> Result<Vec<f64>> {
    client.run_in(move || -> Result<Vec<f64>> {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let started = Instant::now();
            one_request(target).with_context(|| format!("connection {i} to {target}"))?;
            v.push(started.elapsed().as_secs_f64() * 1e6);
        }
        v.sort_by(f64::total_cmp);
        Ok(v)
    })?
}

/// `n` request round trips on one connection, in µs, sorted; and the backend that answered.
pub fn request_rtts_us(client: &NetNs, target: SocketAddr, n: usize) -> Result<(Vec<f64>, String)> {
    client.run_in(move || -> Result<(Vec<f64>, String)> {
        let stream = TcpStream::connect_timeout(&target, CLIENT_STEP_TIMEOUT)?;
        stream.set_read_timeout(Some(CLIENT_STEP_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut reader = BufReader::new(stream);
        let mut v = Vec::with_capacity(n);
        let mut backend = String::new();
        for i in 0..n {
            let started = Instant::now();
            reader.get_mut().write_all(if i + 1 == n { b"bye\n" } else { b"ping\n" })?;
            let name = read_name(&mut reader)?;
            v.push(started.elapsed().as_secs_f64() * 1e6);
            ensure!(backend.is_empty() || backend == name, "the connection switched from {backend} to {name}");
            backend = name;
        }
        expect_close(&mut reader)?;
        v.sort_by(f64::total_cmp);
        Ok((v, backend))
    })?
}

/// Largest deviation of any backend's count from its expected share, in percent of that share.
/// `weights` by backend name; backends missing from `counts` count as 0.
pub fn spread_max_dev_pct(counts: &BTreeMap<String, usize>, weights: &BTreeMap<String, u32>) -> f64 {
    let total: usize = counts.values().sum();
    let weight_sum: u32 = weights.values().sum();
    weights
        .iter()
        .map(|(name, w)| {
            let want = total as f64 * f64::from(*w) / f64::from(weight_sum.max(1));
            let got = counts.get(name).copied().unwrap_or(0) as f64;
            100.0 * (got - want).abs() / want.max(1.0)
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_vectors_are_consistent() {
        let v = Vectors::workspace().unwrap_or_else(|e| panic!("{e:#}"));
        assert!(v.cases.len() >= 6, "only {} cases", v.cases.len());
        assert!(v.packet_count() >= 300);
    }

    #[test]
    fn a_wrong_expectation_is_caught() {
        let text = r#"
cases:
  - name: x
    config: {tcp_port: 80, vips: [10.0.0.100], backends: ["02:00:00:00:00:01"]}
    packets:
      - {name: p, frame: {tcp: {src: 10.0.0.1, dst: 10.0.0.100}}, expect: pass, verdict: pass_other}
"#;
        let v: Vectors = yaml_serde::from_str(text).unwrap();
        let e = v.check().unwrap_err();
        assert!(format!("{e:#}").contains("reference model says tx_new"), "{e:#}");
    }

    #[test]
    fn tcp_frames_have_valid_checksums() {
        use pnet::packet::ipv4::{self, Ipv4Packet};
        use pnet::packet::Packet;
        let f = TcpFrame::syn("10.0.0.1".parse().unwrap(), 40000, "10.0.0.100".parse().unwrap(), 80).build().unwrap();
        assert_eq!(f.len(), 14 + 20 + 20);
        let ip = Ipv4Packet::new(&f[14..]).unwrap();
        assert_eq!(ip.get_checksum(), ipv4::checksum(&ip));
        let t = tcp::TcpPacket::new(ip.payload()).unwrap();
        assert_eq!(t.get_checksum(), tcp::ipv4_checksum(&t, &ip.get_source(), &ip.get_destination()));
        assert_eq!(t.get_destination(), 80);
        let f6 = TcpFrame::syn("fd00::1".parse().unwrap(), 1, "fd00::2".parse().unwrap(), 2).build().unwrap();
        assert_eq!(&f6[12..14], &[0x86, 0xdd]);
        assert_eq!(f6[14 + 6], 6);
    }

    #[test]
    fn model_pins_flows_and_rewrites() {
        let config = Config::parse(
            "tcp_port: 80\nvips: [10.0.0.100]\nbackends: [\"02:00:00:00:00:01\", \"02:00:00:00:00:02\"]\n",
            Path::new("x"),
        )
        .unwrap();
        let mut m = Model::new(&config).unwrap();
        let syn = TcpFrame::syn("10.0.0.1".parse().unwrap(), 40000, "10.0.0.100".parse().unwrap(), 80);
        let f = syn.build().unwrap();
        let (v, b) = m.classify(&f);
        assert_eq!(v, Verdict::TxNew);
        let ack = TcpFrame { flags: abi::TCP_ACK, ..syn }.build().unwrap();
        assert_eq!(m.classify(&ack), (Verdict::TxConn, b));
        // A SYN is a new connection even on a known 4-tuple.
        assert_eq!(m.classify(&f), (Verdict::TxNew, b));
        let out = m.rewritten(&f, b.unwrap());
        assert_eq!(&out[6..12], &f[..6]);
        assert_eq!(&out[..6], &m.mac(b.unwrap()));
    }

    #[test]
    fn spread() {
        let counts: BTreeMap<String, usize> = [("a".into(), 90), ("b".into(), 110)].into();
        let even: BTreeMap<String, u32> = [("a".into(), 1), ("b".into(), 1)].into();
        assert!((spread_max_dev_pct(&counts, &even) - 10.0).abs() < 1e-9);
        let missing: BTreeMap<String, u32> = [("a".into(), 1), ("b".into(), 1), ("c".into(), 2)].into();
        // b: 110 where 50 were due.
        assert!((spread_max_dev_pct(&counts, &missing) - 120.0).abs() < 1e-9);
    }
}
