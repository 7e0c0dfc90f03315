//! The map layout every library's jittergen program implements, byte for byte. The kernel sides
//! restate it in their own language (C header, `#[repr(C)]` Rust); the conformance suite reads
//! `counters` by name, so names and indices matter.
//!
//! | map         | type                 | key          | value                      |
//! |-------------|----------------------|--------------|----------------------------|
//! | `rules`     | array[`MAX_RULES`]   | rule index   | [`Rule`] (48 bytes)        |
//! | `settings`  | array[1]             | 0            | [`Settings`] (8 bytes)     |
//! | `counters`  | per-CPU array[`COUNTER_COUNT`] | counter index | packets u64     |
//! | `rule_hits` | per-CPU array[`MAX_RULES`]     | rule index    | packets u64     |
//! | `flow_last` | LRU hash[`FLOW_ENTRIES`] | flow hash u32 | last departure time u64 (ns, CLOCK_MONOTONIC) |
//!
//! Per packet (TC egress, program `jittergen`): the first rule (in order, `settings.rule_count`
//! of them) whose protocol and port match decides. Every packet it matches gets `base_ns`; a
//! share `chance / 2^32` of them gets the action: drop (`TC_ACT_SHOT`), jitter (`min_ns` plus a
//! uniform draw from `[0, span_ns]`) or reorder (`min_ns`, in an fq flow of its own). A packet
//! with a delay leaves at `bpf_ktime_get_ns() + delay`, set with `bpf_skb_set_tstamp(..,
//! BPF_SKB_TSTAMP_DELIVERY_MONO)` and honoured by the `fq` root qdisc the loader installs.
//!
//! Order: with `FLAG_KEEP_ORDER` a jitter rule never lets a packet leave before an earlier
//! packet of the same flow (skb hash): its departure time is at least the flow's last one in
//! `flow_last`. Without it, and always for reordered packets, the packet gets a flow hash of its
//! own (`bpf_set_hash(hash ^ (random | 1))`: the low bit differs, so never its flow's own hash),
//! because fq releases a flow's packets in order and a delayed packet would hold back every
//! later packet of its flow.

/// Rules a program holds (the config may list at most this many).
pub const MAX_RULES: u32 = 16;
/// Entries of the `flow_last` LRU hash.
pub const FLOW_ENTRIES: u32 = 65536;

pub const ACTION_DROP: u32 = 1;
pub const ACTION_JITTER: u32 = 2;
pub const ACTION_REORDER: u32 = 3;

/// `Rule::flags`: jitter keeps each flow's order.
pub const FLAG_KEEP_ORDER: u32 = 1;

/// `Rule::protocol`: any IP packet, TCP, UDP.
pub const PROTO_ANY: u8 = 0;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// `chance` of a rule that acts on every packet it matches (2^32: above any u32 draw).
pub const CHANCE_ALL: u64 = 1 << 32;

/// Indices of the `counters` map. Every packet increments `packets` and exactly one of
/// `not_ip`, `unmatched`, `dropped`, `delayed`, `passed`.
pub const COUNTER_PACKETS: u32 = 0;
/// Not IPv4/IPv6: passed untouched.
pub const COUNTER_NOT_IP: u32 = 1;
/// IP, but no rule matched: passed untouched.
pub const COUNTER_UNMATCHED: u32 = 2;
pub const COUNTER_DROPPED: u32 = 3;
/// Given a departure time.
pub const COUNTER_DELAYED: u32 = 4;
/// Matched a rule that gave it no delay (the share the action skipped, without a base delay).
pub const COUNTER_PASSED: u32 = 5;
/// Not a verdict: delayed packets moved to an fq flow of their own (reorder, unordered jitter).
pub const COUNTER_OWN_FLOW: u32 = 6;
/// Not a verdict: departure times pushed back to keep a flow's order.
pub const COUNTER_ORDER_KEPT: u32 = 7;
/// Not a verdict: `bpf_skb_set_tstamp` refused (the packet left undelayed).
pub const COUNTER_TSTAMP_FAILED: u32 = 8;
pub const COUNTER_COUNT: u32 = 9;

/// Counter names, in index order, as they appear in `stats` lines and reports.
pub const COUNTER_NAMES: [&str; COUNTER_COUNT as usize] = [
    "packets",
    "not_ip",
    "unmatched",
    "dropped",
    "delayed",
    "passed",
    "own_flow",
    "order_kept",
    "tstamp_failed",
];

/// `rules[i]`: 48 bytes, native endian.
/// `u64 chance, u64 base_ns, u64 min_ns, u64 span_ns, u32 action, u32 flags, u16 port,
/// u8 protocol, u8 pad[5]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rule {
    /// The action applies when a u32 random draw is below this (0 = never, [`CHANCE_ALL`] = always).
    pub chance: u64,
    /// Delay of every packet the rule matches.
    pub base_ns: u64,
    /// Jitter: the smallest extra delay; reorder: the extra delay.
    pub min_ns: u64,
    /// Jitter: width of the uniform extra delay (`max - min`); 0 otherwise.
    pub span_ns: u64,
    pub action: u32,
    pub flags: u32,
    /// Source or destination port (host order); 0 = any.
    pub port: u16,
    pub protocol: u8,
}

pub const RULE_SIZE: usize = 48;

impl Rule {
    pub fn to_bytes(&self) -> [u8; RULE_SIZE] {
        let mut b = [0u8; RULE_SIZE];
        for (i, v) in [self.chance, self.base_ns, self.min_ns, self.span_ns].into_iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        b[32..36].copy_from_slice(&self.action.to_ne_bytes());
        b[36..40].copy_from_slice(&self.flags.to_ne_bytes());
        b[40..42].copy_from_slice(&self.port.to_ne_bytes());
        b[42] = self.protocol;
        b
    }
}

/// `settings[0]`: `u32 rule_count, u32 reserved`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub rule_count: u32,
}

impl Settings {
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.rule_count.to_ne_bytes());
        b
    }
}
