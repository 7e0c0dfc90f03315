//! The comtrace ABI (`bpfeval_shared::comtrace::abi`) restated for the Aya kernel program, which
//! cannot depend on the std-based shared crate. The loader checks at compile time that these
//! constants agree with the shared ones.
#![no_std]

pub const COUNTER_EVENTS_LOST: u32 = 0;
pub const COUNTER_UNTRACKED: u32 = 1;
pub const COUNTER_COUNT: u32 = 2;

pub const MAX_SOCKETS: u32 = 65_536;
pub const MAX_PORTS: u32 = 1024;
pub const EVENTS_BYTES: u32 = 256 * 1024;
pub const TASK_COMM_LEN: usize = 16;

/// `idents[socket]`: who owns the connection.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Ident {
    pub pid: u32,
    pub _pad: u32,
    pub comm: [u8; TASK_COMM_LEN],
}

/// One `events` ring buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub start_ns: u64,
    pub end_ns: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub pid: u32,
    /// Host byte order.
    pub lport: u16,
    pub rport: u16,
    /// 4 or 6.
    pub family: u8,
    pub _pad: [u8; 7],
    /// Network byte order; IPv4 in the first 4 bytes, the rest zero.
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
    pub comm: [u8; TASK_COMM_LEN],
}

const _: () = assert!(core::mem::size_of::<Ident>() == 24);
const _: () = assert!(core::mem::size_of::<Event>() == 96);
const _: () = assert!(
    core::mem::offset_of!(Event, pid) == 32
        && core::mem::offset_of!(Event, family) == 40
        && core::mem::offset_of!(Event, laddr) == 48
        && core::mem::offset_of!(Event, comm) == 80
);
