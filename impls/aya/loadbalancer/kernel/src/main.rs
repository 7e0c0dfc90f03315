//! loadbalancer XDP program: layer-4 load balancing with direct server return. TCP to a VIP
//! and a balanced port goes to the backend its connection is pinned to (`conns`), or for a new
//! flow to the one the Maglev table names; the frame leaves through the same interface with the
//! backend's destination MAC (see `bpfeval_shared::loadbalancer::abi` for the map layout and
//! the flow hash this implements byte for byte).
// Only the bpfel build is the program; a host build (e.g. `cargo clippy --workspace`) compiles
// the same code as an inert binary instead of failing.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns},
    macros::{map, xdp},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use loadbalancer_aya_types::*;

#[map(name = "settings")]
static SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);
#[map(name = "vips_v4")]
static VIPS_V4: HashMap<[u8; 4], u32> = HashMap::with_max_entries(MAX_VIPS, 0);
#[map(name = "vips_v6")]
static VIPS_V6: HashMap<[u8; 16], u32> = HashMap::with_max_entries(MAX_VIPS, 0);
#[map(name = "ports")]
static PORTS: HashMap<[u8; 2], u32> = HashMap::with_max_entries(MAX_PORTS, 0);
#[map(name = "backends")]
static BACKENDS: Array<Backend> = Array::with_max_entries(MAX_BACKENDS, 0);
#[map(name = "maglev")]
static MAGLEV: Array<u32> = Array::with_max_entries(TABLE_SIZE, 0);
#[map(name = "conns")]
static CONNS: LruHashMap<Flow, u32> = LruHashMap::with_max_entries(CONN_TABLE_SIZE, 0);
#[map(name = "verdicts")]
static VERDICTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VERDICT_COUNT, 0);
#[map(name = "backend_hits")]
static BACKEND_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_BACKENDS, 0);
#[map(name = "events")]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_FRAGMENT: u8 = 44;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

#[xdp]
pub fn loadbalancer(ctx: XdpContext) -> u32 {
    let settings = SETTINGS.get(0).copied().unwrap_or_default();
    let mut flow_mem = core::mem::MaybeUninit::uninit();
    let flow = Flow::zero_in(&mut flow_mem);
    let mut slot = NO_BACKEND;
    let verdict = classify(&ctx, &settings, flow, &mut slot);
    count(&VERDICTS, verdict);

    // SAFETY: a plain helper call without arguments.
    if settings.log_every != 0 && unsafe { bpf_get_prandom_u32() } % settings.log_every == 0 {
        match EVENTS.reserve::<Event>(0) {
            Some(mut entry) => {
                // Written as whole fields and words (layout in `types::Event`): byte-wise stores
                // are merged by LLVM into a call to a memset/memcpy subprogram, which the BPF
                // backend does not expand inline.
                let e = entry.as_mut_ptr();
                let words = e.cast::<u64>();
                let saddr = flow.saddr;
                // SAFETY: `e` is a reserved, 8-byte aligned record of `size_of::<Event>()` bytes.
                unsafe {
                    (*e).ts_ns = bpf_ktime_get_ns();
                    // backend, verdict, family, sport
                    let (b, s) = (slot.to_ne_bytes(), flow.sport);
                    words.add(1).write(u64::from_ne_bytes([
                        b[0],
                        b[1],
                        b[2],
                        b[3],
                        verdict as u8,
                        flow.family,
                        s[0],
                        s[1],
                    ]));
                    words.add(2).write(u64::from_ne_bytes(saddr[..8].try_into().unwrap_or_default()));
                    words.add(3).write(u64::from_ne_bytes(saddr[8..].try_into().unwrap_or_default()));
                }
                entry.submit(0);
            }
            None => count(&VERDICTS, COUNTER_EVENTS_LOST),
        }
    }
    match verdict {
        VERDICT_TX_CONN | VERDICT_TX_NEW => xdp_action::XDP_TX,
        VERDICT_DROP_MALFORMED | VERDICT_DROP_FRAGMENT | VERDICT_DROP_NO_BACKEND => xdp_action::XDP_DROP,
        _ => xdp_action::XDP_PASS,
    }
}

/// The packet's bytes `[off, off + N)`, or `None` if the frame ends before them. The comparison
/// against `data_end` is what the verifier needs to see before every packet access.
#[inline(always)]
fn packet<const N: usize>(ctx: &XdpContext, off: usize) -> Option<*mut [u8; N]> {
    let start = ctx.data() + off;
    if start + N > ctx.data_end() {
        return None;
    }
    Some(start as *mut [u8; N])
}

/// [`packet`], to read.
#[inline(always)]
fn bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<&[u8; N]> {
    // SAFETY: within the frame (checked by `packet`); the only write, the MAC rewrite, comes
    // after every read.
    packet(ctx, off).map(|p| unsafe { &*p })
}

/// Parses the frame into `flow` (as far as it gets) and forwards balanced TCP.
#[inline(always)]
fn classify(ctx: &XdpContext, settings: &Settings, flow: &mut Flow, slot: &mut u32) -> u32 {
    let Some(eth) = packet::<ETH_HLEN>(ctx, 0) else { return VERDICT_DROP_MALFORMED };
    // SAFETY: within the frame (checked by `packet`).
    let ethertype = unsafe { u16::from_be_bytes([(*eth)[12], (*eth)[13]]) };
    let l4 = match ethertype {
        ETH_P_IP => {
            let Some(ip) = bytes::<20>(ctx, ETH_HLEN) else { return VERDICT_DROP_MALFORMED };
            let ihl = usize::from(ip[0] & 0x0f);
            if ip[0] >> 4 != 4 || ihl < 5 || ctx.data() + ETH_HLEN + ihl * 4 > ctx.data_end() {
                return VERDICT_DROP_MALFORMED;
            }
            flow.saddr[..4].copy_from_slice(&ip[12..16]);
            flow.daddr[..4].copy_from_slice(&ip[16..20]);
            flow.family = 4;
            let daddr = [ip[16], ip[17], ip[18], ip[19]];
            // SAFETY: the value is only tested for presence, never read.
            let listed = settings.any_vip != 0 || unsafe { VIPS_V4.get(daddr) }.is_some();
            if !listed || ip[9] != IPPROTO_TCP {
                return VERDICT_PASS_OTHER;
            }
            // Only the first fragment has ports: fragments cannot be balanced per flow.
            if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
                return VERDICT_DROP_FRAGMENT;
            }
            ETH_HLEN + ihl * 4
        }
        ETH_P_IPV6 => {
            let Some(ip6) = bytes::<40>(ctx, ETH_HLEN) else { return VERDICT_DROP_MALFORMED };
            if ip6[0] >> 4 != 6 {
                return VERDICT_DROP_MALFORMED;
            }
            flow.saddr.copy_from_slice(&ip6[8..24]);
            flow.daddr.copy_from_slice(&ip6[24..40]);
            flow.family = 6;
            // SAFETY: the value is only tested for presence, never read.
            let listed = settings.any_vip != 0 || unsafe { VIPS_V6.get(flow.daddr) }.is_some();
            if !listed {
                return VERDICT_PASS_OTHER;
            }
            if ip6[6] == IPPROTO_FRAGMENT {
                return VERDICT_DROP_FRAGMENT;
            }
            // Other extension headers are not walked: such packets are not ours.
            if ip6[6] != IPPROTO_TCP {
                return VERDICT_PASS_OTHER;
            }
            ETH_HLEN + 40
        }
        // ARP, VLAN-tagged frames and everything else: the balancer serves the untagged
        // segment it is attached to.
        _ => return VERDICT_PASS_NON_IP,
    };

    let Some(ports) = bytes::<4>(ctx, l4) else { return VERDICT_DROP_MALFORMED };
    flow.sport = [ports[0], ports[1]];
    flow.dport = [ports[2], ports[3]];
    // SAFETY: the value is only tested for presence, never read.
    if unsafe { PORTS.get(flow.dport) }.is_none() {
        return VERDICT_PASS_OTHER;
    }
    let Some(tcp) = bytes::<20>(ctx, l4) else { return VERDICT_DROP_MALFORMED };
    flow.proto = IPPROTO_TCP;

    let syn = tcp[13] & (TCP_SYN | TCP_ACK) == TCP_SYN;
    let Some((backend, verdict)) = pick(flow, syn, slot) else { return VERDICT_DROP_NO_BACKEND };
    // Direct server return at layer 2: from the balancer (the frame's old destination) to the
    // backend; IP and TCP stay untouched.
    // SAFETY: within the frame (checked by `packet`); XDP owns the frame it rewrites.
    let (dst, src) = unsafe { &mut *eth }.split_at_mut(6);
    src[..6].copy_from_slice(dst);
    dst.copy_from_slice(&backend.mac);
    count(&BACKEND_HITS, *slot);
    verdict
}

/// The backend for a balanced flow: its connection's if the slot is still in use, else the
/// Maglev table's (and the flow is remembered). A SYN opens a new connection, which may reuse an
/// old 4-tuple: it always goes by the table. `None`: the table names no backend.
#[inline(always)]
fn pick(flow: &Flow, syn: bool, slot: &mut u32) -> Option<(Backend, u32)> {
    // SAFETY: the LRU value is copied out at once; a concurrent eviction can at worst hand us
    // another flow's slot, which then takes this flow to a live backend too.
    if let Some(&known) = if syn { None } else { unsafe { CONNS.get(flow) } } {
        *slot = known;
        if let Some(b) = BACKENDS.get(known).filter(|b| b.flags & BACKEND_IN_USE != 0) {
            return Some((*b, VERDICT_TX_CONN));
        }
    }
    let entry = *MAGLEV.get(flow_hash(flow) % TABLE_SIZE)?;
    if entry == NO_BACKEND {
        return None;
    }
    *slot = entry;
    let b = *BACKENDS.get(entry).filter(|b| b.flags & BACKEND_IN_USE != 0)?;
    let _ = CONNS.insert(flow, entry, 0);
    Some((b, VERDICT_TX_NEW))
}

/// MurmurHash3 (x86, 32-bit) of the 40 flow bytes, read as ten little-endian words.
#[inline(always)]
fn flow_hash(flow: &Flow) -> u32 {
    // SAFETY: `Flow` is 40 bytes, 4-byte aligned, without padding.
    let words = unsafe { &*(flow as *const Flow).cast::<[u32; 10]>() };
    let mut h = FLOW_HASH_SEED;
    for &w in words {
        let k = w.wrapping_mul(0xcc9e_2d51).rotate_left(15).wrapping_mul(0x1b87_3593);
        h = (h ^ k).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    h ^= size_of::<Flow>() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Per-CPU counter: a plain add is race-free since each CPU has its own slot.
#[inline(always)]
fn count(map: &PerCpuArray<u64>, index: u32) {
    if let Some(p) = map.get_ptr_mut(index) {
        // SAFETY: the pointer is this CPU's slot of a live map value.
        unsafe { *p += 1 };
    }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // All indexing above is on constants, so no panic path survives optimization.
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!(
        "loadbalancer-aya-kernel is an XDP program; it is built for bpfel-unknown-none by loadbalancer-aya's build.rs"
    );
    std::process::exit(1);
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
