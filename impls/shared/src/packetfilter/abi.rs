//! The map layout every library's packetfilter program implements, byte for byte.
//! The kernel sides restate it in their own language (C header, `#[repr(C)]` Rust); the
//! conformance suite reads the `verdicts` map by name, so names and indices matter.
//!
//! Maps:
//! | name        | type          | key                         | value              |
//! |-------------|---------------|-----------------------------|--------------------|
//! | `rules_v4`  | LPM trie      | prefixlen u32 + [gen, list, 0, 0, addr(4)]  | rule id u32 |
//! | `rules_v6`  | LPM trie      | prefixlen u32 + [gen, list, 0, 0, addr(16)] | rule id u32 |
//! | `settings`  | array[2]      | generation u32              | [`Settings`]       |
//! | `generation`| array[1]      | 0                           | active generation u32 |
//! | `verdicts`  | per-CPU array[VERDICT_COUNT] | verdict index | packets u64       |
//! | `rule_hits` | per-CPU array[2 * capacity]  | rule id       | packets u64       |
//! | `events`    | ring buffer   |                             | [`EVENT_SIZE`]-byte records |
//!
//! Reload without an unfiltered window: the rules of both generations live side by side
//! (the generation is the first key byte). The loader fills the inactive generation, writes its
//! settings, flips `generation[0]` with one 4-byte update, then deletes the old generation.
//!
//! Block wins over allow: the program looks up the block list first, then the allow list.
//! Each lookup is longest-prefix, so within a list the most specific rule is the one counted.

/// Key prefix length covered by the (generation, list, pad, pad) header.
pub const KEY_HEADER_BITS: u32 = 32;
pub const LIST_BLOCK: u8 = 0;
pub const LIST_ALLOW: u8 = 1;

/// Indices of the `verdicts` counters. Every packet increments exactly one of the first six.
pub const VERDICT_PASS_NON_IP: u32 = 0;
pub const VERDICT_PASS_ALLOW: u32 = 1;
pub const VERDICT_PASS_DEFAULT: u32 = 2;
pub const VERDICT_DROP_BLOCK: u32 = 3;
pub const VERDICT_DROP_DEFAULT: u32 = 4;
pub const VERDICT_DROP_MALFORMED: u32 = 5;
/// Not a verdict: events the ring buffer had no room for.
pub const COUNTER_EVENTS_LOST: u32 = 6;
pub const VERDICT_COUNT: u32 = 7;

/// Counter names, in index order, as they appear in `stats` lines and reports.
pub const VERDICT_NAMES: [&str; VERDICT_COUNT as usize] =
    ["pass_non_ip", "pass_allow", "pass_default", "drop_block", "drop_default", "drop_malformed", "events_lost"];

/// Rule id stored in events for verdicts that matched no rule.
pub const NO_RULE: u32 = u32::MAX;

/// `settings[generation]`: 16 bytes, four native-endian u32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// 1 = drop IPv4 packets no rule matched, 0 = pass them.
    pub default_drop_v4: u32,
    /// 1 = drop IPv6 packets no rule matched, 0 = pass them.
    pub default_drop_v6: u32,
    /// Emit an event for about one packet in `log_every` (0 = no events).
    pub log_every: u32,
    pub _reserved: u32,
}

impl Settings {
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        for (i, v) in [self.default_drop_v4, self.default_drop_v6, self.log_every, 0].into_iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }
}

/// Size of one ring buffer record:
/// `u64 ts_ns, u32 rule, u32 ifindex, u8 verdict, u8 family (4|6), u8 pad[6], u8 saddr[16]`.
pub const EVENT_SIZE: usize = 40;

/// The LPM key data for IPv4: header + 4 address bytes.
pub fn key_v4(generation: u8, list: u8, addr: [u8; 4]) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[0] = generation;
    k[1] = list;
    k[4..].copy_from_slice(&addr);
    k
}

/// The LPM key data for IPv6: header + 16 address bytes.
pub fn key_v6(generation: u8, list: u8, addr: [u8; 16]) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[0] = generation;
    k[1] = list;
    k[4..].copy_from_slice(&addr);
    k
}
