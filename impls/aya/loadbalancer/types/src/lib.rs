//! The loadbalancer ABI (`bpfeval_shared::loadbalancer::abi`) restated for the Aya kernel
//! program, which cannot depend on the std-based shared crate. The loader checks at compile
//! time that these constants and sizes agree with the shared ones.
#![no_std]

pub const TABLE_SIZE: u32 = 65_537;
pub const MAX_BACKENDS: u32 = 256;
pub const MAX_VIPS: u32 = 64;
pub const MAX_PORTS: u32 = 64;
pub const CONN_TABLE_SIZE: u32 = 65_536;
pub const NO_BACKEND: u32 = u32::MAX;
pub const BACKEND_IN_USE: u16 = 1;
pub const FLOW_HASH_SEED: u32 = 0x6c62_7066;

pub const VERDICT_PASS_NON_IP: u32 = 0;
pub const VERDICT_PASS_OTHER: u32 = 1;
pub const VERDICT_TX_CONN: u32 = 2;
pub const VERDICT_TX_NEW: u32 = 3;
pub const VERDICT_DROP_MALFORMED: u32 = 4;
pub const VERDICT_DROP_FRAGMENT: u32 = 5;
pub const VERDICT_DROP_NO_BACKEND: u32 = 6;
pub const COUNTER_EVENTS_LOST: u32 = 7;
pub const VERDICT_COUNT: u32 = 8;

/// `settings[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// 1 = no VIP configured: any destination address.
    pub any_vip: u32,
    /// One event per about `log_every` packets; 0 = none.
    pub log_every: u32,
}

/// `backends[slot]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Backend {
    pub mac: [u8; 6],
    /// `BACKEND_IN_USE`.
    pub flags: u16,
}

/// The `conns` key and the hash input: 40 bytes, hashed as ten little-endian words. 8-byte
/// aligned so that [`Flow::zeroed`] can clear it in five word stores.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Flow {
    /// IPv4: first 4 bytes.
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    /// Ports as on the wire (network byte order).
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    /// 4 or 6.
    pub family: u8,
    /// IPPROTO_TCP.
    pub proto: u8,
    pub _pad: [u8; 2],
}

impl Flow {
    /// Zeroes `slot` in place, as five word stores, and returns it. Not `Flow::default()`: a
    /// zeroed aggregate is a memset intrinsic, which the Rust BPF toolchains emit as a call to a
    /// byte-wise memset subprogram (clang expands the same `= {}` inline). The stores are
    /// volatile because LLVM merges plain zero stores of 16 bytes or more into such a memset
    /// too, and in place because a returned value is copied by one.
    #[inline(always)]
    pub fn zero_in(slot: &mut core::mem::MaybeUninit<Flow>) -> &mut Flow {
        let w = slot.as_mut_ptr() as *mut u64;
        // SAFETY: `Flow` is 40 bytes, 8-byte aligned, and any bit pattern is a valid value.
        unsafe {
            for i in 0..5 {
                w.add(i).write_volatile(0);
            }
            slot.assume_init_mut()
        }
    }
}

/// One `events` ring buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub ts_ns: u64,
    /// Slot, or `NO_BACKEND`.
    pub backend: u32,
    pub verdict: u8,
    /// 0 (not IP), 4 or 6.
    pub family: u8,
    pub sport: [u8; 2],
    pub saddr: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<Settings>() == 8);
const _: () = assert!(core::mem::size_of::<Backend>() == 8);
const _: () = assert!(core::mem::size_of::<Flow>() == 40 && core::mem::align_of::<Flow>() == 8);
const _: () = assert!(core::mem::size_of::<Event>() == 32);

// SAFETY: `repr(C)`, integers and byte arrays without padding: any byte pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Settings {}
// SAFETY: as above (6 bytes + u16, no padding).
#[cfg(feature = "user")]
unsafe impl aya::Pod for Backend {}
