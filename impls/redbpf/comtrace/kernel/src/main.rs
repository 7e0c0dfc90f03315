//! comtrace tracepoint program: one record per TCP connection when it closes (like tcplife),
//! from `sock:inet_sock_set_state`. Semantics and map layout are shared with every other
//! library's build (`bpfeval_shared::comtrace::abi`). Built by `cargo bpf build` (cargo-bpf
//! 2.3.0, Rust 1.59, LLVM 13) from the loader's build.rs.
//!
//! redbpf-probes has no tracepoint support (no `#[tracepoint]`, no context type): the program
//! is a plain function in a section named by hand, reading the tracepoint's record as
//! `types::InetSockSetState` declares it. Kernel structs are read at offsets the loader took
//! from the running kernel's BTF (`settings`): RedBPF has no CO-RE, and its bindings are those
//! of the 6.1 headers it was built with.
#![no_std]
#![no_main]

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::addr_of;

use comtrace_redbpf_types::*;
use redbpf_macros::{map, program};
use redbpf_probes::bindings::*;
use redbpf_probes::helpers::*;
use redbpf_probes::maps::{Array, HashMap, PerCpuArray};

program!(0xFFFFFFFE, "Dual MIT/GPL");

// Macros in the kernel headers, not in redbpf-probes' bindings; the tracepoint's format file
// prints the same numbers.
const AF_INET: u16 = 2;
const IPPROTO_TCP: u16 = 6;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_FIN_WAIT1: i32 = 4;
const TCP_CLOSE: i32 = 7;
const TCP_LAST_ACK: i32 = 9;
const E2BIG: i64 = 7;

#[map(link_section = "maps/births")]
static mut BIRTHS: HashMap<u64, u64> = HashMap::with_max_entries(MAX_SOCKETS);
#[map(link_section = "maps/idents")]
static mut IDENTS: HashMap<u64, Ident> = HashMap::with_max_entries(MAX_SOCKETS);
#[map(link_section = "maps/lports")]
static mut LPORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS);
#[map(link_section = "maps/rports")]
static mut RPORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS);
#[map(link_section = "maps/counters")]
static mut COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT);
#[map(link_section = "maps/settings")]
static mut SETTINGS: Array<Settings> = Array::with_max_entries(1);
// redbpf-probes has no ring buffer map: what `#[map]` emits for a map, written out (a
// `bpf_map_def` in `maps/<name>`), which RedBPF's loader creates as is.
#[no_mangle]
#[link_section = "maps/events"]
static mut EVENTS: bpf_map_def = bpf_map_def {
    type_: bpf_map_type_BPF_MAP_TYPE_RINGBUF,
    key_size: 0,
    value_size: 0,
    max_entries: EVENTS_BYTES,
    map_flags: 0,
};

/// Per-CPU counter: a plain add is race-free since each CPU has its own slot.
#[inline(always)]
fn count(index: u32) {
    if let Some(p) = unsafe { COUNTERS.get_mut(index) } {
        *p += 1;
    }
}

/// `bpf_map_update_elem` with flags and result: RedBPF's `HashMap::set` always passes BPF_ANY
/// and drops the result.
#[inline(always)]
fn insert<K, V>(map: &mut HashMap<K, V>, key: &K, value: &V, flags: u32) -> i64 {
    // SAFETY: `HashMap` is `repr(transparent)` over its map definition; key and value have the
    // map's key and value types.
    unsafe {
        bpf_map_update_elem(
            map as *mut _ as *mut c_void,
            key as *const _ as *const c_void,
            value as *const _ as *const c_void,
            flags.into(),
        )
    }
}

/// The current command as two words (redbpf-probes' `bpf_get_current_comm` returns bytes,
/// which would be copied byte by byte).
#[inline(always)]
fn current_comm() -> [u64; 2] {
    let mut comm = core::mem::MaybeUninit::<[u64; 2]>::uninit();
    let c = comm.as_mut_ptr() as *mut u64;
    // SAFETY: the buffer has the 16 bytes the helper writes at most. Zeroed first, as the helper
    // leaves the bytes after the NUL alone; volatile, or LLVM makes the two zero words a memset
    // call.
    unsafe {
        c.write_volatile(0);
        c.add(1).write_volatile(0);
        gen::bpf_get_current_comm(c as *mut _, TASK_COMM_LEN as u32);
        comm.assume_init()
    }
}

/// A u64 of kernel memory at `addr`, 0 if it cannot be read.
#[inline(always)]
fn read_kernel(addr: u64) -> u64 {
    let mut value = 0u64;
    // SAFETY: the helper checks the address; the destination is 8 bytes.
    unsafe { bpf_probe_read_kernel(&mut value as *mut u64 as *mut c_void, 8, addr as *const c_void) };
    value
}

/// Records the current process as the owner of `sk`.
#[inline(always)]
fn remember(sk: u64, flags: u32) {
    let comm = current_comm();
    let id = Ident {
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        _pad: 0,
        // SAFETY: two words are sixteen bytes.
        comm: unsafe { core::mem::transmute::<[u64; 2], [u8; TASK_COMM_LEN]>(comm) },
    };
    // With BPF_NOEXIST an existing owner is not an error, a full map is.
    if insert(unsafe { &mut IDENTS }, &sk, &id, flags) == -E2BIG {
        count(COUNTER_UNTRACKED);
    }
}

/// The connection of `sk` closed: one record, unless a filter says otherwise.
#[inline(always)]
fn report(args: *const InetSockSetState, sk: u64, birth: u64) {
    let settings = match unsafe { SETTINGS.get(0) } {
        Some(s) => *s,
        None => return,
    };
    let id = unsafe { IDENTS.get(&sk) }.map(|id| id as *const Ident);
    // SAFETY (this block and below): `args` is the tracepoint's record, readable as the context;
    // `id` points into a live map value.
    let (lport, rport, family) = unsafe { ((*args).sport, (*args).dport, (*args).family) };
    // No owner recorded (a passive socket reset before its application closed it): whoever
    // runs now, as tcplife does.
    let pid = match id {
        Some(id) => unsafe { (*id).pid },
        None => (bpf_get_current_pid_tgid() >> 32) as u32,
    };

    if settings.target_pid != 0 && pid != settings.target_pid {
        return;
    }
    if settings.filter_lports != 0 && unsafe { LPORTS.get(&lport) }.is_none() {
        return;
    }
    if settings.filter_rports != 0 && unsafe { RPORTS.get(&rport) }.is_none() {
        return;
    }

    // No ring buffer API in redbpf-probes: the raw helpers its bindings generate.
    // SAFETY: reserve on the ring buffer map above; a non-null record has room for an Event.
    let e = unsafe { bpf_ringbuf_reserve(&mut EVENTS as *mut _ as *mut c_void, size_of::<Event>() as u64, 0) }
        as *mut Event;
    if e.is_null() {
        count(COUNTER_EVENTS_LOST);
        return;
    }
    // Payload only. bytes_received is how far rcv_nxt advanced, which includes the peer's FIN
    // once it arrived in order; tcp_fin() sets SOCK_DONE exactly then (and tcp_disconnect()
    // resets both). bytes_acked would count our SYN and FIN, so bytes sent are taken from
    // bytes_sent (payload, but every retransmission again) less bytes_retrans. The offsets are
    // the running kernel's (see `Offsets`).
    let off = settings.offsets;
    let flags = read_kernel(sk + u64::from(off.sk_flags));
    let fin = (flags >> (off.sock_done & 63)) & 1;
    let received = read_kernel(sk + u64::from(off.bytes_received));
    let sent = read_kernel(sk + u64::from(off.bytes_sent));
    let retrans = read_kernel(sk + u64::from(off.bytes_retrans));
    let (family, laddr, raddr) = if family == AF_INET {
        // SAFETY: as above; IPv4 addresses fill the first word, the rest is zero.
        let (l, r) = unsafe { ((*args).saddr, (*args).daddr) };
        let word = |a: [u8; 4]| u64::from(u32::from_ne_bytes(a));
        (4u8, [word(l), 0], [word(r), 0])
    } else {
        // SAFETY: as above; the IPv6 addresses sit at 8-byte aligned offsets of the record.
        unsafe {
            let (l, r) = (addr_of!((*args).saddr_v6) as *const u64, addr_of!((*args).daddr_v6) as *const u64);
            (6u8, [*l, *l.add(1)], [*r, *r.add(1)])
        }
    };
    let comm = match id {
        // SAFETY: a live map value; `comm` is at offset 8 of an 8-byte aligned value.
        Some(id) => unsafe {
            let c = addr_of!((*id).comm) as *const u64;
            [*c, *c.add(1)]
        },
        None => current_comm(),
    };

    // Written as whole fields and words (layout in `types::Event`): no byte-wise zeroing that
    // LLVM could turn into a memset call. Reserved ring buffer memory is not zeroed and is
    // mapped to user space, so every byte is written.
    let words = e as *mut u64;
    // SAFETY: `e` is a reserved, 8-byte aligned record of `size_of::<Event>()` bytes.
    unsafe {
        (*e).start_ns = birth;
        (*e).end_ns = bpf_ktime_get_ns();
        (*e).rx_bytes = received - fin;
        (*e).tx_bytes = sent - retrans;
        (*e).pid = pid;
        (*e).lport = lport;
        (*e).rport = rport;
        // family, pad[7]
        words.add(5).write(u64::from(family));
        words.add(6).write(laddr[0]);
        words.add(7).write(laddr[1]);
        words.add(8).write(raddr[0]);
        words.add(9).write(raddr[1]);
        words.add(10).write(comm[0]);
        words.add(11).write(comm[1]);
        bpf_ringbuf_submit(e as *mut c_void, 0);
    }
}

// The part after `tracepoint/` is the program's name (RedBPF's convention, as for kprobes); the
// loader attaches it to sock:inet_sock_set_state (patches 0004 and 0005 make RedBPF's loader
// load and attach tracepoints at all).
#[no_mangle]
#[link_section = "tracepoint/comtrace"]
pub extern "C" fn comtrace(args: *const InetSockSetState) -> i32 {
    // SAFETY: the context is the tracepoint's record; the verifier allows direct reads of it.
    let (sk, oldstate, newstate, protocol) =
        unsafe { ((*args).skaddr, (*args).oldstate, (*args).newstate, (*args).protocol) };
    if protocol != IPPROTO_TCP {
        return 0;
    }

    // A new connection: connect() in the caller's context, or a passive child socket made in
    // softirq context (no owner yet). SYN_SENT -> SYN_RECV is a simultaneous open, the same
    // connection.
    if newstate == TCP_SYN_SENT || (newstate == TCP_SYN_RECV && oldstate != TCP_SYN_SENT) {
        let now = bpf_ktime_get_ns();
        if insert(unsafe { &mut BIRTHS }, &sk, &now, BPF_ANY) != 0 {
            count(COUNTER_UNTRACKED);
            return 0;
        }
        if newstate == TCP_SYN_SENT {
            remember(sk, BPF_ANY);
        } else {
            unsafe { IDENTS.delete(&sk) };
        }
        return 0;
    }
    // The application closes, in its own context: the owner of a passive socket.
    if newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK {
        remember(sk, BPF_NOEXIST);
        return 0;
    }
    if newstate != TCP_CLOSE {
        return 0;
    }

    // No birth: the connection began before we attached (or is a listener); not reported.
    if let Some(birth) = unsafe { BIRTHS.get(&sk) } {
        report(args, sk, *birth);
    }
    unsafe {
        BIRTHS.delete(&sk);
        IDENTS.delete(&sk);
    }
    0
}
