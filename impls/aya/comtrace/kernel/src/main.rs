//! comtrace tracepoint program: one record per TCP connection when it closes (like tcplife),
//! from `sock:inet_sock_set_state`. Semantics and map layout are shared with every other
//! library's build (`bpfeval_shared::comtrace::abi`).
//!
//! Kernel structs are read at offsets fixed when this crate was built, from the build machine's
//! BTF (see build.rs): Rust BPF programs get no CO-RE relocations.
// Only the bpfel build is the program; a host build (e.g. `cargo clippy --workspace`) compiles
// the same code as an inert binary instead of failing.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[allow(non_camel_case_types, non_snake_case, non_upper_case_globals, dead_code)]
#[allow(unnecessary_transmutes, improper_ctypes_definitions)]
#[allow(clippy::all)]
mod vmlinux {
    include!(concat!(env!("OUT_DIR"), "/vmlinux.rs"));
}

use core::ptr::addr_of;

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_NOEXIST},
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel, generated},
    macros::{map, tracepoint},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
    EbpfContext, Global,
};
use comtrace_aya_types::*;
use vmlinux::{sock, sock_flags, tcp_sock, trace_event_raw_inet_sock_set_state as Args};

/// Not in the BTF (macros, not types).
const AF_INET: u16 = 2;
const E2BIG: i32 = 7;

const TCP_SYN_SENT: i32 = vmlinux::TCP_SYN_SENT as i32;
const TCP_SYN_RECV: i32 = vmlinux::TCP_SYN_RECV as i32;
const TCP_FIN_WAIT1: i32 = vmlinux::TCP_FIN_WAIT1 as i32;
const TCP_LAST_ACK: i32 = vmlinux::TCP_LAST_ACK as i32;
const TCP_CLOSE: i32 = vmlinux::TCP_CLOSE as i32;

// Filters, set by the loader before load (.rodata): the verifier sees them as constants.
#[unsafe(no_mangle)]
static TARGET_PID: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static FILTER_LPORTS: Global<u8> = Global::new(0);
#[unsafe(no_mangle)]
static FILTER_RPORTS: Global<u8> = Global::new(0);

#[map(name = "births")]
static BIRTHS: HashMap<u64, u64> = HashMap::with_max_entries(MAX_SOCKETS, 0);
#[map(name = "idents")]
static IDENTS: HashMap<u64, Ident> = HashMap::with_max_entries(MAX_SOCKETS, 0);
#[map(name = "lports")]
static LPORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS, 0);
#[map(name = "rports")]
static RPORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS, 0);
#[map(name = "counters")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);
#[map(name = "events")]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Per-CPU counter: a plain add is race-free since each CPU has its own slot.
#[inline(always)]
fn count(index: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer is this CPU's slot of a live map value.
        unsafe { *p += 1 };
    }
}

/// The current command as two words. Not aya-ebpf's `bpf_get_current_comm()`: it zeroes its
/// byte array first, which the BPF backend emits as a call to a byte-wise memset subprogram.
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
        generated::bpf_get_current_comm(c as *mut _, TASK_COMM_LEN as u32);
        comm.assume_init()
    }
}

/// Records the current process as the owner of `sk`.
#[inline(always)]
fn remember(sk: u64, flags: u64) {
    let comm = current_comm();
    let id = Ident {
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        _pad: 0,
        // SAFETY: two words are sixteen bytes.
        comm: unsafe { core::mem::transmute::<[u64; 2], [u8; TASK_COMM_LEN]>(comm) },
    };
    // With BPF_NOEXIST an existing owner is not an error, a full map is.
    if IDENTS.insert(sk, id, flags) == Err(-E2BIG) {
        count(COUNTER_UNTRACKED);
    }
}

/// The connection of `sk` closed: one record, unless a filter says otherwise.
#[inline(always)]
fn report(args: *const Args, sk: u64, birth: u64) {
    let tp = sk as *const tcp_sock;
    let id = IDENTS.get_ptr(sk);
    // SAFETY (this block and below): `args` is the tracepoint's record, readable as the context;
    // `id` points into a live map value.
    let (lport, rport, family) = unsafe { ((*args).sport, (*args).dport, (*args).family) };
    // No owner recorded (a passive socket reset before its application closed it): whoever
    // runs now, as tcplife does.
    let pid = match id {
        Some(id) => unsafe { (*id).pid },
        None => (bpf_get_current_pid_tgid() >> 32) as u32,
    };

    let target_pid = TARGET_PID.load();
    if target_pid != 0 && pid != target_pid {
        return;
    }
    if FILTER_LPORTS.load() != 0 && LPORTS.get_ptr(lport).is_none() {
        return;
    }
    if FILTER_RPORTS.load() != 0 && RPORTS.get_ptr(rport).is_none() {
        return;
    }

    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        count(COUNTER_EVENTS_LOST);
        return;
    };
    // Payload only. bytes_received is how far rcv_nxt advanced, which includes the peer's FIN
    // once it arrived in order; tcp_fin() sets SOCK_DONE exactly then (and tcp_disconnect()
    // resets both). bytes_acked would count our SYN and FIN, so bytes sent are taken from
    // bytes_sent (payload, but every retransmission again) less bytes_retrans.
    // SAFETY: kernel memory is read through bpf_probe_read_kernel, which tolerates bad pointers.
    let (flags, received, sent, retrans) = unsafe {
        (
            // sk_flags: `skc_flags` in an anonymous union of `sock_common`, whose generated name
            // (`__bindgen_anon_5`) is as fixed by this machine's kernel as the offsets are.
            bpf_probe_read_kernel(addr_of!((*(sk as *const sock)).__sk_common.__bindgen_anon_5.skc_flags).cast::<u64>())
                .unwrap_or(0),
            bpf_probe_read_kernel(addr_of!((*tp).bytes_received)).unwrap_or(0),
            bpf_probe_read_kernel(addr_of!((*tp).bytes_sent)).unwrap_or(0),
            bpf_probe_read_kernel(addr_of!((*tp).bytes_retrans)).unwrap_or(0),
        )
    };
    let fin = (flags >> sock_flags::SOCK_DONE) & 1;
    let (family, laddr, raddr) = if family == AF_INET {
        // SAFETY: as above; IPv4 addresses fill the first word, the rest is zero.
        let (l, r) = unsafe { ((*args).saddr, (*args).daddr) };
        let word = |a: [u8; 4]| u64::from(u32::from_ne_bytes(a));
        (4u8, [word(l), 0], [word(r), 0])
    } else {
        // SAFETY: as above; the IPv6 addresses sit at 8-byte aligned offsets of the record.
        unsafe {
            let (l, r) = (addr_of!((*args).saddr_v6).cast::<u64>(), addr_of!((*args).daddr_v6).cast::<u64>());
            (6u8, [*l, *l.add(1)], [*r, *r.add(1)])
        }
    };
    let comm = match id {
        // SAFETY: a live map value; `comm` is at offset 8 of an 8-byte aligned value.
        Some(id) => unsafe {
            let c = addr_of!((*id).comm).cast::<u64>();
            [*c, *c.add(1)]
        },
        None => current_comm(),
    };

    // Written as whole fields and words (layout in `types::Event`): padding zeroed byte by byte
    // is merged by LLVM into a call to a byte-wise memset subprogram, since the BPF backend does
    // not expand memset inline. Reserved ring buffer memory is not zeroed and is mapped to user
    // space, so every byte is written.
    let e = entry.as_mut_ptr();
    let words = e.cast::<u64>();
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
    }
    entry.submit(0);
}

#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn comtrace(ctx: TracePointContext) -> u32 {
    let args = ctx.as_ptr() as *const Args;
    // SAFETY: the context is the tracepoint's record; the verifier allows direct reads of it.
    let (sk, oldstate, newstate, protocol) =
        unsafe { ((*args).skaddr as u64, (*args).oldstate, (*args).newstate, (*args).protocol) };
    if u32::from(protocol) != vmlinux::IPPROTO_TCP {
        return 0;
    }

    // A new connection: connect() in the caller's context, or a passive child socket made in
    // softirq context (no owner yet). SYN_SENT -> SYN_RECV is a simultaneous open, the same
    // connection.
    if newstate == TCP_SYN_SENT || (newstate == TCP_SYN_RECV && oldstate != TCP_SYN_SENT) {
        // SAFETY: a plain helper call without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        if BIRTHS.insert(sk, now, BPF_ANY.into()).is_err() {
            count(COUNTER_UNTRACKED);
            return 0;
        }
        if newstate == TCP_SYN_SENT {
            remember(sk, BPF_ANY.into());
        } else {
            let _ = IDENTS.remove(sk);
        }
        return 0;
    }
    // The application closes, in its own context: the owner of a passive socket.
    if newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK {
        remember(sk, BPF_NOEXIST.into());
        return 0;
    }
    if newstate != TCP_CLOSE {
        return 0;
    }

    // No birth: the connection began before we attached (or is a listener); not reported.
    if let Some(birth) = BIRTHS.get_ptr(sk) {
        // SAFETY: a live map value.
        report(args, sk, unsafe { *birth });
    }
    let _ = BIRTHS.remove(sk);
    let _ = IDENTS.remove(sk);
    0
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Nothing above can panic (no indexing, no unwraps that survive optimization).
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("comtrace-aya-kernel is a tracepoint program; it is built for bpfel-unknown-none by comtrace-aya's build.rs");
    std::process::exit(1);
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
