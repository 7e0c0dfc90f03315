//! The layout every library's comtrace program implements, byte for byte. The kernel sides
//! restate it in their own language (C header, `#[repr(C)]` Rust); the harness finds the
//! program and maps by these names.
//!
//! Program `comtrace` on the tracepoint `sock:inet_sock_set_state`. Maps:
//! | name       | type            | key               | value                         |
//! |------------|-----------------|-------------------|-------------------------------|
//! | `births`   | hash            | socket address u64 | birth time u64 (ns, monotonic) |
//! | `idents`   | hash            | socket address u64 | `u32 pid, u32 pad, char comm[16]` |
//! | `lports`   | hash            | local port u16    | u8 (1): the `-L` list         |
//! | `rports`   | hash            | remote port u16   | u8 (1): the `-D` list         |
//! | `counters` | per-CPU array[[`COUNTER_COUNT`]] | counter index | u64            |
//! | `events`   | ring buffer     |                   | [`EVENT_SIZE`]-byte records   |
//!
//! Read-only globals, set before load: the PID to report (0 = all) and whether the local and
//! remote port lists apply.
//!
//! Lifecycle of one socket, as the program sees it:
//! * `SYN_SENT` (connect, in the caller's context) or `SYN_RECV` (a passive child socket): a
//!   new connection. Birth time = now; identity = the caller for `SYN_SENT`, none yet for
//!   `SYN_RECV` (that transition runs in softirq context, on behalf of no particular process).
//! * `FIN_WAIT1` / `LAST_ACK` (the application closes, in its own context): identity, unless
//!   one is recorded already — so a passive socket is owned by the process that closes it.
//! * `CLOSE`: if the birth is known, filters apply and one record goes to `events`; both map
//!   entries are deleted.
//!
//! Byte counts are payload only; see the kernel programs for how the counters of `tcp_sock`
//! are corrected for SYN and FIN sequence space.

/// Indices of the `counters` map.
/// Records the ring buffer had no room for.
pub const COUNTER_EVENTS_LOST: u32 = 0;
/// Connections not tracked because `births` or `idents` was full.
pub const COUNTER_UNTRACKED: u32 = 1;
pub const COUNTER_COUNT: u32 = 2;
/// Counter names, in index order, as they appear in `stats` lines.
pub const COUNTER_NAMES: [&str; COUNTER_COUNT as usize] = ["events_lost", "untracked"];

/// `max_entries` of `births` and `idents`: connections open at the same time.
pub const MAX_SOCKETS: u32 = 65_536;
/// `max_entries` of `lports` and `rports`.
pub const MAX_PORTS: u32 = 1024;
/// Size of the `events` ring buffer in bytes.
pub const EVENTS_BYTES: u32 = 256 * 1024;
/// Length of a command name in the kernel, NUL included.
pub const TASK_COMM_LEN: usize = 16;

/// Size of one ring buffer record:
/// ```text
///  0 u64 start_ns     birth (CLOCK_MONOTONIC, as bpf_ktime_get_ns)
///  8 u64 end_ns       transition to CLOSE
/// 16 u64 rx_bytes     payload received
/// 24 u64 tx_bytes     payload sent
/// 32 u32 pid          owner (thread group id)
/// 36 u16 lport        host byte order
/// 38 u16 rport
/// 40 u8  family       4 or 6
/// 41 u8  pad[7]
/// 48 u8  laddr[16]    network byte order; IPv4 in the first 4 bytes
/// 64 u8  raddr[16]
/// 80 u8  comm[16]     NUL-padded
/// ```
pub const EVENT_SIZE: usize = 96;

/// Size of an `idents` value: `u32 pid, u32 pad, u8 comm[16]`.
pub const IDENT_SIZE: usize = 24;
