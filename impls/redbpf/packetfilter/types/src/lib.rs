//! The packetfilter ABI (`bpfeval_shared::packetfilter::abi`) restated for the RedBPF kernel
//! program, which cannot depend on the std-based shared crate. The loader checks at compile time
//! that these constants agree with the shared ones.
#![no_std]

pub const LIST_BLOCK: u8 = 0;
pub const LIST_ALLOW: u8 = 1;

pub const VERDICT_PASS_NON_IP: u32 = 0;
pub const VERDICT_PASS_ALLOW: u32 = 1;
pub const VERDICT_PASS_DEFAULT: u32 = 2;
pub const VERDICT_DROP_BLOCK: u32 = 3;
pub const VERDICT_DROP_DEFAULT: u32 = 4;
pub const VERDICT_DROP_MALFORMED: u32 = 5;
pub const COUNTER_EVENTS_LOST: u32 = 6;
pub const VERDICT_COUNT: u32 = 7;

pub const NO_RULE: u32 = u32::MAX;

/// `settings[generation]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    pub default_drop_v4: u32,
    pub default_drop_v6: u32,
    pub log_every: u32,
    pub _reserved: u32,
}

/// One `events` ring buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub ts_ns: u64,
    pub rule: u32,
    pub ifindex: u32,
    pub verdict: u8,
    /// 4 or 6.
    pub family: u8,
    pub _pad: [u8; 6],
    /// IPv4 in the first 4 bytes, the rest zero.
    pub saddr: [u8; 16],
}

/// An LPM trie key: `u32 prefixlen` then the data (`[gen, list, 0, 0, addr]`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LpmKey<const N: usize> {
    pub prefixlen: u32,
    pub data: [u8; N],
}

const _: () = assert!(core::mem::size_of::<Settings>() == 16);
const _: () = assert!(core::mem::size_of::<Event>() == 40);
