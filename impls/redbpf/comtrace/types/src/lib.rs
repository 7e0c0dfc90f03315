//! The comtrace ABI (`bpfeval_shared::comtrace::abi`) restated for the RedBPF kernel program,
//! which cannot depend on the std-based shared crate. The loader checks at compile time that
//! these constants agree with the shared ones.
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

/// `settings[0]`, written by the loader before it attaches. The Aya and libbpf-rs programs
/// have the filters as read-only globals set before load and the kernel layout from their
/// bindings or CO-RE; RedBPF can do neither (its loader creates `.rodata` from the object as
/// is, and it has no CO-RE), so both come in this map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// Report only connections of this PID; 0 = all.
    pub target_pid: u32,
    /// 1: report only connections whose local port is in `lports`.
    pub filter_lports: u8,
    /// 1: report only connections whose remote port is in `rports`.
    pub filter_rports: u8,
    pub _pad: [u8; 2],
    pub offsets: Offsets,
}

/// Where the running kernel keeps what the program reads of a socket, from its BTF.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Offsets {
    /// `struct sock`: `__sk_common.skc_flags` (`sk_flags`, unsigned long).
    pub sk_flags: u32,
    /// The bit of `SOCK_DONE` (`enum sock_flags`) in `sk_flags`.
    pub sock_done: u32,
    /// `struct tcp_sock`: the u64 byte counters.
    pub bytes_received: u32,
    pub bytes_sent: u32,
    pub bytes_retrans: u32,
    pub _pad: u32,
}

/// The record of the tracepoint `sock:inet_sock_set_state`, the program's context. RedBPF has
/// no type for it, so it is declared here, from the tracepoint's `format` file; the loader
/// checks it against the running kernel's BTF ([`RECORD_LAYOUT`]) before loading.
#[repr(C)]
pub struct InetSockSetState {
    /// common_type, common_flags, common_preempt_count, common_pid
    pub _common: u64,
    pub skaddr: u64,
    pub oldstate: i32,
    pub newstate: i32,
    pub sport: u16,
    pub dport: u16,
    pub family: u16,
    pub protocol: u16,
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    pub saddr_v6: [u8; 16],
    pub daddr_v6: [u8; 16],
}

/// The byte offset of each field of [`InetSockSetState`] the program reads (the kernel's
/// `struct trace_event_raw_inet_sock_set_state`).
pub const RECORD_LAYOUT: [(&str, u32); 11] = [
    ("skaddr", 8),
    ("oldstate", 16),
    ("newstate", 20),
    ("sport", 24),
    ("dport", 26),
    ("family", 28),
    ("protocol", 30),
    ("saddr", 32),
    ("daddr", 36),
    ("saddr_v6", 40),
    ("daddr_v6", 56),
];

const _: () = assert!(core::mem::size_of::<InetSockSetState>() == 72);
const _: () = assert!(core::mem::size_of::<Ident>() == 24);
const _: () = assert!(core::mem::size_of::<Event>() == 96);
const _: () = assert!(core::mem::size_of::<Settings>() == 32);
