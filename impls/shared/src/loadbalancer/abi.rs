//! The map layout and the flow hash every library's loadbalancer program implements, byte for
//! byte. The kernel sides restate it in their own language (C header, `#[repr(C)]` Rust); the
//! conformance suite reads `verdicts` and `backend_hits` by name and predicts the backend of a
//! flow with [`flow_hash`] and the Maglev table of [`super::maglev`], so names, indices and the
//! hash matter.
//!
//! Maps:
//! | name           | type                 | key                  | value                         |
//! |----------------|----------------------|----------------------|-------------------------------|
//! | `settings`     | array[1]             | 0                    | [`Settings`]                  |
//! | `vips_v4`      | hash, [`MAX_VIPS`]   | IPv4 address (4 B)   | VIP index u32                 |
//! | `vips_v6`      | hash, [`MAX_VIPS`]   | IPv6 address (16 B)  | VIP index u32                 |
//! | `ports`        | hash, [`MAX_PORTS`]  | TCP port, network order (2 B) | port index u32       |
//! | `backends`     | array[MAX_BACKENDS]  | slot                 | [`BACKEND_SIZE`] B: MAC, flags |
//! | `maglev`       | array[TABLE_SIZE]    | `flow_hash % TABLE_SIZE` | slot u32 ([`NO_BACKEND`]: none) |
//! | `conns`        | LRU hash, [`CONN_TABLE_SIZE`] | [`FLOW_SIZE`]-byte flow | slot u32            |
//! | `verdicts`     | per-CPU array[VERDICT_COUNT] | verdict index | packets u64                   |
//! | `backend_hits` | per-CPU array[MAX_BACKENDS]  | slot          | packets u64                   |
//! | `events`       | ring buffer, 256 KiB |                      | [`EVENT_SIZE`]-byte records   |
//!
//! **Forwarding.** A packet is the balancer's when it is TCP to a VIP (any address when the
//! config lists none, as in the thesis) and a balanced port. Unless it is a SYN (SYN without
//! ACK: a new connection, whose 4-tuple may be an old one's), its flow is looked up in `conns`;
//! a hit whose slot is in use keeps the connection on its backend. Otherwise the Maglev table
//! picks the slot at `flow_hash(flow) % TABLE_SIZE` and the flow is remembered in `conns`. The
//! frame leaves through the interface it came in on (`XDP_TX`) with the destination MAC set to
//! the backend's and the source MAC set to the frame's old destination (the balancer's own).

/// Entries of the Maglev lookup table: a prime, at least 100 × [`MAX_BACKENDS`] so that every
/// backend's share is within about 1 % of its weight's.
pub const TABLE_SIZE: u32 = 65_537;
/// Backend slots. Removed backends keep their slot (and so their connections) until the slot
/// is needed again, so the config may list at most this many at once.
pub const MAX_BACKENDS: u32 = 256;
pub const MAX_VIPS: u32 = 64;
pub const MAX_PORTS: u32 = 64;
/// Entries of the LRU connection table.
pub const CONN_TABLE_SIZE: u32 = 65_536;
/// A table entry that names no backend (the config lists none).
pub const NO_BACKEND: u32 = u32::MAX;
/// Largest weight a backend may have (its table share is proportional to it).
pub const MAX_WEIGHT: u32 = 1000;

/// Indices of the `verdicts` counters. Every packet increments exactly one of the first seven.
pub const VERDICT_PASS_NON_IP: u32 = 0;
pub const VERDICT_PASS_OTHER: u32 = 1;
pub const VERDICT_TX_CONN: u32 = 2;
pub const VERDICT_TX_NEW: u32 = 3;
pub const VERDICT_DROP_MALFORMED: u32 = 4;
pub const VERDICT_DROP_FRAGMENT: u32 = 5;
pub const VERDICT_DROP_NO_BACKEND: u32 = 6;
/// Not a verdict: events the ring buffer had no room for.
pub const COUNTER_EVENTS_LOST: u32 = 7;
pub const VERDICT_COUNT: u32 = 8;

/// Counter names, in index order, as they appear in `stats` lines and reports.
pub const VERDICT_NAMES: [&str; VERDICT_COUNT as usize] = [
    "pass_non_ip",
    "pass_other",
    "tx_conn",
    "tx_new",
    "drop_malformed",
    "drop_fragment",
    "drop_no_backend",
    "events_lost",
];

/// `backends[slot].flags`: the slot holds a backend (active or draining).
pub const BACKEND_IN_USE: u16 = 1;

/// `settings[0]`: 8 bytes, two native-endian u32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// 1 = the config lists no VIP: TCP to any address on a balanced port is balanced.
    pub any_vip: u32,
    /// Emit an event for about one packet in `log_every` (0 = no events).
    pub log_every: u32,
}

impl Settings {
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.any_vip.to_ne_bytes());
        b[4..].copy_from_slice(&self.log_every.to_ne_bytes());
        b
    }
}

/// Size of a `backends` value: `u8 mac[6], u16 flags` (native endian).
pub const BACKEND_SIZE: usize = 8;

pub fn backend_bytes(mac: [u8; 6], flags: u16) -> [u8; BACKEND_SIZE] {
    let mut b = [0u8; BACKEND_SIZE];
    b[..6].copy_from_slice(&mac);
    b[6..].copy_from_slice(&flags.to_ne_bytes());
    b
}

/// Size of a flow (the `conns` key and the hash input), 4-byte aligned:
/// `u8 saddr[16], u8 daddr[16], u8 sport[2], u8 dport[2]` (ports as on the wire),
/// `u8 family (4|6), u8 protocol (6), u8 pad[2]`. IPv4 addresses fill the first 4 bytes.
pub const FLOW_SIZE: usize = 40;

pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;
pub const PROTO_TCP: u8 = 6;
/// TCP flags byte (offset 13 of the header): a segment with SYN and without ACK opens a
/// connection and is always placed by the Maglev table.
pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;

/// The flow key of a TCP segment, as the kernel programs build it.
pub fn flow_bytes(saddr: std::net::IpAddr, daddr: std::net::IpAddr, sport: u16, dport: u16) -> [u8; FLOW_SIZE] {
    use std::net::IpAddr;
    let mut f = [0u8; FLOW_SIZE];
    let family = match (saddr, daddr) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f[..4].copy_from_slice(&s.octets());
            f[16..20].copy_from_slice(&d.octets());
            FAMILY_V4
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f[..16].copy_from_slice(&s.octets());
            f[16..32].copy_from_slice(&d.octets());
            FAMILY_V6
        }
        _ => panic!("a flow has addresses of one family"),
    };
    f[32..34].copy_from_slice(&sport.to_be_bytes());
    f[34..36].copy_from_slice(&dport.to_be_bytes());
    f[36] = family;
    f[37] = PROTO_TCP;
    f
}

/// Seed of [`flow_hash`].
pub const FLOW_HASH_SEED: u32 = 0x6c62_7066; // "lbpf"

/// The hash that picks a flow's Maglev entry: MurmurHash3 (x86, 32-bit) of the 40 flow bytes
/// with [`FLOW_HASH_SEED`]. The kernel programs compute the same over the flow key read as ten
/// little-endian words (BPF is little-endian here), so every field of the 5-tuple counts —
/// Linux hands out even ephemeral ports only, so a hash of the port's low bits would not do.
pub fn flow_hash(flow: &[u8; FLOW_SIZE]) -> u32 {
    murmur3_32(flow, FLOW_HASH_SEED)
}

/// MurmurHash3_x86_32.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let k = u32::from_le_bytes(c.try_into().unwrap()).wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h = (h ^ k).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Size of one ring buffer record:
/// `u64 ts_ns, u32 backend (slot or NO_BACKEND), u8 verdict, u8 family (0|4|6), u8 sport[2],
/// u8 saddr[16]`.
pub const EVENT_SIZE: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_known_answers() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
    }

    #[test]
    fn flow_layout() {
        let f = flow_bytes("10.0.0.1".parse().unwrap(), "10.0.0.100".parse().unwrap(), 40000, 80);
        assert_eq!(&f[..4], &[10, 0, 0, 1]);
        assert_eq!(&f[16..20], &[10, 0, 0, 100]);
        assert_eq!(&f[32..36], &[0x9c, 0x40, 0, 80]);
        assert_eq!(&f[36..], &[4, 6, 0, 0]);
        // Ports differing in one bit land on different hashes.
        let g = flow_bytes("10.0.0.1".parse().unwrap(), "10.0.0.100".parse().unwrap(), 40002, 80);
        assert_ne!(flow_hash(&f), flow_hash(&g));
    }
}
