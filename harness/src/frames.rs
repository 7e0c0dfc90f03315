//! Ethernet frames from a structured spec (the `frame:` of a scenario vector), built with
//! `pnet::packet` builders and correct checksums.
//!
//! ```yaml
//! frame:
//!   vlan: [{tpid: 0x88a8, vid: 100}, {vid: 200}]    # outermost first; tpid defaults to 0x8100
//!   ipv4: {src: 10.0.0.1, options_len: 4, frag_offset: 0, more_fragments: true}
//!   udp: {src_port: 5000, dst_port: 9}               # the default for IP frames
//!   payload: "hello"                                 # UDP (or raw L4) payload
//!   frame_len: 9000                                  # pad the payload to a 9000-byte frame
//!   truncate: 33                                     # cut the finished frame to 33 bytes
//! ```
//! `tcp: {src_port, dst_port, flags}` instead of `udp` puts a 20-byte TCP header before the
//! payload (protocol / next header 6); other protocols carry `payload` raw.
//! Exactly one of `ipv4`, `ipv6`, `arp`, or a bare `ethertype` (raw `payload` after the
//! header) makes the frame. `ethertype` with `ipv4`/`ipv6`/`arp` overrides the innermost type.
//! Fields that deliberately break a header (`version`, `ihl` overrides) exist for the
//! malformed-frame vectors; the checksums are still computed over what is there.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{bail, ensure, Context, Result};
use pnet::packet::arp::{ArpHardwareTypes, ArpOperation, MutableArpPacket};
use pnet::packet::ethernet::{EtherType, EtherTypes, MutableEthernetPacket};
use pnet::packet::ip::IpNextHeaderProtocol;
use pnet::packet::ipv4::MutableIpv4Packet;
use pnet::packet::ipv6::MutableIpv6Packet;
use pnet::packet::tcp::{self, MutableTcpPacket};
use pnet::packet::udp::{self, MutableUdpPacket};
use pnet::packet::vlan::{ClassOfService, MutableVlanPacket};
use pnet::util::MacAddr;
use serde::{Deserialize, Serialize};

/// Ethertypes used here.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IEEE local experimental ethertype: "some other protocol" for non-IP frames.
pub const ETHERTYPE_EXPERIMENTAL: u16 = 0x88b5;

/// Default MACs (locally administered).
pub const DEFAULT_SRC_MAC: &str = "02:00:00:00:00:01";
pub const DEFAULT_DST_MAC: &str = "02:00:00:00:00:02";
/// Default destinations, in documentation ranges. The filter looks at sources only.
pub const DEFAULT_DST_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
pub const DEFAULT_DST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0xfe);
pub const DEFAULT_PAYLOAD: &str = "bpf-eval test frame";

/// One frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameSpec {
    /// Source MAC, `aa:bb:cc:dd:ee:ff` (default [`DEFAULT_SRC_MAC`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_mac: Option<String>,
    /// Destination MAC (default [`DEFAULT_DST_MAC`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_mac: Option<String>,
    /// VLAN tags, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vlan: Vec<VlanTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4Spec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Spec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp: Option<ArpSpec>,
    /// The (innermost) ethertype: alone, a frame of that type carrying `payload`; with an L3
    /// spec, an override of its natural type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<u16>,
    /// UDP header for IP frames whose protocol is UDP (the default); defaults apply if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpSpec>,
    /// TCP header for IP frames whose protocol is 6 (without it they carry `payload` raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSpec>,
    /// Payload text (UDP payload, raw L4 data, or the data after a bare `ethertype`); default
    /// [`DEFAULT_PAYLOAD`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Pad the payload (with `.`) so that the frame is this many bytes before `truncate`:
    /// oversized frames with consistent IP and UDP lengths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_len: Option<usize>,
    /// Cut the finished frame to this many bytes (must not be longer than the frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<usize>,
}

/// An 802.1Q (0x8100) or 802.1ad (0x88a8) tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanTag {
    #[serde(default = "default_tpid")]
    pub tpid: u16,
    #[serde(default = "default_vid")]
    pub vid: u16,
    #[serde(default)]
    pub pcp: u8,
}

fn default_tpid() -> u16 {
    ETHERTYPE_VLAN
}
fn default_vid() -> u16 {
    1
}

impl VlanTag {
    pub fn dot1q(vid: u16) -> VlanTag {
        VlanTag { tpid: ETHERTYPE_VLAN, vid, pcp: 0 }
    }
    pub fn dot1ad(vid: u16) -> VlanTag {
        VlanTag { tpid: ETHERTYPE_QINQ, vid, pcp: 0 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv4Spec {
    pub src: Ipv4Addr,
    #[serde(default = "default_dst_v4")]
    pub dst: Ipv4Addr,
    /// IP protocol number; 17 (UDP, the default) gets a UDP header, others carry `payload` raw.
    #[serde(default = "default_protocol")]
    pub protocol: u8,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Bytes of IP options (a multiple of 4, at most 40): a Router Alert option, then NOPs.
    #[serde(default)]
    pub options_len: usize,
    /// Fragment offset in 8-byte units; non-zero offsets carry `payload` raw (no UDP header).
    #[serde(default)]
    pub frag_offset: u16,
    #[serde(default)]
    pub more_fragments: bool,
    #[serde(default)]
    pub dont_fragment: bool,
    #[serde(default = "default_ip_id")]
    pub id: u16,
    /// Override of the version field (malformed vectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// Override of the IHL field, in 4-byte words (malformed vectors); the header written is
    /// still `20 + options_len` bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ihl: Option<u8>,
}

fn default_dst_v4() -> Ipv4Addr {
    DEFAULT_DST_V4
}
fn default_dst_v6() -> Ipv6Addr {
    DEFAULT_DST_V6
}
fn default_protocol() -> u8 {
    17
}
fn default_ttl() -> u8 {
    64
}
fn default_ip_id() -> u16 {
    0x1234
}

impl Ipv4Spec {
    /// A UDP packet from `src` with every other field at its default.
    pub fn from_src(src: Ipv4Addr) -> Ipv4Spec {
        Ipv4Spec {
            src,
            dst: DEFAULT_DST_V4,
            protocol: 17,
            ttl: 64,
            options_len: 0,
            frag_offset: 0,
            more_fragments: false,
            dont_fragment: false,
            id: default_ip_id(),
            version: None,
            ihl: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6Spec {
    pub src: Ipv6Addr,
    #[serde(default = "default_dst_v6")]
    pub dst: Ipv6Addr,
    #[serde(default = "default_ttl")]
    pub hop_limit: u8,
    /// Extension headers in order, between the fixed header and the upper layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext: Vec<Ipv6Ext>,
    /// Upper-layer protocol after the extension headers; 17 (UDP, default) gets a UDP header.
    #[serde(default = "default_protocol")]
    pub next_header: u8,
    /// Override of the version field (malformed vectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
}

impl Ipv6Spec {
    /// A UDP packet from `src` with every other field at its default.
    pub fn from_src(src: Ipv6Addr) -> Ipv6Spec {
        Ipv6Spec { src, dst: DEFAULT_DST_V6, hop_limit: 64, ext: Vec::new(), next_header: 17, version: None }
    }
}

/// An IPv6 extension header (8 bytes each, a routing header 24).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Ipv6Ext {
    /// Hop-by-hop options (next header 0), padded with a PadN option.
    HopByHop,
    /// Destination options (next header 60), padded with a PadN option.
    DestinationOptions,
    /// Routing header (next header 43): a segment routing header (type 4) with one segment,
    /// the destination, and `segments_left` (default 0: at its final destination).
    Routing {
        #[serde(default)]
        segments_left: u8,
    },
    /// Fragment header (next header 44); `offset` in 8-byte units. A non-zero offset carries
    /// `payload` raw (no UDP header).
    Fragment {
        #[serde(default)]
        offset: u16,
        #[serde(default)]
        more: bool,
        #[serde(default = "default_frag_id")]
        id: u32,
    },
}

fn default_frag_id() -> u32 {
    0xbeef
}

impl Ipv6Ext {
    fn code(&self) -> u8 {
        match self {
            Ipv6Ext::HopByHop => 0,
            Ipv6Ext::DestinationOptions => 60,
            Ipv6Ext::Routing { .. } => 43,
            Ipv6Ext::Fragment { .. } => 44,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpSpec {
    #[serde(default = "default_arp_sender")]
    pub sender_ip: Ipv4Addr,
    #[serde(default = "default_dst_v4")]
    pub target_ip: Ipv4Addr,
    /// `request` or `reply`.
    #[serde(default)]
    pub operation: ArpOp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArpOp {
    #[default]
    Request,
    Reply,
}

fn default_arp_sender() -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 1)
}

impl Default for ArpSpec {
    fn default() -> Self {
        ArpSpec { sender_ip: default_arp_sender(), target_ip: DEFAULT_DST_V4, operation: ArpOp::Request }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpSpec {
    #[serde(default = "default_sport")]
    pub src_port: u16,
    #[serde(default = "default_dport")]
    pub dst_port: u16,
}

fn default_sport() -> u16 {
    40000
}
fn default_dport() -> u16 {
    9
}

impl Default for UdpSpec {
    fn default() -> Self {
        UdpSpec { src_port: default_sport(), dst_port: default_dport() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    #[serde(default = "default_sport")]
    pub src_port: u16,
    #[serde(default = "default_dport")]
    pub dst_port: u16,
    /// Flags byte (default SYN).
    #[serde(default = "default_tcp_flags")]
    pub flags: u8,
}

fn default_tcp_flags() -> u8 {
    0x02
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = text.split(':').collect();
    ensure!(parts.len() == 6, "`{text}` is not a MAC address");
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).with_context(|| format!("`{text}` is not a MAC address"))?;
    }
    Ok(mac)
}

fn mac_addr(m: [u8; 6]) -> MacAddr {
    MacAddr::new(m[0], m[1], m[2], m[3], m[4], m[5])
}

impl FrameSpec {
    /// A UDP/IPv4 frame from `src`.
    pub fn ipv4(src: Ipv4Addr) -> FrameSpec {
        FrameSpec { ipv4: Some(Ipv4Spec::from_src(src)), ..Default::default() }
    }

    /// A UDP/IPv6 frame from `src`.
    pub fn ipv6(src: Ipv6Addr) -> FrameSpec {
        FrameSpec { ipv6: Some(Ipv6Spec::from_src(src)), ..Default::default() }
    }

    /// A UDP frame from `src` of either family.
    pub fn ip(src: std::net::IpAddr) -> FrameSpec {
        match src {
            std::net::IpAddr::V4(a) => FrameSpec::ipv4(a),
            std::net::IpAddr::V6(a) => FrameSpec::ipv6(a),
        }
    }

    /// A non-IP frame of `ethertype` carrying `payload`.
    pub fn raw(ethertype: u16) -> FrameSpec {
        FrameSpec { ethertype: Some(ethertype), ..Default::default() }
    }

    pub fn with_macs(mut self, src: [u8; 6], dst: [u8; 6]) -> FrameSpec {
        self.src_mac = Some(crate::netns::format_mac(&src));
        self.dst_mac = Some(crate::netns::format_mac(&dst));
        self
    }

    pub fn with_payload(mut self, payload: impl Into<String>) -> FrameSpec {
        self.payload = Some(payload.into());
        self
    }

    /// Builds the frame.
    pub fn build(&self) -> Result<Vec<u8>> {
        build(self)
    }
}

/// The payload, padded by `pad` bytes (see [`FrameSpec::frame_len`]).
fn payload_bytes(spec: &FrameSpec, pad: usize) -> Vec<u8> {
    let mut p = spec.payload.as_deref().unwrap_or(DEFAULT_PAYLOAD).as_bytes().to_vec();
    p.resize(p.len() + pad, b'.');
    p
}

/// A length field's value, or an error for packets its 16 bits cannot describe.
fn len16(n: usize, what: &str) -> Result<u16> {
    u16::try_from(n).with_context(|| format!("{what} of {n} bytes does not fit its 16-bit length field"))
}

/// A TCP segment: a 20-byte header (sequence 0x1000, window 64240) with its checksum.
pub fn tcp_segment(t: &TcpSpec, payload: &[u8], checksum: impl Fn(&tcp::TcpPacket) -> u16) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + payload.len()];
    let mut p = MutableTcpPacket::new(&mut buf).expect("room for a TCP header");
    p.set_source(t.src_port);
    p.set_destination(t.dst_port);
    p.set_sequence(0x1000);
    p.set_data_offset(5);
    p.set_flags(t.flags);
    p.set_window(64240);
    p.set_payload(payload);
    let c = checksum(&p.to_immutable());
    p.set_checksum(c);
    buf
}

/// The upper layer of an IP packet: a UDP datagram (protocol 17, by default), a TCP segment
/// (protocol 6 with `tcp`), or the raw payload (other protocols, non-first fragments).
fn l4_bytes(
    spec: &FrameSpec,
    protocol: u8,
    first_fragment: bool,
    pad: usize,
    udp_sum: impl Fn(&udp::UdpPacket) -> u16,
    tcp_sum: impl Fn(&tcp::TcpPacket) -> u16,
) -> Result<Vec<u8>> {
    let payload = payload_bytes(spec, pad);
    match (protocol, &spec.tcp) {
        (17, None) if first_fragment => {
            let u = spec.udp.clone().unwrap_or_default();
            udp_datagram(&u, &payload, udp_sum)
        }
        (6, Some(t)) if first_fragment => {
            ensure!(spec.udp.is_none(), "a frame has `udp` or `tcp`, not both");
            Ok(tcp_segment(t, &payload, tcp_sum))
        }
        _ => {
            ensure!(
                spec.udp.is_none() && spec.tcp.is_none(),
                "`udp` needs protocol 17, `tcp` protocol 6, and both the first fragment"
            );
            Ok(payload)
        }
    }
}

fn udp_datagram(udp: &UdpSpec, payload: &[u8], checksum: impl Fn(&udp::UdpPacket) -> u16) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 8 + payload.len()];
    let mut p = MutableUdpPacket::new(&mut buf).expect("room for a UDP header");
    p.set_source(udp.src_port);
    p.set_destination(udp.dst_port);
    p.set_length(len16(8 + payload.len(), "a UDP datagram")?);
    p.set_payload(payload);
    let c = checksum(&p.to_immutable());
    p.set_checksum(c);
    Ok(buf)
}

fn ipv4_packet(spec: &FrameSpec, ip: &Ipv4Spec, pad: usize) -> Result<Vec<u8>> {
    ensure!(
        ip.options_len.is_multiple_of(4) && ip.options_len <= 40,
        "ipv4.options_len must be a multiple of 4 up to 40"
    );
    ensure!(ip.frag_offset < 1 << 13, "ipv4.frag_offset is 13 bits");
    let l4 = l4_bytes(
        spec,
        ip.protocol,
        ip.frag_offset == 0,
        pad,
        |p| udp::ipv4_checksum(p, &ip.src, &ip.dst),
        |p| tcp::ipv4_checksum(p, &ip.src, &ip.dst),
    )?;
    let hlen = 20 + ip.options_len;
    let total = len16(hlen + l4.len(), "an IPv4 packet")?;
    let mut buf = vec![0u8; hlen + l4.len()];
    {
        let mut p = MutableIpv4Packet::new(&mut buf).expect("room for an IPv4 header");
        p.set_version(ip.version.unwrap_or(4));
        p.set_header_length(ip.ihl.unwrap_or((hlen / 4) as u8));
        p.set_total_length(total);
        p.set_identification(ip.id);
        let flags = (if ip.dont_fragment { 0b010 } else { 0 }) | (if ip.more_fragments { 0b001 } else { 0 });
        p.set_flags(flags);
        p.set_fragment_offset(ip.frag_offset);
        p.set_ttl(ip.ttl);
        p.set_next_level_protocol(IpNextHeaderProtocol::new(ip.protocol));
        p.set_source(ip.src);
        p.set_destination(ip.dst);
    }
    if ip.options_len > 0 {
        let opts = &mut buf[20..hlen];
        opts.fill(1); // NOP
        if opts.len() >= 4 {
            opts[..4].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // Router Alert
        }
    }
    buf[hlen..].copy_from_slice(&l4);
    // Over the header actually written (an IHL override may claim otherwise).
    let c = pnet::util::checksum(&buf[..hlen], 5);
    buf[10..12].copy_from_slice(&c.to_be_bytes());
    Ok(buf)
}

fn ipv6_packet(spec: &FrameSpec, ip: &Ipv6Spec, pad: usize) -> Result<Vec<u8>> {
    let later_fragment = ip.ext.iter().any(|e| matches!(e, Ipv6Ext::Fragment { offset, .. } if *offset != 0));
    let l4 = l4_bytes(
        spec,
        ip.next_header,
        !later_fragment,
        pad,
        |p| udp::ipv6_checksum(p, &ip.src, &ip.dst),
        |p| tcp::ipv6_checksum(p, &ip.src, &ip.dst),
    )?;
    let mut ext = Vec::new();
    for (i, e) in ip.ext.iter().enumerate() {
        let next = ip.ext.get(i + 1).map(Ipv6Ext::code).unwrap_or(ip.next_header);
        match e {
            Ipv6Ext::HopByHop | Ipv6Ext::DestinationOptions => {
                // next header, length 0 (8 bytes), PadN with 4 bytes of padding.
                ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
            Ipv6Ext::Routing { segments_left } => {
                // next header, length 2 (24 bytes), type 4, segments left, last entry 0,
                // flags, tag; then the one segment.
                ext.extend_from_slice(&[next, 2, 4, *segments_left, 0, 0, 0, 0]);
                ext.extend_from_slice(&ip.dst.octets());
            }
            Ipv6Ext::Fragment { offset, more, id } => {
                ensure!(*offset < 1 << 13, "fragment offset is 13 bits");
                let off = (offset << 3) | u16::from(*more);
                ext.extend_from_slice(&[next, 0]);
                ext.extend_from_slice(&off.to_be_bytes());
                ext.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
    let mut buf = vec![0u8; 40 + ext.len() + l4.len()];
    {
        let mut p = MutableIpv6Packet::new(&mut buf).expect("room for an IPv6 header");
        p.set_version(ip.version.unwrap_or(6));
        p.set_payload_length(len16(ext.len() + l4.len(), "an IPv6 payload")?);
        p.set_next_header(IpNextHeaderProtocol::new(ip.ext.first().map(Ipv6Ext::code).unwrap_or(ip.next_header)));
        p.set_hop_limit(ip.hop_limit);
        p.set_source(ip.src);
        p.set_destination(ip.dst);
    }
    buf[40..40 + ext.len()].copy_from_slice(&ext);
    buf[40 + ext.len()..].copy_from_slice(&l4);
    Ok(buf)
}

fn arp_packet(spec: &FrameSpec, arp: &ArpSpec, src_mac: [u8; 6]) -> Result<Vec<u8>> {
    ensure!(
        spec.udp.is_none() && spec.tcp.is_none() && spec.payload.is_none() && spec.frame_len.is_none(),
        "ARP frames take no `udp`, `tcp`, `payload` or `frame_len`"
    );
    let mut buf = vec![0u8; 28];
    let mut p = MutableArpPacket::new(&mut buf).expect("room for ARP");
    p.set_hardware_type(ArpHardwareTypes::Ethernet);
    p.set_protocol_type(EtherTypes::Ipv4);
    p.set_hw_addr_len(6);
    p.set_proto_addr_len(4);
    p.set_operation(match arp.operation {
        ArpOp::Request => ArpOperation::new(1),
        ArpOp::Reply => ArpOperation::new(2),
    });
    p.set_sender_hw_addr(mac_addr(src_mac));
    p.set_sender_proto_addr(arp.sender_ip);
    p.set_target_hw_addr(MacAddr::zero());
    p.set_target_proto_addr(arp.target_ip);
    Ok(buf)
}

/// Builds the frame described by `spec`.
pub fn build(spec: &FrameSpec) -> Result<Vec<u8>> {
    let Some(want) = spec.frame_len else { return build_padded(spec, 0) };
    let natural = build_padded(spec, 0)?.len();
    ensure!(want >= natural, "frame_len: {want} is shorter than the {natural}-byte frame");
    build_padded(spec, want - natural)
}

fn build_padded(spec: &FrameSpec, pad: usize) -> Result<Vec<u8>> {
    let src_mac = parse_mac(spec.src_mac.as_deref().unwrap_or(DEFAULT_SRC_MAC))?;
    let dst_mac = parse_mac(spec.dst_mac.as_deref().unwrap_or(DEFAULT_DST_MAC))?;
    let l3s = [spec.ipv4.is_some(), spec.ipv6.is_some(), spec.arp.is_some()].iter().filter(|b| **b).count();
    let (natural, l3) = match (&spec.ipv4, &spec.ipv6, &spec.arp) {
        _ if l3s > 1 => bail!("a frame has one of ipv4, ipv6, arp"),
        (Some(ip), _, _) => (ETHERTYPE_IPV4, ipv4_packet(spec, ip, pad)?),
        (_, Some(ip), _) => (ETHERTYPE_IPV6, ipv6_packet(spec, ip, pad)?),
        (_, _, Some(arp)) => (ETHERTYPE_ARP, arp_packet(spec, arp, src_mac)?),
        _ => {
            let Some(t) = spec.ethertype else { bail!("a frame needs ipv4, ipv6, arp or an ethertype") };
            ensure!(spec.udp.is_none() && spec.tcp.is_none(), "`udp` and `tcp` need an IP frame");
            (t, payload_bytes(spec, pad))
        }
    };
    let inner_type = spec.ethertype.unwrap_or(natural);

    let tags = spec.vlan.len();
    let mut frame = vec![0u8; 14 + 4 * tags + l3.len()];
    {
        let mut eth = MutableEthernetPacket::new(&mut frame).expect("room for Ethernet");
        eth.set_destination(mac_addr(dst_mac));
        eth.set_source(mac_addr(src_mac));
        eth.set_ethertype(EtherType::new(spec.vlan.first().map(|t| t.tpid).unwrap_or(inner_type)));
    }
    for (i, tag) in spec.vlan.iter().enumerate() {
        ensure!(tag.vid < 4096 && tag.pcp < 8, "VLAN id is 12 bits, priority 3 bits");
        // A tag's "ethertype" is the type of what follows it: the next tag's TPID or the payload's.
        let next = spec.vlan.get(i + 1).map(|t| t.tpid).unwrap_or(inner_type);
        let at = 14 + 4 * i;
        let mut v = MutableVlanPacket::new(&mut frame[at..at + 4]).expect("room for a tag");
        v.set_priority_code_point(ClassOfService::new(tag.pcp));
        v.set_drop_eligible_indicator(0);
        v.set_vlan_identifier(tag.vid);
        v.set_ethertype(EtherType::new(next));
    }
    let l3_at = 14 + 4 * tags;
    frame[l3_at..].copy_from_slice(&l3);
    if let Some(n) = spec.truncate {
        ensure!(n <= frame.len(), "truncate: {n} is longer than the {}-byte frame", frame.len());
        frame.truncate(n);
    }
    Ok(frame)
}

/// Hex dump (`0000  ff ff ...`), 16 bytes a line, for failure messages.
pub fn hex(frame: &[u8]) -> String {
    frame
        .chunks(16)
        .enumerate()
        .map(|(i, c)| format!("{:04x}  {}", i * 16, c.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnet::packet::ethernet::EthernetPacket;
    use pnet::packet::ipv4::{self, Ipv4Packet};
    use pnet::packet::ipv6::Ipv6Packet;
    use pnet::packet::udp::UdpPacket;
    use pnet::packet::Packet;

    fn yaml(s: &str) -> FrameSpec {
        yaml_serde::from_str(s).unwrap()
    }

    #[test]
    fn udp_ipv4_with_valid_checksums() {
        let f = yaml("ipv4: {src: 10.0.0.1}\npayload: abc").build().unwrap();
        assert_eq!(f.len(), 14 + 20 + 8 + 3);
        let eth = EthernetPacket::new(&f).unwrap();
        assert_eq!(eth.get_ethertype(), EtherTypes::Ipv4);
        assert_eq!(eth.get_source(), MacAddr::new(2, 0, 0, 0, 0, 1));
        let ip = Ipv4Packet::new(eth.payload()).unwrap();
        assert_eq!(ip.get_source(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.get_checksum(), ipv4::checksum(&ip));
        assert_eq!(ip.get_total_length(), 31);
        let u = UdpPacket::new(ip.payload()).unwrap();
        assert_eq!(u.get_checksum(), udp::ipv4_checksum(&u, &ip.get_source(), &ip.get_destination()));
        assert_eq!(u.payload(), b"abc");
    }

    #[test]
    fn options_fragments_and_overrides() {
        let f = yaml("ipv4: {src: 10.0.0.1, options_len: 8}").build().unwrap();
        let ip = Ipv4Packet::new(&f[14..]).unwrap();
        assert_eq!(ip.get_header_length(), 7);
        assert_eq!(&f[34..42], &[0x94, 4, 0, 0, 1, 1, 1, 1]);
        assert_eq!(ip.get_checksum(), ipv4::checksum(&ip));
        let f = yaml("ipv4: {src: 10.0.0.1, frag_offset: 185, more_fragments: true}\npayload: xyz").build().unwrap();
        let ip = Ipv4Packet::new(&f[14..]).unwrap();
        assert_eq!(ip.get_fragment_offset(), 185);
        assert_eq!(ip.get_flags(), 1);
        assert_eq!(ip.payload(), b"xyz");
        let f = yaml("ipv4: {src: 10.0.0.1, ihl: 4, version: 6}").build().unwrap();
        assert_eq!(f[14], 0x64);
    }

    #[test]
    fn vlan_tags_chain() {
        let f = yaml("vlan: [{tpid: 0x88a8, vid: 100}, {vid: 200}]\nipv6: {src: '2001:db8::1'}").build().unwrap();
        assert_eq!(&f[12..14], &[0x88, 0xa8]);
        assert_eq!(&f[14..18], &[0x00, 100, 0x81, 0x00]);
        assert_eq!(&f[18..22], &[0x00, 200, 0x86, 0xdd]);
        let ip = Ipv6Packet::new(&f[22..]).unwrap();
        assert_eq!(ip.get_source(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.get_version(), 6);
    }

    #[test]
    fn ipv6_extension_chain() {
        let f = yaml("ipv6: {src: '2001:db8::1', ext: [{type: hop_by_hop}, {type: fragment, more: true}]}")
            .build()
            .unwrap();
        let ip = Ipv6Packet::new(&f[14..]).unwrap();
        assert_eq!(ip.get_next_header().0, 0);
        assert_eq!(f[14 + 40], 44); // hop-by-hop -> fragment
        assert_eq!(f[14 + 48], 17); // fragment -> UDP
        assert_eq!(&f[14 + 50..14 + 52], &[0, 1]); // offset 0, M
        assert_eq!(ip.get_payload_length() as usize, 16 + 8 + DEFAULT_PAYLOAD.len());
        let u = UdpPacket::new(&f[14 + 56..]).unwrap();
        assert_eq!(u.get_checksum(), udp::ipv6_checksum(&u, &ip.get_source(), &ip.get_destination()));
    }

    #[test]
    fn routing_header_tcp_and_frame_len() {
        let f = yaml("ipv6: {src: '2001:db8::1', ext: [{type: routing, segments_left: 1}], next_header: 6}\ntcp: {dst_port: 80}\npayload: ''")
            .build()
            .unwrap();
        assert_eq!(f[14 + 6], 43);
        assert_eq!(&f[14 + 40..14 + 44], &[6, 2, 4, 1]);
        assert_eq!(&f[14 + 48..14 + 64], &DEFAULT_DST_V6.octets());
        let t = pnet::packet::tcp::TcpPacket::new(&f[14 + 64..]).unwrap();
        assert_eq!((t.get_destination(), t.get_flags(), f.len()), (80, 0x02, 14 + 64 + 20));
        let ip = Ipv6Packet::new(&f[14..]).unwrap();
        assert_eq!(t.get_checksum(), tcp::ipv6_checksum(&t, &ip.get_source(), &ip.get_destination()));
        let f = yaml("ipv4: {src: 10.0.0.1}\nframe_len: 9000").build().unwrap();
        assert_eq!(f.len(), 9000);
        let ip = Ipv4Packet::new(&f[14..]).unwrap();
        assert_eq!(ip.get_total_length(), 9000 - 14);
        assert_eq!(UdpPacket::new(ip.payload()).unwrap().get_length(), 9000 - 34);
        assert_eq!(yaml("ethertype: 0x88b5\nframe_len: 80000").build().unwrap().len(), 80000);
        // Lengths the 16-bit fields cannot hold, a frame_len under the frame, udp with tcp.
        assert!(yaml("ipv4: {src: 10.0.0.1}\nframe_len: 70000").build().is_err());
        assert!(yaml("ipv4: {src: 10.0.0.1}\nframe_len: 20").build().is_err());
        assert!(yaml("ipv4: {src: 10.0.0.1, protocol: 6}\ntcp: {}\nudp: {}").build().is_err());
        assert!(yaml("ipv4: {src: 10.0.0.1}\ntcp: {}").build().is_err());
    }

    #[test]
    fn arp_raw_and_truncate() {
        let f = yaml("arp: {}").build().unwrap();
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        let f = yaml("ethertype: 0x88b5\npayload: hi").build().unwrap();
        assert_eq!(&f[12..], &[0x88, 0xb5, b'h', b'i']);
        let f = yaml("ipv4: {src: 10.0.0.1}\ntruncate: 33").build().unwrap();
        assert_eq!(f.len(), 33);
        assert!(yaml("ipv4: {src: 10.0.0.1}\ntruncate: 3000").build().is_err());
        assert!(yaml_serde::from_str::<FrameSpec>("ipv4: {src: 10.0.0.1, bogus: 1}").is_err());
        assert!(yaml("ipv4: {src: 10.0.0.1}\narp: {}").build().is_err());
    }
}
