//! The jittergen ABI (`bpfeval_shared::jittergen::abi`) restated for the Aya kernel program,
//! which cannot depend on the std-based shared crate. The loader checks at compile time that
//! these constants agree with the shared ones.
#![no_std]

pub const MAX_RULES: u32 = 16;
pub const FLOW_ENTRIES: u32 = 65536;

pub const ACTION_DROP: u32 = 1;
pub const ACTION_JITTER: u32 = 2;
pub const ACTION_REORDER: u32 = 3;

pub const FLAG_KEEP_ORDER: u32 = 1;

/// Rule protocol: any IP packet; else the IP protocol number (TCP, UDP).
pub const PROTO_ANY: u8 = 0;

pub const COUNTER_PACKETS: u32 = 0;
pub const COUNTER_NOT_IP: u32 = 1;
pub const COUNTER_UNMATCHED: u32 = 2;
pub const COUNTER_DROPPED: u32 = 3;
pub const COUNTER_DELAYED: u32 = 4;
pub const COUNTER_PASSED: u32 = 5;
// Not verdicts:
pub const COUNTER_OWN_FLOW: u32 = 6;
pub const COUNTER_ORDER_KEPT: u32 = 7;
pub const COUNTER_TSTAMP_FAILED: u32 = 8;
pub const COUNTER_COUNT: u32 = 9;

/// `rules[i]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Rule {
    /// Act when a u32 random draw is below this; 1 << 32 = always.
    pub chance: u64,
    /// Delay of every matched packet.
    pub base_ns: u64,
    /// Jitter: smallest extra delay; reorder: the extra delay.
    pub min_ns: u64,
    /// Jitter: max - min.
    pub span_ns: u64,
    pub action: u32,
    pub flags: u32,
    /// Source or destination port, host order; 0 = any.
    pub port: u16,
    pub protocol: u8,
    pub _pad: [u8; 5],
}

/// `settings[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    pub rule_count: u32,
    pub _reserved: u32,
}

const _: () = assert!(core::mem::size_of::<Rule>() == 48);
const _: () = assert!(core::mem::size_of::<Settings>() == 8);

// SAFETY: `repr(C)`, integers only, explicit padding: any byte pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Rule {}
// SAFETY: `repr(C)`, two u32, no padding.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Settings {}
